"""The README, the example configuration, `--help` and the code stay in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from aoai_gateway.cli import main
from aoai_gateway.config import ENV_VARS, Settings, load_settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def setting_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        if name in ("sources", "deployments"):
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths += setting_paths(annotation, f"{prefix}{name}.")
        else:
            paths.append(prefix + name)
    return paths


@pytest.mark.parametrize("path", setting_paths(Settings))
def test_every_setting_is_documented(path: str) -> None:
    assert f"`{path}`" in README or f"`{path}," in README or f", `{path}`" in README, path
    example = (ROOT / "examples" / "config.yaml").read_text()
    assert re.search(rf"^\s*{path.rsplit('.', 1)[-1]}:", example, re.M), path


@pytest.mark.parametrize("name", list(ENV_VARS))
def test_every_env_var_is_documented(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert f"`{name}`" in README
    with pytest.raises(SystemExit):
        main(["--help"])
    assert name in capsys.readouterr().out


def test_example_configs_load() -> None:
    settings = load_settings(
        ROOT / "examples" / "config.yaml", {"AZURE_OPENAI_KEY_EASTUS": "k", "AZURE_OPENAI_KEY_SWC": "s"}
    )
    assert [d.provider for d in settings.deployments] == ["azure", "azure", "openai", "local", "local", "pipeline"]
    # The reference file claims to show every default: hold it to that.
    exclude = {"deployments", "sources"}
    assert settings.model_dump(exclude=exclude) == Settings().model_dump(exclude=exclude)
    assert load_settings(ROOT / "examples" / "emulator.yaml", {}).deployments


def test_readme_commands_match_the_scripts() -> None:
    assert "./scripts/test" in README
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()
    assert "aoai-gateway serve --config examples/emulator.yaml --with-emulator" in README
