"""A core-only install (`pip install aoai-gateway`): the gateway runs, and a feature whose extra is missing stops
start-up with one line naming the extra.

A real core-only virtual environment is too slow to build per run; instead each command runs in a fresh
interpreter whose import system refuses every optional dependency, as if it had never been installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from aoai_gateway.extras import EXTRAS, MissingExtra, needs

ROOT = Path(__file__).parents[1]

# Every top-level module an extra brings (and their heavy dependencies): none of them may be needed by the core.
OPTIONAL = sorted({m.split(".")[0] for modules in EXTRAS.values() for m in modules} | {"ctranslate2", "onnxruntime"})

CORE_ONLY = f"""
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""


def core_only(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AOAI_GATEWAY_DATA_DIR": str(tmp_path / "data")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", CORE_ONLY + code, *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def cli(tmp_path: Path, *args: str, config: str | None = None) -> subprocess.CompletedProcess[str]:
    if config is not None:
        (tmp_path / "config.yaml").write_text(config)
    return core_only("from aoai_gateway.cli import main\nraise SystemExit(main(sys.argv[1:]))", tmp_path, *args)


AZURE = '  - {model: gpt-4o, endpoint: "http://127.0.0.1:9"}\n'


def test_the_core_imports_and_answers_help_without_any_extra(tmp_path: Path) -> None:
    modules = "aoai_gateway, aoai_gateway.cli, aoai_gateway.app, aoai_gateway.factory, aoai_gateway.server"
    imported = core_only(f"import {modules}, aoai_gateway.emulator\nprint('ok')", tmp_path)
    assert (imported.returncode, imported.stdout.strip()) == (0, "ok"), imported.stderr
    helped = cli(tmp_path, "serve", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--config" in helped.stdout


def test_the_readme_config_needs_no_extra(tmp_path: Path) -> None:
    checked = cli(tmp_path, "config", "check", "--config", str(ROOT / "examples" / "emulator.yaml"))
    assert checked.returncode == 0, checked.stderr
    assert "gpt-4o" in checked.stdout


@pytest.mark.parametrize(
    ("config", "feature", "extra"),
    [
        ("deployments:\n  - {model: whisper-local, provider: local}\n", "provider: local", "speech"),
        (
            "deployments:\n  - {model: whisper-local, provider: local, model_path: MODEL}\n",  # one of its own
            "provider: local",
            "speech",
        ),
        (
            "deployments:\n  - {model: llm-local, provider: local, engine: llama.cpp, model_path: GGUF}\n",
            "engine: llama.cpp",
            "local-llm",
        ),
        ("database_url: postgresql://gateway@127.0.0.1/gateway\ndeployments:\n" + AZURE, "database_url", "postgres"),
        ("redis_url: redis://127.0.0.1:6379/0\ndeployments:\n" + AZURE, "redis_url", "redis"),
        ("server: {engine: granian}\ndeployments:\n" + AZURE, "server.engine: granian", "granian"),
        ("upstream: {client: httpx}\ndeployments:\n" + AZURE, "upstream.client: httpx", "httpx"),
        ("tracing: {enabled: true}\ndeployments:\n" + AZURE, "tracing.enabled", "otel"),
    ],
)
def test_serve_names_the_missing_extra_in_one_line(tmp_path: Path, config: str, feature: str, extra: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (model / name).write_text("{}")
    (tmp_path / "model.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")  # the magic is all the settings check
    result = cli(
        tmp_path, "serve", config=config.replace("MODEL", str(model)).replace("GGUF", str(tmp_path / "model.gguf"))
    )
    assert result.returncode == 1
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line, result.stderr
    assert line.startswith(f"aoai-gateway: {feature}")
    assert line.endswith(f"needs the {extra} extra: pip install 'aoai-gateway[{extra}]'")


def test_a_local_deployment_says_exactly_what_to_install(tmp_path: Path) -> None:
    result = cli(tmp_path, "serve", config="deployments:\n  - {model: whisper-local, provider: local}\n")
    expected = "aoai-gateway: provider: local needs the speech extra: pip install 'aoai-gateway[speech]'\n"
    assert result.stderr == expected


@pytest.mark.parametrize("command", [["list"], ["process", "call.wav"], ["worker", "--queue", "redis://x"]])
def test_calls_commands_name_the_calls_extra(tmp_path: Path, command: list[str]) -> None:
    result = cli(tmp_path, "calls", *command, config="deployments:\n" + AZURE)
    assert result.returncode == 1
    assert result.stderr == (
        f"aoai-gateway: calls {command[0]} needs the calls extra: pip install 'aoai-gateway[calls]'\n"
    )


def test_the_import_seams_raise_missing_extra_too(tmp_path: Path) -> None:
    # A library user who skips the CLI's check meets the same error where the import happens.
    code = """
import asyncio
from aoai_gateway.access.limiter import RedisLimiter
from aoai_gateway.extras import MissingExtra
from aoai_gateway.store import connect_database

for attempt in (lambda: asyncio.run(connect_database("postgresql://x@127.0.0.1/x")),
                lambda: RedisLimiter.from_url("redis://127.0.0.1:6379/0")):
    try:
        attempt()
    except MissingExtra as exc:
        print(exc)
"""
    result = core_only(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "database_url postgresql:// needs the postgres extra: pip install 'aoai-gateway[postgres]'",
        "redis_url needs the redis extra: pip install 'aoai-gateway[redis]'",
    ]


def test_open_gateway_with_tracing_names_the_otel_extra(tmp_path: Path) -> None:
    code = """
import asyncio
from aoai_gateway.config import Settings
from aoai_gateway.extras import MissingExtra
from aoai_gateway.factory import open_gateway

async def main():
    async with open_gateway(Settings.model_validate({"tracing": {"enabled": True}})):
        pass

try:
    asyncio.run(main())
except MissingExtra as exc:
    print(exc)
"""
    result = core_only(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "tracing.enabled needs the otel extra: pip install 'aoai-gateway[otel]'\n"


def test_needs_lets_other_import_errors_through() -> None:
    with pytest.raises(MissingExtra, match=r"aoai-gateway\[redis\]"), needs("redis", "redis_url"):
        raise ModuleNotFoundError("No module named 'redis'", name="redis")
    with pytest.raises(ModuleNotFoundError), needs("redis", "redis_url"):  # a bug of ours, not a missing extra
        raise ModuleNotFoundError("No module named 'aoai_gateway.nope'", name="aoai_gateway.nope")


def test_every_extra_is_declared_and_the_test_extra_installs_them_all() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    assert extras["all"] == [f"aoai-gateway[{','.join(EXTRAS)}]"]
    assert "aoai-gateway[all]" in extras["test"]
    core = " ".join(project["dependencies"]).lower()
    for name in ("faster-whisper", "asyncpg", "redis", "openai", "dramatiq", "azure", "numpy", "av>"):
        assert name not in core, name


def test_the_console_s_calls_explorer_needs_no_extra_but_an_azure_playback_source_names_it(tmp_path: Path) -> None:
    code = """
import asyncio, sys
from aoai_gateway.config import Settings
from aoai_gateway.extras import MissingExtra
from aoai_gateway.factory import open_gateway

def settings(source):
    return Settings.model_validate({
        "auth": "keys", "data_dir": sys.argv[1], "admin": {"master_key": "m" * 24},
        "deployments": [{"model": "gpt-4o", "endpoint": "http://127.0.0.1:9", "api_key": "k"}],
        "calls": {"playback_sources": [source]},
    })

async def main():
    async with open_gateway(settings(sys.argv[1])):
        print("built")
    try:
        async with open_gateway(settings("azure://recordings")):
            pass
    except MissingExtra as exc:
        print(exc)

asyncio.run(main())
"""
    result = core_only(code, tmp_path, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "built",
        "calls.playback_sources: azure:// needs the calls extra: pip install 'aoai-gateway[calls]'",
    ]
