"""Only bound parameters reach the database, and nothing starts a shell (static checks of src).

SQL is built with SQLAlchemy Core expressions everywhere. These tests walk the syntax
tree of every module under ``src`` and fail on SQL text assembled from strings (an
f-string, ``%``, ``+`` or ``.format``/``.join`` handed to anything that executes SQL,
or an f-string that reads like a statement) and on any call that runs a shell.
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
SHELL_CALLS = frozenset(
    {
        "os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
        "asyncio.create_subprocess_shell", "pty.spawn", "commands.getoutput",
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
    """Lines that run a command through a shell (or could: ``shell=`` anything but False).

    Backup tools (``pg_dump``) run with a fixed argument list and no shell; that is allowed.
    """
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _dotted(node.func) in SHELL_CALLS:
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and any(
            k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
            for k in node.keywords
        ):
            lines.append(node.lineno)
    return lines


def test_no_sql_is_built_from_strings_anywhere_in_src() -> None:
    """Every statement is a SQLAlchemy expression or a constant; values are bound."""
    found = {str(p.relative_to(SRC)): lines for p, t in modules() if (lines := raw_sql_findings(t))}
    assert found == {}


def test_no_shell_is_started_anywhere_in_src() -> None:
    """No module runs a shell: nothing a client sends can reach one."""
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
        "os.system('ls ' + path)",
        "os.popen(cmd)",
        "asyncio.create_subprocess_shell(cmd)",
        "run(cmd, shell=True)",
        "subprocess.run(cmd, shell=flag)",
    ],
)
def test_the_checker_catches_shells(code: str) -> None:
    """Shell calls are detected; a fixed argument list without a shell is not."""
    assert process_findings(ast.parse(code)) == [1]
    assert process_findings(ast.parse("subprocess.run([tool, '--x'], shell=False)")) == []
