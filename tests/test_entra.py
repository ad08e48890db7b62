"""Entra ID upstream auth: each credential kind against the tests' own token endpoint, tokens cached and renewed,
the Bearer header at a recording upstream, and a token failure as a clear 502."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from aoai_gateway.config import ConfigError, Settings, load_settings
from aoai_gateway.config.entra import EntraSettings
from aoai_gateway.entra import EntraTokenAuth
from aoai_gateway.errors import UpstreamTokenUnavailable
from aoai_gateway.extras import features
from aoai_gateway.forward_proxy.ca import CertificateAuthority

from .conftest import GatewayFactory
from .identity import MSI_HEADER, TokenEndpoint, fake_az, path_with
from .recorder import Recorder
from .servers import AsgiServer

SCOPE = "https://cognitiveservices.azure.com/.default"
SECRET = "client-secret-never-shown-0123"


def chat(gateway: AsgiServer, model: str = "gpt-4o") -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )


def deployment(upstream: str, entra: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": upstream, "entra": entra, **more}


@pytest.fixture
def https_endpoint(tmp_path: Path) -> Any:
    """A token endpoint on https://127.0.0.1 with a certificate from a CA of the test's own (`ca_file`)."""

    def start(endpoint: TokenEndpoint) -> tuple[AsgiServer, str, str]:
        ca = CertificateAuthority.open(tmp_path / "ca")
        cert, key = ca.issue("127.0.0.1")
        (tmp_path / "leaf.pem").write_bytes(cert)
        (tmp_path / "leaf-key.pem").write_bytes(key)
        server = AsgiServer(
            endpoint, ssl_certfile=str(tmp_path / "leaf.pem"), ssl_keyfile=str(tmp_path / "leaf-key.pem")
        )
        return server, f"https://127.0.0.1:{server.port}", str(ca.cert_path)

    return start


