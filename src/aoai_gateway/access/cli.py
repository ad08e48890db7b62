"""`aoai-gateway keys ...` and `aoai-gateway usage ...`: the same store the server uses, without a server.

aoai-gateway keys create --name ci --models gpt-4o --rpm 60      # prints the secret once
aoai-gateway keys list | show ID | update ID --rpm 120 | revoke ID
aoai-gateway usage --by model --since 2026-11-01T00:00:00Z --format csv
aoai-gateway usage --by key --limit 50 --offset 100                 # rows 101-150, ordered by key
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from ..config import ConfigError, Settings
from ..csvsafe import neutralised_mapping
from ..store import KeyStore, usage_report
from ..store.usage import GROUPS
from ..tables import text_table
from .runtime import open_store
from .specs import KeyRequest, KeyUpdate, parse_when

_CAPS = ("rpm", "tpm", "daily-requests", "daily-tokens", "max-tokens", "budget-tokens")


def add_access_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list, show, update and revoke gateway keys")
    keys.add_argument("--config", metavar="PATH", help="YAML config file (default: ./config.yaml if present)")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--name", required=True)
    _caps(create)
    actions.add_parser("list", help="all keys, revoked ones included")
    show = actions.add_parser("show", help="one key")
    show.add_argument("id")
    update = actions.add_parser("update", help="change a key's name, models, caps or expiry")
    update.add_argument("id")
    update.add_argument("--name")
    _caps(update)
    revoke = actions.add_parser("revoke", help="revoke a key (the next request with it fails)")
    revoke.add_argument("id")

    usage = commands.add_parser("usage", help="report the usage ledger")
    usage.add_argument("--config", metavar="PATH")
    usage.add_argument("--key")
    usage.add_argument("--event")
    usage.add_argument("--since", help="ISO 8601 with a zone, e.g. 2026-11-01T00:00:00Z")
    usage.add_argument("--by", choices=list(GROUPS), default="model")
    usage.add_argument("--format", choices=["table", "csv", "json"], default="table")
    usage.add_argument("--limit", type=_count(1), metavar="N", help="at most N rows (default: all)")
    usage.add_argument("--offset", type=_count(0), default=0, metavar="N", help="skip the first N rows")


def _count(low: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not (value.isascii() and value.isdigit() and len(value) <= 19) or int(value) < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value!r}")
        return int(value)

    return parse


def _caps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", help="comma-separated allowlist (default: every model)")
    for cap in _CAPS:
        parser.add_argument(f"--{cap}", type=int, metavar="N")
    parser.add_argument("--expires", metavar="ISO8601", help="e.g. 2026-12-31T23:59:59Z")


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if getattr(args, "name", None) is not None:
        fields["name"] = args.name
    if args.models is not None:
        fields["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    for cap in _CAPS:
        value = getattr(args, cap.replace("-", "_"))
        if value is not None:
            fields[cap.replace("-", "_")] = value
    if args.expires is not None:
        fields["expires_at"] = args.expires
    return fields


def run_access_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_run(args, settings))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    db = await open_store(settings)
    try:
        if args.command == "usage":
            since = parse_when(args.since) if args.since else None
            rows = await usage_report(
                db, by=args.by, key_id=args.key, event_id=args.event, since=since, limit=args.limit, offset=args.offset
            )
            print(_render(rows, args.format))
            return 0
        keys = KeyStore(db)
        action = args.keys_command
        if action == "create":
            key, secret = await keys.create(KeyRequest.model_validate(_fields(args)).to_spec())
            print(json.dumps({**key.public(), "secret": secret}, indent=2))
            print("Store the secret now: it is not shown again.", file=__import__("sys").stderr)
        elif action == "list":
            print(_render([_row(k.public()) for k in await keys.list()], "table"))
        elif action == "show":
            found = await keys.get(args.id)
            if found is None:
                return _missing(args.id)
            print(json.dumps(found.public(), indent=2))
        elif action == "update":
            changed = await keys.update(args.id, **KeyUpdate.model_validate(_fields(args)).changes())
            if changed is None:
                return _missing(args.id)
            print(json.dumps(changed.public(), indent=2))
        elif action == "revoke":
            if await keys.get(args.id) is None:
                return _missing(args.id)
            await keys.revoke(args.id)
            print(f"revoked {args.id}")
        return 0
    finally:
        await db.close()


def _missing(key_id: str) -> int:
    print(f"aoai-gateway: no key {key_id!r}", file=__import__("sys").stderr)
    return 1


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


def _render(rows: Sequence[dict[str, Any]], output: str) -> str:
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
