"""Attack: steer a call on a stored response (retrieve, delete, input items, cancel) somewhere else through its id,
or smuggle duplicate and oversized fields into a create.

The ids go over a raw socket (a client library would encode or normalise them); the recording upstream must see
nothing of a refused one, and an accepted id appears in the upstream path exactly as validated.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from ..conftest import EMULATOR_KEY, GatewayFactory
from ..recorder import Recorder
from ..servers import AsgiServer
from .raw import raw_request

HOSTILE_IDS = [
    "resp_abc/../../deployments/premium/chat/completions",
    "resp_abc%2F..%2F..%2Fchat%2Fcompletions",
    "resp_abc%3Fapi-version=1999-01-01",
    "resp_abc%23frag",
    "resp_abc%00",
    "resp_abc%20x",
    "resp_" + "a" * 129,
    "resp_",
    "chatcmpl_abc",
    "..",
    "%2e%2e",
    "resp_abc;x=1",
    "resp_ab%C3%A9",
]
AUTH = {"authorization": f"Bearer {EMULATOR_KEY}"}


@pytest.fixture
def recorded(start_gateway: GatewayFactory) -> Iterator[tuple[Recorder, AsgiServer]]:
    recorder = Recorder()
    with AsgiServer(recorder) as upstream:
        yield recorder, start_gateway(upstream.url)


@pytest.mark.parametrize("response_id", HOSTILE_IDS)
@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("DELETE", ""), ("GET", "/input_items"), ("POST", "/cancel")]
)
def test_hostile_ids_never_reach_the_upstream(
    recorded: tuple[Recorder, AsgiServer], response_id: str, method: str, suffix: str
) -> None:
    recorder, gateway = recorded
    for base in ("/v1", "/openai/v1", "/openai"):
        query = "?api-version=2025-04-01-preview" if base == "/openai" else ""
        line = f"{method} {base}/responses/{response_id}{suffix}{query} HTTP/1.1".encode()
        status, _, body = raw_request(gateway.port, line, AUTH)
        assert status in (400, 404, 405), (line, status)
        assert set(orjson.loads(body)["error"]) == {"message", "type", "param", "code"}
    assert recorder.requests == []


def test_a_valid_id_is_placed_as_validated(recorded: tuple[Recorder, AsgiServer]) -> None:
    recorder, gateway = recorded
    line = b"GET /v1/responses/resp_Ab-9_z/input_items?limit=5&evil=../x HTTP/1.1"
    status, _, _ = raw_request(gateway.port, line, AUTH)
    assert status == 200
    seen = recorder.requests[-1]
    assert seen.method == "GET" and seen.path == "/apim/team/openai/v1/responses/resp_Ab-9_z/input_items"
    assert seen.query == "limit=5"  # only the listing's own parameters go along


def test_duplicate_and_oversized_fields_in_a_create(start_gateway: GatewayFactory) -> None:
    recorder = Recorder()
    with AsgiServer(recorder) as upstream:
        _oversized_and_duplicates(recorder, start_gateway(upstream.url, limits={"max_json_bytes": 4096}))


def _oversized_and_duplicates(recorder: Recorder, gateway: AsgiServer) -> None:
    duplicate = b'{"model":"gpt-4o","input":"hi","previous_response_id":"resp_a","previous_response_id":"resp_b"}'
    status, _, body = raw_request(gateway.port, b"POST /v1/responses HTTP/1.1", AUTH, duplicate)
    assert status == 400 and orjson.loads(body)["error"]["code"] == "duplicate_key"
    wrong_type = b'{"model":"gpt-4o","input":"hi","previous_response_id":["resp_a"]}'
    status, _, body = raw_request(gateway.port, b"POST /v1/responses HTTP/1.1", AUTH, wrong_type)
    assert status == 400 and orjson.loads(body)["error"]["param"] == "previous_response_id"
    huge = orjson.dumps({"model": "gpt-4o", "input": "x" * 8192})
    status, _, _ = raw_request(gateway.port, b"POST /v1/responses HTTP/1.1", AUTH, huge)
    assert status == 413
    assert recorder.requests == []
