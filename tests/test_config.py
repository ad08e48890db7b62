"""Configuration: the old proxy's env vars and config.yaml, our schema, precedence and precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aoai_gateway.cli import main
from aoai_gateway.config import DEFAULT_API_VERSION, ConfigError, load_settings, parse_model_mapper
from aoai_gateway.providers import PROVIDERS

FIXTURES = Path(__file__).parent / "fixtures"
ENV = {
    "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/",
    "AZURE_OPENAI_MODEL_MAPPER": " gpt-4o = prod-4o ,text-embedding-3-small=embed,",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_legacy_config_example_loads_and_routes() -> None:
    settings = load_settings(FIXTURES / "legacy-config.yaml", {})
    assert settings.api_base == "/v1"
    table = {d.model: d for d in settings.deployments}
    assert set(table) == {"text-davinci-003", "gpt-3.5-turbo", "text-embedding-ada-002"}
    turbo = table["gpt-3.5-turbo"]
    assert (turbo.deployment, turbo.endpoint, turbo.key, turbo.api_version) == (
        "yyy",
        "https://yyy.openai.azure.com",
        "11111111111",
        "2024-02-01",
    )
    url = PROVIDERS["azure"].url(turbo, "chat/completions", [], None)
    assert url == "https://yyy.openai.azure.com/openai/deployments/yyy/chat/completions?api-version=2024-02-01"


def test_unquoted_yaml_date_is_an_api_version(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
deployment_config:
  - {model_name: m, deployment_name: d, endpoint: "https://r.openai.azure.com", api_version: 2024-02-01}
""",
    )
    assert load_settings(path, {}).deployments[0].api_version == "2024-02-01"


def test_env_mapper_is_trimmed_and_uses_defaults() -> None:
    settings = load_settings(None, ENV)
    assert [(d.model, d.deployment) for d in settings.deployments] == [
        ("gpt-4o", "prod-4o"),
        ("text-embedding-3-small", "embed"),
    ]
    assert all(d.api_version == DEFAULT_API_VERSION and d.key is None for d in settings.deployments)


@pytest.mark.parametrize("bad", ["gpt-4o", "=dep", "gpt-4o=", "a=b=c"])
def test_bad_mapper_entry_is_named(bad: str) -> None:
    with pytest.raises(ConfigError, match=f"bad entry '{bad}'"):
        parse_model_mapper(f"ok=fine,{bad}")


def test_mapper_without_endpoint_is_an_error() -> None:
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT is not"):
        load_settings(None, {"AZURE_OPENAI_MODEL_MAPPER": "a=b"})


def test_env_and_file_combine_env_wins_per_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
api_base: /v1
deployments:
  - {model: gpt-4o, deployment: file-4o, endpoint: "https://file.openai.azure.com"}
  - {model: whisper, deployment: file-whisper, endpoint: "https://file.openai.azure.com"}
""",
    )
    env = {**ENV, "AZURE_OPENAI_API_KEY": "server-key", "AZURE_OPENAI_API_VER": "2024-06-01", "API_BASE": "api/"}
    settings = load_settings(path, env)
    table = {d.model: d for d in settings.deployments}
    assert table["gpt-4o"].deployment == "prod-4o"  # the environment replaced the file's gpt-4o
    assert table["whisper"].deployment == "file-whisper"  # the file was not ignored
    assert table["gpt-4o"].key == "server-key" and table["gpt-4o"].api_version == "2024-06-01"
    assert settings.api_base == "/api"
    assert len(settings.sources) == 2


@pytest.mark.parametrize(("raw", "expected"), [("/v1", "/v1"), ("v1/", "/v1"), ("/", ""), ("/a/b/", "/a/b")])
def test_api_base_normalised(raw: str, expected: str) -> None:
    assert load_settings(None, {**ENV, "API_BASE": raw}).api_base == expected


def test_listen_and_flags_precedence() -> None:
    settings = load_settings(None, {**ENV, "LISTEN": "0.0.0.0:9000"})
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9000)
    settings = load_settings(None, {**ENV, "LISTEN": ":9000"}, port=9100)
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9100)


def test_egress_proxies_from_env() -> None:
    settings = load_settings(None, {**ENV, "AZURE_OPENAI_SOCKS_PROXY": "socks5://127.0.0.1:1080"})
    assert settings.upstream.socks_proxy == "socks5://127.0.0.1:1080" and settings.upstream.http_proxy is None
    settings = load_settings(None, {**ENV, "AZURE_OPENAI_HTTP_PROXY": "http://127.0.0.1:3128"})
    assert settings.upstream.http_proxy == "http://127.0.0.1:3128"


def test_endpoint_path_prefix_is_kept() -> None:
    settings = load_settings(None, {**ENV, "AZURE_OPENAI_ENDPOINT": "https://apim.example.com/team/aoai/"})
    url = PROVIDERS["azure"].url(settings.deployments[0], "embeddings", [], "2024-10-21")
    assert url == "https://apim.example.com/team/aoai/openai/deployments/prod-4o/embeddings?api-version=2024-10-21"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deployments: [{model: m, endpoint: 'ftp://x'}]", r"deployments\[0\]: endpoint: .*http\(s\) URL"),
        ("deployments: [{endpoint: 'https://x'}]", r"deployments\[0\]: model: Field required"),
        ("deploymnets: []", "deploymnets: unknown setting"),
        ("upstream: {timeouts: {connect: 0}}", "upstream.timeouts.connect: Input should be greater than 0"),
        ("upstream: {client: curl}", "upstream.client: Input should be 'httptools', 'aiohttp' or 'httpx'"),
        ("deployments: {a: 1}", "must be a list"),
        ("- a\n- b", "mapping at the top level"),
        ("a: [", "not valid YAML"),
        ("deployments: [{model: m, endpoint: 'https://x', api_key_env: NOPE_NOT_SET}]", "NOPE_NOT_SET"),
    ],
)
def test_precise_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), {})


def test_api_key_env(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments: [{model: m, endpoint: 'https://x', api_key_env: MY_KEY}]")
    assert load_settings(path, {"MY_KEY": "from-env"}).deployments[0].key == "from-env"


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", {})


def test_config_check_prints_table_with_masked_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(FIXTURES / "legacy-config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "gpt-3.5-turbo" in out and "https://yyy.openai.azure.com" in out and "2024-02-01" in out
    assert "11111111111" not in out and "****" in out


def test_config_check_exit_1_on_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(write(tmp_path, "deployments: [{model: m}]"))]) == 1
    assert "endpoint: Field required" in capsys.readouterr().err


def test_config_check_exit_1_without_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["config", "check"]) == 1
    assert "no models are configured" in capsys.readouterr().err
