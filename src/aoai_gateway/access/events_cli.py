"""`aoai-gateway events ...`: what organisers do over the admin API, straight on the database (`--config`).

aoai-gateway events create --name "Hack Day" --starts 2026-12-01T09:00 --ends 2026-12-01T18:00 \\
                           --timezone Europe/Berlin --models gpt-4o --daily-requests 200 --code generate
aoai-gateway events list | show ID | close ID | delete ID --yes
aoai-gateway events update ID --extend 2h --daily-tokens none      # "none" removes a cap
aoai-gateway events attendees ID --search ann --format csv | revoke ID KEY_ID

The work is `access.organiser.EventOrganiser`, the same service the admin API calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..cli_options import CommandError, add_config, check_models, count, models_list
from ..config import Settings
from ..store import Database, KeyStore
from ..store.events import Event, EventStore
from .cli import add_format, render, run_with_store
from .organiser import EventOrganiser
from .specs import EventRequest, EventUpdate

_CAPS = {
    "daily-requests": "requests per attendee and day (in the event's zone)",
    "daily-tokens": "tokens per attendee and day (in the event's zone)",
    "max-tokens": "tokens one request may generate",
    "max-attendees": "attendees who may register",
}
NONE = "none"


def _cap_or_none(text: str) -> int | str:
    return NONE if text.strip().lower() == NONE else count(1, 2**53 - 1)(text)


def add_event_commands(commands: Any) -> None:
    events = commands.add_parser("events", help="create and steer events (workshops, hackathons) and attendees")
    actions = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create an event; a generated code is printed once")
    create.add_argument("--name", required=True, help="the event's name, shown to attendees (required)")
    create.add_argument("--starts", required=True, metavar="ISO8601", help="start; no offset: in --timezone (required)")
    create.add_argument("--ends", required=True, metavar="ISO8601", help="end; no offset: in --timezone (required)")
    create.add_argument("--timezone", default="UTC", help="IANA zone of the times and days (default: UTC)")
    create.add_argument("--models", type=models_list, help="comma-separated configured models (default: every model)")
    for cap, text in _CAPS.items():
        create.add_argument(f"--{cap}", type=count(1, 2**53 - 1), metavar="N", help=f"{text} (default: no cap)")
    create.add_argument(
        "--code", metavar="CODE", help="shared code, 8+ characters, or 'generate' (default: no code needed)"
    )
    add_config(create)

    listing = actions.add_parser("list", help="events by start, deleted ones left out")
    listing.add_argument("--limit", type=count(1, 1000), default=100, metavar="N", help="at most N (default: 100)")
    listing.add_argument("--offset", type=count(0), default=0, metavar="N", help="skip the first N (default: 0)")
    add_format(listing, ["table", "json"])
    add_config(listing)

    show = actions.add_parser("show", help="one event")
    show.add_argument("id", help="the event's id (evt_...)")
    add_config(show)

    update = actions.add_parser("update", help="change an event; its attendees' keys follow")
    update.add_argument("id", help="the event's id (evt_...)")
    update.add_argument("--name", help="a new name (default: unchanged)")
    update.add_argument("--starts", metavar="ISO8601", help="a new start (default: unchanged)")
    update.add_argument("--ends", metavar="ISO8601", help="a new end (default: unchanged)")
    update.add_argument("--extend", metavar="DURATION", help="move the end later: 30m, 2h, 1d (default: unchanged)")
    update.add_argument("--timezone", help="a new IANA zone (default: unchanged)")
    update.add_argument("--models", help="comma-separated configured models, or 'none' for all (default: unchanged)")
    for cap, text in _CAPS.items():
        update.add_argument(
            f"--{cap}", type=_cap_or_none, metavar="N|none", help=f"{text}; none removes it (default: unchanged)"
        )
    update.add_argument(
        "--code", metavar="CODE", help="a new shared code, 'generate', or 'none' to drop it (default: unchanged)"
    )
    add_config(update)

    close = actions.add_parser("close", help="end an event now (its attendees' keys stop working)")
    close.add_argument("id", help="the event's id (evt_...)")
    add_config(close)

    delete = actions.add_parser("delete", help="delete an event and revoke every attendee key")
    delete.add_argument("id", help="the event's id (evt_...)")
    delete.add_argument("--yes", action="store_true", help="confirm: attendee keys are revoked (default: off)")
    add_config(delete)

    attendees = actions.add_parser("attendees", help="an event's attendees with their usage")
    attendees.add_argument("id", help="the event's id (evt_...)")
    attendees.add_argument("--search", metavar="TEXT", help="part of a name or e-mail (default: everyone)")
    attendees.add_argument("--limit", type=count(1, 1000), default=100, metavar="N", help="at most N (default: 100)")
    attendees.add_argument("--offset", type=count(0), default=0, metavar="N", help="skip the first N (default: 0)")
    add_format(attendees, ["table", "csv", "json"])
    add_config(attendees)

    revoke = actions.add_parser("revoke", help="revoke one attendee's key")
    revoke.add_argument("id", help="the event's id (evt_...)")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the attendee's key id (key_...)")
    add_config(revoke)


def run_event_command(args: argparse.Namespace, settings: Settings) -> int:
    return run_with_store(settings, lambda db: _run(args, settings, db))


async def _run(args: argparse.Namespace, settings: Settings, db: Database) -> int:
    organiser = EventOrganiser(EventStore(db), KeyStore(db))
    action = args.events_command
    if action == "create":
        if args.models:
            check_models(args.models, settings)
        fields = {"name": args.name, "starts_at": args.starts, "ends_at": args.ends, "timezone": args.timezone}
        fields.update(_caps(args))
        if args.models is not None:
            fields["models"] = args.models
        if args.code is not None:
            fields["shared_code"] = args.code
        made = await organiser.create(EventRequest.model_validate(fields))
        _print_event(made.event, made.shared_code)
    elif action == "list":
        events, more = await organiser.page(limit=args.limit, offset=args.offset)
        if args.format == "json":
            print(json.dumps([e.public() for e in events], indent=2))
        else:
            print(render([_row(e) for e in events], "table"))
        if more:
            print(f"(more: --offset {args.offset + args.limit})", file=sys.stderr)
    elif action == "show":
        _print_event(await organiser.show(args.id), None)
    elif action == "update":
        made = await organiser.update(args.id, EventUpdate.model_validate(_changes(args, settings)))
        _print_event(made.event, made.shared_code)
    elif action == "close":
        _print_event(await organiser.close(args.id), None)
    elif action == "delete":
        if not args.yes:
            raise CommandError(f"deleting {args.id} revokes every attendee key; add --yes to confirm")
        await organiser.delete(args.id)
        print(f"deleted {args.id}; its attendee keys are revoked")
    elif action == "attendees":
        page = await organiser.attendees(args.id, search=args.search, limit=args.limit, offset=args.offset)
        if args.format == "json":
            print(json.dumps([a.public() for a in page.attendees], indent=2))
        else:
            print(render([_attendee(a.public()) for a in page.attendees], args.format))
        shown = f"{args.offset + 1}-{args.offset + len(page.attendees)}" if page.attendees else "none"
        following = f"; next: --offset {args.offset + len(page.attendees)}" if page.has_more else ""
        print(f"({shown} of {page.total}{following})", file=sys.stderr)
    elif action == "revoke":
        key = await organiser.revoke(args.id, args.key_id)
        print(f"revoked {key.id}")
    return 0


def _caps(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for cap in _CAPS:
        value = getattr(args, cap.replace("-", "_"))
        if value is not None:
            fields[cap.replace("-", "_")] = None if value == NONE else value
    return fields


def _changes(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    fields = _caps(args)
    for option, field in (("name", "name"), ("starts", "starts_at"), ("ends", "ends_at"), ("extend", "extend")):
        if getattr(args, option) is not None:
            fields[field] = getattr(args, option)
    if args.timezone is not None:
        fields["timezone"] = args.timezone
    if args.models is not None:
        models = None if args.models.strip().lower() == NONE else models_list(args.models)
        if models:
            check_models(models, settings)
        fields["models"] = models
    if args.code is not None:
        fields["shared_code"] = None if args.code.strip().lower() == NONE else args.code
    return fields


def _print_event(event: Event, shared_code: str | None) -> None:
    body = event.public()
    if shared_code is not None:
        body["shared_code"] = shared_code
        print("Hand the shared code to attendees now: it is not shown again.", file=sys.stderr)
    print(json.dumps(body, indent=2))


def _row(event: Event) -> dict[str, Any]:
    public = event.public()
    caps = " ".join(f"{cap}={public[cap]}" for cap in ("daily_requests", "daily_tokens", "max_tokens") if public[cap])
    seats = f"{event.attendees}/{event.max_attendees}" if event.max_attendees is not None else str(event.attendees)
    return {
        "id": event.id,
        "name": event.name,
        "starts": public["starts_at"],
        "ends": public["ends_at"],
        "zone": event.timezone,
        "models": ",".join(event.models) if event.models is not None else "*",
        "caps": caps or "-",
        "code": "yes" if event.code_hash else "no",
        "attendees": seats,
    }


def _attendee(attendee: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": attendee["id"],
        "name": attendee["name"],
        "state": "revoked" if attendee["revoked_at"] else "active",
        "requests": attendee["usage"]["requests"],
        "errors": attendee["usage"]["errors"],
        "tokens": attendee["usage"]["tokens"],
        "today_requests": attendee["today"]["requests"],
        "today_tokens": attendee["today"]["tokens"],
    }


__all__ = ["add_event_commands", "run_event_command"]
