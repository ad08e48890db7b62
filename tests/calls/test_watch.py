"""Watching sources, crash safety and several workers, with the real command in real processes.

Each test runs `python -m aoai_gateway.cli calls ...` against its own config file (deployments on the calls
emulator, a SQLite store in tmp_path) and reads the store afterwards: every recording must end with exactly one
document, and the emulator's counters say how many model calls were paid for.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from aoai_gateway.cli import main

from ..servers import START_SECONDS, AsgiServer
from .conftest import CallsConfigFactory, requests_to, write_config

ENV = {**os.environ, "OPENAI_API_KEY": "caller-key"}


def calls_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "aoai_gateway.cli", "calls", *args, "--config", str(config)]


def rows(database: Path) -> list[dict[str, Any]]:
    """The store's calls; none while the command has not created it yet."""
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute("SELECT id, status, name, attempts, error FROM calls")]
        except sqlite3.OperationalError:  # the migrations are not applied yet
            return []


def run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout, check=False)


def batch_in_flight(config: Path, recordings: Path, database: Path) -> subprocess.Popen[bytes]:
    """`calls process` started and caught with one call stored and others in flight."""
    command = calls_command(config, "process", str(recordings))
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        states = [row["status"] for row in rows(database)]
        if "done" in states and "processing" in states:
            return process
        time.sleep(0.02)
    process.kill()
    process.wait()
    pytest.fail("the batch never had a finished and an unfinished call at once")


