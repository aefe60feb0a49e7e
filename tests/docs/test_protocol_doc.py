"""docs/protocol.md is complete and true to protocol/: its reference tables are generated and up to date,
every message type, field, enumeration value and error code of protocol/ is documented, and every protocol
name the document uses (in tables, prose and diagrams) exists in protocol/."""
from __future__ import annotations

import re

import pytest

from protocol import doc
from protocol.errors import ErrorCode

TEXT = doc.DOC_PATH.read_text()
PROSE, _, REST = TEXT.partition(doc.BEGIN)
REFERENCE = REST.partition(doc.END)[0]

# Names the prose uses that are not part of the wire format: central's settings, its cookies and form fields.
NOT_PROTOCOL = {"call_connect_timeout_s", "ice_networks", "public_url", "resume_grace_s", "session_hours",
                "secure_cookies", "ak_session", "ak_login_csrf", "csrf_token", "trusted_proxies",
                "online_visits_per_department"}


# -- what protocol/ defines ------------------------------------------------------------

def schema_fields(schema: dict) -> dict[str, list]:
    """field name -> allowed values ([] when not an enumeration)."""
    return {name: doc.enum_values(prop) for name, prop, _ in doc.fields(schema)}


MESSAGES = {cls: schema_fields(cls.model_json_schema()) for cls, _ in doc.message_classes()}
MODELS = {name: schema_fields(schema) for name, schema in doc.nested_models().items()}
TYPES = {doc.type_of(cls) for cls in MESSAGES}
FIELDS_BY_TYPE: dict[str, dict[str, list]] = {}
for cls, found in MESSAGES.items():
    FIELDS_BY_TYPE.setdefault(doc.type_of(cls), {}).update(found)
ALL_FIELDS: dict[str, set[str]] = {}  # field name -> its values anywhere (empty: not an enumeration)
for found in [*MESSAGES.values(), *MODELS.values()]:
    for name, values in found.items():
        ALL_FIELDS.setdefault(name, set()).update(map(str, values))
VALUES = {v for values in ALL_FIELDS.values() for v in values}
CODES = {c.value for c in ErrorCode}
VOCABULARY = TYPES | set(ALL_FIELDS) | VALUES | CODES | set(MODELS)


# -- what the document says --------------------------------------------------------------

def sections(text: str) -> dict[str, str]:
    """'#### heading' -> its text up to the next heading."""
    parts = re.split(r"^(#{2,4} .*)$", text, flags=re.M)
    return {parts[i].lstrip("# ").strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def table(text: str) -> list[list[str]]:
    """The rows (cells without the header) of the first Markdown table in text."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def ticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


REF = sections(REFERENCE)


def test_generated_reference_is_up_to_date():
    assert doc.rewrite(TEXT) == TEXT, "docs/protocol.md is out of date: run python -m protocol.doc"
    assert REFERENCE.strip(), "the generated region of docs/protocol.md is empty"


@pytest.mark.parametrize("direction", doc.DIRECTIONS)
def test_direction_tables_list_exactly_the_types_of_that_direction(direction):
    documented = [ticked(row[0])[0] for row in table(REF[direction])]
    assert sorted(documented) == sorted(doc.DIRECTIONS[direction])


@pytest.mark.parametrize("cls", list(MESSAGES), ids=lambda cls: f"{doc.type_of(cls)}:{cls.__name__}")
def test_each_message_documents_exactly_its_fields_and_values(cls):
    heading = doc.heading(cls, dict(doc.message_classes())[cls]).lstrip("# ")
    assert heading in REF, f"no section {heading}"
    expected = {f: v for f, v in MESSAGES[cls].items() if f not in doc.COMMON}
    rows = table(REF[heading])
    documented = {ticked(row[0])[0]: row for row in rows}
    assert set(documented) == set(expected), heading
    for name, values in expected.items():
        assert {str(v) for v in values} <= set(ticked(documented[name][3])), (heading, name)
    assert (cls.__doc__ or "").strip(), f"{cls.__name__} needs a docstring: it is the message's description"


@pytest.mark.parametrize("name", list(MODELS))
def test_each_nested_object_documents_exactly_its_fields(name):
    rows = table(REF[f"`{name}`"])
    assert {ticked(row[0])[0] for row in rows} == set(MODELS[name])


def test_common_fields_and_error_codes():
    assert {ticked(row[0])[0] for row in table(REF["Fields of every message"])} == set(doc.COMMON)
    rows = table(REF["Error codes"])
    assert {ticked(row[0])[0] for row in rows} == CODES
    assert all(row[1] for row in rows), "every error code needs its meaning (protocol/errors.py)"


def test_every_definition_appears_in_the_document():
    missing = {name for name in VOCABULARY if f"`{name}`" not in TEXT}
    assert not missing


# -- the hand-written part only uses names that exist --------------------------------------

DOTTED = re.compile(r"^[a-z]+(\.[a-z_]+)+$")
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
PAIR = re.compile(r"^([a-z_]+): ([a-z_]+)$")


def test_prose_names_only_existing_types_fields_values_and_codes():
    unknown = []
    for token in ticked(PROSE):
        if DOTTED.match(token):  # a type, or type.field
            kind, _, field = token.rpartition(".")
            if token not in TYPES and field not in FIELDS_BY_TYPE.get(kind, {}):
                unknown.append(token)
        elif SNAKE.match(token) and token not in VOCABULARY | NOT_PROTOCOL:
            unknown.append(token)
        elif pair := PAIR.match(token):  # field: value
            field, value = pair.groups()
            allowed = ALL_FIELDS.get(field)
            if allowed is None or (allowed and value not in allowed) or (
                    not allowed and value not in ("true", "false")):
                unknown.append(token)
    assert not unknown, f"docs/protocol.md names what protocol/ does not define: {unknown}"


def test_diagrams_use_existing_types_and_fields():
    blocks = re.findall(r"^```\n(.*?)^```", PROSE, flags=re.S | re.M)
    assert blocks
    wrong = []
    for block in blocks:
        for kind, inner in re.findall(r"\b([a-z]+(?:\.[a-z_]+)+) \{([^}]*)\}", block):
            inner = re.sub(r'"[^"]*"|\([^)]*\)', "", inner)
            for field in re.findall(r"(?:^|,)\s*([a-z_]+)", inner):
                if field not in FIELDS_BY_TYPE.get(kind, {}):
                    wrong.append(f"{kind}.{field}")
            if kind not in TYPES:
                wrong.append(kind)
    assert not wrong, wrong
