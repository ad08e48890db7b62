"""`aoai-gateway calls ...`: process, watch, work a queue, retry, and read the results.

    aoai-gateway calls process recordings/ --config config.yaml
    aoai-gateway calls watch azure://calls --config config.yaml
    aoai-gateway calls list --status failed --where company=Acme
    aoai-gateway calls export --format csv > calls.csv

Flags override the `calls:` section of the config file, which overrides the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from ..cli_options import add_config, count, since
from ..config import ConfigError, Settings, load_settings
from ..config.calls import CallsSettings
from ..extras import check_extras
from ..store import connect_database, migrate
from ..tables import text_table
from .display import json_text, printable
from .errors import CallError, QueryError
from .sources import open_source
from .store import STATUSES, CallRecord, CallStore, check_filter

if TYPE_CHECKING:  # the OpenAI client and the pipeline load only for the commands that call models
    from .pipeline import Pipeline
    from .runner import Summary, Work
    from .transcribers import Transcriber

_OVERRIDES = {  # flag dest -> calls setting
    "database_url": "database_url",
    "api_base": "api_base",
    "schema": "schema_path",
    "transcribe_model": "transcribe_model",
    "extract_model": "extract_model",
    "extract_mode": "extract_mode",
    "language": "language",
    "concurrency": "concurrency",
    "max_attempts": "max_attempts",
    "lease_seconds": "lease_seconds",
    "poll_seconds": "poll_seconds",
    "queue": "queue_url",
    "api_key": "api_key",
}


def add_calls_commands(commands: Any) -> None:
    calls = commands.add_parser("calls", help="call analytics: recordings -> transcript -> structured fields")
    sub = calls.add_subparsers(dest="calls_command", required=True, metavar="SUBCOMMAND")

    def pipeline_options(parser: argparse.ArgumentParser) -> None:
        add_config(parser)
        parser.add_argument("--database-url", help="sqlite:///PATH or postgresql://... (default: the gateway's)")
        parser.add_argument(
            "--api-base", help="send model calls to this OpenAI-compatible URL (default: in-process, the gateway's)"
        )
        parser.add_argument(
            "--api-key",
            help="key for the model calls (default: calls.api_key: $AOAI_GATEWAY_CALLS_API_KEY, then $OPENAI_API_KEY)",
        )
        parser.add_argument(
            "--schema", metavar="PATH", help="JSON Schema of the fields to extract (default: the built-in schema)"
        )
        parser.add_argument("--transcribe-model", help="transcription model (default whisper-1)")
        parser.add_argument("--extract-model", help="chat model that fills the schema (default gpt-4o)")
        parser.add_argument(
            "--extract-mode",
            choices=["json_schema", "tool"],
            help="how the model fills the schema (default: json_schema)",
        )
        parser.add_argument("--language", help="the recordings' language, ISO 639-1 (default: detected)")
        parser.add_argument("--concurrency", type=int, help="calls in flight at once (default 4)")
        parser.add_argument("--max-attempts", type=int, help="attempts per call before it stays failed (default 3)")
        parser.add_argument("--lease-seconds", type=float, help=argparse.SUPPRESS)
        parser.add_argument(
            "--queue", metavar="URL", help="amqp://... or redis://...: hand calls to queue workers (default: none)"
        )

    process = sub.add_parser("process", help="process recordings (files or folders) and wait for them")
    process.add_argument("paths", nargs="+", metavar="PATH")
    process.add_argument("--force", action="store_true", help="process again even when already done (default: off)")
    pipeline_options(process)

    watch = sub.add_parser("watch", help="keep processing new and changed recordings in a folder or container")
    watch.add_argument("source", metavar="SOURCE", help="a folder, or azure://container[/prefix][?connection_string=]")
    watch.add_argument("--poll-seconds", type=float, help="how often to list the source (default 5)")
    watch.add_argument("--once", action="store_true", help="one listing, process it, exit (default: off)")
    pipeline_options(watch)

    worker = sub.add_parser("worker", help="consume calls from the task queue (--queue or calls.queue_url)")
    worker.add_argument("--threads", type=int, default=None, help="messages in flight (default: calls.concurrency)")
    pipeline_options(worker)

    retry = sub.add_parser("retry", help="re-queue failed calls (all, or the given ids) and process them")
    retry.add_argument("ids", nargs="*", metavar="ID")
    pipeline_options(retry)

    def store_options(parser: argparse.ArgumentParser) -> None:
        add_config(parser)
        parser.add_argument("--database-url", help="sqlite:///PATH or postgresql://... (default: the gateway's)")

    listing = sub.add_parser("list", help="list calls")
    listing.add_argument("--status", choices=STATUSES, help="only calls in this state (default: any)")
    listing.add_argument(
        "--since", type=since, help="changed at or after: 30m, 2h, 7d, 1w or an ISO 8601 date or time (default: any)"
    )
    listing.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field's value, repeatable (default: none)",
    )
    listing.add_argument("--limit", type=count(0), default=100, metavar="N", help="at most N calls (default: 100)")
    listing.add_argument("--format", choices=["table", "json"], default="table", help="output (default: table)")
    store_options(listing)

    show = sub.add_parser("show", help="one call: fields and transcript")
    show.add_argument("id", metavar="ID", help="the call id or a unique prefix of it")
    show.add_argument("--format", choices=["text", "json"], default="text", help="output (default: text)")
    store_options(show)

    export = sub.add_parser("export", help="all calls as CSV or JSON lines")
    export.add_argument("--format", choices=["csv", "jsonl"], default="jsonl", help="output (default: jsonl)")
    export.add_argument("--status", choices=STATUSES, default="done", help="calls in this state (default: done)")
    export.add_argument("--output", "-o", metavar="FILE", help="default: standard output")
    store_options(export)

    evaluate = sub.add_parser("eval", help="run a scored development set and report field P/R/F1 and WER")
    evaluate.add_argument("set", metavar="DIR", help="a calls-dev style folder: calls/*.json, score.py")
    evaluate.add_argument("--audio", metavar="DIR", help="its recordings (default DIR/audio; made with espeak-ng)")
    evaluate.add_argument(
        "--out", metavar="DIR", default="calls-eval", help="predictions and scores go here (default: calls-eval)"
    )
    evaluate.add_argument(
        "--transcripts",
        choices=["audio", "gold", "both"],
        default="audio",
        help="what extraction reads: speech from the recordings, the scripts' turns (no speech), or both apart "
        "(default: audio)",
    )
    pipeline_options(evaluate)


def run_calls_command(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = _settings(args, environ)
    command = args.calls_command
    check_extras(settings, calls=command)
    try:
        if command in ("list", "show", "export"):
            return asyncio.run(_read(command, args, settings))
        if command == "eval":
            from .evaluate import run_eval

            return asyncio.run(run_eval(args, settings))
        return asyncio.run(_work(command, args, settings))
    except asyncio.CancelledError:
        print("aoai-gateway calls: stopped; unfinished calls were handed back", file=sys.stderr)
        return 143
    except QueryError as exc:  # a usage error, like argparse's own: status 2
        print(f"aoai-gateway calls {command}: {printable(exc.message)}", file=sys.stderr)
        return 2
    except CallError as exc:  # messages quote paths and names
        print(f"aoai-gateway calls: {printable(exc.message)}", file=sys.stderr)
        return 1


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    settings = load_settings(getattr(args, "config", None), environ)
    updates = {name: getattr(args, dest) for dest, name in _OVERRIDES.items() if getattr(args, dest, None) is not None}
    if updates:
        try:
            calls = settings.calls.model_validate({**settings.calls.model_dump(), **updates})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        settings = settings.model_copy(update={"calls": calls})
    return settings


async def open_store(settings: Settings, owner: str = "") -> CallStore:
    db = await connect_database(settings.calls.database_url or settings.database_url)
    await migrate(db)
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
    return CallStore(db, owner, settings.calls.lease_seconds)


@contextlib.asynccontextmanager
async def open_pipeline(
    settings: Settings, key: str | None, transcriber: Transcriber | None = None
) -> AsyncIterator[Pipeline]:
    """The store, the model client (in-process gateway or remote) and the extractor, closed together.

    `transcriber`: where transcripts come from; by default speech, primed with `calls.vocabulary_path`."""
    from .extract import Extractor
    from .models import ModelClient
    from .pipeline import Pipeline
    from .schema import ExtractionSchema
    from .transcribers import SpeechTranscriber
    from .vocabulary import Vocabulary

    calls = settings.calls
    schema = ExtractionSchema.load(calls.schema_path)  # a bad schema fails before anything is opened
    vocabulary = await asyncio.to_thread(Vocabulary.load, calls.vocabulary_path)  # so does a missing list
    if not calls.api_base and not settings.deployments:
        raise ConfigError(
            "no models configured for the pipeline: list deployments in the config file (transcription "
            f"{calls.transcribe_model!r}, extraction {calls.extract_model!r}) or pass --api-base"
        )
    store = await open_store(settings)
    models = ModelClient.remote(calls.api_base, key) if calls.api_base else await ModelClient.in_process(settings, key)
    try:
        extractor = Extractor.configured(models, schema, calls)
        yield Pipeline(store, models, extractor, calls, transcriber or SpeechTranscriber(models, calls, vocabulary))
    finally:
        await models.aclose()
        await store.db.close()


async def _work(command: str, args: argparse.Namespace, settings: Settings) -> int:
    from .runner import Runner, due_work

    calls = settings.calls
    if command == "worker":
        from .queue import run_worker

        if not calls.queue_url:
            raise ConfigError("calls worker needs --queue URL or calls.queue_url")
        return await run_worker(settings, threads=args.threads)
    if calls.queue_url and command in ("process", "watch", "retry"):
        from .queue import enqueue_command

        return await enqueue_command(command, args, settings)
    # SIGTERM (a service manager stopping us) cancels like Ctrl-C: calls in flight are handed back at once.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with open_pipeline(settings, calls.model_key) as pipeline:
        progress = Progress(sys.stderr) if sys.stderr.isatty() else None
        runner = Runner(
            pipeline,
            calls.concurrency,
            force=getattr(args, "force", False),
            report=progress.update if progress else None,
        )
        if command == "watch":
            source = open_source(args.source, calls)
            try:
                await runner.watch(source, calls.poll_seconds, calls.settle_seconds, once=args.once)
            finally:
                await source.aclose()
        else:
            if command == "retry":
                requeued = await pipeline.store.requeue_failed(args.ids or None)
                print(f"re-queued {len(requeued)} failed call(s)")
            work = await (_paths(args.paths, calls) if command == "process" else due_work(pipeline))
            await runner.run_batch(work)
        if progress:
            progress.close()
        return _print_summary(runner.summary)


async def _paths(paths: list[str], calls: CallsSettings) -> list[Work]:
    work: list[Work] = []
    for path in paths:
        source = open_source(path, calls)
        work += [(source, item) for item in await source.scan()]
    return work


def _print_summary(summary: Summary) -> int:
    for line in summary.lines():
        print(printable(line))  # failures name their files
    return 1 if summary.failed else 0


class Progress:
    """One self-rewriting line on an interactive terminal: `[#####.....] 7/12 done 5 dup 1 failed 1`."""

    def __init__(self, out: TextIO, width: int = 24) -> None:
        self.out = out
        self.width = width

    def update(self, summary: Summary, total: int) -> None:
        done = summary.settled
        filled = int(self.width * done / total) if total else self.width
        self.out.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}  done {summary.processed}  "
            f"dup {summary.duplicates}  failed {summary.failed}  audio {summary.audio_seconds / 60:.1f} min "
        )
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


# -- reading results


async def _read(command: str, args: argparse.Namespace, settings: Settings) -> int:
    store = await open_store(settings)
    try:
        if command == "list":
            where = _where(args.where, settings)
            records = await store.query(args.status, args.since, where, args.limit)
            print(_json_lines(records) if args.format == "json" else _table(records))
        elif command == "show":
            found = await store.find(args.id)
            if len(found) != 1:
                print(
                    f"aoai-gateway calls: {'no call' if not found else 'more than one call'} matches {args.id!r}",
                    file=sys.stderr,
                )
                return 1
            print(_show(found[0], args.format))
        else:
            from .export import write_export

            records = await store.query(args.status, limit=None)
            with _output(args.output) as out:
                write_export(records, args.format, out)
    finally:
        await store.db.close()
    return 0


def _where(texts: list[str], settings: Settings) -> list[tuple[str, str]]:
    """`--where` filters as (field, value), each field one of the configured schema's; QueryError otherwise."""
    if not texts:
        return []
    from .schema import ExtractionSchema

    known = ExtractionSchema.load(settings.calls.schema_path).fields
    where = []
    for text in texts:
        field, sep, value = text.partition("=")
        field, value = field.strip(), value.strip()
        if not sep or not field:
            raise QueryError(f"--where {text!r}: expected FIELD=VALUE, e.g. --where company=Acme")
        if field not in known:
            raise QueryError(f"--where {text!r}: no field {field!r} in the schema; its fields: {', '.join(known)}")
        check_filter(field, value)
        where.append((field, value))
    return where


