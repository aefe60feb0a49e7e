"""Every exception the appliance raises belongs to the project's tree (protocol.errors.AmtsklingelError),
so a caller can catch the project's errors as one; each also keeps its built-in base for existing handlers."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

from protocol.errors import AmtsklingelError

APPLIANCE = Path(__file__).resolve().parents[2] / "appliance"
# aiortc's track contract: recv() raises its MediaStreamError when a track ends.
FOREIGN_BY_CONTRACT = {"MediaStreamError"}


def raised_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name):
                names.add(target.id)
    return names


def test_every_raised_exception_is_in_the_projects_tree():
    outside = []
    for path in sorted(APPLIANCE.rglob("*.py")):
        module_name = ".".join(path.relative_to(APPLIANCE.parent).with_suffix("").parts)
        names = raised_names(ast.parse(path.read_text(encoding="utf-8")))
        if not names:
            continue
        module = importlib.import_module(module_name.removesuffix(".__init__"))
        for name in names - FOREIGN_BY_CONTRACT:
            cls = getattr(module, name, None)
            if callable(cls) and not isinstance(cls, type):  # a helper that builds the exception
                cls = getattr(module, str(cls.__annotations__.get("return")), None)
            if not (isinstance(cls, type) and issubclass(cls, AmtsklingelError)):
                outside.append(f"{module_name}: raise {name}")
    assert outside == []
