"""Files and batches through the gateway to the emulator, with the official `openai` SDK on real sockets.

The gateway sends every files and batches call to the first azure deployment's endpoint; a batch input file's
lines name OpenAI models and reach the emulator naming the deployments (checked by reading the stored file back
from the emulator itself).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from aoai_gateway.store import KeySpec, KeyStore, connect_database, migrate

from .conftest import EMULATOR_KEY, GatewayFactory
from .servers import AsgiServer


def deployments(upstream: str, *, keyed: bool = False) -> list[dict[str, Any]]:
    key = {"api_key": EMULATOR_KEY} if keyed else {}
    return [
        {"model": "gpt-4o", "deployment": "chat-4o", "endpoint": upstream, **key},
        {"model": "text-embedding-3-small", "deployment": "embed-small", "endpoint": upstream, **key},
        # Another resource: its model cannot run in a batch on the files resource.
        {"model": "gpt-4o-mini", "deployment": "mini-elsewhere", "endpoint": f"{upstream}/other", **key},
    ]


def line(custom_id: str, model: str = "gpt-4o", url: str = "/v1/chat/completions", **body: Any) -> bytes:
    request: dict[str, Any] = {"model": model, **body}
    if "embeddings" in url:
        request.setdefault("input", "hello")
    else:
        request.setdefault("messages", [{"role": "user", "content": f"hi {custom_id}"}])
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": request}) + b"\n"


_CLIENTS: list[openai.OpenAI] = []


def sdk(base_url: str, key: str = EMULATOR_KEY) -> openai.OpenAI:
    """An SDK client closed when the test ends (an unclosed pool is a ResourceWarning, an error here)."""
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
    _CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def emulator_client(emulator: AsgiServer) -> openai.OpenAI:
    return sdk(f"{emulator.url}/openai/v1")


def wait_for_batch(client: openai.OpenAI, batch_id: str, status: str) -> Any:
    deadline = time.monotonic() + 20
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status == status or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


@pytest.fixture
def gateway(start_gateway: GatewayFactory, emulator_server: AsgiServer) -> AsgiServer:
    return start_gateway(deployments=deployments(emulator_server.url))


def test_files_and_a_batch_with_the_openai_sdk(gateway: AsgiServer, emulator_server: AsgiServer) -> None:
    client = sdk(f"{gateway.url}/v1")
    content = line("a") + line("b", max_completion_tokens=20) + line("c", model="chat-4o")
    uploaded = client.files.create(file=("input.jsonl", content), purpose="batch")
    assert uploaded.id.startswith("file-") and uploaded.purpose == "batch" and uploaded.filename == "input.jsonl"

    # What the emulator (Azure) received names the deployment; everything else is as sent.
    stored = [
        orjson.loads(raw) for raw in emulator_client(emulator_server).files.content(uploaded.id).content.splitlines()
    ]
    assert [entry["body"]["model"] for entry in stored] == ["chat-4o"] * 3
    assert stored[1]["body"]["max_completion_tokens"] == 20 and stored[0]["custom_id"] == "a"

    assert client.files.retrieve(uploaded.id).bytes == uploaded.bytes
    assert uploaded.id in [f.id for f in client.files.list(purpose="batch")]

    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "1"}
    )
    assert batch.status == "validating" and batch.metadata == {"run": "1"}
    done = wait_for_batch(client, batch.id, "completed")
    assert done.status == "completed" and done.request_counts is not None and done.request_counts.completed == 3
    assert done.output_file_id is not None
    output = [orjson.loads(raw) for raw in client.files.content(done.output_file_id).text.splitlines()]
    assert [o["custom_id"] for o in output] == ["a", "b", "c"]
    assert all(o["response"]["status_code"] == 200 for o in output)
    assert output[0]["response"]["body"]["object"] == "chat.completion"
    assert batch.id in [b.id for b in client.batches.list()]

    second = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.cancel(second.id).status in ("cancelling", "cancelled")
    assert wait_for_batch(client, second.id, "cancelled").status == "cancelled"
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)  # a completed batch cannot be cancelled

    assert client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_azure_clients_on_the_dated_and_v1_surfaces(gateway: AsgiServer) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=gateway.url, api_key=EMULATOR_KEY, api_version="2024-10-21", max_retries=0
    )
    _CLIENTS.append(azure)
    uploaded = azure.files.create(file=("notes.txt", b"plain notes"), purpose="assistants")
    assert azure.files.retrieve(uploaded.id).filename == "notes.txt"
    assert azure.files.content(uploaded.id).content == b"plain notes"  # not a batch file: byte-for-byte
    v1 = sdk(f"{gateway.url}/openai/v1")
    assert uploaded.id in [f.id for f in v1.files.list()]
    batch_file = azure.files.create(file=("b.jsonl", line("x", url="/chat/completions")), purpose="batch")
    batch = azure.batches.create(input_file_id=batch_file.id, endpoint="/chat/completions", completion_window="24h")
    assert wait_for_batch(v1, batch.id, "completed").request_counts.completed == 1  # type: ignore[union-attr]
    assert v1.files.delete(uploaded.id).deleted


@pytest.mark.parametrize(
    ("content", "status", "code", "number"),
    [
        (line("a") + line("b", model="gpt-4o-mini"), 400, "model_not_found", 2),  # configured, on another resource
        (line("a") + line("b", model="gpt-9"), 400, "model_not_found", 2),
        (line("a") + b"{not json\n", 400, None, 2),
        (line("a") + b'{"custom_id": "b", "custom_id": "c", "method": "POST"}\n', 400, "duplicate_key", 2),
        (
            b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
            b'"body": {"model": "gpt-4o", "model": "gpt-4o-mini", "messages": []}}\n',
            400,
            "duplicate_key",
            1,
        ),
        (line("a", url="/v1/images/generations"), 400, "invalid_batch_line", 1),
        (line("a") + b"\n" + line("b"), 400, "invalid_batch_line", 2),
        (b'["a list"]\n', 400, None, 1),
    ],
)
def test_a_bad_batch_line_is_refused_with_its_number_before_upload(
    gateway: AsgiServer, emulator_server: AsgiServer, content: bytes, status: int, code: str | None, number: int
) -> None:
    client = sdk(f"{gateway.url}/v1")
    before = len(emulator_client(emulator_server).files.list().data)
    with pytest.raises(openai.APIStatusError) as refused:
        client.files.create(file=("in.jsonl", content), purpose="batch")
    error = refused.value.body
    assert isinstance(error, dict), error
    assert refused.value.status_code == status and f"Line {number} " in error["message"], error
    if code is not None:
        assert error["code"] == code
    assert len(emulator_client(emulator_server).files.list().data) == before  # nothing was uploaded


def test_an_over_long_line_is_refused(start_gateway: GatewayFactory, emulator_server: AsgiServer) -> None:
    gateway = start_gateway(deployments=deployments(emulator_server.url), files={"max_line_bytes": 2048})
    client = sdk(f"{gateway.url}/v1")
    long = line("b", messages=[{"role": "user", "content": "x" * 4096}])
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", line("a") + long + line("c")), purpose="batch")
    assert "Line 2 " in refused.value.message and "longer than 2048 bytes" in refused.value.message
    # The last line without its newline, too.
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", line("a") + long.rstrip()), purpose="batch")
    assert "Line 2 " in refused.value.message


def test_a_large_batch_file_is_rewritten_streamed(gateway: AsgiServer, emulator_server: AsgiServer) -> None:
    lines = 20_000
    content = b"".join(line(f"r{i}") for i in range(lines))  # about 2.3 MB: spooled, not held
    client = sdk(f"{gateway.url}/v1")
    uploaded = client.files.create(file=("big.jsonl", content), purpose="batch")
    stored = emulator_client(emulator_server).files.content(uploaded.id).content
    assert stored.count(b'"model":"chat-4o"') == lines and stored.count(b"\n") == lines
    client.files.delete(uploaded.id)


# Keys mode


async def make_key(tmp_path: Path, name: str, **spec: Any) -> str:
    db = await connect_database(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        await migrate(db)
        _, secret = await KeyStore(db).create(KeySpec(name, **spec))
        return secret
    finally:
        await db.close()


def keys_gateway(start: GatewayFactory, upstream: str, tmp_path: Path, access: str = "own", **extra: Any) -> AsgiServer:
    return start(
        auth="keys",
        data_dir=str(tmp_path),
        deployments=deployments(upstream, keyed=True),
        files={"key_access": access},
        access={"usage_flush_seconds": 0.05, **extra},
    )


async def test_keys_see_only_their_own_files_and_batches(
    start_gateway: GatewayFactory, emulator_server: AsgiServer, tmp_path: Path
) -> None:
    alice = await make_key(tmp_path, "alice")
    bob = await make_key(tmp_path, "bob")
    gateway = keys_gateway(start_gateway, emulator_server.url, tmp_path)
    as_alice = sdk(f"{gateway.url}/v1", alice)
    as_bob = sdk(f"{gateway.url}/v1", bob)
    mine = as_alice.files.create(file=("a.jsonl", line("a")), purpose="batch")
    assert [f.id for f in as_alice.files.list()] == [mine.id]
    assert as_bob.files.list().data == []
    for attempt in (
        lambda: as_bob.files.retrieve(mine.id),
        lambda: as_bob.files.content(mine.id),
        lambda: as_bob.files.delete(mine.id),
        lambda: as_bob.batches.create(input_file_id=mine.id, endpoint="/v1/chat/completions", completion_window="24h"),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    batch = as_alice.batches.create(input_file_id=mine.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert [b.id for b in as_alice.batches.list()] == [batch.id] and as_bob.batches.list().data == []
    with pytest.raises(openai.NotFoundError):
        as_bob.batches.cancel(batch.id)
    assert wait_for_batch(as_alice, batch.id, "completed").status == "completed"
    assert as_alice.files.delete(mine.id).deleted


async def test_a_line_naming_a_model_the_key_may_not_use_is_refused_before_upload(
    start_gateway: GatewayFactory, emulator_server: AsgiServer, tmp_path: Path
) -> None:
    secret = await make_key(tmp_path, "only-4o", models=("gpt-4o",))
    gateway = keys_gateway(start_gateway, emulator_server.url, tmp_path)
    client = sdk(f"{gateway.url}/v1", secret)
    before = len(emulator_client(emulator_server).files.list().data)
    embedding = line("b", model="text-embedding-3-small", url="/v1/embeddings")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.files.create(file=("in.jsonl", line("a") + embedding), purpose="batch")
    assert "Line 2 " in refused.value.message and refused.value.code == "model_not_allowed"
    assert len(emulator_client(emulator_server).files.list().data) == before


async def test_a_key_token_cap_bounds_every_line(
    start_gateway: GatewayFactory, emulator_server: AsgiServer, tmp_path: Path
) -> None:
    from aoai_gateway.store import Limits

    secret = await make_key(tmp_path, "capped", limits=Limits(max_tokens=50))
    gateway = keys_gateway(start_gateway, emulator_server.url, tmp_path)
    client = sdk(f"{gateway.url}/v1", secret)
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", line("a") + line("b", max_tokens=51)), purpose="batch")
    assert "Line 2 " in refused.value.message and refused.value.code == "max_tokens_exceeded"
    uploaded = client.files.create(file=("in.jsonl", line("a") + line("b", max_tokens=10)), purpose="batch")
    stored = [orjson.loads(r) for r in emulator_client(emulator_server).files.content(uploaded.id).content.splitlines()]
    assert stored[0]["body"]["max_completion_tokens"] == 50 and stored[1]["body"]["max_tokens"] == 10
    # Clamped under `clamp`.
    clamping = keys_gateway(start_gateway, emulator_server.url, tmp_path, max_tokens_policy="clamp")
    client = sdk(f"{clamping.url}/v1", secret)
    uploaded = client.files.create(file=("in.jsonl", line("a", max_tokens=900)), purpose="batch")
    stored = [orjson.loads(r) for r in emulator_client(emulator_server).files.content(uploaded.id).content.splitlines()]
    assert stored[0]["body"]["max_tokens"] == 50


async def test_files_are_closed_to_keys_by_default(
    start_gateway: GatewayFactory, emulator_server: AsgiServer, tmp_path: Path
) -> None:
    secret = await make_key(tmp_path, "k")
    gateway = keys_gateway(start_gateway, emulator_server.url, tmp_path, access="none")
    client = sdk(f"{gateway.url}/v1", secret)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.files.list()
    assert refused.value.code == "files_not_allowed"
    with pytest.raises(openai.AuthenticationError):
        sdk(f"{gateway.url}/v1", "sk-gw-wrong").files.list()
