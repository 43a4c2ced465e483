"""Dependencies point one way (marketplace -> outcomes -> valuation) and the
domain imports no framework: checked with import-linter's contracts in
pyproject.toml, and the check is shown to catch a violation."""

import os
import textwrap
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def run_linter(config: Path, cwd: Path) -> int:
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return lint_imports(config_filename=str(config), no_cache=True)
    finally:
        os.chdir(previous)


def test_the_project_keeps_its_layers_and_a_pure_domain():
    assert run_linter(ROOT / "pyproject.toml", ROOT) == 0


def test_the_contracts_catch_an_upward_import(tmp_path, monkeypatch):
    for package, source in {
        "valuation": "import outcomes.catalogue\n",
        "outcomes": "",
        "marketplace": "",
        "config": "",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(source)
    (tmp_path / "outcomes" / "catalogue.py").write_text("import flask\n")
    config = (ROOT / "pyproject.toml").read_text()
    contracts = config[config.index("[tool.importlinter]") :]
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(contracts))
    monkeypatch.syspath_prepend(str(tmp_path))

    assert run_linter(tmp_path / "pyproject.toml", tmp_path) == 1
