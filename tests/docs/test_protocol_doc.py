"""docs/protocol.md documents every message type and every error code."""
from pathlib import Path

from protocol import messages as m
from protocol.errors import ErrorCode

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def test_every_message_type_is_documented():
    types = {t for d in (m.KIOSK_TO_CENTRAL, m.STAFF_TO_CENTRAL, m.CENTRAL_TO_KIOSK, m.CENTRAL_TO_STAFF) for t in d}
    assert not {t for t in types if f"`{t}`" not in DOC}


def test_every_error_code_is_documented():
    assert not {c.value for c in ErrorCode if f"`{c.value}`" not in DOC}
