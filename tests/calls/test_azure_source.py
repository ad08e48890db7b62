"""Azure Blob sources against Azurite: scans, versions, downloads, credentials and errors, all through the SDK."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from azure.storage.blob.aio import BlobServiceClient

from aoai_gateway.calls.azure_blob import AzureBlobSource, open_azure_source
from aoai_gateway.calls.errors import SourceError
from aoai_gateway.calls.sources import open_source, split_item_uri
from aoai_gateway.config.calls import CallsSettings, calls_from_env

from ..servers import free_port
from .azurite import ACCOUNT_KEY

BLOBS = {
    "b.wav": b"RIFF-b",
    "a.mp3": b"ID3-a" * 100,
    "c.M4A": b"m4a",
    "notes.txt": b"not audio",
    "2026/11/x.wav": b"RIFF-x-nested",
}


async def new_container(connection_string: str, blobs: dict[str, bytes]) -> str:
    name = f"calls-{uuid.uuid4().hex[:12]}"
    async with BlobServiceClient.from_connection_string(connection_string) as service:
        container = await service.create_container(name)
        for blob, data in blobs.items():
            await container.upload_blob(blob, data)
    return name


@pytest.fixture(scope="module")
async def container(azurite: str) -> str:
    return await new_container(azurite, BLOBS)


def settings(environ: dict[str, str]) -> CallsSettings:
    """The calls settings these variables make, as the config loader reads them (the one place it does)."""
    return CallsSettings.model_validate(calls_from_env(environ))


@contextlib.asynccontextmanager
async def opened(spec: str, environ: dict[str, str]) -> AsyncIterator[AzureBlobSource]:
    async with contextlib.aclosing(open_azure_source(spec, settings(environ).azure_storage)) as source:
        yield source


def env(connection_string: str) -> dict[str, str]:
    return {"AZURE_STORAGE_CONNECTION_STRING": connection_string}


async def test_scan_returns_audio_blobs_sorted_by_name(azurite: str, container: str) -> None:
    async with opened(f"azure://{container}", env(azurite)) as source:
        items = await source.scan()
    assert source.uri == f"azure://{container}"
    assert [item.name for item in items] == ["2026/11/x.wav", "a.mp3", "b.wav", "c.M4A"]
    for item in items:
        assert item.uri == f"azure://{container}/{item.name}"
        assert item.size == len(BLOBS[item.name])
        assert item.version and '"' not in item.version
        assert abs(item.modified - time.time()) < 600
    assert len({item.version for item in items}) == len(items)


async def test_prefix_limits_the_listing_and_names_are_relative_to_it(azurite: str, container: str) -> None:
    async with opened(f"azure://{container}/2026/11/", env(azurite)) as source:
        [item] = await source.scan()
        assert await source.stat("x.wav") == item
    assert source.uri == f"azure://{container}/2026/11"
    assert (item.name, item.uri) == ("x.wav", f"azure://{container}/2026/11/x.wav")


async def test_fetch_downloads_the_exact_bytes_in_chunks_to_a_file_removed_after_the_block(azurite: str) -> None:
    data = os.urandom(300_007)  # under aiohttp's 1 MiB warning for raw upload bodies, over 4 chunks of 64 KiB
    name = await new_container(azurite, {"big.wav": data})
    service = BlobServiceClient.from_connection_string(azurite, max_single_get_size=65536, max_chunk_get_size=65536)
    async with contextlib.aclosing(AzureBlobSource(service, name)) as source:
        [item] = await source.scan()
        async with source.fetch(item) as path:
            assert path.suffix == ".wav"
            assert path.read_bytes() == data
        assert not path.exists()


async def test_overwriting_a_blob_changes_its_version_and_fetch_gets_the_new_content(azurite: str) -> None:
    name = await new_container(azurite, {"v.wav": b"first"})
    async with opened(f"azure://{name}", env(azurite)) as source:
        [before] = await source.scan()
        async with BlobServiceClient.from_connection_string(azurite) as service:
            await service.get_blob_client(name, "v.wav").upload_blob(b"second!", overwrite=True)
        after = await source.stat("v.wav")
        assert after.version != before.version
        assert after.size == len(b"second!")
        async with source.fetch(before) as path:  # listed before the change: what is there now is fine
            assert path.read_bytes() == b"second!"


async def test_stat_of_a_missing_blob_raises_source_error(azurite: str, container: str) -> None:
    async with opened(f"azure://{container}", env(azurite)) as source:
        with pytest.raises(SourceError, match=f"azure://{container}/gone.wav: no such blob"):
            await source.stat("gone.wav")


async def test_connection_string_in_the_spec_query(azurite: str, container: str) -> None:
    spec = f"azure://{container}/2026?connection_string={quote(azurite, safe='')}"
    async with opened(spec, {}) as source:
        assert [item.name for item in await source.scan()] == ["11/x.wav"]
    assert source.uri == f"azure://{container}/2026"


async def test_a_missing_container_is_a_source_error_without_secrets(azurite: str) -> None:
    async with opened("azure://no-such-container", env(azurite)) as source:
        with pytest.raises(SourceError, match="azure://no-such-container: no such container") as caught:
            await source.scan()
    assert ACCOUNT_KEY not in str(caught.value)


async def test_a_wrong_key_is_a_source_error_without_secrets(azurite: str, container: str) -> None:
    wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    async with opened(f"azure://{container}", env(azurite.replace(ACCOUNT_KEY, wrong_key))) as source:
        with pytest.raises(SourceError, match="refused the credentials") as caught:
            await source.scan()
    assert ACCOUNT_KEY not in str(caught.value) and wrong_key not in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no storage credentials; set AZURE_STORAGE_CONNECTION_STRING"),
        ({"AZURE_STORAGE_ACCOUNT": "calls"}, "no storage credentials"),
        ({"AZURE_STORAGE_CONNECTION_STRING": "AccountKey=secret-key-value"}, "malformed storage connection string"),
    ],
)
def test_missing_or_malformed_credentials(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SourceError, match=message) as caught:
        open_azure_source("azure://calls", settings(environ).azure_storage)
    assert "secret-key-value" not in str(caught.value)


def test_bad_specs() -> None:
    with pytest.raises(SourceError, match="use azure://container"):
        open_azure_source("azure:///prefix", settings({}).azure_storage)
    with pytest.raises(SourceError, match="unknown option 'sas'"):
        open_azure_source("azure://calls?sas=secret", settings({}).azure_storage)


async def test_account_and_key_from_the_environment(azurite: str, container: str) -> None:
    port = azurite.split("127.0.0.1:")[1].split("/")[0]
    environ = {
        "AZURE_STORAGE_ACCOUNT": "devstoreaccount1",
        "AZURE_STORAGE_KEY": ACCOUNT_KEY,
        "AZURE_STORAGE_BLOB_ENDPOINT": f"http://127.0.0.1:{port}/devstoreaccount1",
    }
    async with opened(f"azure://{container}", environ) as source:
        assert len(await source.scan()) == 4


async def test_an_unreachable_endpoint_is_a_source_error(container: str) -> None:
    port = free_port()
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    service = BlobServiceClient.from_connection_string(conn, retry_total=0)  # the SDK would back off for seconds
    async with contextlib.aclosing(AzureBlobSource(service, container)) as source:
        with pytest.raises(SourceError, match=f"cannot reach the storage endpoint http://127.0.0.1:{port}") as caught:
            await source.scan()
    assert ACCOUNT_KEY not in str(caught.value)


async def test_open_source_uses_the_registry_and_item_uris_find_their_source_again(
    azurite: str, container: str
) -> None:
    async with contextlib.aclosing(open_source(f"azure://{container}/2026/11", settings(env(azurite)))) as source:
        assert isinstance(source, AzureBlobSource)
        [item] = await source.scan()
    spec, name = split_item_uri(item.uri)
    assert (spec, name) == (f"azure://{container}", "2026/11/x.wav")
    async with contextlib.aclosing(open_source(spec, settings(env(azurite)))) as again:
        found = await again.stat(name)
    assert (found.uri, found.version, found.size, found.modified) == (item.uri, item.version, item.size, item.modified)


async def test_a_blobs_vocabulary_metadata_primes_its_transcription(
    azurite: str, calls_settings: Any, reset_emulator: Any
) -> None:
    from aoai_gateway.calls.cli import open_pipeline, open_store
    from aoai_gateway.calls.runner import Runner

    from .conftest import SPEECH_AUDIO

    name = await new_container(azurite, {})
    metadata = {
        # percent-encoded UTF-8 (metadata is ASCII), `;` between names; a hostile one is cleaned, not refused
        "vocabulary": "Fjordline Seafood; Ingrid%20Solberg;%C3%85lesund;;%1B%5D0%3Bpwned%07;" + "x" * 300,
    }
    async with BlobServiceClient.from_connection_string(azurite) as service:
        blob = service.get_blob_client(name, "calls/call.wav")
        await blob.upload_blob((SPEECH_AUDIO / "report.wav").read_bytes(), metadata=metadata)
        await service.get_blob_client(name, "calls/plain.wav").upload_blob(b"RIFF")
    expected = ("Fjordline Seafood", "Ingrid Solberg", "\u00c5lesund", "]0;pwned", "x" * 100)
    async with opened(f"azure://{name}", env(azurite)) as source:
        items = await source.scan()
        assert [item.hints for item in items] == [expected, ()]
        assert (await source.stat("calls/call.wav")).hints == expected

    settings = calls_settings()
    spec = f"azure://{name}/calls?connection_string={quote(azurite, safe='')}"
    async with contextlib.aclosing(open_source(spec, settings.calls)) as source:
        [item, _] = await source.scan()
        async with open_pipeline(settings, None) as pipeline:
            summary = await Runner(pipeline, 1).run_batch([(source, item)])
    assert summary.processed == 1
    store = await open_store(settings)
    try:
        [record] = await store.query(limit=None)
    finally:
        await store.db.close()
    assert record.document is not None
    prompt = record.document["models"]["transcription"]["prompt"]
    assert prompt == "Fjordline Seafood, Ingrid Solberg, \u00c5lesund, ]0;pwned, " + "x" * 100 + "."
