"""The committed message catalogue is the one the code gives: a string added to a page
or a service without `make translations` fails here (its Dutch would be missing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PYBABEL = Path(sys.executable).parent / "pybabel"


def msgids(path: Path) -> set[str | tuple[str, ...]]:
    with path.open("rb") as handle:
        return {m.id for m in read_po(handle) if m.id}


def test_the_committed_catalogue_is_the_extracted_one(tmp_path):
    extracted = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(PYBABEL),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "-k",
            "gettext",
            "-k",
            "ngettext:1,2",
            "-k",
            "lazy_gettext",
            "-k",
            "N_",
            "-k",
            "Message:1",
            "--no-location",
            "--sort-output",
            "-o",
            str(extracted),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    committed = msgids(ROOT / "marketplace/translations/messages.pot")
    fresh = msgids(extracted)

    assert sorted(map(str, fresh - committed)) == [], "new strings: run make translations"
    assert sorted(map(str, committed - fresh)) == [], "gone strings: run make translations"


def test_every_catalogue_string_has_dutch():
    with (ROOT / "marketplace/translations/nl/LC_MESSAGES/messages.po").open("rb") as handle:
        missing = [m.id for m in read_po(handle, locale="nl") if m.id and not m.string]
    assert missing == []
