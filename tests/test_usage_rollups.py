"""Usage reports from the hourly and daily rollups answer exactly what the raw ledger does, page by page."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aoai_gateway.store import Database, UsageLedger, UsageRow, connect_database, migrate, migrations, usage_report
from aoai_gateway.store.usage import _INSERT, GROUPS, _values, key_totals, recent_activity

from .keyed import MASTER, chat
from .services import drop_gateway_tables

DAY = 86400 * 20000  # 2024-10-04 00:00 UTC


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with no tables: each test migrates it as far as it needs."""
    sqlite = f"sqlite:///{tmp_path}/gateway.db"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    database = await connect_database(url)
    await drop_gateway_tables(database)
    yield database
    await database.close()


def _random_rows(rng: random.Random, count: int) -> list[UsageRow]:
    # NULL and '' are different groups; some rows fall exactly on hour and day boundaries.
    names = {
        "key": [None, "", "key_a", "key_b", "key_c", "key_d"],
        "event": [None, "evt_1", "evt_2"],
        "model": [None, "", "gpt-4o", "gpt-4o-mini", "whisper-1", "a:b", "1:a"],
        "deployment": [None, "dep-1", "dep-2", "dep-3"],
    }
    rows = []
    for _ in range(count):
        at = DAY + rng.choice([rng.uniform(-86400, 4 * 86400), rng.randrange(-24, 96) * 3600.0])
        rows.append(
            UsageRow(
                at,
                rng.choice(names["key"]),
                rng.choice(names["event"]),
                rng.choice(names["model"]),
                rng.choice(names["deployment"]),
                "/v1/chat/completions",
                rng.choice([200, 200, 200, 400, 429, 500]),
                rng.randrange(0, 500),
                rng.randrange(0, 200),
                rng.choice([0.0, 0.0, rng.uniform(0, 30)]),
                rng.uniform(1, 100),
            )
        )
    return rows


