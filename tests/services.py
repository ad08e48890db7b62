"""Real local services for tests: PostgreSQL and Redis, used when reachable.

A test that needs one skips with a visible reason when it is not reachable, and fails instead when
AOAI_GATEWAY_REQUIRE_SERVICES is set (as .ci/run does), so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any, NoReturn

import pytest

from aoai_gateway.store.migrations import MIGRATIONS

REQUIRE_SERVICES = "AOAI_GATEWAY_REQUIRE_SERVICES"
POSTGRES = os.environ.get("AOAI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("AOAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require(name: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError as exc:
        unavailable(f"{name} is not reachable at {host}:{port} ({exc})")


def unavailable(message: str) -> NoReturn:
    """Skip the test, saying why; or fail it when AOAI_GATEWAY_REQUIRE_SERVICES is set."""
    if os.environ.get(REQUIRE_SERVICES):
        pytest.fail(f"{message}; {REQUIRE_SERVICES} is set, so this is a failure")
    pytest.skip(message)


# Every table the gateway's migrations create (read from them, so a new migration needs no edit here): a test on
# the shared PostgreSQL database starts from none of them.
GATEWAY_TABLES = (
    *dict.fromkeys(
        name
        for _, statements in MIGRATIONS
        for statement in statements
        for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", statement)
    ),
    "schema_migrations",
)


async def drop_gateway_tables(db: Any) -> None:
    for table in reversed(GATEWAY_TABLES):  # later tables may refer to earlier ones
        await db.script([f"DROP TABLE IF EXISTS {table}"])
