"""Only bound parameters reach the database, and nothing starts a shell (static checks of src).

SQL is built with SQLAlchemy Core expressions everywhere. These tests walk the syntax
tree of every module under ``src`` and fail on SQL text assembled from strings (an
f-string, ``%``, ``+`` or ``.format``/``.join`` handed to anything that executes SQL,
or an f-string that reads like a statement) and on any way to start a process.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "bastion"
SQL_CALLS = frozenset({"text", "execute", "executemany", "executescript", "exec_driver_sql"})
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|DROP|CREATE|ALTER|PRAGMA)\b", re.I)
PROCESS_CALLS = frozenset(
    {
        "os.system", "os.popen", "os.spawnl", "os.spawnlp", "os.spawnv", "os.spawnvp",
        "os.execl", "os.execlp", "os.execv", "os.execvp", "os.execve",
        "subprocess.run", "subprocess.call", "subprocess.check_call",
        "subprocess.check_output", "subprocess.Popen", "subprocess.getoutput",
        "asyncio.create_subprocess_shell", "asyncio.create_subprocess_exec",
        "pty.spawn",
    }
)  # fmt: skip


def modules() -> Iterator[tuple[Path, ast.Module]]:
    """Every source module, parsed."""
    for path in sorted(SRC.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _dotted(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return _name(func)


def built_from_strings(node: ast.expr) -> bool:
    """Whether an expression assembles text: f-string, ``%``/``+`` or ``.format``/``.join``."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return isinstance(node, ast.Call) and _name(node.func) in {"format", "join"}


def raw_sql_findings(tree: ast.Module) -> list[int]:
    """Lines where SQL is executed from assembled text or an f-string reads like SQL."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and _name(node.func) in SQL_CALLS
            and node.args
            and built_from_strings(node.args[0])
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.JoinedStr):
            literal = "".join(
                part.value
                for part in node.values
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            )
            if SQL_WORDS.search(literal) and any(
                isinstance(part, ast.FormattedValue) for part in node.values
            ):
                lines.append(node.lineno)
    return sorted(set(lines))


def process_findings(tree: ast.Module) -> list[int]:
    """Lines that start a process or a shell, or import a module made for that."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _dotted(node.func) in PROCESS_CALLS:
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and any(
            k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value
            for k in node.keywords
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.split(".")[0] in {"subprocess", "pty"} for n in names):
                lines.append(node.lineno)
    return lines


def test_no_sql_is_built_from_strings_anywhere_in_src() -> None:
    """Every statement is a SQLAlchemy expression or a constant; values are bound."""
    found = {str(p.relative_to(SRC)): lines for p, t in modules() if (lines := raw_sql_findings(t))}
    assert found == {}


def test_no_shell_or_process_is_started_anywhere_in_src() -> None:
    """No module runs a command: nothing a client sends can reach a shell."""
    found = {str(p.relative_to(SRC)): lines for p, t in modules() if (lines := process_findings(t))}
    assert found == {}


@pytest.mark.parametrize(
    "code",
    [
        "conn.execute(text(f\"SELECT * FROM users WHERE id = '{uid}'\"))",
        'conn.execute(text("SELECT * FROM users WHERE id = " + uid))',
        'conn.execute(text("SELECT * FROM users WHERE id = %s" % uid))',
        'conn.exec_driver_sql("DELETE FROM t WHERE a = {}".format(a))',
        'cursor.execute(" ".join(parts))',
        'query = f"UPDATE users SET name = {name}"',
    ],
)
def test_the_checker_catches_raw_sql(code: str) -> None:
    """The detector is not vacuous: each classic string-built query is caught."""
    assert raw_sql_findings(ast.parse(code)) == [1]


@pytest.mark.parametrize(
    "code",
    [
        'conn.execute(text("SELECT 1"))',
        "conn.execute(select(users).where(users.c.id == uid))",
        'log.info(f"deleted {count} rows")',
    ],
)
def test_the_checker_allows_bound_statements(code: str) -> None:
    """Constant SQL and expressions with bound values pass."""
    assert raw_sql_findings(ast.parse(code)) == []


@pytest.mark.parametrize(
    "code",
    [
        "import subprocess",
        "os.system('ls ' + path)",
        "asyncio.create_subprocess_shell(cmd)",
        "run(cmd, shell=True)",
    ],
)
def test_the_checker_catches_processes(code: str) -> None:
    """Process and shell calls are detected."""
    assert process_findings(ast.parse(code)) == [1]