async def test_managed_identity_one_token_for_many_concurrent_calls(
    start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = TokenEndpoint(delay=0.3)  # the token arrives while every call waits for it
    recorder = Recorder()
    with AsgiServer(endpoint) as identity, AsgiServer(recorder) as upstream:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{identity.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", MSI_HEADER)
        gateway = start_gateway(
            upstream.url, deployments=[deployment(upstream.url, {"credential": "managed_identity"})]
        )
        async with httpx.AsyncClient(timeout=60) as client:
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            answers = await asyncio.gather(
                *(client.post(f"{gateway.url}/v1/chat/completions", json=body) for _ in range(30))
            )
        assert [a.status_code for a in answers] == [200] * 30
        assert chat(gateway).status_code == 200
    assert len(endpoint.requests) == 1
    assert endpoint.requests[0].query["resource"] == "https://cognitiveservices.azure.com"
    assert {r.headers["authorization"] for r in recorder.requests} == {"Bearer tok-1"}
    assert all("api-key" not in r.headers for r in recorder.requests)


async def test_client_secret_through_an_https_authority_serves_both_surfaces(
    start_gateway: GatewayFactory, https_endpoint: Any
) -> None:
    endpoint = TokenEndpoint()
    recorder = Recorder()
    server, authority, ca_file = https_endpoint(endpoint)
    entra = {
        "credential": "client_secret",
        "tenant_id": "tenant-1",
        "client_id": "app-1",
        "client_secret": SECRET,
        "authority_host": authority,
        "ca_file": ca_file,
    }
    with server, AsgiServer(recorder) as upstream:
        deployments = [
            deployment(upstream.url, entra),
            {**deployment(upstream.url, entra), "model": "gpt-4o-v1", "deployment": "v1", "api_style": "v1"},
        ]
        gateway = start_gateway(upstream.url, deployments=deployments)
        assert chat(gateway).status_code == 200
        assert chat(gateway, "gpt-4o-v1").status_code == 200
    # Deployments with equal settings share one credential: one token for the deployments and the v1 surface.
    assert len(endpoint.requests) == 1
    asked = endpoint.requests[0]
    assert asked.path == "/tenant-1/oauth2/v2.0/token"
    assert asked.form["scope"] == SCOPE
    assert asked.form["client_id"] == "app-1" and asked.form["grant_type"] == "client_credentials"
    assert [r.path for r in recorder.requests] == [
        "/openai/deployments/chat-4o/chat/completions",
        "/openai/v1/chat/completions",
    ]
    assert {r.headers["authorization"] for r in recorder.requests} == {"Bearer tok-1"}


async def test_workload_identity_sends_the_federated_token_file(
    start_gateway: GatewayFactory, https_endpoint: Any, tmp_path: Path
) -> None:
    endpoint = TokenEndpoint()
    recorder = Recorder()
    token_file = tmp_path / "federated-token"
    token_file.write_text("federated.jwt.value")
    server, authority, ca_file = https_endpoint(endpoint)
    entra = {
        "credential": "workload_identity",
        "tenant_id": "tenant-2",
        "client_id": "app-2",
        "token_file": str(token_file),
        "authority_host": authority,
        "ca_file": ca_file,
    }
    with server, AsgiServer(recorder) as upstream:
        gateway = start_gateway(upstream.url, deployments=[deployment(upstream.url, entra)])
        assert chat(gateway).status_code == 200
    asked = endpoint.requests[0]
    assert asked.path == "/tenant-2/oauth2/v2.0/token" and asked.form["scope"] == SCOPE
    assert asked.form["client_assertion"] == "federated.jwt.value"
    assert recorder.requests[0].headers["authorization"] == "Bearer tok-1"


async def test_azure_cli_credential_runs_az_once(
    start_gateway: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_az(tmp_path)
    monkeypatch.setenv("PATH", path_with(tmp_path))
    recorder = Recorder()
    with AsgiServer(recorder) as upstream:
        gateway = start_gateway(upstream.url, deployments=[deployment(upstream.url, {"credential": "azure_cli"})])
        assert [chat(gateway).status_code for _ in range(3)] == [200, 200, 200]
    invocations = calls.read_text().splitlines()
    assert len(invocations) == 1  # azure-identity does not cache the CLI's tokens: the gateway does
    assert "get-access-token" in invocations[0] and "--resource https://cognitiveservices.azure.com" in invocations[0]
    assert {r.headers["authorization"] for r in recorder.requests} == {"Bearer cli-tok-1"}


async def test_a_token_failure_is_a_502_naming_the_credential_never_the_secret(
    start_gateway: GatewayFactory, https_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = TokenEndpoint(fail=True)
    recorder = Recorder()
    server, authority, ca_file = https_endpoint(endpoint)
    entra = {
        "credential": "client_secret",
        "tenant_id": "t",
        "client_id": "app-3",
        "client_secret": SECRET,
        "authority_host": authority,
        "ca_file": ca_file,
    }
    with server, AsgiServer(recorder) as upstream, caplog.at_level(logging.WARNING):
        gateway = start_gateway(upstream.url, deployments=[deployment(upstream.url, entra)])
        refused = chat(gateway)
    assert refused.status_code == 502
    error = refused.json()["error"]
    assert error["code"] == "upstream_token_unavailable" and "client_secret credential" in error["message"]
    assert SECRET not in refused.text and "AADSTS" not in refused.text
    assert recorder.requests == []  # nothing went upstream without a token
    assert "app-3" in caplog.text and SECRET not in caplog.text


async def test_a_failing_credential_fails_over_to_another_deployment(
    start_gateway: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_az(tmp_path, fail=True)
    monkeypatch.setenv("PATH", path_with(tmp_path))
    recorder = Recorder()
    with AsgiServer(recorder) as upstream:
        deployments = [
            deployment(upstream.url, {"credential": "azure_cli"}, priority=0),
            {"model": "gpt-4o", "deployment": "backup", "endpoint": upstream.url, "api_key": "k", "priority": 1},
        ]
        gateway = start_gateway(upstream.url, deployments=deployments)
        answer = chat(gateway)
    assert answer.status_code == 200 and answer.headers["x-gateway-deployment"] == "backup"
    assert recorder.requests[0].headers["api-key"] == "k"


# The cache itself, with a credential of the test's own and an injected clock.


class CountingCredential:
    def __init__(self, lifetime: float, clock: list[float], delay: float = 0.05) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self.delay = delay
        self.scopes: list[str] = []
        self.fail = False
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("token endpoint said no")
        return AccessToken(f"t{len(self.scopes)}", int(self.clock[0] + self.lifetime))

    async def close(self) -> None:
        self.closed = True


def cache(lifetime: float, margin: float = 30) -> tuple[EntraTokenAuth, CountingCredential, list[float]]:
    clock = [1000.0]
    credential = CountingCredential(lifetime, clock)
    settings = EntraSettings(credential="managed_identity", refresh_margin_seconds=margin)
    return EntraTokenAuth(credential, settings, clock=lambda: clock[0]), credential, clock  # type: ignore[arg-type]


async def test_many_waiters_one_token_request_and_renewal_before_expiry() -> None:
    auth, credential, clock = cache(lifetime=100)
    first = await asyncio.gather(*(auth.headers() for _ in range(50)))
    assert credential.scopes == [SCOPE] and {h[0][1] for h in first} == {"Bearer t1"}
    clock[0] += 60  # before the margin: no request
    assert (await auth.headers())[0][1] == "Bearer t1" and auth.token_requests == 1
    clock[0] += 15  # inside the margin (30 s before expiry): renewed in the background, the old token serves
    assert [(await auth.headers())[0][1] for _ in range(20)] == ["Bearer t1"] * 20
    await asyncio.sleep(0.1)
    assert (await auth.headers())[0][1] == "Bearer t2" and auth.token_requests == 2
    clock[0] += 1000  # expired: callers wait for the new one, together
    assert {h[0][1] for h in await asyncio.gather(*(auth.headers() for _ in range(10)))} == {"Bearer t3"}
    await auth.aclose()
    assert credential.closed


async def test_a_short_lived_token_is_renewed_at_half_its_life() -> None:
    auth, _, clock = cache(lifetime=20, margin=300)
    await auth.headers()
    clock[0] += 9
    await auth.headers()
    assert auth.token_requests == 1
    clock[0] += 2
    await auth.headers()
    await asyncio.sleep(0.1)
    assert auth.token_requests == 2


async def test_failures_keep_a_valid_token_and_raise_without_one() -> None:
    auth, credential, clock = cache(lifetime=100)
    await auth.headers()
    credential.fail = True
    clock[0] += 80
    assert (await auth.headers())[0][1] == "Bearer t1"  # the renewal fails in the background
    await asyncio.sleep(0.1)
    assert (await auth.headers())[0][1] == "Bearer t1" and auth.token_requests == 2  # no retry for a while
    clock[0] += 30
    with pytest.raises(UpstreamTokenUnavailable) as failed:
        await asyncio.gather(*(auth.headers() for _ in range(5)))
    assert failed.value.status == 502 and "managed_identity" in failed.value.message
    assert auth.token_requests == 3
    credential.fail = False
    assert (await auth.headers())[0][1].startswith("Bearer t")


async def test_a_caller_that_goes_away_does_not_cancel_the_others_token() -> None:
    auth, credential, _ = cache(lifetime=100)
    credential.delay = 0.2
    leaving = asyncio.ensure_future(auth.headers())
    staying = asyncio.ensure_future(auth.headers())
    await asyncio.sleep(0.05)
    leaving.cancel()
    assert (await staying)[0][1] == "Bearer t1" and auth.token_requests == 1


async def test_a_hanging_token_endpoint_is_bounded() -> None:
    clock = [0.0]
    credential = CountingCredential(100, clock, delay=30)
    settings = EntraSettings(credential="azure_cli", timeout_seconds=0.2)
    auth = EntraTokenAuth(credential, settings)  # type: ignore[arg-type]
    with pytest.raises(UpstreamTokenUnavailable):
        await auth.headers()


# Settings.


def test_entra_settings_are_checked_at_load(tmp_path: Path) -> None:
    upstream = "https://res.openai.azure.com"
    keyless = Settings.model_validate(
        {"auth": "keys", "deployments": [deployment(upstream, {"credential": "managed_identity"})]}
    )
    assert keyless.deployments[0].entra is not None and keyless.deployments[0].key is None
    assert ("deployments' entra:", "entra") in features(keyless)
    bad = [
        ({"credential": "managed_identity"}, {"api_key": "k"}, "either api_key or entra"),
        ({"credential": "client_secret", "tenant_id": "t"}, {}, "needs client_id, client_secret"),
        ({"credential": "password"}, {}, "Input should be 'client_secret', 'managed_identity'"),
        ({"credential": "workload_identity", "authority_host": "http://login"}, {}, "must be an https:// URL"),
    ]
    for entra, more, message in bad:
        with pytest.raises(ValueError, match=message):
            Settings.model_validate({"deployments": [deployment(upstream, entra, **more)]})
    config = tmp_path / "config.yaml"
    config.write_text(
        "deployments:\n  - model: gpt-4o\n    endpoint: https://res.openai.azure.com\n"
        "    entra: {credential: client_secret, tenant_id: t, client_id: c, client_secret_env: MY_SECRET}\n"
    )
    loaded = load_settings(config, {"MY_SECRET": SECRET})
    entra = loaded.deployments[0].entra
    assert entra is not None and entra.client_secret is not None
    assert entra.client_secret.get_secret_value() == SECRET and SECRET not in repr(loaded)
    with pytest.raises(ConfigError, match=r"entra\.client_secret_env names .MY_SECRET."):
        load_settings(config, {})


@pytest.mark.parametrize(
    ("config", "feature", "extra"),
    [
        (
            'deployments:\n  - {model: gpt-4o, endpoint: "http://127.0.0.1:9", entra: {credential: azure_cli}}\n',
            "deployments' entra:",
            "entra",
        ),
        (
            'forward_proxy: {enabled: true}\ndeployments:\n  - {model: gpt-4o, endpoint: "http://127.0.0.1:9"}\n',
            "forward_proxy.enabled",
            "forward-proxy",
        ),
    ],
)
def test_a_missing_extra_stops_start_up_in_one_line(tmp_path: Path, config: str, feature: str, extra: str) -> None:
    from .test_extras import cli

    result = cli(tmp_path, "serve", config=config)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"aoai-gateway: {feature} needs the {extra} extra: pip install 'aoai-gateway[{extra}]'\n"
