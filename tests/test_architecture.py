"""docs/architecture.md names every package and module, and the layers contract covers
every top-level part of ``bastion``: neither can drift from the code unnoticed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "bastion"
DOC = ROOT / "docs" / "architecture.md"


def _source() -> tuple[set[str], set[str]]:
    """The packages and modules under src/bastion, as dotted names."""
    packages, modules = set(), set()
    for init in SOURCE.rglob("__init__.py"):
        parts = init.parent.relative_to(SOURCE.parent).parts
        packages.add(".".join(parts))
        for module in init.parent.glob("*.py"):
            if module.name != "__init__.py":
                modules.add(".".join((*parts, module.stem)))
    return packages, modules


def _module_map() -> tuple[set[str], set[str]]:
    """The packages and modules the doc's module map names.

    A line starting with ``name/`` opens a package two spaces of indentation deeper
    than its parent; the words after it (and on the lines that follow, until the next
    package) are its modules. Parenthesised text is a comment.
    """
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"## Module map\n\n```\n(.*?)```", text, re.DOTALL)
    assert found is not None, "docs/architecture.md lost its module map"
    block = re.sub(r"\([^)]*\)", "", found.group(1))
    packages, modules = set(), set()
    stack: list[str] = []
    for line in block.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].endswith("/"):
            depth = (len(line) - len(line.lstrip())) // 2
            stack = [*stack[:depth], words[0].removesuffix("/")]
            packages.add(".".join(stack))
            words = words[1:]
        modules |= {".".join((*stack, word)) for word in words}
    return packages, modules


def test_the_module_map_names_every_package_and_module() -> None:
    """Each package and module of src/bastion is in the map, and the map has no others."""
    packages, modules = _source()
    named_packages, named_modules = _module_map()
    assert sorted(packages ^ named_packages) == []
    assert sorted(modules ^ named_modules) == []


def _top_level() -> set[str]:
    """``bastion``'s top-level packages and modules."""
    return {
        f"bastion.{path.stem if path.suffix else path.name}"
        for path in SOURCE.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").exists()
    }


def test_the_layers_contract_covers_every_top_level_part() -> None:
    """No top-level package or module of bastion escapes the layers contract."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    layered = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    assert sorted(_top_level() - layered) == []


def test_the_layers_table_names_every_top_level_part() -> None:
    """The "Layers as built" table places each top-level package and module."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Layers as built") : text.index("Contracts checked")]
    assert sorted(name for name in _top_level() if f"`{name}`" not in table) == []
