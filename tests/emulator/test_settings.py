"""Reading emulator settings from YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from aoai_gateway.emulator import EmulatorSettings, EmulatorSettingsError, FaultSpec
from aoai_gateway.emulator.settings import __doc__ as settings_reference

FULL = """
api_keys: ["test-key"]
auto_deployments: false
deployments:
  - name: gpt-4o-deploy
    model: gpt-4o
    latency_ms: 5
    chunk_interval_ms: 2
    responses: ["one", "two"]
    faults:
      - kind: 429
        rate: 0.25
        retry_after_ms: 2000
      - {kind: reset, after_chunks: 3}
  - name: bare
"""


def test_none_gives_the_defaults() -> None:
    settings = EmulatorSettings.load(None)

    assert settings == EmulatorSettings()
    assert settings.auto_deployments is True and settings.api_keys == ()


def test_full_file(tmp_path: Path) -> None:
    path = tmp_path / "emulator.yaml"
    path.write_text(FULL)

    settings = EmulatorSettings.load(str(path))

    first, bare = settings.deployments
    assert settings.api_keys == ("test-key",) and settings.auto_deployments is False
    assert (first.model, first.latency_ms, first.chunk_interval_ms) == ("gpt-4o", 5, 2)
    assert first.faults == (
        FaultSpec(kind="429", rate=0.25, retry_after_ms=2000),
        FaultSpec(kind="reset", after_chunks=3),
    )
    assert bare.model == "bare", "the model defaults to the deployment name"


def test_the_documented_example_loads(tmp_path: Path) -> None:
    assert settings_reference is not None
    example = settings_reference.split("::", 1)[1].split('"""', 1)[0]
    path = tmp_path / "reference.yaml"
    path.write_text("\n".join(line[4:] for line in example.splitlines()))

    settings = EmulatorSettings.load(str(path))

    assert settings.deployments[0].faults[0].kind == "429"


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")

    assert EmulatorSettings.load(str(path)) == EmulatorSettings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deployments:\n  - name: a\n    latency_ms: -1\n", "deployments.0.latency_ms"),
        ("deployments:\n  - name: a\n    faults: [{kind: 418}]\n", "deployments.0.faults.0.kind"),
        ("unknown_key: 1\n", "unknown_key"),
        ("deployments:\n  - name: a\n  - name: a\n", "repeated: a"),
        ("- just\n- a list\n", "expected a mapping"),
        ("key: [unclosed\n", "not valid YAML"),
    ],
)
def test_problems_name_their_place(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)

    with pytest.raises(EmulatorSettingsError, match=expected.replace(".", r"\.").replace("[", r"\[")):
        EmulatorSettings.load(str(path))