def _table(records: list[CallRecord]) -> str:
    rows: list[tuple[str, ...]] = [
        ("ID", "STATUS", "NAME", "CUSTOMER", "COMPANY", "MIN", "ATTEMPTS", "UPDATED / ERROR")
    ]
    for r in records:
        fields = r.fields or {}
        when = dt.datetime.fromtimestamp(r.updated_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        minutes = f"{r.duration_seconds / 60:.1f}" if r.duration_seconds else "-"
        row = (
            r.id[:12],
            r.status,
            r.name,
            str(fields.get("customer_name") or "-"),
            str(fields.get("company") or "-"),
            minutes,
            str(r.attempts),
            f"{when} {r.error}" if r.error else when,
        )
        rows.append(tuple(printable(cell) for cell in row))
    return text_table(rows)


def _json_lines(records: list[CallRecord]) -> str:
    return "\n".join(
        json_text(
            {
                "id": r.id,
                "status": r.status,
                "name": r.name,
                "attempts": r.attempts,
                "error": r.error,
                "fields": r.fields,
            }
        )
        for r in records
    )


def _show(record: CallRecord, output: str) -> str:
    if output == "json":
        return json_text(record.document or _summary_of(record), indent=2)
    lines = [f"call {record.id}", f"status {record.status} after {record.attempts} attempt(s)"]
    lines.append(f"source {record.source_uri} ({record.size} bytes)")
    if record.error:
        lines.append(f"error {record.error}")
    evidence = (record.document or {}).get("evidence") or {}
    for name, value in (record.fields or {}).items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else ("-" if value is None else str(value))
        lines.append(f"  {name}: {shown}")
        notes = evidence.get(name)
        lines += [_evidence_line(note) for note in (notes if isinstance(notes, list) else [notes]) if note]
    lines = [printable(line) for line in lines]  # one line each: a field cannot forge the next
    transcript = (record.transcription or {}).get("text")
    if transcript:
        lines += ["", "transcript:", printable(str(transcript), keep="\n")]
    return "\n".join(lines)


def _evidence_line(note: Any) -> str:
    """`      "we're in Leeds" at 0:12.4-0:17.9`, or `      dropped "Acme": why` for a value without its quote."""
    if not isinstance(note, dict):
        return "      (unreadable evidence)"
    quote = _clip(str(note.get("passage") or note.get("quote") or ""))
    if note.get("found"):
        start, end = note.get("start"), note.get("end")
        where = (
            f" at {_clock(start)}-{_clock(end)}"
            if isinstance(start, int | float) and isinstance(end, int | float)
            else ""
        )
        return f'      "{quote}"{where}'
    reason = _clip(str(note.get("reason") or "unsupported"))
    return f"      {reason}; the value {json_text(note.get('value'))}, quoted {json_text(quote)}"


def _clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def _summary_of(record: CallRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status,
        "source": record.source_uri,
        "attempts": record.attempts,
        "error": record.error,
        "transcript": (record.transcription or {}).get("text"),
    }


@contextlib.contextmanager
def _output(path: str | None) -> Any:
    if path is None:
        yield sys.stdout
    else:
        with open(path, "w", encoding="utf-8", newline="") as out:
            yield out
