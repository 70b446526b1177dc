"""The programs read no environment and never exit the process, except where that is their job.

Configuration comes from the environment only through the settings modules listed below (the
edge's ``EdgeConfig`` is handed its variables by ``vendgate edge``, outside ``edge/``), and a
crash is injected through the ``faults`` seam by a test-only entry point
(``tests/support/crashing.py``), never by production code reading a variable and calling
``os._exit``. This test keeps it so: a new read or exit in ``cloud/`` or ``edge/`` fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ("cloud", "edge")
# The only files of those programs that may read the environment: their settings modules.
READS_ENVIRONMENT = frozenset(
    {
        "cloud/settings.py",
        "cloud/vipps/_settings.py",
        "cloud/vippssim/_settings.py",
    }
)
ENVIRONMENT = ("os.environ", "os.getenv", "os.environb", "os.putenv")
EXIT = "os._exit"
# Imported by name, the same reads and the exit would not show as ``os.``-anything.
OS_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "_exit"})


def sources() -> list[Path]:
    return sorted(path for folder in PROGRAMS for path in (ROOT / folder).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imported_from_os(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in ("os", "posix")
        for alias in node.names
        if alias.name in OS_NAMES or alias.name == "*"
    ]


def test_the_sources_are_found() -> None:
    names = {relative(path) for path in sources()}
    assert {"cloud/app.py", "edge/_agent.py"} <= names
    assert names >= READS_ENVIRONMENT  # a settings module that moved must be listed anew


@pytest.mark.parametrize("path", sources(), ids=relative)
def test_no_environment_read_outside_the_settings_modules(path: Path) -> None:
    if relative(path) in READS_ENVIRONMENT:
        return
    text = path.read_text(encoding="utf-8")
    found = [name for name in ENVIRONMENT if name in text]
    assert found == [], f"{relative(path)} reads the environment: {found}"


@pytest.mark.parametrize("path", sources(), ids=relative)
def test_no_process_exit_and_no_os_names_imported(path: Path) -> None:
    exits = EXIT in path.read_text(encoding="utf-8")
    assert not exits, f"{relative(path)} calls {EXIT}"
    assert imported_from_os(path) == []
