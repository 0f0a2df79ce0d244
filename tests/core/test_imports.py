"""``bastion.core`` imports only the standard library, pydantic and itself.

import-linter's contract for this can only forbid packages it is told about; this walks
every import statement instead, so a new third-party import fails however it is named.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "bastion" / "core"
ALLOWED = frozenset(sys.stdlib_module_names) | {"pydantic", "pydantic_core", "pydantic_settings"}


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of each import in a file; relative ones stay in core."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _allowed(module: str) -> bool:
    in_core = module == "bastion.core" or module.startswith("bastion.core.")
    return in_core or module.partition(".")[0] in ALLOWED


def test_core_imports_only_the_standard_library_and_pydantic() -> None:
    """Every import under src/bastion/core names the standard library, pydantic or core."""
    files = sorted(CORE.rglob("*.py"))
    assert files
    found = [
        f"{path.relative_to(CORE)}:{line} imports {module}"
        for path in files
        for line, module in _imports(path)
        if not _allowed(module)
    ]
    assert found == []


def test_the_check_catches_what_the_import_contract_missed() -> None:
    """The imports the blocklist contract let through are refused here."""
    for module in ("httpx", "asyncpg", "prometheus_client", "jinja2", "psutil", "bastion.store"):
        assert not _allowed(module), module
    for module in ("asyncio", "os.path", "pydantic.fields", "bastion.core.errors"):
        assert _allowed(module), module