@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_batch_then_restart_finishes_every_call_once(
    calls_config: CallsConfigFactory, recordings: Path, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    config = write_config(tmp_path / "config.yaml", calls_config("extract-slow", concurrency=2, lease_seconds=1.0))
    database = tmp_path / "calls.db"
    process = batch_in_flight(config, recordings, database)
    process.kill()  # SIGKILL: no clean-up of any kind
    process.wait()
    interrupted = [row for row in rows(database) if row["status"] == "processing"]
    assert interrupted

    restarted = run(calls_command(config, "process", str(recordings)))
    assert restarted.returncode == 0, restarted.stderr

    stored = rows(database)
    assert len(stored) == 5 and {row["status"] for row in stored} == {"done"}
    # Only the calls that were in flight at the kill were extracted twice; nothing else was paid for again.
    assert 5 <= requests_to(reset_emulator, "extract-slow") <= 5 + len(interrupted)
    assert requests_to(reset_emulator, "whisper") <= 5 + len(interrupted)
    assert "skipped as duplicates" in restarted.stdout


@pytest.mark.slow
def test_two_watchers_on_one_folder_never_process_a_call_twice(
    calls_config: CallsConfigFactory, recordings: Path, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    config = write_config(tmp_path / "config.yaml", calls_config("extract-slow", settle_seconds=0))
    command = calls_command(config, "watch", str(recordings), "--once")
    workers = [
        subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    stored = rows(tmp_path / "calls.db")
    assert len(stored) == 5 and {row["status"] for row in stored} == {"done"}
    assert requests_to(reset_emulator, "extract-slow") == 5
    assert requests_to(reset_emulator, "whisper") == 5


def test_watch_picks_up_new_and_changed_files_and_survives_restarts(
    calls_config: CallsConfigFactory, recordings: Path, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    # One call at a time, in name order: report-again.wav is done before its byte-identical copy report.wav comes
    # up, which is then a duplicate. With several at once the copy could meet it still in flight, and a watcher
    # leaves a call in flight to its holder ("busy", not counted): the summary then said "duplicates 0".
    config = write_config(tmp_path / "config.yaml", calls_config(settle_seconds=0, concurrency=1))
    once = calls_command(config, "watch", str(recordings), "--once")

    first = run(once)
    assert first.returncode == 0, first.stderr
    assert "processed 5, skipped as duplicates 1" in first.stdout

    second = run(once)  # a restart: nothing new, nothing read again
    assert "processed 0, skipped as duplicates 0, failed 0" in second.stdout

    source = Path(__file__).parent.parent / "speech" / "audio"
    (recordings / "new.mp4").write_bytes((source / "garden.mp4").read_bytes())
    changed = recordings / "office.ogg"
    changed.write_bytes((source / "meeting.m4a").read_bytes())  # new content under an old name
    third = run(once)
    assert "processed 2, skipped as duplicates 0" in third.stdout, third.stdout
    assert len(rows(tmp_path / "calls.db")) == 7
    assert requests_to(reset_emulator, "gpt-4o") == 7


def test_an_azure_blob_container_is_watched(
    azurite: str, calls_config: CallsConfigFactory, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    from azure.storage.blob import BlobServiceClient

    container = f"calls-{os.urandom(4).hex()}"
    source = Path(__file__).parent.parent / "speech" / "audio"
    with BlobServiceClient.from_connection_string(azurite) as service:
        client = service.create_container(container)
        for name in ("report.wav", "weather.mp3"):
            client.upload_blob(f"2026/{name}", (source / name).read_bytes())
        client.upload_blob("2026/readme.txt", b"not audio")

        config = write_config(tmp_path / "config.yaml", calls_config(settle_seconds=0))
        spec = f"azure://{container}/2026?connection_string={quote(azurite, safe='')}"
        result = run(calls_command(config, "watch", spec, "--once"))
        assert result.returncode == 0, result.stderr
        assert "processed 2" in result.stdout
        assert "AccountKey" not in result.stdout + result.stderr

        client.upload_blob("2026/office.ogg", (source / "office.ogg").read_bytes())
        # Credentials from the usual environment variable this time.
        again = subprocess.run(
            calls_command(config, "watch", f"azure://{container}/2026", "--once"),
            env={**ENV, "AZURE_STORAGE_CONNECTION_STRING": azurite},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "processed 1, skipped as duplicates 0" in again.stdout, again.stderr

    stored = rows(tmp_path / "calls.db")
    assert sorted(row["name"] for row in stored) == ["office.ogg", "report.wav", "weather.mp3"]
    listing = run([*calls_command(config, "list")[:-2], "list", "--config", str(config)])
    assert f"azure://{container}" not in listing.stdout  # names, not locations, in the table


def test_list_show_and_export_read_the_documents(
    calls_config: CallsConfigFactory,
    recordings: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "caller-key")
    config = str(write_config(tmp_path / "config.yaml", calls_config("extract-acme")))
    assert main(["calls", "process", str(recordings), "--config", config]) == 0
    capsys.readouterr()

    assert main(["calls", "list", "--config", config, "--where", "company=acme ltd", "--status", "done"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["ID", "STATUS", "NAME"] and len(table) == 6
    assert "Dana Whitfield" in table[1]
    assert main(["calls", "list", "--config", config, "--where", "products_of_interest=Home Battery"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6
    assert main(["calls", "list", "--config", config, "--where", "company=Initech", "--since", "1h"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["calls", "list", "--config", config, "--since", "2999-01-01"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1

    call_id = table[1].split()[0]
    assert main(["calls", "show", call_id[:8], "--config", config]) == 0
    shown = capsys.readouterr().out
    assert "customer_name: Dana Whitfield" in shown and "products_of_interest: solar panels, home battery" in shown
    assert "transcript:\nThis is an emulated transcription of" in shown
    assert main(["calls", "show", "ffffffff", "--config", config]) == 1
    assert "no call matches" in capsys.readouterr().err

    out = tmp_path / "calls.csv"
    assert main(["calls", "export", "--format", "csv", "--output", str(out), "--config", config]) == 0
    import csv

    with out.open() as exported_file:
        exported = list(csv.DictReader(exported_file))
    assert len(exported) == 5 and exported[0]["company"] == "Acme Ltd"
    assert exported[0]["products_of_interest"] == "solar panels; home battery"
    assert main(["calls", "export", "--format", "jsonl", "--config", config]) == 0
    import json

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 5 and all(line["fields"]["customer_name"] == "Dana Whitfield" for line in lines)
    assert all(line["transcript"] and line["usage"]["total_tokens"] > 0 for line in lines)


def test_bad_command_lines_get_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path / "config.yaml", {"data_dir": str(tmp_path)}))
    assert main(["calls", "process", str(tmp_path), "--config", config]) == 1
    assert "no models configured for the pipeline" in capsys.readouterr().err
    assert main(["calls", "list", "--where", "company", "--config", config]) == 2  # a usage error, as argparse's
    assert "expected FIELD=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse's usage error: every --since parses the same way
        main(["calls", "list", "--since", "yesterday", "--config", config])
    assert refused.value.code == 2
    assert "--since: 'yesterday' is neither a duration" in capsys.readouterr().err
    schema = tmp_path / "bad.json"
    schema.write_text("[]")
    assert main(["calls", "process", str(tmp_path), "--schema", str(schema), "--config", config]) == 1
    assert "must be an object schema" in capsys.readouterr().err
    assert main(["calls", "watch", "s3://bucket", "--config", config, "--api-base", "http://127.0.0.1:1/v1"]) == 1
    assert "use a folder path or azure://container" in capsys.readouterr().err


def test_remote_api_base_through_a_served_gateway(
    calls_config: CallsConfigFactory, recordings: Path, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    from aoai_gateway.app import create_app
    from aoai_gateway.config import Settings

    settings = Settings.model_validate(calls_config())
    with AsgiServer(create_app(settings)) as gateway:
        config = write_config(tmp_path / "pipeline.yaml", {"data_dir": str(tmp_path), "calls": calls_config()["calls"]})
        result = run(calls_command(config, "process", str(recordings), "--api-base", f"{gateway.url}/v1"))
    assert result.returncode == 0, result.stderr
    assert "processed 5, skipped as duplicates 1" in result.stdout
    assert requests_to(reset_emulator, "gpt-4o") == 5


@pytest.mark.slow
def test_sigterm_hands_unfinished_calls_back_at_once(
    calls_config: CallsConfigFactory, recordings: Path, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    # A long lease: only the hand-back lets the restart take the interrupted calls without waiting for it.
    config = write_config(tmp_path / "config.yaml", calls_config("extract-slow", concurrency=2, lease_seconds=600))
    database = tmp_path / "calls.db"
    process = batch_in_flight(config, recordings, database)
    process.terminate()
    try:
        process.wait(30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 143
    states = {row["status"] for row in rows(database)}
    assert "processing" not in states and "queued" in states

    started = time.monotonic()
    restarted = run(calls_command(config, "process", str(recordings)))
    assert restarted.returncode == 0, restarted.stderr
    assert time.monotonic() - started < 300  # far less than the 600 s lease it would otherwise wait out
    assert {row["status"] for row in rows(database)} == {"done"}
    assert all(row["attempts"] == 1 for row in rows(database))


def test_the_progress_line_rewrites_itself() -> None:
    import io

    from aoai_gateway.calls.cli import Progress
    from aoai_gateway.calls.runner import Summary

    out = io.StringIO()
    progress = Progress(out, width=10)
    summary = Summary(processed=3, duplicates=1, failed=1, audio_seconds=150)
    progress.update(summary, 10)
    progress.close()
    assert out.getvalue() == "\r[#####.....] 5/10  done 3  dup 1  failed 1  audio 2.5 min \n"
