"""No words on a page bypass the catalogue: every piece of text a template writes
itself (between tags, and in the attributes people read: title, placeholder,
aria-label, alt, value of buttons) goes through ``_()``.

The check reads each template with Jinja's own parser: the literal text of a
template is its ``TemplateData``; expressions (``{{ _('...') }}``, data) are not.
Within that text, tags and the attributes nobody reads are set aside; any letter
left is a word that no Dutch reader would see translated.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "marketplace" / "templates"
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
WORD = re.compile(r"[^\W\d_]{2,}")
# Words that are the same in every language: the languages' own names on the language
# switch, units and the names of standards, the registry's serial prefix.
SAME_IN_EVERY_LANGUAGE = {"English", "Nederlands", "kB", "MB", "SHA", "SOM", "EUR", "CSV", "PDF"}
# Identifiers shown as examples of what to type (``project:42``).
IDENTIFIER = re.compile(r"\b[a-z_]+:\d+\b")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self.words += WORD.findall(IDENTIFIER.sub(" ", value))

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.words += WORD.findall(IDENTIFIER.sub(" ", data))


def literal_text(source: str) -> str:
    """The template's own text, with each expression and statement replaced by a space."""
    # Parsed, never rendered: autoescaping does not apply.
    tree = jinja2.Environment(extensions=["jinja2.ext.i18n"]).parse(source)  # noqa: S701
    return " ".join(data.data for data in tree.find_all(nodes.TemplateData))


def untranslated(source: str) -> list[str]:
    parser = _Text()
    # Attribute values split by an expression (``title="{{ x }}"``) are whole again here
    # only for the literal parts, which is what matters.
    parser.feed(literal_text(source))
    parser.close()
    return [w for w in parser.words if w not in SAME_IN_EVERY_LANGUAGE]


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_a_template_writes_no_word_outside_the_catalogue(template):
    assert untranslated(template.read_text()) == []


def test_the_check_finds_a_heading_that_bypasses_the_catalogue():
    assert untranslated("<h1>Projects</h1><p>{{ _('Fine') }}</p>") == ["Projects"]
    assert untranslated('<input placeholder="Search" value="{{ q }}">') == ["Search"]
    assert untranslated("<h1>{{ _('Projects') }}</h1> <span>€ 5 · 3%</span>") == []
