"""`aoai-gateway events ...` and the rules every command keeps: `--config` after the command, one `--since`
parser, help that names each default, tables that escape what a terminal would obey, and no traceback when the
reader of a listing leaves early (`| head`)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aoai_gateway.cli import _parser, main
from aoai_gateway.moments import parse_duration, parse_since
from aoai_gateway.store import KeySpec, KeyStore, connect_database, migrate

HOSTILE_NAME = "\x1b[2J\x1b]0;pwned\x07\u202etxt.exe\x9b"


@pytest.fixture
def gateway_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory and two configured models, from the environment alone (no config file)."""
    monkeypatch.setenv("AOAI_GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_MODEL_MAPPER", "gpt-4o=prod-4o,whisper-1=prod-whisper")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def window() -> tuple[str, str]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    return (now - dt.timedelta(hours=1)).isoformat(), (now + dt.timedelta(hours=2)).isoformat()


def enrol(data_dir: Path, event_id: str, names: list[str]) -> list[str]:
    """Attendee keys made as registration makes them (straight into the store the CLI reads)."""

    async def go() -> list[str]:
        db = await connect_database(f"sqlite:///{data_dir / 'gateway.db'}")
        await migrate(db)
        made = []
        for name in names:
            enrolled = await KeyStore(db).enrol(KeySpec(name, event_id=event_id), f"name:{name.casefold()}")
            assert enrolled is not None
            made.append(enrolled[0].id)
        await db.close()
        return made

    return asyncio.run(go())


def test_events_commands(gateway_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    starts, ends = window()
    status, out, err = run(
        capsys,
        *("events", "create", "--name", "Hack Day", "--starts", starts, "--ends", ends),
        *("--timezone", "Europe/Berlin", "--models", "gpt-4o", "--daily-requests", "20", "--code", "generate"),
    )
    assert status == 0, err
    event = json.loads(out)
    assert event["needs_code"] and len(event["shared_code"]) == 14 and "not shown again" in err
    assert event["starts_at"].endswith(("+01:00", "+02:00")) and event["models"] == ["gpt-4o"]
    event_id = event["id"]

    status, out, _ = run(capsys, "events", "list")
    assert status == 0 and event_id in out and "Hack Day" in out and "daily_requests=20" in out
    assert json.loads(run(capsys, "events", "list", "--format", "json")[1])[0]["id"] == event_id
    status, out, _ = run(capsys, "events", "show", event_id)
    assert status == 0 and json.loads(out)["id"] == event_id and "shared_code" not in json.loads(out)

    status, out, err = run(
        capsys, "events", "update", event_id, "--extend", "2h", "--daily-requests", "none", "--models", "none"
    )
    assert status == 0, err
    updated = json.loads(out)
    assert updated["daily_requests"] is None and updated["models"] is None
    later = dt.datetime.fromisoformat(updated["ends_at"]) - dt.datetime.fromisoformat(event["ends_at"])
    assert later == dt.timedelta(hours=2)

    ann, hostile = enrol(gateway_env, event_id, ["Ann", HOSTILE_NAME])
    status, out, err = run(capsys, "events", "attendees", event_id)
    assert status == 0 and ann in out and "(1-2 of 2)" in err
    assert "\\x1b[2J\\x1b]0;pwned\\x07\\u202etxt.exe\\x9b" in out
    assert not any(ch in out for ch in "\x1b\x07\u202e\x9b")
    status, out, err = run(capsys, "events", "attendees", event_id, "--search", "an", "--limit", "1")
    assert status == 0 and ann in out and hostile not in out and "(1-1 of 1)" in err
    status, out, _ = run(capsys, "events", "attendees", event_id, "--format", "csv")
    assert out.splitlines()[0] == "id,name,state,requests,errors,tokens,today_requests,today_tokens"
    rows = json.loads(run(capsys, "events", "attendees", event_id, "--format", "json")[1])
    assert rows[0]["usage"] == {"requests": 0, "errors": 0, "tokens": 0}

    assert run(capsys, "events", "revoke", event_id, ann)[:2] == (0, f"revoked {ann}\n")
    status, _, err = run(capsys, "events", "revoke", "evt_other", ann)
    assert status == 1 and err == "aoai-gateway: No event 'evt_other'.\n"

    status, out, _ = run(capsys, "events", "close", event_id)
    assert status == 0 and dt.datetime.fromisoformat(json.loads(out)["ends_at"]) <= dt.datetime.now(dt.UTC)

    status, _, err = run(capsys, "events", "delete", event_id)
    assert status == 1 and "--yes" in err
    assert run(capsys, "events", "delete", event_id, "--yes")[0] == 0
    status, _, err = run(capsys, "events", "show", event_id)
    assert status == 1 and err == f"aoai-gateway: No event {event_id!r}.\n"
    status, out, _ = run(capsys, "events", "list")
    assert status == 0 and out == "(no rows)\n"
    status, out, _ = run(capsys, "keys", "show", hostile)
    assert json.loads(out)["revoked_at"] is not None


def test_events_commands_refuse_bad_input_in_one_line(gateway_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    starts, ends = window()
    base = ("events", "create", "--starts", starts, "--ends", ends)
    for argv, expected in (
        ((*base, "--name", "x", "--models", "gpt-4o,gtp-4o"), "--models: unknown model 'gtp-4o'"),
        ((*base, "--name", "evil\x1b[2J"), "name: Value error, contains the control character U+001B"),
        ((*base, "--name", "x", "--timezone", "Mars/Olympus"), "unknown time zone"),
        (("events", "create", "--name", "x", "--starts", "1900-01-01", "--ends", ends), "starts_at"),
        (("events", "create", "--name", "x", "--starts", ends, "--ends", starts), "ends_at must be after starts_at"),
        ((*base, "--name", "x", "--code", "short"), "shared_code"),
        (("events", "show", "evt_missing"), "No event 'evt_missing'."),
        (("events", "update", "evt_missing", "--name", "x"), "No event 'evt_missing'."),
        (("events", "attendees", "evt_missing"), "No event 'evt_missing'."),
    ):
        status, out, err = run(capsys, *argv)
        assert status == 1 and out == "", argv
        assert err.startswith("aoai-gateway: ") and err.count("\n") == 1 and expected in err, (argv, err)
        assert "\x1b" not in err
    made = json.loads(run(capsys, *base, "--name", "ok")[1])
    status, _, err = run(capsys, "events", "update", made["id"], "--extend", "999d")
    assert status == 1 and "extend" in err
    status, _, err = run(capsys, "events", "attendees", made["id"], "--search", "a\x1b")
    assert status == 1 and "search" in err and "\x1b" not in err
    for argv in (
        ("events", "list", "--limit", "1001"),
        ("events", "list", "--limit", "-1"),
        ("events", "attendees", made["id"], "--offset", "1e3"),
        ("events", "create", "--name", "x", "--starts", starts, "--ends", ends, "--max-attendees", "0"),
    ):
        with pytest.raises(SystemExit) as refused:
            main(list(argv))
        assert refused.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_since_parses_durations_and_iso_dates() -> None:
    now = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC).timestamp()
    assert parse_since("2h", now) == now - 7200
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("30m", now) == parse_since(" 30M ", now) == now - 1800
    assert parse_since("1w", now) == now - 604800
    assert parse_since("2026-11-01") == dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()
    assert parse_since("2026-11-01T09:00") == dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC).timestamp()
    assert parse_since("2026-11-01T09:00Z") == dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC).timestamp()
    assert parse_since("2026-11-01T10:00+01:00") == dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC).timestamp()
    assert parse_duration("90m") == 5400
    for bad in ("yesterday", "2", "h", "-2h", "2.5h", "2y", "1" * 10 + "d", "", "2026-13-01", "x" * 10_000):
        with pytest.raises(ValueError, match="neither a duration"):
            parse_since(bad, now)


