"""The calls explorer over HTTP, on real SQLite and PostgreSQL call stores: filters, pages, one call, its audio
(ranges, and paths out of the playback folder refused), retry with and without CSRF, charts, exports."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .calls_data import (
    AUDIO,
    FILLERS,
    HOSTILE_ATTRIBUTE,
    HOSTILE_FORMULA,
    HOSTILE_SCRIPT,
    seed_blob_calls,
    seed_bulk,
    seed_calls,
    seed_recordings,
)
from .conftest import csrf_of
from .test_admin_pages import signed_in


@pytest.fixture(params=["sqlite", "postgresql"])
def call_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The call store's URL: SQLite in the test's folder, or the session's PostgreSQL database."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'calls.db'}"


@pytest.fixture
def explorer(call_database: str, tmp_path: Path, console_gateway: Any) -> Iterator[tuple[Any, Any]]:
    """A console gateway whose calls explorer reads a seeded call store; (gateway, the seeded records)."""
    folder = tmp_path / "recordings"
    records = seed_calls(call_database, folder)
    gateway = console_gateway(calls={"database_url": call_database, "playback_sources": [str(folder)]})
    yield gateway, records


@pytest.fixture
def explorer_in_process(call_database: str, tmp_path: Path, console_gateway: Any) -> Iterator[tuple[Any, Any]]:
    """`explorer` with its pages rendered in the gateway's process (`console.process: false`): for tests that
    change a module's limits in this process."""
    folder = tmp_path / "recordings"
    records = seed_calls(call_database, folder)
    calls = {"database_url": call_database, "playback_sources": [str(folder)]}
    yield console_gateway(calls=calls, console={"process": False}), records


def rows(page: httpx.Response) -> list[str]:
    """The call names listed on an explorer page, in order."""
    assert page.status_code == 200, page.text
    body = page.text.split('<table id="calls">', 1)[-1].split("</table>", 1)[0] if "<table" in page.text else ""
    return [part.split("</a>", 1)[0].split(">", 1)[-1] for part in body.split("/admin/calls/")[1:]]


def test_the_explorer_needs_a_session(explorer: tuple[Any, Any]) -> None:
    gateway, records = explorer
    with httpx.Client(base_url=gateway.url, timeout=30) as stranger:
        assert stranger.get("/console/admin/calls").headers["location"] == "/console/sign-in"
        assert stranger.get(f"/console/admin/calls/{records['acme'].id}").status_code == 303
        assert stranger.get("/console/admin/calls.csv").status_code == 401
        audio = stranger.get(f"/console/admin/calls/{records['acme'].id}/audio")
        assert audio.status_code == 401 and audio.json()["error"]["code"] == "invalid_api_key"


