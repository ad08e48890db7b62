"""The in-process worker pool: calls from sources (and from the store's due list) through the pipeline.

    runner = Runner(pipeline, concurrency=4, report=progress.update)
    summary = await runner.run_batch([(source, item), ...])   # `calls process`: until every call is settled
    await runner.watch(source, poll_seconds=5)                # `calls watch`: until cancelled

A batch retries transient failures itself (after the back-off the store recorded) until each call is done or out
of attempts, then returns. A watcher lists its source every `poll_seconds`, hands on files it has not seen at
their current version (once they have stopped changing for `settle_seconds`), and takes up calls that are due in
the store: retries, calls re-queued by `calls retry`, and calls a crashed worker left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from .errors import SourceError
from .pipeline import Outcome, Pipeline
from .sources import Source, SourceItem, open_source, split_item_uri
from .store import CallRecord

log = logging.getLogger("aoai_gateway.calls")

Work = tuple[Source, SourceItem]


@dataclass
class Summary:
    """What a run did: the counts a user asks about first, and where the time went."""

    processed: int = 0
    duplicates: int = 0
    failed: int = 0
    retried: int = 0
    audio_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    busy_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (item name, reason) of failed calls
    _failed_ids: set[str] = field(default_factory=set, repr=False)

    def add(self, outcome: Outcome) -> None:
        self.busy_seconds += outcome.seconds
        self.model_seconds += outcome.model_seconds
        if outcome.kind == "done":
            self.processed += 1
            self.audio_seconds += outcome.audio_seconds
            self.prompt_tokens += outcome.prompt_tokens
            self.completion_tokens += outcome.completion_tokens
        elif outcome.kind == "duplicate":
            self.duplicates += 1
        elif outcome.kind == "retry":
            self.retried += 1
        elif outcome.kind == "failed" and outcome.call_id in self._failed_ids:
            self.duplicates += 1  # another copy of a recording that failed in this run: counted once
        elif outcome.kind == "failed":
            self.failed += 1
            if outcome.call_id is not None:
                self._failed_ids.add(outcome.call_id)
            self.errors.append((outcome.item.name, outcome.error or "failed"))

    @property
    def settled(self) -> int:
        return self.processed + self.duplicates + self.failed

    @property
    def outside_share(self) -> float:
        """Share of the calls' time spent outside model calls (reading, hashing, the store)."""
        return 0.0 if self.busy_seconds <= 0 else max(0.0, 1 - self.model_seconds / self.busy_seconds)

    def lines(self) -> list[str]:
        elapsed = time.perf_counter() - self.started
        lines = [
            f"processed {self.processed}, skipped as duplicates {self.duplicates}, failed {self.failed}"
            + (f", retries {self.retried}" if self.retried else ""),
            f"audio {self.audio_seconds / 60:.1f} min, tokens {self.prompt_tokens + self.completion_tokens} "
            f"({self.prompt_tokens} prompt + {self.completion_tokens} completion), {elapsed:.1f} s",
        ]
        lines += [f"failed: {name}: {reason}" for name, reason in self.errors]
        return lines


class Runner:
    def __init__(
        self,
        pipeline: Pipeline,
        concurrency: int,
        *,
        force: bool = False,
        report: Callable[[Summary, int], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.concurrency = concurrency
        self.force = force
        self.summary = Summary()
        self._report = report or (lambda summary, total: None)
        self._queue: asyncio.Queue[Work] = asyncio.Queue()
        self._active: set[str] = set()  # item uris queued, running or waiting for a retry
        self._pending = 0
        self._idle = asyncio.Event()
        self._total = 0

    async def run_batch(self, work: list[Work]) -> Summary:
        for entry in work:
            self._offer(entry)
        if self._pending:
            self._idle.clear()
            async with self._workers(wait=True):
                await self._idle.wait()
        return self.summary

    async def watch(self, source: Source, poll_seconds: float, settle_seconds: float, once: bool = False) -> None:
        """Keep `source` processed; `once`: one listing, then return when it is all settled."""
        async with self._workers(wait=False):
            while True:
                try:
                    await self._poll(source, settle_seconds)
                except Exception:  # the store hiccuped: a watcher outlives it and looks again at the next poll
                    if once:
                        raise
                    log.exception("watching %s: this poll failed", source.uri)
                if once:
                    if self._pending:
                        self._idle.clear()
                        await self._idle.wait()
                    return
                await asyncio.sleep(poll_seconds)

    async def _poll(self, source: Source, settle_seconds: float) -> None:
        try:
            items = await source.scan()
        except SourceError as exc:
            log.warning("listing %s failed: %s", source.uri, exc.message)
            items = []
        seen = await self.pipeline.store.seen([item.uri for item in items])
        settled_before = time.time() - settle_seconds
        for item in items:
            if seen.get(item.uri) != item.version and item.modified <= settled_before:
                self._offer((source, item))
        root = source.uri.rstrip("/") + "/"
        for record in await self.pipeline.store.due(self.pipeline.settings.max_attempts):
            if record.source_uri.startswith(root):
                await self._offer_record(source, record)

    async def _offer_record(self, source: Source, record: CallRecord) -> None:
        name = record.source_uri.removeprefix(source.uri).lstrip("/")
        try:
            self._offer((source, await source.stat(name)))
        except SourceError as exc:
            log.warning("call %s: its recording %s is gone: %s", record.id[:12], record.source_uri, exc.message)

    def _offer(self, work: Work) -> None:
        uri = work[1].uri
        if uri in self._active:
            return
        self._active.add(uri)
        self._pending += 1
        self._total += 1
        self._queue.put_nowait(work)

    @contextlib.asynccontextmanager
    async def _workers(self, wait: bool) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(self._worker(wait)) for _ in range(self.concurrency)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self, wait: bool) -> None:
        while True:
            source, item = await self._queue.get()
            try:
                outcome = await self.pipeline.process(source, item, force=self.force, wait=wait)
            except Exception as exc:  # the store is unreachable, or a bug: count it, keep the pool alive
                log.exception("%s: not processed", item.name)
                outcome = Outcome("failed", item, error=f"not processed: {type(exc).__name__}")
            self.summary.add(outcome)
            if outcome.kind == "retry":
                # Still ours to finish: run it again once its back-off has passed.
                delay = max(0.0, (outcome.retry_at or time.time()) - time.time())
                asyncio.get_running_loop().call_later(delay, self._queue.put_nowait, (source, item))
            else:
                self._active.discard(item.uri)
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()
            self._report(self.summary, self._total)


async def due_work(pipeline: Pipeline) -> list[Work]:
    """The store's due calls, each with a source opened from its recording's URI (`calls retry`, restarts)."""
    work: list[Work] = []
    sources: dict[str, Source] = {}
    for record in await pipeline.store.due(pipeline.settings.max_attempts):
        spec, name = split_item_uri(record.source_uri)
        try:
            source = sources.get(spec) or sources.setdefault(spec, open_source(spec, pipeline.settings))
            work.append((source, await source.stat(name)))
        except SourceError as exc:
            log.warning("call %s: its recording %s is gone: %s", record.id[:12], record.source_uri, exc.message)
    return work
