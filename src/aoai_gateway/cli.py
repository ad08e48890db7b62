"""The `aoai-gateway` command.

aoai-gateway serve [--config PATH] [--host HOST] [--port PORT] [--with-emulator [PORT]]
aoai-gateway config check [--config PATH]
aoai-gateway emulator [--host HOST] [--port PORT] [--config PATH]
aoai-gateway keys|usage|events ... [--config PATH]
aoai-gateway calls process|watch|worker|retry|list|show|export|eval ...
aoai-gateway assistant --text "..." | --file command.wav [--speak reply.wav]; aoai-gateway assistant eval

`--config` goes after the command (`aoai-gateway events list --config PATH`), the same for every command; every
option's help names its default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .access.cli import add_access_commands
from .access.events_cli import add_event_commands
from .assistant.cli import add_assistant_command
from .calls.cli import add_calls_commands
from .cli_options import CommandError, add_config
from .config import ENV_VARS, ConfigError, Deployment, Settings, load_settings
from .extras import MissingExtra, check_extras
from .providers import PROVIDERS
from .tables import text_table


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
    add_config(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, or LISTEN=host:port)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument(
        "--with-emulator",
        nargs="?",
        const=8081,
        type=int,
        metavar="PORT",
        help="also run the Azure OpenAI emulator on 127.0.0.1:PORT (default 8081) in this process; it stops "
        "with the gateway",
    )

    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_commands.add_parser("check", help="validate and print the resolved routing table")
    add_config(check)

    deployments = commands.add_parser(
        "deployments", help="show each deployment's state in a running gateway (needs AOAI_GATEWAY_MASTER_KEY)"
    )
    deployments.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway (default %(default)s)")
    deployments.add_argument("--format", choices=["table", "json"], default="table", help="output (default: table)")

    add_access_commands(commands)
    add_event_commands(commands)
    add_calls_commands(commands)
    add_assistant_command(commands)

    emulator = commands.add_parser("emulator", help="run the Azure OpenAI emulator (offline development, tests)")
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=8081, help="port to listen on (default: 8081)")
    add_config(emulator, "emulator YAML: deployments, keys, faults (default: the built-in deployments)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        status = _command(argv)
        sys.stdout.flush()  # a reader that left early fails us here rather than at interpreter exit
    except BrokenPipeError:
        # `aoai-gateway calls list | head`: the reader has all it wanted. Point stdout at /dev/null so the
        # interpreter's own final flush stays quiet, and end as a process killed by SIGPIPE would (141).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return status


def _command(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from .server import ListenError, serve
            from .workers import WorkersFailed

            settings = _load(args.config, host=args.host, port=args.port)
            check_extras(settings)  # before the server starts: one line, not a failed lifespan's traceback
            try:
                serve(settings, args.config, emulator_port=args.with_emulator)
            except (ListenError, WorkersFailed) as exc:
                print(f"aoai-gateway: {exc}", file=sys.stderr)
                return 1
        elif args.command == "config":
            settings = _load(args.config)
            check_extras(settings)
            print(routing_table(settings))
        elif args.command in ("keys", "usage"):
            from .access.cli import run_access_command

            return run_access_command(args, load_settings(args.config, os.environ))
        elif args.command == "events":
            from .access.events_cli import run_event_command

            return run_event_command(args, load_settings(args.config, os.environ))
        elif args.command == "calls":
            from .calls.cli import run_calls_command

            return run_calls_command(args, os.environ)
        elif args.command == "assistant":
            from .assistant.cli import run_assistant_command

            settings = _load(args.config)
            check_extras(
                settings.model_copy(update={"assistant": settings.assistant.model_copy(update={"enabled": True})})
            )
            return run_assistant_command(args, settings)
        elif args.command == "deployments":
            return show_deployments(args.url, args.format, os.environ.get("AOAI_GATEWAY_MASTER_KEY", ""))
        elif args.command == "emulator":
            from .emulator import EmulatorSettings
            from .emulator import serve as serve_emulator

            serve_emulator(EmulatorSettings.load(args.config), args.host, args.port)
    except (MissingExtra, CommandError) as exc:
        print(f"aoai-gateway: {exc}", file=sys.stderr)
        return 1
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


def _in_process(deployment: Deployment) -> str:
    """What an in-process deployment without a model directory is made of: a pipeline's models, or its engine."""
    pipeline = deployment.pipeline
    if pipeline is None:
        return deployment.engine
    return f"{pipeline.transcription_model} -> {pipeline.chat_model} -> {pipeline.speech_model}"


def routing_table(settings: Settings) -> str:
    """The resolved routing table as `config check` prints it, keys masked."""
    rows = [("MODEL", "PROVIDER", "ENDPOINT", "DEPLOYMENT", "API-VERSION", "KEY")]
    for d in settings.deployments:
        version = PROVIDERS[d.provider].version_label(d)
        where = d.endpoint or d.model_path or _in_process(d)  # a local model: its directory
        rows.append((d.model, d.provider, where, d.deployment, version, _mask(d.key)))
    lines = [text_table(rows)]
    sources = ", ".join(settings.sources) or "defaults only"
    lines.append("")
    lines.append(
        f"api_base: {settings.api_base or '/'}   listen: {settings.server.host}:{settings.server.port}"
        f"   sources: {sources}"
    )
    return "\n".join(lines)


def show_deployments(url: str, output: str, master_key: str) -> int:
    """Print `GET /admin/deployments` of a running gateway as a table or JSON."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{url.rstrip('/')}/admin/deployments", headers={"Authorization": f"Bearer {master_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            data = json.load(response)["data"]
    except urllib.error.HTTPError as exc:
        message = json.loads(exc.read() or b"{}").get("error", {}).get("message", exc.reason)
        print(f"aoai-gateway: {url} answered {exc.code}: {message}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"aoai-gateway: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if output == "json":
        print(json.dumps(data, indent=2))
        return 0
    rows = [("MODEL", "DEPLOYMENT", "TIER", "STATE", "AVAILABLE AT", "IN FLIGHT", "LATENCY MS", "OUTCOMES")]
    for d in data:
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(d["outcomes"].items()))
        available = "now" if d["available_at"] is None else time_text(d["available_at"])
        latency = "-" if d["latency_ms"] is None else f"{d['latency_ms']:.1f}"
        rows.append(
            (
                d["model"],
                d["deployment"],
                str(d["priority"]),
                d["state"],
                available,
                str(d["in_flight"]),
                latency,
                outcomes or "-",
            )
        )
    print(text_table(rows))
    return 0


def time_text(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"


def _mask(key: str | None) -> str:
    if not key:
        return "(client's key)"
    return f"****{key[-4:]}" if len(key) >= 12 else "****"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