def test_filters_pages_and_charts(explorer: tuple[Any, Any]) -> None:
    gateway, _ = explorer
    with signed_in(gateway) as client:
        first = client.get("/console/admin/calls")
        names = rows(first)
        assert len(names) == 50 and names[0] == "elsewhere"  # newest first
        older = first.text.split('rel="next"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        rest = rows(client.get(older))
        total = FILLERS + 7
        assert len(rest) == total - 50 and not set(rest) & set(names) and rest[-1] == "filler-000.ogg"
        last = client.get(older).text
        assert 'rel="next"' not in last and "<h2>Charts</h2>" not in last and "<h2>Charts</h2>" in first.text

        assert rows(client.get("/console/admin/calls", params={"status": "failed"})) == [
            "elsewhere",
            "link",
            "climb",
            "failed.ogg",
        ]
        by_field = {"field": "sentiment", "value": "POSITIVE"}
        assert rows(client.get("/console/admin/calls", params=by_field)) == ["acme.ogg"]
        in_list = {"field": "products_of_interest", "value": "heat pump"}
        assert rows(client.get("/console/admin/calls", params=in_list)) == ["globex.ogg"]
        assert rows(client.get("/console/admin/calls", params={"q": "HOME battery"})) == ["acme.ogg"]
        assert rows(client.get("/console/admin/calls", params={"q": "battery", "status": "failed"})) == []
        assert rows(client.get("/console/admin/calls", params={"q": "100%_"})) == []  # no wildcard gets in
        assert len(rows(client.get("/console/admin/calls", params={"since": "2000-01-01", "status": "done"}))) == 50
        assert rows(client.get("/console/admin/calls", params={"until": "2000-01-01"})) == []

        charts = client.get("/console/admin/calls", params={"status": "done"}).text
        for title in ("Calls per week", "Sentiment", "Products of interest", "Budget"):
            assert title in charts
        assert "5k to 10k" in charts and "10k to 50k" in charts and "home battery" in charts

        for bad, param in (
            ({"status": "lost"}, "status"),
            ({"since": "yesterday"}, "since"),
            ({"field": "sentiment"}, "field"),
            ({"field": "bad name'", "value": "x"}, "field name"),
            ({"after": "1;DROP TABLE calls"}, "cursor"),
        ):
            refused = client.get("/console/admin/calls", params=bad)
            assert refused.status_code == 400 and param in refused.text, (bad, refused.text)


def test_one_call_shows_transcript_fields_models_and_a_player(explorer: tuple[Any, Any]) -> None:
    gateway, records = explorer
    with signed_in(gateway) as client:
        page = client.get(f"/console/admin/calls/{records['acme'].id}")
        assert page.status_code == 200
        text = page.text
        assert 'data-start="4.0"' in text and "We want solar panels and a home battery." in text
        assert "Dana Whitfield" in text and "solar panels; home battery" in text
        assert "“Hello, this is Dana Whitfield from Acme Ltd.”" in text  # the grounding quote
        assert "whisper-1" in text and "prompt tokens" in text
        assert f'preload="metadata" src="/console/admin/calls/{records["acme"].id}/audio"' in text
        assert "Retry this call" not in text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/console/admin/calls/" + "0" * 64).status_code == 404
        assert client.get("/console/admin/calls/not-hex").status_code == 400


def test_a_hostile_call_stays_text(explorer: tuple[Any, Any]) -> None:
    gateway, records = explorer
    with signed_in(gateway) as client:
        for page in (client.get(f"/console/admin/calls/{records['hostile'].id}"), client.get("/console/admin/calls")):
            assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
        shown = client.get(f"/console/admin/calls/{records['hostile'].id}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
        assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in shown

        exported = client.get("/console/admin/calls.csv", params={"field": "company", "value": HOSTILE_FORMULA})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(exported.text)))
        assert [row["company"] for row in table] == ["'" + HOSTILE_FORMULA]
        assert table[0]["customer_name"] == HOSTILE_ATTRIBUTE  # text, unchanged: a CSV is not HTML
        lines = client.get("/console/admin/calls.jsonl", params={"q": "alert(1)"}).text.splitlines()
        assert [json.loads(line)["transcript"].split(" ")[0] for line in lines] == [HOSTILE_SCRIPT.split(" ")[0]]
        everything = client.get("/console/admin/calls.jsonl").text.splitlines()
        assert len(everything) == FILLERS + 7
        assert client.get("/console/admin/calls.xlsx").status_code == 404


