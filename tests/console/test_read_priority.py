"""The console's reads run on SQLite reader threads of lower CPU priority; the proxy's reads and writes do not.

The niceness is read back from the kernel (`/proc/self/task/<tid>/stat`), not from the code that set it. SQLite
only: PostgreSQL runs its queries in its own server processes, where no thread of the gateway's can be lowered.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from aoai_gateway.store import KeySpec, KeyStore, UsageLedger, UsageRow, connect_database, migrate, usage_report
from aoai_gateway.store.database import CONSOLE_NICE, SqliteDatabase, console_reads

from ..keyed import MASTER
from .test_admin_pages import chat, signed_in

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")


def nice_of(tid: int) -> int:
    """A thread's nice value as the kernel has it: field 19 of its stat line (the 17th after the command)."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def lowered() -> int:
    return min(19, os.getpriority(os.PRIO_PROCESS, 0) + CONSOLE_NICE)


async def test_console_reads_run_lowered_and_the_proxys_reads_and_writes_do_not(tmp_path: Path) -> None:
    db = await connect_database(f"sqlite:///{tmp_path}/gateway.db")
    assert isinstance(db, SqliteDatabase)
    try:
        await migrate(db)
        keys = KeyStore(db)
        key, secret = await keys.create(KeySpec("ci"))
        base = os.getpriority(os.PRIO_PROCESS, 0)
        # The proxy's path: a key looked up by its secret, then its usage written by the ledger's flush.
        keys.forget()
        assert (await keys.by_secret(secret)) is not None
        ledger = UsageLedger(db)
        ledger.record(UsageRow(time.time(), key.id, None, "gpt-4o", "d", "/v1/chat/completions", 200, 5, 7, 0.0, 3))
        await ledger.flush()
        threads = db.threads()
        assert threads["reader"] and threads["writer"] and threads["console reader"] == []
        assert [nice_of(tid) for tid in threads["reader"] + threads["writer"]] == [base] * (
            len(threads["reader"]) + len(threads["writer"])
        )
        # A console report: its reads on the lowered threads; the flush it starts with still on the writer.
        with console_reads():
            ledger.record(UsageRow(time.time(), key.id, None, "gpt-4o", "d", "/v1/chat/completions", 200, 1, 1, 0, 3))
            await ledger.flush()
            report = await usage_report(db, by="key", limit=500)
        assert report[0]["key"] == key.id and report[0]["requests"] == 2
        after = db.threads()
        assert after["console reader"] and after["writer"] == threads["writer"]
        assert {nice_of(tid) for tid in after["console reader"]} == {lowered()}
        assert {nice_of(tid) for tid in after["reader"] + after["writer"]} == {base}
        # Outside the block, reads are the proxy's again.
        readers = set(after["reader"])
        await keys.names([key.id])
        assert set(db.threads()["console reader"]) == set(after["console reader"])
        assert set(db.threads()["reader"]) >= readers
    finally:
        await db.close()


def _lowered_threads() -> set[int]:
    found = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            if nice_of(int(task.name)) == lowered():
                found.add(int(task.name))
        except (OSError, ValueError):
            continue  # a thread that ended while listed
    return found


def test_the_gateway_lowers_its_console_pages_reads_only(console_gateway: Any) -> None:
    gateway = console_gateway(console={"process": False})  # in-process pages (test_page_process.py: the child)
    before = _lowered_threads()
    secret = httpx.post(
        f"{gateway.url}/admin/keys", json={"name": "ci"}, headers={"authorization": f"Bearer {MASTER}"}
    ).json()
    for _ in range(3):
        chat(gateway, secret["secret"])  # key lookups, the ledger's flushes (0.05 s in these tests)
    time.sleep(0.3)
    assert _lowered_threads() - before == set()
    with signed_in(gateway) as client:
        assert secret["id"] in client.get("/console/admin/usage?by=key").text
    assert _lowered_threads() - before
