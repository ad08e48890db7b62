"""`aoai-gateway assistant`: one turn from the command line, in-process through the configured gateway.

    aoai-gateway assistant --text "turn on the kitchen lights" --config config.yaml
    aoai-gateway assistant --file command.wav --speak reply.wav --api-key sk-gw-...
    aoai-gateway assistant --mic [--seconds 8] [--mic-device alsa:hw:1] --speak reply.wav   # ffmpeg records
    aoai-gateway assistant eval [--set commands.json] [--spoken] [--json]   # tool-choice and argument accuracy

Each stage is printed as it happens (heard, tool calls and results, the reply); `--json` prints the turn as the
HTTP API returns it instead. The models are those of the config's `assistant:` section, called through the
gateway's own service (routing, failover, local Whisper, the usage ledger) with `--api-key` as the caller's key.
The command runs as the operator: every configured tool is offered.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from ..cli_options import add_config
from ..config import Settings
from ..errors import GatewayError

if TYPE_CHECKING:
    from .service import AssistantService

__all__ = ["add_assistant_command", "run_assistant_command"]


def add_assistant_command(commands: Any) -> None:
    parser = commands.add_parser("assistant", help="one voice-assistant turn: text or a recording in, a reply out")
    parser.add_argument(
        "action",
        nargs="?",
        choices=["turn", "eval"],
        default="turn",
        help="turn (default): one turn; eval: score the chat model's tool choice and arguments on a command set",
    )
    said = parser.add_mutually_exclusive_group()
    said.add_argument("--text", help="what the user says (default: none; a turn needs --text or --file)")
    said.add_argument(
        "--file", metavar="PATH", help="a recording of it, any format the audio API takes (default: none)"
    )
    said.add_argument(
        "--mic",
        action="store_true",
        help="record it from this machine's microphone with ffmpeg until Enter or --seconds (default: off)",
    )
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="--mic: the longest recording, in seconds (default: %(default)s)"
    )
    parser.add_argument(
        "--mic-device",
        default="auto",
        metavar="FORMAT:INPUT",
        help="--mic: an ffmpeg input such as alsa:hw:1 (default: auto, PulseAudio's default source, then ALSA's)",
    )
    parser.add_argument(
        "--speak", metavar="PATH", help="write the spoken reply there, with assistant.speech_model (default: none)"
    )
    parser.add_argument(
        "--api-key", help="the caller's key for the model calls, a gateway key with auth: keys (default: none)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the turn (or the eval report) as JSON (default: text)"
    )
    parser.add_argument("--set", metavar="PATH", help="eval: the command set (default: the bundled 50 commands)")
    parser.add_argument(
        "--spoken",
        action="store_true",
        help="eval: say each command with the speech model and transcribe it first (default: off)",
    )
    add_config(parser)


def run_assistant_command(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    if args.action == "turn" and not (args.text or args.file or args.mic):
        print(
            "aoai-gateway: say something: --text TEXT, --file RECORDING or --mic (or: assistant eval)", file=sys.stderr
        )
        return 2
    if args.action == "eval":
        if args.spoken and settings.assistant.speech_model is None:
            print("aoai-gateway: --spoken needs assistant.speech_model in the configuration", file=sys.stderr)
            return 1
        try:
            return asyncio.run(_eval(args, settings, out or sys.stdout))
        except GatewayError as exc:
            print(f"aoai-gateway: {exc.message}", file=sys.stderr)
            return 1
    if args.speak and settings.assistant.speech_model is None:
        print("aoai-gateway: --speak needs assistant.speech_model in the configuration", file=sys.stderr)
        return 1
    try:
        audio = Path(args.file).read_bytes() if args.file else asyncio.run(_listen(args)) if args.mic else None
        return asyncio.run(_turn(args, settings, audio, out or sys.stdout))
    except GatewayError as exc:
        print(f"aoai-gateway: {exc.message}", file=sys.stderr)
        return 1


async def _listen(args: argparse.Namespace) -> bytes:
    """The user's words from the microphone; on a terminal, Enter ends the recording before --seconds."""
    from .microphone import record

    stop = asyncio.Event()
    if sys.stdin is not None and sys.stdin.isatty():
        loop = asyncio.get_running_loop()

        def wait_for_enter() -> None:
            sys.stdin.readline()
            loop.call_soon_threadsafe(stop.set)

        # A daemon thread: a blocked readline must not keep the process alive after the turn.
        threading.Thread(target=wait_for_enter, name="enter-ends-recording", daemon=True).start()
        print(f"Listening (at most {args.seconds:g} s); press Enter when you are done.", file=sys.stderr)
    return await record(args.mic_device, args.seconds, stop)


