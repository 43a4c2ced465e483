"""Every refusal the services can give has Dutch text: its code's title, its template,
its field errors. Read from the source, so a new refusal without a translation fails.

A refusal written as an f-string cannot be translated at all (its figures are baked
in): those fail too; write a template with parameters instead.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import marketplace
import outcomes
from outcomes.errors import DomainError

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "marketplace/translations/nl/LC_MESSAGES/messages.po"
SOURCES = sorted([*(ROOT / "marketplace").rglob("*.py"), *(ROOT / "outcomes").rglob("*.py")])


def dutch() -> dict[str, str]:
    with CATALOGUE.open("rb") as handle:
        return {m.id: m.string for m in read_po(handle, locale="nl") if m.id}


def refusal_classes() -> set[type[DomainError]]:
    """Every refusal class of the shipped code (each of its modules imported first)."""
    for package in (marketplace, outcomes):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name != "marketplace.wsgi":  # builds an app from the environment
                importlib.import_module(module.name)
    found: set[type[DomainError]] = set()
    todo: list[type[DomainError]] = [DomainError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith(("marketplace.", "outcomes.")):
            found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _texts(node: ast.expr) -> list[ast.expr]:
    """The message expressions inside ``errors={field: [message, ...]}``."""
    if isinstance(node, ast.Dict):
        return [m for value in node.values for m in _texts(value)]
    if isinstance(node, ast.List | ast.Tuple):
        return list(node.elts)
    return []


def messages_in(path: Path, refusals: set[str]) -> list[tuple[int, ast.expr]]:
    """(line, expression) of every refusal template and field error written in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in refusals or name == "Message":
            if node.args:
                found.append((node.lineno, node.args[0]))
            for keyword in node.keywords:
                if keyword.arg == "errors":
                    found += [(node.lineno, text) for text in _texts(keyword.value)]
    return found


def test_every_refusal_code_has_a_dutch_title():
    catalogue = dutch()
    missing = sorted(
        f"{cls.__module__}.{cls.__name__}: {cls.title!r}"
        for cls in refusal_classes()
        if not catalogue.get(cls.title)
    )
    assert missing == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_refusal_template_and_field_error_has_dutch_text(path):
    catalogue = dutch()
    refusals = {cls.__name__ for cls in refusal_classes()}
    problems = []
    for line, text in messages_in(path, refusals):
        if isinstance(text, ast.JoinedStr):
            problems.append(f"line {line}: an f-string; give a template with parameters")
        elif (
            isinstance(text, ast.Constant)
            and isinstance(text.value, str)
            and not catalogue.get(text.value)
        ):
            problems.append(f"line {line}: no Dutch text for {text.value!r}")
    assert problems == []


def test_the_check_reads_refusals_and_field_errors():
    source = (
        "raise Conflict('A known one.', errors={'x': ['Field text.']})\n"
        "raise Conflict(f'Baked {figure}.')\n"
    )
    tree_file = ROOT / "tests/unit/_refusal_sample.py"
    tree_file.write_text(source)
    try:
        found = messages_in(tree_file, {"Conflict"})
    finally:
        tree_file.unlink()
    kinds = [(line, type(text).__name__, getattr(text, "value", None)) for line, text in found]
    assert kinds == [
        (1, "Constant", "A known one."),
        (1, "Constant", "Field text."),
        (2, "JoinedStr", None),
    ]