async def _raw_report(
    db: Database, by: str, key_id: str | None, event_id: str | None, since: float | None
) -> list[dict[str, Any]]:
    """The report as it was computed before the rollups: one aggregate over the raw ledger."""
    conditions, params = [], []
    for column, value in (("key_id", key_id), ("event_id", event_id)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        conditions.append("at >= ?")
        params.append(since)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    group = "CAST(FLOOR(at / 86400) AS BIGINT)" if by == "day" else GROUPS[by]
    rows = await db.fetch(
        f"SELECT {group} AS grp, COUNT(*) AS requests, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
        f"SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
        f"SUM(audio_seconds) AS audio_seconds FROM usage{where} GROUP BY {group} ORDER BY {group}",
        params,
    )
    report = []
    for row in rows:
        name = row.pop("grp")
        if by == "day" and name is not None:
            name = dt.datetime.fromtimestamp(int(name) * 86400, dt.UTC).date().isoformat()
        report.append({by: name, **{k: (int(v) if k != "audio_seconds" else float(v or 0)) for k, v in row.items()}})
    return report


def _same(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    # Sums of floats added in another order may differ in the last bits; everything else is exact.
    assert [{**row, "audio_seconds": None} for row in got] == [{**row, "audio_seconds": None} for row in expected]
    assert [row["audio_seconds"] for row in got] == pytest.approx([row["audio_seconds"] for row in expected])


async def test_rollups_answer_as_the_raw_ledger(empty_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    db, rng = empty_db, random.Random(7)
    # Rows written before the rollups existed are back-filled by their migration ...
    names = [name for name, _ in migrations.MIGRATIONS]
    before = migrations.MIGRATIONS[: names.index("0004_usage_rollups")]
    monkeypatch.setattr(migrations, "MIGRATIONS", before)
    await migrate(db)
    await db.execute_many(_INSERT, [_values(row) for row in _random_rows(rng, 1500)])
    monkeypatch.undo()
    assert "0004_usage_rollups" in await migrate(db)
    # ... and later ones added by the ledger's flushes, merging into the same hours and days.
    ledger = UsageLedger(db)
    for _ in range(5):
        for row in _random_rows(rng, 300):
            ledger.record(row)
        await ledger.flush()
    total = (await db.fetch("SELECT COUNT(*) AS n FROM usage"))[0]["n"]
    assert total == 3000
    hourly = (await db.fetch("SELECT SUM(requests) AS n, COUNT(*) AS r FROM usage_hourly"))[0]
    assert int(hourly["n"]) == 3000 and hourly["r"] < 3000  # the upserts merged
    sinces: list[float | None] = [None, DAY, DAY + 3600, DAY - 86400 * 5, DAY + 86400 * 10]
    sinces += [DAY + rng.uniform(-86400, 4 * 86400) for _ in range(4)]
    for by in GROUPS:
        for key_id, event_id in ((None, None), ("key_a", None), (None, "evt_1"), ("", "evt_2"), ("key_z", None)):
            for since in sinces:
                expected = await _raw_report(db, by, key_id, event_id, since)
                got = await usage_report(db, by=by, key_id=key_id, event_id=event_id, since=since)
                _same(got, expected)
    for key_id in ("key_a", "", "key_z"):
        since = DAY + rng.uniform(0, 2 * 86400)
        # Model calls only, as the live counters count them (a listing of models reaches no model).
        rows = await db.fetch(
            "SELECT COUNT(*) AS n, SUM(prompt_tokens + completion_tokens) AS t FROM usage "
            "WHERE key_id = ? AND at >= ? AND model IS NOT NULL",
            [key_id, since],
        )
        ever = await db.fetch(
            "SELECT SUM(prompt_tokens + completion_tokens) AS t FROM usage WHERE key_id = ? AND model IS NOT NULL",
            [key_id],
        )
        expected_totals = (int(rows[0]["n"]), int(rows[0]["t"] or 0), int(ever[0]["t"] or 0))
        assert await key_totals(db, key_id, since) == expected_totals


async def test_pages_add_up_to_the_whole_report(empty_db: Database) -> None:
    db = empty_db
    await migrate(db)
    ledger = UsageLedger(db)
    for row in _random_rows(random.Random(3), 500):
        ledger.record(row)
    await ledger.flush()
    for by in ("model", "day", "key"):
        whole = await usage_report(db, by=by)
        assert len(whole) > 4
        pages = [await usage_report(db, by=by, limit=3, offset=offset) for offset in range(0, len(whole) + 3, 3)]
        _same([row for page in pages for row in page], whole)
        assert pages[-1] == [] and all(len(page) == 3 for page in pages[:-2])
        _same(await usage_report(db, by=by, offset=2), whole[2:])


async def test_a_page_since_an_instant_is_a_slice_of_the_raw_report(empty_db: Database) -> None:
    # Each source stops at the page's end (offset + limit groups): the page must still be the raw report's slice,
    # with groups that only some sources have, and sums over all three sources (raw, hourly, daily).
    db = empty_db
    await migrate(db)
    ledger = UsageLedger(db)
    for row in _random_rows(random.Random(11), 900):
        ledger.record(row)
    await ledger.flush()
    for by in GROUPS:
        for key_id, since in ((None, None), (None, DAY + 1800.5), (None, DAY - 2 * 86400 + 7.25), ("key_a", DAY)):
            whole = await _raw_report(db, by, key_id, None, since)
            assert len(whole) > 2 or by == "key"
            for limit, offset in ((1, 0), (2, 1), (3, max(0, len(whole) - 2)), (len(whole), 0), (4, len(whole) + 1)):
                page = await usage_report(db, by=by, key_id=key_id, since=since, limit=limit, offset=offset)
                _same(page, whole[offset : offset + limit])


async def test_recent_activity_counts_each_row_in_its_minute(empty_db: Database) -> None:
    db = empty_db
    await migrate(db)
    rng = random.Random(5)
    start = DAY + 600.0
    rows = [
        UsageRow(
            at,
            rng.choice(["key_a", "key_b", None]),
            event,
            "gpt-4o",
            "d",
            "/v1/chat/completions",
            rng.choice([200, 429]),
            rng.randrange(50),
            rng.randrange(50),
            0.0,
            1.0,
        )
        for event in ("evt_1", "evt_2")
        # Rows on minute boundaries, just before them, at the window's ends, and anywhere.
        for at in [start, start + 60, start + 59.999999, start + 600 - 1e-6, start + 600, start - 0.001]
        + [start + rng.uniform(0, 600) for _ in range(200)]
    ]
    ledger = UsageLedger(db)
    for row in rows:
        ledger.record(row)
    await ledger.flush()
    until = start + 600 - 0.5  # mid-minute: the last minute is cut there
    minutes, top = await recent_activity(db, event_id="evt_1", since=start, until=until, top=2)
    shown = [row for row in rows if row.event_id == "evt_1" and start <= row.at < until]
    expected = []
    for index in range(int(start // 60), int(-(-until // 60))):
        inside = [row for row in shown if index * 60 <= row.at < (index + 1) * 60]
        tokens = sum(row.prompt_tokens + row.completion_tokens for row in inside)
        expected.append((len(inside), sum(row.status >= 400 for row in inside), tokens))
    assert [(m["requests"], m["errors"], m["tokens"]) for m in minutes] == expected and len(minutes) == 10
    assert sum(m["requests"] for m in minutes) == len(shown)
    per_key: dict[str, list[int]] = {}
    for row in shown:
        if row.key_id is not None:
            sums = per_key.setdefault(row.key_id, [0, 0])
            sums[0] += row.prompt_tokens + row.completion_tokens
            sums[1] += 1
    leaders = sorted(per_key.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
    assert [(t["key_id"], t["tokens"], t["requests"]) for t in top] == [(k, s[0], s[1]) for k, s in leaders]


async def test_admin_usage_pages_and_refuses_bad_parameters(keyed: Any) -> None:
    start, keys, _, _ = keyed
    gateway = start()
    for _ in range(3):
        assert chat(gateway, await keys.make()).status_code == 200
    embed = {"model": "text-embedding-3-small", "input": "hello"}
    headers = {"authorization": f"Bearer {await keys.make()}"}
    assert httpx.post(f"{gateway.url}/v1/embeddings", json=embed, headers=headers, timeout=30).status_code == 200
    url, auth = f"{gateway.url}/admin/usage", {"authorization": f"Bearer {MASTER}"}
    # Only calls made with a gateway key are in the ledger (admin calls are not): four keys, two models.
    assert httpx.get(url, headers=auth).status_code == 200
    whole = httpx.get(f"{url}?by=key", headers=auth).json()
    keys_in = [row["key"] for row in whole["data"]]
    assert len(keys_in) == 4 and None not in keys_in and "has_more" not in whole  # unpaged: as it always was
    first = httpx.get(f"{url}?by=key&limit=2", headers=auth).json()
    assert [row["key"] for row in first["data"]] == keys_in[:2] and first["has_more"] is True
    rest = httpx.get(f"{url}?by=key&limit=2&offset=2", headers=auth).json()
    assert [row["key"] for row in rest["data"]] == keys_in[2:] and rest["has_more"] is False
    assert httpx.get(f"{url}?by=key&offset=3", headers=auth).json()["has_more"] is False
    since = httpx.get(f"{url}?by=model&since=2020-01-01T00:30:00%2B02:00&limit=1", headers=auth).json()
    assert since["data"][0]["requests"] >= 3 and since["has_more"] is True
    bad = {
        "limit": ["0", "-1", "x", "1.5", "10001", "9" * 5000, "\N{ARABIC-INDIC DIGIT ONE}"],
        "offset": ["-1", "x", "9" * 30],
        "by": ["nope", ""],
        "since": ["yesterday", "2026-01-01T00:00:00", "9999-99-99T00:00:00Z"],
        "key": ["a\x00b"],
        "event": ["\x00"],
    }
    for param, values in bad.items():
        for value in values:
            answer = httpx.get(url, params={param: value}, headers=auth)
            assert answer.status_code == 400, (param, value, answer.text)
            error = answer.json()["error"]
            assert error["param"] == param and error["type"] == "invalid_request_error", error


def test_usage_cli_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from aoai_gateway.cli import main

    monkeypatch.setenv("AOAI_GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)

    async def fill() -> None:
        db = await connect_database(f"sqlite:///{tmp_path}/gateway.db")
        await migrate(db)
        ledger = UsageLedger(db)
        for row in _random_rows(random.Random(5), 200):
            ledger.record(row)
        await ledger.close()
        await db.close()

    asyncio.run(fill())
    assert main(["usage", "--by", "model", "--format", "json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert main(["usage", "--by", "model", "--format", "json", "--limit", "2", "--offset", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == whole[1:3]
    with pytest.raises(SystemExit):
        main(["usage", "--limit", "0"])