def test_an_export_of_a_search_holds_every_match_and_says_when_it_is_cut(
    explorer_in_process: tuple[Any, Any], call_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoai_gateway.calls import browse
    from aoai_gateway.console import calls

    monkeypatch.setattr(browse, "SEARCH_WINDOW", 50)  # 359 calls: the search reads 8 windows
    monkeypatch.setattr(calls, "MAX_EXPORT", 120)
    gateway, _ = explorer_in_process
    names = seed_bulk(
        call_database,
        300,
        lambda i: f"Call {i}." + (" Needle" if i % 2 == 0 else "") + (" rare word" if i % 4 == 0 else ""),
    )
    rare = [name for i, name in enumerate(names) if i % 4 == 0]  # 75, none in the newest window
    needles = [name for i, name in enumerate(names) if i % 2 == 0]  # 150: more than MAX_EXPORT
    with signed_in(gateway) as client:
        # Every match, found window after window, in the order the explorer's pages list them.
        found = client.get("/console/admin/calls.csv", params={"q": "RARE WORD"})
        assert found.status_code == 200 and "x-gateway-export-truncated" not in found.headers
        assert found.headers["content-disposition"] == 'attachment; filename="calls.csv"'
        assert [row["name"] for row in csv.DictReader(io.StringIO(found.text))] == rare
        listed: list[str] = []
        page = client.get("/console/admin/calls", params={"q": "rare word"})
        while True:  # "Older calls", or "search older calls" where a window ended with none
            listed += rows(page)
            if (after := re.search(r"after=([^\"&]+)", page.text)) is None:
                break
            page = client.get("/console/admin/calls", params={"q": "rare word", "after": html.unescape(after[1])})
        assert listed == rare
        assert "calls-newest-120" in page.text  # the page says what a cut download is called

        # More matches than the limit: the newest 120, and the cut said in the file's name and a header.
        cut = client.get("/console/admin/calls.jsonl", params={"q": "needle"})
        assert cut.status_code == 200 and cut.headers["x-gateway-export-truncated"] == "120"
        assert cut.headers["content-disposition"] == 'attachment; filename="calls-newest-120.jsonl"'
        lines = [json.loads(line) for line in cut.text.splitlines()]
        assert [line["source"]["name"] for line in lines] == needles[:120]
        assert all("Needle" in line["transcript"] for line in lines)

        everything = client.get("/console/admin/calls.csv")  # no search: the same cut
        assert everything.headers["x-gateway-export-truncated"] == "120"
        assert len(list(csv.DictReader(io.StringIO(everything.text)))) == 120
        exactly = client.get("/console/admin/calls.csv", params={"q": "needle", "since": "2000-01-01"})
        assert exactly.headers["x-gateway-export-truncated"] == "120"


def test_audio_ranges(explorer: tuple[Any, Any]) -> None:
    gateway, records = explorer
    audio = AUDIO.read_bytes()
    url = f"/console/admin/calls/{records['acme'].id}/audio"
    with signed_in(gateway) as client:
        whole = client.get(url)
        assert whole.status_code == 200 and whole.content == audio
        assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "audio/ogg"
        for header, expected, span in (
            ("bytes=0-99", audio[:100], f"0-99/{len(audio)}"),
            ("bytes=100-", audio[100:], f"100-{len(audio) - 1}/{len(audio)}"),
            ("bytes=-50", audio[-50:], f"{len(audio) - 50}-{len(audio) - 1}/{len(audio)}"),
            (f"bytes=10-{len(audio) * 2}", audio[10:], f"10-{len(audio) - 1}/{len(audio)}"),
        ):
            part = client.get(url, headers={"range": header})
            assert part.status_code == 206, header
            assert part.content == expected and part.headers["content-range"] == f"bytes {span}"
        for header in (f"bytes={len(audio)}-", "bytes=5-2", "bytes=0-1,4-5", "items=0-1", "bytes=-"):
            refused = client.get(url, headers={"range": header})
            assert refused.status_code == 416, header
            assert refused.headers["content-range"] == f"bytes */{len(audio)}"
            assert refused.json()["error"]["code"] == "range_not_satisfiable"


def test_audio_never_leaves_the_playback_folder(explorer: tuple[Any, Any]) -> None:
    gateway, records = explorer
    with signed_in(gateway) as client:
        for name in ("climb", "link", "elsewhere"):  # stored paths: ../, a symlink out, another folder
            refused = client.get(f"/console/admin/calls/{records[name].id}/audio")
            assert refused.status_code == 403, name
            error = refused.json()["error"]
            assert error["code"] == "permission_denied" and set(error) == {"message", "type", "param", "code"}
            assert refused.content.find(b"OggS") == -1
        for path in ("..%2F..%2F..%2Fetc%2Fpasswd", "%2E%2E", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "abc%00def"):
            answer = client.get(f"/console/admin/calls/{path}/audio")
            assert answer.status_code in (400, 404), path
            assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
            assert "root:" not in answer.text


def test_audio_refuses_links_and_odd_files_below_the_folder(
    explorer: tuple[Any, Any], call_database: str, tmp_path: Path
) -> None:
    """Links anywhere below the folder are refused, not followed (even to a file inside it), a FIFO too, and the
    answer is the route's JSON error, never a 500 or a hang."""
    gateway, records = explorer
    folder = tmp_path / "recordings"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(AUDIO, outside / "acme.ogg")
    (folder / "linked-dir").symlink_to(outside, target_is_directory=True)
    (folder / "inner-link.ogg").symlink_to(folder / "acme.ogg")
    os.mkfifo(folder / "pipe.ogg")
    (folder / "dir.ogg").mkdir()
    ids = seed_recordings(
        call_database,
        {
            "dir-link": str(folder / "linked-dir" / "acme.ogg"),
            "inner-link": str(folder / "inner-link.ogg"),
            "fifo": str(folder / "pipe.ogg"),
            "directory": str(folder / "dir.ogg"),
            "gone": str(folder / "gone.ogg"),
        },
    )
    with signed_in(gateway) as client:
        for name, status in (
            ("dir-link", 403),
            ("inner-link", 403),
            ("fifo", 403),
            ("directory", 403),
            ("gone", 404),
        ):
            answer = client.get(f"/console/admin/calls/{ids[name]}/audio", headers={"range": "bytes=0-99"})
            assert answer.status_code == status, (name, answer.text)
            assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
        assert client.get(f"/console/admin/calls/{records['acme'].id}/audio").content == AUDIO.read_bytes()


async def test_a_recording_swapped_for_a_link_after_the_check_is_not_served(tmp_path: Path) -> None:
    """The path is checked and opened in one walk: a swap after `locate` changes nothing that is served, and a
    directory swapped for a link out while the walk is under way is refused."""
    from aoai_gateway.calls import playback
    from aoai_gateway.config.calls import CallsSettings
    from aoai_gateway.errors import PermissionDenied

    folder, outside = tmp_path / "recordings", tmp_path / "outside"
    (folder / "day").mkdir(parents=True)
    outside.mkdir()
    inside_bytes = AUDIO.read_bytes()
    (folder / "day" / "call.ogg").write_bytes(inside_bytes)
    (outside / "call.ogg").write_bytes(b"SECRET" * 1000)
    player = await playback.Playback.open(CallsSettings(playback_sources=(str(folder),)))

    recording = await player.locate(str(folder / "day" / "call.ogg"))
    swap(folder / "day" / "call.ogg", outside / "call.ogg")  # after the check, before any byte is read
    body = b"".join([chunk async for chunk in recording.read(0, recording.size)])
    assert b"SECRET" not in body and body == inside_bytes
    await recording.aclose()
    assert (folder / "day" / "call.ogg").is_symlink()

    (folder / "day" / "call.ogg").unlink()
    (folder / "day" / "call.ogg").write_bytes(inside_bytes)
    real_open = os.open

    def racing_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if path == "day":  # the walk is inside the folder: the attacker swaps the next directory for a link out
            swap(folder / "day", outside)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(playback.os, "open", racing_open)
        with pytest.raises(PermissionDenied):
            await player.locate(str(folder / "day" / "call.ogg"))
    assert (folder / "day").is_symlink()  # the swap did happen, and the link was not followed


def swap(path: Path, target: Path) -> None:
    """`path` atomically replaced by a link to `target` (rename over it, as an attacker racing a check would)."""
    link = path.with_name(path.name + ".swap")
    link.symlink_to(target, target_is_directory=target.is_dir())
    if path.is_dir() and not path.is_symlink():
        path.rename(path.with_name(path.name + ".old"))
    os.replace(link, path)


def test_retry_needs_a_session_and_its_csrf_token(explorer: tuple[Any, Any]) -> None:
    gateway, records = explorer
    failed = records["failed"].id
    with httpx.Client(base_url=gateway.url, timeout=30) as stranger:
        token = csrf_of(stranger.get("/console/sign-in"))
        assert stranger.post(f"/console/admin/calls/{failed}/retry", data={"csrf": token}).status_code == 401
    with signed_in(gateway) as client:
        page = client.get(f"/console/admin/calls/{failed}")
        assert "Retry this call" in page.text and "never answered valid JSON" in page.text
        assert client.post(f"/console/admin/calls/{failed}/retry", data={}).status_code == 403
        assert client.post(f"/console/admin/calls/{failed}/retry", data={"csrf": "forged"}).status_code == 403
        assert "failed.ogg" in rows(client.get("/console/admin/calls", params={"status": "failed"}))
        done = client.post(f"/console/admin/calls/{failed}/retry", data={"csrf": csrf_of(page)})
        assert done.status_code == 303 and done.headers["location"] == f"/console/admin/calls/{failed}"
        assert rows(client.get("/console/admin/calls", params={"status": "queued"})) == ["failed.ogg"]
        again = client.post(f"/console/admin/calls/{records['acme'].id}/retry", data={"csrf": csrf_of(page)})
        assert again.status_code == 409 and "only a failed call" in again.text.lower()


def test_without_a_call_store_the_explorer_says_what_to_set(console_gateway: Any) -> None:
    gateway = console_gateway(auth="passthrough")
    with signed_in(gateway) as client:
        page = client.get("/console/admin/calls")
        assert page.status_code == 404 and "calls.database_url" in page.text


def test_a_blob_recording_streams_through_the_azure_client(tmp_path: Path, console_gateway: Any) -> None:
    from ..calls.azurite import run_azurite

    database_url = f"sqlite:///{tmp_path / 'calls.db'}"
    audio = AUDIO.read_bytes()
    with run_azurite() as connection_string:
        ids = seed_blob_calls(
            database_url,
            connection_string,
            {
                "inside": "azure://recordings/2026/acme.ogg",
                "other-prefix": "azure://recordings/2025/acme.ogg",
                "other-container": "azure://private/acme.ogg",
                "climb": "azure://recordings/2026/../2025/acme.ogg",
            },
        )
        calls = {
            "database_url": database_url,
            "playback_sources": ["azure://recordings/2026"],
            "azure_storage": {"connection_string": connection_string},
        }
        gateway = console_gateway(calls=calls)
        with signed_in(gateway) as client:
            url = f"/console/admin/calls/{ids['inside']}/audio"
            whole = client.get(url)
            assert whole.status_code == 200 and whole.content == audio
            part = client.get(url, headers={"range": "bytes=1000-70999"})
            assert part.status_code == 206 and part.content == audio[1000:71000]
            assert part.headers["content-range"] == f"bytes 1000-70999/{len(audio)}"
            for name in ("other-prefix", "other-container", "climb"):
                refused = client.get(f"/console/admin/calls/{ids[name]}/audio")
                assert refused.status_code == 403, name
                assert refused.json()["error"]["code"] == "permission_denied"
                assert connection_string not in refused.text


@pytest.mark.parametrize(
    ("said", "band"),
    [
        ("£9,000", "5k to 10k"),
        ("about 12k", "10k to 50k"),
        ("$1.5 million", "50k and over"),
        ("€800", "under 1k"),
        ("40 thousand", "10k to 50k"),
        ("not sure yet", "(not stated)"),
        (None, "(not stated)"),
        (7500, "5k to 10k"),
    ],
)
def test_budget_bands(said: object, band: str) -> None:
    from aoai_gateway.calls.browse import budget_band

    assert budget_band(said) == band


def test_retry_with_a_task_queue_sends_the_call_to_the_workers(tmp_path: Path, console_gateway: Any) -> None:
    import uuid

    import redis

    from ..services import REDIS, require

    require("Redis", "127.0.0.1", 6379)
    queue_name = f"aoai-calls-test-{uuid.uuid4().hex[:10]}"
    database_url = f"sqlite:///{tmp_path / 'calls.db'}"
    records = seed_calls(database_url, tmp_path / "recordings")
    calls = {"database_url": database_url, "queue_url": REDIS, "queue_name": queue_name}
    gateway = console_gateway(calls=calls)
    client = redis.Redis.from_url(REDIS)
    try:
        with signed_in(gateway) as browser:
            failed = records["failed"]
            page = browser.get(f"/console/admin/calls/{failed.id}")
            sent = browser.post(f"/console/admin/calls/{failed.id}/retry", data={"csrf": csrf_of(page)})
            assert sent.status_code == 303
        keys = list(client.scan_iter(match=f"*{queue_name}*"))
        stored = b"".join(b"".join(client.hvals(key)) if client.type(key) == b"hash" else b"" for key in keys)
        assert failed.source_uri.encode() in stored  # one message, naming the recording, for `calls worker`
    finally:
        keys = list(client.scan_iter(match=f"*{queue_name}*"))
        if keys:
            client.delete(*keys)
        client.close()


async def test_a_transcript_search_reads_a_bounded_window_and_goes_on_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoai_gateway.calls import browse
    from aoai_gateway.calls.store import CallStore
    from aoai_gateway.store import connect_database

    monkeypatch.setattr(browse, "SEARCH_WINDOW", 10)
    database_url = f"sqlite:///{tmp_path / 'calls.db'}"
    seed_calls(database_url, tmp_path / "recordings")
    db = await connect_database(database_url)
    try:
        browser = browse.CallBrowser(CallStore(db, "test", 60))
        # The newest ten: 3 traversal calls, failed, hostile, globex, acme, then fillers 051, 050, 049.
        found = await browser.page(browse.CallFilter(text="SOLAR panels"))
        assert [r.name for r in found.records] == ["acme.ogg"] and found.window_ended
        names: list[str] = []
        cursor = None
        for _ in range(20):
            page = await browser.page(browse.CallFilter(text="just checking"), cursor, size=50)
            names += [r.name for r in page.records]
            assert len(page.records) <= 10
            cursor = page.next_cursor
            if cursor is None:
                break
        assert names == [f"filler-{i:03d}.ogg" for i in reversed(range(FILLERS))]
        assert (await browser.figures(browse.CallFilter(text="just checking"))).calls == 3
        assert (await browser.figures(browse.CallFilter())).calls == FILLERS + 7
    finally:
        await db.close()
