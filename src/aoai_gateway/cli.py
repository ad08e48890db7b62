"""The `aoai-gateway` command.

aoai-gateway serve [--config PATH] [--host HOST] [--port PORT]
aoai-gateway config check [--config PATH]
aoai-gateway emulator [--host HOST] [--port PORT] [--config PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import ENV_VARS, ConfigError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    env_help = "\n".join(f"  {name:<27} {text}" for name, text in ENV_VARS.items())
    parser = argparse.ArgumentParser(
        prog="aoai-gateway",
        description="OpenAI-compatible gateway in front of Azure OpenAI.",
        epilog=f"environment variables (azure-openai-proxy compatible):\n{env_help}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aoai-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", metavar="PATH", help="YAML config file (default: ./config.yaml if present)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, or LISTEN=host:port)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")

    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_commands.add_parser("check", help="validate and print the resolved routing table")
    check.add_argument("--config", metavar="PATH", help="YAML config file (default: ./config.yaml if present)")

    emulator = commands.add_parser("emulator", help="run the Azure OpenAI emulator (offline development, tests)")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8081)
    emulator.add_argument("--config", metavar="PATH", help="emulator YAML (deployments, keys, faults)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from .server import serve

            settings = _load(args.config, host=args.host, port=args.port)
            serve(settings, args.config)
        elif args.command == "config":
            print(routing_table(_load(args.config)))
        elif args.command == "emulator":
            from .emulator import EmulatorSettings
            from .emulator import serve as serve_emulator

            serve_emulator(EmulatorSettings.load(args.config), args.host, args.port)
    except ConfigError as exc:
        print(f"aoai-gateway: configuration error:\n{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _load(config_path: str | None, host: str | None = None, port: int | None = None) -> Settings:
    settings = load_settings(config_path, os.environ, host=host, port=port)
    if not settings.deployments:
        raise ConfigError(
            "no models are configured: set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_MODEL_MAPPER, "
            "or list `deployments` in config.yaml (see the README)"
        )
    return settings


def routing_table(settings: Settings) -> str:
    """The resolved routing table as `config check` prints it, keys masked."""
    rows = [("MODEL", "PROVIDER", "ENDPOINT", "DEPLOYMENT", "API-VERSION", "KEY")]
    for d in settings.deployments:
        version = d.api_version if d.provider == "azure" and d.api_style == "deployments" else f"({d.api_style})"
        rows.append((d.model, d.provider, d.endpoint, d.deployment, version, _mask(d.key)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    sources = ", ".join(settings.sources) or "defaults only"
    lines.append("")
    lines.append(
        f"api_base: {settings.api_base or '/'}   listen: {settings.server.host}:{settings.server.port}"
        f"   sources: {sources}"
    )
    return "\n".join(lines)


def _mask(key: str | None) -> str:
    if not key:
        return "(client's key)"
    return f"****{key[-4:]}" if len(key) >= 12 else "****"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