def test_every_since_option_uses_the_one_parser(gateway_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sinces = [a for _, a in options(_parser()) if "--since" in a.option_strings]
    assert len(sinces) >= 2 and all(a.type is sinces[0].type for a in sinces)
    assert run(capsys, "usage", "--since", "7d")[0] == 0
    assert run(capsys, "usage", "--since", "2026-11-01", "--by", "day")[0] == 0
    with pytest.raises(SystemExit):
        main(["usage", "--since", "last week"])
    assert "neither a duration" in capsys.readouterr().err


def options(parser: argparse.ArgumentParser, path: str = "aoai-gateway") -> list[tuple[str, argparse.Action]]:
    """Every (command path, option) of the parser tree."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += options(sub, f"{path} {name}")
        elif action.option_strings:
            found.append((path, action))
    return found


def leaves(parser: argparse.ArgumentParser, path: str = "aoai-gateway") -> list[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    return [leaf for name, sub in subs[0].choices.items() for leaf in leaves(sub, f"{path} {name}")]


def test_every_option_has_help_naming_its_default() -> None:
    checked = 0
    for path, action in options(_parser()):
        if isinstance(action, argparse._HelpAction | argparse._VersionAction) or action.help == argparse.SUPPRESS:
            continue
        where = f"{path} {'/'.join(action.option_strings)}"
        assert action.help, f"{where} has no help"
        text = action.help % {**vars(action), "prog": path}
        assert "default" in text.lower() or "(required)" in text, f"{where}: the help does not name its default"
        if action.default not in (None, False, [], argparse.SUPPRESS):
            assert str(action.default) in text, f"{where}: the help does not say its default is {action.default!r}"
        checked += 1
    assert checked > 60


def test_config_goes_after_every_command_that_reads_it() -> None:
    without = {"aoai-gateway deployments"}  # talks to a running gateway over HTTP
    groups_with_config = [path for path, a in options(_parser()) if "--config" in a.option_strings]
    for path, leaf in leaves(_parser()):
        if path in without:
            continue
        assert any("--config" in a.option_strings for a in leaf._actions), f"{path} takes no --config"
    # Only leaves take it: `aoai-gateway keys --config X list` is not a second place to put it.
    assert set(groups_with_config) <= {path for path, _ in leaves(_parser())}


def test_the_readme_invocation_with_config_after_the_command_works(
    gateway_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AOAI_GATEWAY_DATA_DIR")  # the environment would win over the file
    config = gateway_env / "gateway.yaml"
    config.write_text(f"data_dir: {gateway_env / 'elsewhere'}\n")
    assert run(capsys, "keys", "create", "--name", "me", "--config", str(config))[0] == 0
    assert (gateway_env / "elsewhere" / "gateway.db").exists()
    status, out, _ = run(capsys, "keys", "list", "--config", str(config))
    assert status == 0 and " me " in out


@pytest.mark.parametrize(
    "argv",
    [["keys", "list"], ["events", "list"], ["events", "attendees", "EVENT"], ["usage", "--by", "key"]],
    ids=" ".join,
)
def test_a_reader_that_leaves_early_gets_no_traceback(gateway_env: Path, argv: list[str]) -> None:
    """`aoai-gateway keys list | head -1`: far more than a pipe holds, the reader gone before the first write."""

    async def fill() -> str:
        db = await connect_database(f"sqlite:///{gateway_env / 'gateway.db'}")
        await migrate(db)
        now = dt.datetime.now(dt.UTC).timestamp()
        await db.execute(
            "INSERT INTO events (id, name, starts_at, ends_at, timezone, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ["evt_pipe", "Pipe", now - 60, now + 3600, "UTC", now],
        )
        await db.execute_many(
            "INSERT INTO events (id, name, starts_at, ends_at, timezone, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [[f"evt_{n:05d}", "e" * 100, now + n, now + n + 60, "UTC", now] for n in range(1000)],
        )
        await db.execute_many(
            "INSERT INTO keys (id, name, secret_hash, prefix, event_id, attendee, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[f"key_{n:05d}", "k" * 100, f"h{n}", "sk-gw-xxxx", "evt_pipe", f"name:{n}", now] for n in range(1500)],
        )
        await db.execute_many(
            "INSERT INTO usage_daily (bucket, dims, key_id, event_id, model, deployment, requests, errors,"
            " prompt_tokens, completion_tokens, audio_seconds) VALUES (?, ?, ?, ?, ?, ?, 1, 0, 1, 1, 0)",
            [[20000, f"d{n}", f"key_{n:05d}" + "k" * 80, None, None, None] for n in range(1500)],
        )
        await db.close()
        return "evt_pipe"

    event_id = asyncio.run(fill())
    argv = [event_id if a == "EVENT" else a for a in argv]
    if argv[:2] == ["events", "attendees"]:
        argv += ["--limit", "1000"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-m", "aoai_gateway", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=gateway_env,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader leaves before a byte is written
    with child.stderr:
        err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_help_and_listings_of_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["events", "--help"])
    out = capsys.readouterr().out
    for action in ("create", "list", "show", "update", "close", "delete", "attendees", "revoke"):
        assert action in out


def test_events_list_escapes_hostile_stored_names(gateway_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A name stored before names were checked (or straight into the database) cannot steer the terminal."""

    async def store() -> None:
        db = await connect_database(f"sqlite:///{gateway_env / 'gateway.db'}")
        await migrate(db)
        now = dt.datetime.now(dt.UTC).timestamp()
        await db.execute(
            "INSERT INTO events (id, name, starts_at, ends_at, timezone, models, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            ["evt_hostile", HOSTILE_NAME, now, now + 3600, "UTC", '["\\u001b[31m"]', now],
        )
        await db.close()

    asyncio.run(store())
    status, out, _ = run(capsys, "events", "list")
    assert status == 0 and "evt_hostile" in out and "\\x1b[2J\\x1b]0;pwned\\x07\\u202etxt.exe\\x9b" in out
    assert "\\x1b[31m" in out and not any(ch in out for ch in "\x1b\x07\u202e\x9b")
    status, out, _ = run(capsys, "events", "show", "evt_hostile")
    assert status == 0 and "\x1b" not in out and json.loads(out)["name"] == HOSTILE_NAME
