"""The configuration reference lists every setting and every production check."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from bastion.core.settings import Settings
from tests.support.settings import INSECURE, nested, production, secret_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _variables(model: type[BaseModel] = Settings, prefix: str = "BASTION_") -> list[str]:
    """Every leaf setting's variable, nested sections (``encryption.vault``) included."""
    names = []
    for name, field in model.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            names += _variables(section, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    """docs/configuration.md names the environment variable of every setting."""
    text = DOC.read_text(encoding="utf-8")
    assert [name for name in _variables() if f"`{name}`" not in text] == []


def _production_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.split("## Production mode", 1)[1].split("\n## ", 1)[0]


def _findings() -> list[str]:
    """Every finding production can report: one per insecure change, and a weak value in
    each secret setting."""
    changes = [change for change, _named in INSECURE]
    changes += [nested(name, "change-me") for name in secret_fields()]
    changes += [nested(name, "short") for name in secret_fields()]
    findings = []
    for change in changes:
        config = production(**change)
        config["environment"] = "development"
        findings += Settings(**config).insecure_findings()
    return findings


def test_every_production_finding_is_documented() -> None:
    """Each setting a production finding names is in the production list of
    docs/configuration.md, so the list cannot fall behind the checks."""
    sections = "|".join(Settings.model_fields)
    setting = re.compile(rf"\b(?:{sections})(?:\.[a-z_]+)+")
    documented = _production_section()
    named = {name for finding in _findings() for name in setting.findall(finding)}
    assert len(named) >= 20
    assert sorted(name for name in named if f"`{name}`" not in documented) == []
