"""Every exception central and the protocol raise or define belongs to the project's tree
(protocol.errors.AmtsklingelError), so a caller can catch the project's errors as one; each
may also keep a built-in base (ValueError) for handlers that expect it. The appliance has
the same check in tests/appliance/test_errors.py."""
from __future__ import annotations

import ast
import builtins
import importlib
import inspect
from pathlib import Path

import pytest

from protocol.errors import AmtsklingelError
from tests.appliance.test_errors import raised_names

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["central", "protocol", "appliance"]


def _modules(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.name == "__main__.py":
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        yield path, name


@pytest.mark.parametrize("package", ["central", "protocol"])
def test_every_raised_exception_is_in_the_projects_tree(package):
    outside = []
    for path, name in _modules(package):
        names = raised_names(ast.parse(path.read_text(encoding="utf-8")))
        if not names:
            continue
        module = importlib.import_module(name)
        for raised in names:
            cls = getattr(module, raised, None) or getattr(builtins, raised, None)
            if cls is None:
                continue  # a local variable holding an exception or response object (raise response)
            if not (isinstance(cls, type) and issubclass(cls, AmtsklingelError)):
                outside.append(f"{name}: raise {raised}")
    assert outside == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exception_class_defined_is_in_the_projects_tree(package):
    outside = []
    for path, name in _modules(package):
        if "hardware/pi/" in str(path):  # imports Pi hardware libraries; checked by the raise test above
            continue
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException) and not issubclass(cls, AmtsklingelError):
                outside.append(f"{name}.{cls_name}")
    assert outside == []
