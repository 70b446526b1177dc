"""The import contracts of pyproject.toml hold, and a deliberate violation breaks them.

``make lint`` runs ``lint-imports`` on a mirror of the installed namespace (vendgate/edge ->
edge/, ...); here the same mirror is built in a temporary folder, once as it is and then with
one forbidden import added to a copy of ``protocol`` or of ``cloud``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"edge": "edge", "cloud": "cloud", "protocol": "protocol", "boardsim": "firmware-sim"}
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def mirror(root: Path, *, copy_protocol: bool = False, copy: str | None = None) -> Path:
    """The namespace as ``make lint`` sees it; ``copy`` names a folder copied, not linked."""
    if copy_protocol:
        copy = "protocol"
    package = root / "vendgate"
    package.mkdir()
    for entry in (REPO / "vendgate").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in FOLDERS.items():
        if name == copy:
            shutil.copytree(
                REPO / folder, package / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            (package / name).symlink_to(REPO / folder)
    return package


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(autouse=True)
def _needs_import_linter() -> None:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (make install brings it)")


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    mirror(tmp_path)
    result = lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_protocol_importing_the_cloud_breaks_the_build(tmp_path: Path) -> None:
    package = mirror(tmp_path, copy_protocol=True)
    (package / "protocol" / "_violation.py").write_text("import vendgate.cloud.settings\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "protocol imports no program BROKEN" in result.stdout


def test_the_vend_core_importing_an_adapter_breaks_the_build(tmp_path: Path) -> None:
    package = mirror(tmp_path, copy="cloud")
    (package / "cloud" / "vends" / "_violation.py").write_text("import vendgate.cloud.mqtt\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "inside cloud, adapters import the core and never the other way BROKEN" in result.stdout


def test_the_vend_core_touching_the_database_breaks_the_build(tmp_path: Path) -> None:
    package = mirror(tmp_path, copy="cloud")
    core = package / "cloud" / "vends" / "_core.py"
    core.write_text(core.read_text() + "\nimport vendgate.cloud.db  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "the vend core is pure: no database, no Vipps, no network, not the service BROKEN" in (
        result.stdout
    )


# A package's private modules are its own business: tests and benchmarks use the public
# surface (each package's __init__), so a refactor inside a package never breaks them.
PRIVATE_IMPORT = re.compile(r"^\s*(?:from|import)\s+(vendgate(?:\.\w+)*\._\w+)", re.MULTILINE)


def test_tests_and_benchmarks_import_no_private_module() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(1)}"
        for folder in ("tests", "benchmarks")
        for path in sorted((REPO / folder).rglob("*.py"))
        for match in PRIVATE_IMPORT.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_private_import_check_sees_one() -> None:
    assert PRIVATE_IMPORT.search("    from vendgate.edge._core import AgentCore\n")
    assert not PRIVATE_IMPORT.search("from vendgate.edge.core import AgentCore\n")
