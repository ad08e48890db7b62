"""The options every `aoai-gateway` command shares, declared once so they read and behave the same everywhere.

    add_config(parser)                                   # --config PATH, on every command that reads the config
    parser.add_argument("--since", type=since, help=SINCE_HELP)     # 2h, 7d, 2026-11-01, 2026-11-01T09:00Z
    parser.add_argument("--limit", type=count(1), ...)   # a whole number >= 1, refused in one line otherwise
    check_models(["gpt-4o"], settings)                   # CommandError naming an unknown model and the known ones
    raise CommandError("no event 'evt_1'")               # main prints "aoai-gateway: no event 'evt_1'", exits 1

`--config` sits on the command that does the work (`aoai-gateway keys list --config PATH`), never on a group, so
it goes in the same place for every command. Every option's help names its default (a test walks the parser).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from .config import Settings
from .moments import parse_since

CONFIG_HELP = "YAML config file (default: ./config.yaml if present, else the environment alone)"
SINCE_HELP = "from this instant on: a duration back from now (30m, 2h, 7d, 1w) or an ISO 8601 date or time"


class CommandError(Exception):
    """What a command could not do, in one line for its user; `main` prints it and exits 1."""


def add_config(parser: argparse.ArgumentParser, help: str = CONFIG_HELP) -> None:
    parser.add_argument("--config", metavar="PATH", help=help)


def since(text: str) -> float:
    """argparse type of every `--since`: `moments.parse_since`, its message as the usage error."""
    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def count(low: int, high: int = 2**62) -> Callable[[str], int]:
    """argparse type: a whole number from `low` to `high` (digits only, so `1e9` and `-1` are refused)."""

    def parse(value: str) -> int:
        if not (value.isascii() and value.isdigit() and len(value) <= 19) or not low <= int(value) <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {value[:40]!r}")
        return int(value)

    return parse


def models_list(text: str) -> list[str]:
    """`--models "gpt-4o, whisper-1"` -> ["gpt-4o", "whisper-1"]."""
    return [name.strip() for name in text.split(",") if name.strip()]


def check_models(models: Iterable[str], settings: Settings) -> None:
    """A CommandError (one line) unless every name is a model the configuration routes."""
    known = settings.models()
    unknown = [name for name in models if name not in known]
    if unknown:
        served = ", ".join(sorted(known)) or "none (configure deployments, or point --config at the gateway's file)"
        raise CommandError(f"--models: unknown model {unknown[0]!r}; the configuration serves: {served}")


__all__ = ["CONFIG_HELP", "SINCE_HELP", "CommandError", "add_config", "check_models", "count", "models_list", "since"]
