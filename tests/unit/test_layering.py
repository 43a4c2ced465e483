"""Dependencies point one way (marketplace -> outcomes -> valuation) and the
domain imports no framework: checked with import-linter's contracts in
pyproject.toml, and the check is shown to catch a violation.

Each check runs in a fresh interpreter, so packages this test session already
imported cannot stand in for the tree under test.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run_linter(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_project_keeps_its_layers_and_a_pure_domain():
    result = run_linter(ROOT)

    assert result.returncode == 0, result.stdout
    assert "3 kept, 0 broken" in result.stdout


def make_tree(tmp_path: Path, sources: dict[str, str]) -> Path:
    for path, source in sources.items():
        file = tmp_path / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(source)
    config = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config[config.index("[tool.importlinter]") :])
    return tmp_path


EMPTY = {f"{p}/__init__.py": "" for p in ("valuation", "outcomes", "marketplace", "config")}


def test_the_contracts_pass_a_tree_that_respects_them(tmp_path):
    tree = make_tree(
        tmp_path,
        {
            **EMPTY,
            "outcomes/catalogue.py": "import valuation\n",
            "marketplace/app.py": "import outcomes.catalogue\nimport flask\n",
        },
    )

    assert run_linter(tree).returncode == 0


def test_the_contracts_catch_an_upward_import_and_a_framework_in_the_domain(tmp_path):
    tree = make_tree(
        tmp_path,
        {
            **EMPTY,
            "valuation/__init__.py": "import outcomes.catalogue\n",
            "outcomes/catalogue.py": "import flask\n",
        },
    )

    result = run_linter(tree)

    assert result.returncode == 1
    assert "BROKEN" in result.stdout
