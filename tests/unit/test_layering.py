"""Dependencies point one way (marketplace -> outcomes -> valuation) and the
domain imports no framework: checked with import-linter's contracts in
pyproject.toml, and the check is shown to catch a violation.

Each check runs in a fresh interpreter, so packages this test session already
imported cannot stand in for the tree under test.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run_linter(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_project_keeps_its_layers_and_a_pure_domain():
    result = run_linter(ROOT)

    assert result.returncode == 0, result.stdout
    assert "4 kept, 0 broken" in result.stdout


def make_tree(tmp_path: Path, sources: dict[str, str]) -> Path:
    for path, source in sources.items():
        file = tmp_path / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(source)
    config = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config[config.index("[tool.importlinter]") :])
    return tmp_path


# Every package the marketplace's layers contract names, to be made empty.
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "contracts"
]
LAYERED = [
    name.strip()
    for contract in CONTRACTS
    if contract["id"] == "marketplace-layers"
    for layer in contract["layers"]
    for name in layer.split("|")
]
EMPTY = {
    f"{p.replace('.', '/')}/__init__.py": ""
    for p in ("valuation", "outcomes", "marketplace", "config", *LAYERED)
}


def test_the_contracts_pass_a_tree_that_respects_them(tmp_path):
    tree = make_tree(
        tmp_path,
        {
            **EMPTY,
            "outcomes/catalogue.py": "import valuation\n",
            "marketplace/app/__init__.py": "import outcomes.catalogue\nimport flask\n",
            "marketplace/funding/services.py": "import marketplace.payments.calls\n",
            "marketplace/payments/calls.py": "import marketplace.ledger\n",
            # A feature's own page may use any feature (edges are exempt).
            "marketplace/payments/views.py": "import marketplace.funding.services\n",
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


def test_the_layers_catch_a_feature_importing_one_above_it(tmp_path):
    """payments (the Stripe calls) importing funding (the owner of pledges) is refused."""
    tree = make_tree(
        tmp_path,
        {**EMPTY, "marketplace/payments/calls.py": "import marketplace.funding.services\n"},
    )
    (tree / "marketplace/funding/services.py").write_text("")

    result = run_linter(tree)

    assert result.returncode == 1
    assert "marketplace.payments is not allowed to import marketplace.funding" in result.stdout
