"""Organisation names that cannot be told apart are one name.

The key of a name is its skeleton, after Unicode's security mechanisms (UTS #39,
"confusable detection"): NFKC; invisible characters (format characters such as
zero-width spaces, joiners, soft hyphens) removed; every character that looks
like another mapped to one representative of its look-alikes (an ASCII letter
or digit where there is one: Greek capital Eta and Cyrillic En are both ``H``);
then case-folded and its white space collapsed. Two names with the same key
render alike, so the second is refused.

The look-alike pairs are Unicode's confusables list, as the
``confusable-homoglyphs`` package ships it.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from importlib import resources


@functools.cache
def _representatives() -> dict[str, str]:
    """Each confusable character and the one all its look-alikes map to."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    chosen: dict[str, str] = {}
    for char, homoglyphs in data.items():
        group = {char, *(h["c"] for h in homoglyphs)}
        single = [c for c in group if len(c) == 1]
        ascii_alnum = sorted(c for c in single if c.isascii() and c.isalnum())
        pick = ascii_alnum[0] if ascii_alnum else min(single or [char])
        for member in single:
            # A character in several groups keeps the first ASCII representative found.
            if member not in chosen or (pick.isascii() and not chosen[member].isascii()):
                chosen[member] = pick
    return chosen


def _visible(char: str) -> bool:
    return unicodedata.category(char) not in ("Cf", "Cc", "Cs")


def name_key(name: str) -> str:
    """The skeleton of an organisation's name (see the module's docstring)."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if _visible(ch))
    mapping = _representatives()
    text = "".join(mapping.get(ch, ch) for ch in text)
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