@asynccontextmanager
async def _assistant(settings: Settings) -> AsyncIterator[AssistantService]:
    """The configured gateway and an assistant over it, built here rather than as a route; per-call access-log
    lines would only be noise on a terminal."""
    from ..app import InProcessCaller
    from ..factory import open_gateway
    from .service import open_assistant

    quiet = settings.model_copy(
        update={
            "assistant": settings.assistant.model_copy(update={"enabled": False}),
            "logging": settings.logging.model_copy(update={"access_log": False}),
        }
    )
    async with open_gateway(quiet) as gateway:
        caller = InProcessCaller(gateway.service, gateway.listeners, gateway.tracer)
        async with open_assistant(settings, caller, db=None) as assistant:
            yield assistant


async def _eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from .evaluate import evaluate, load_commands
    from .turn import Caller

    commands = load_commands(Path(args.set) if args.set else None)
    async with _assistant(settings) as assistant:
        report = await evaluate(assistant, Caller(args.api_key, None, None), commands, spoken=args.spoken)
    if args.json:
        print(orjson.dumps(report.public(), option=orjson.OPT_INDENT_2).decode(), file=out)
        return 0
    print(f"model: {settings.assistant.chat_model}", file=out)
    print(f"tool choice: {report.tools_right}/{report.commands} ({report.tool_accuracy:.1%})", file=out)
    print(f"arguments:   {report.arguments_right}/{report.expected_calls} ({report.argument_accuracy:.1%})", file=out)
    for failure in report.failures:
        called = ", ".join(f"{c['name']}{orjson.dumps(c['arguments']).decode()}" for c in failure["called"])
        error = f" - {failure['error']}" if "error" in failure else ""
        heard = f" (heard {failure['heard']!r})" if "heard" in failure else ""
        print(f"  {failure['text']!r}{heard}: called {called or 'nothing'}{error}", file=out)
    return 0


async def _turn(args: argparse.Namespace, settings: Settings, audio: bytes | None, out: TextIO) -> int:
    from .turn import Caller, TurnEvent, TurnInput

    async with _assistant(settings) as assistant:
        who = Caller(args.api_key, None, None)
        session = await assistant.create_session(who)

        async def show(event: TurnEvent) -> None:
            if not args.json:
                line = _line(event)
                if line is not None:
                    print(line, file=out, flush=True)

        name = Path(args.file).name if args.file else "microphone.wav" if args.mic else "audio"
        given = TurnInput(text=args.text, audio=audio, filename=name, speech=bool(args.speak))
        result = await assistant.turn(session.id, given, who, show)
    if args.speak and result.audio is not None:
        Path(args.speak).write_bytes(result.audio)
    if args.json:
        document = result.public(session.id, settings.assistant.speech_format)
        document["audio"] = None if document["audio"] is None else {"written_to": args.speak}
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode(), file=out)
    return 0


def _line(event: Any) -> str | None:
    data = event.data
    if event.kind == "transcript":
        return f"heard: {data['text']}"
    if event.kind == "tool_call":
        return f"tool:  {data['name']} {data['arguments']}"
    if event.kind == "tool_result":
        shown = orjson.dumps(data["result"]).decode() if data["ok"] else f"error: {data['error']}"
        return f"       -> {shown}"
    if event.kind == "confirmation_required":
        return f"       (waits for the user's yes: {data['name']})"
    if event.kind == "reply":
        return f"reply: {data['text']}"
    return None
