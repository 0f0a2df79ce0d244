"""The configuration reference lists every setting."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from bastion.core.settings import Settings

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
