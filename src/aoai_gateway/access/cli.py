"""`aoai-gateway keys ...` and `aoai-gateway usage ...`: the same store the server uses, without a server.

aoai-gateway keys create --name ci --models gpt-4o --rpm 60      # prints the secret once
aoai-gateway keys list | show ID | update ID --rpm 120 | revoke ID
aoai-gateway usage --by model --since 7d --format csv
aoai-gateway usage --by key --limit 50 --offset 100                 # rows 101-150, ordered by key

Events have their own commands (`access/events_cli.py`); all of them share the rendering here.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import ValidationError

from ..cli_options import CommandError, add_config, check_models, count, models_list, since
from ..config import Settings
from ..csvsafe import neutralised_mapping
from ..errors import GatewayError
from ..store import Database, KeyStore, usage_report
from ..store.usage import GROUPS
from ..tables import text_table
from .runtime import open_store
from .specs import KeyRequest, KeyUpdate

_CAPS = ("rpm", "tpm", "daily-requests", "daily-tokens", "max-tokens", "budget-tokens")
_CAP_HELP = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute",
    "daily-requests": "requests per day (UTC)",
    "daily-tokens": "tokens per day (UTC)",
    "max-tokens": "tokens one request may generate",
    "budget-tokens": "tokens in the key's whole life",
}


def add_access_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list, show, update and revoke gateway keys")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--name", required=True, help="what the key is for (required)")
    _caps(create, "none")
    add_config(create)
    listing = actions.add_parser("list", help="all keys, revoked ones included")
    add_config(listing)
    show = actions.add_parser("show", help="one key")
    show.add_argument("id", help="the key's id (key_...)")
    add_config(show)
    update = actions.add_parser("update", help="change a key's name, models, caps or expiry")
    update.add_argument("id", help="the key's id (key_...)")
    update.add_argument("--name", help="a new name (default: unchanged)")
    _caps(update, "unchanged")
    add_config(update)
    revoke = actions.add_parser("revoke", help="revoke a key (the next request with it fails)")
    revoke.add_argument("id", help="the key's id (key_...)")
    add_config(revoke)

    usage = commands.add_parser("usage", help="report the usage ledger")
    usage.add_argument("--key", metavar="ID", help="only this key's usage (default: every key)")
    usage.add_argument("--event", metavar="ID", help="only this event's usage (default: every event)")
    usage.add_argument("--since", type=since, help="from this instant on: 30m, 2h, 7d, 1w or ISO 8601 (default: all)")
    usage.add_argument("--by", choices=list(GROUPS), default="model", help="the group of each row (default: model)")
    add_format(usage, ["table", "csv", "json"])
    usage.add_argument("--limit", type=count(1), metavar="N", help="at most N rows (default: all)")
    usage.add_argument("--offset", type=count(0), default=0, metavar="N", help="skip the first N rows (default: 0)")
    add_config(usage)


def add_format(parser: argparse.ArgumentParser, choices: list[str]) -> None:
    parser.add_argument("--format", choices=choices, default=choices[0], help=f"output (default: {choices[0]})")


def _caps(parser: argparse.ArgumentParser, default: str) -> None:
    every = "every model" if default == "none" else default
    parser.add_argument(
        "--models", type=models_list, help=f"comma-separated allowlist of configured models (default: {every})"
    )
    for cap in _CAPS:
        parser.add_argument(
            f"--{cap}", type=count(1, 2**53 - 1), metavar="N", help=f"{_CAP_HELP[cap]} (default: {default})"
        )
    parser.add_argument(
        "--expires", metavar="ISO8601", help=f"expiry with a zone, e.g. 2026-12-31T23:59:59Z (default: {default})"
    )


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if getattr(args, "name", None) is not None:
        fields["name"] = args.name
    if args.models is not None:
        fields["models"] = args.models
    for cap in _CAPS:
        value = getattr(args, cap.replace("-", "_"))
        if value is not None:
            fields[cap.replace("-", "_")] = value
    if args.expires is not None:
        fields["expires_at"] = args.expires
    return fields


def run_access_command(args: argparse.Namespace, settings: Settings) -> int:
    return run_with_store(settings, lambda db: _run(args, settings, db))


def run_with_store(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    """Run `work` on the migrated store; a refusal (a bad value, an id that does not exist) is one line on stderr
    and exit status 1."""

    async def run() -> int:
        db = await open_store(settings)
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CommandError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    except GatewayError as exc:
        raise CommandError(exc.message) from None


async def _run(args: argparse.Namespace, settings: Settings, db: Database) -> int:
    if args.command == "usage":
        rows = await usage_report(
            db, by=args.by, key_id=args.key, event_id=args.event, since=args.since, limit=args.limit, offset=args.offset
        )
        print(render(rows, args.format))
        return 0
    keys = KeyStore(db)
    action = args.keys_command
    if action in ("create", "update") and args.models:
        check_models(args.models, settings)
    if action == "create":
        key, secret = await keys.create(KeyRequest.model_validate(_fields(args)).to_spec())
        print(json.dumps({**key.public(), "secret": secret}, indent=2))
        print("Store the secret now: it is not shown again.", file=sys.stderr)
    elif action == "list":
        print(render([_row(k.public()) for k in await keys.list()], "table"))
    elif action == "show":
        found = await keys.get(args.id)
        if found is None:
            raise CommandError(f"no key {args.id!r}")
        print(json.dumps(found.public(), indent=2))
    elif action == "update":
        changed = await keys.update(args.id, **KeyUpdate.model_validate(_fields(args)).changes())
        if changed is None:
            raise CommandError(f"no key {args.id!r}")
        print(json.dumps(changed.public(), indent=2))
    elif action == "revoke":
        if await keys.get(args.id) is None:
            raise CommandError(f"no key {args.id!r}")
        await keys.revoke(args.id)
        print(f"revoked {args.id}")
    return 0


def _row(key: dict[str, Any]) -> dict[str, Any]:
    caps = " ".join(f"{cap}={key[cap.replace('-', '_')]}" for cap in _CAPS if key[cap.replace("-", "_")] is not None)
    state = "revoked" if key["revoked_at"] else "active"
    return {
        "id": key["id"],
        "name": key["name"],
        "prefix": key["prefix"] + "...",
        "state": state,
        "models": ",".join(key["models"]) if key["models"] is not None else "*",
        "caps": caps or "-",
    }


def render(rows: Sequence[dict[str, Any]], output: str) -> str:
    """Rows as an escaped text table, CSV (formulas neutralised) or JSON."""
    if output == "json":
        return json.dumps(list(rows), indent=2)
    if not rows:
        return "(no rows)" if output == "table" else ""
    columns = list(rows[0])
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(neutralised_mapping(row) for row in rows)  # key names are the caller's text
        return buffer.getvalue().rstrip("\n")
    return text_table([columns, *([("" if row[c] is None else str(row[c])) for c in columns] for row in rows)])
