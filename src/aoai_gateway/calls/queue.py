"""Calls through a task queue: `process`, `watch` and `retry` send them, any number of `calls worker`s do them.

    aoai-gateway calls process recordings/ --queue amqp://guest:guest@rabbit:5672/   # enqueue, then return
    aoai-gateway calls watch azure://calls --queue redis://cache:6379/0              # enqueue new recordings
    aoai-gateway calls worker --queue amqp://guest:guest@rabbit:5672/ --threads 8    # on as many machines as needed

A message is `{"uri": item.uri, "force": bool}`: the recording's secret-free URI, never audio or credentials; a
worker opens the source again with credentials from its own settings (`calls.azure_storage`). The store keeps
every call exactly once, so a message delivered twice costs one lookup. The queue is `calls.queue_name`
("aoai-calls"; $AOAI_GATEWAY_CALLS_QUEUE_NAME): one per environment sharing a broker.

Why Dramatiq: maintained and small; at-least-once, with the acknowledgement after the work, so RabbitMQ hands a
killed worker's unacknowledged messages to another worker as soon as its connection drops (Redis once the dead
worker's heartbeat times out, 60 s); delayed messages keep retry back-offs durable in the broker; RabbitMQ and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import dramatiq
from dramatiq.middleware import Retries, TimeLimit

from ..config import ConfigError, Settings
from ..config.calls import CallsSettings
from ..logs import configure_logging
from .cli import open_pipeline, open_store
from .errors import CallError, SourceError
from .pipeline import Pipeline
from .sources import Source, open_source, split_item_uri
from .store import CallStore

__all__ = ["BROKERS", "CallQueue", "enqueue_command", "open_queue", "run_worker"]

log = logging.getLogger("aoai_gateway.calls")

ACTOR_NAME = "aoai_calls_process"
TIME_LIMIT_MS = 6 * 3600 * 1000  # a call may take long (hours of audio, throttled models); a hung one ends here
MAX_RETRIES = 5  # unexpected errors only (the database is down): the store counts the calls' own attempts


@dataclass(frozen=True, slots=True)
class Backend:
    """One kind of broker: how to open it, check it is reachable, and which of its errors mean "unreachable"."""

    open: Callable[[str], dramatiq.Broker]
    ping: Callable[[Any, str], None]  # (broker, queue name)
    errors: tuple[type[BaseException], ...]


def _rabbitmq() -> Backend:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    # Dramatiq turns pika's errors into its own wherever we call it.
    return Backend(
        lambda url: RabbitmqBroker(url=url, middleware=_middleware()),
        lambda broker, queue: broker.declare_queue(queue, ensure=True),
        (dramatiq.errors.BrokerConnectionError,),
    )


def _redis() -> Backend:
    import redis.exceptions
    from dramatiq.brokers.redis import RedisBroker

    # Redis sees a worker's death only through its heartbeat: its messages go back after heartbeat_timeout.
    return Backend(
        lambda url: RedisBroker(url=url, middleware=_middleware()),  # type: ignore[no-untyped-call]
        lambda broker, queue: broker.client.ping(),
        (dramatiq.errors.BrokerConnectionError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError),
    )


BROKERS: dict[str, Callable[[], Backend]] = {"amqp": _rabbitmq, "amqps": _rabbitmq, "redis": _redis, "rediss": _redis}


def _middleware() -> list[dramatiq.Middleware]:
    return [TimeLimit(), Retries()]


class CallQueue:
    """The broker and the one actor on it: `queue.send(uri, force=False, delay_ms=None)`, `queue.close()`."""

    def __init__(self, url: str, name: str, handler: Callable[..., None]) -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in BROKERS:
            raise ConfigError(f"calls.queue_url {url!r}: use amqp://... (RabbitMQ) or redis://... (Redis)")
        self.url = url
        self.name = name
        self._backend = BROKERS[scheme]()
        self.broker = self._backend.open(url)
        try:
            declare = dramatiq.actor(
                actor_name=ACTOR_NAME,
                queue_name=self.name,
                broker=self.broker,
                time_limit=TIME_LIMIT_MS,
                max_retries=MAX_RETRIES,
                min_backoff=10_000,
                max_backoff=600_000,
            )
        except ValueError as exc:  # a queue name Dramatiq refuses
            raise ConfigError(f"calls.queue_name {self.name!r}: {exc}") from None
        self.actor = declare(handler)
        with self._reachable():
            self._backend.ping(self.broker, self.name)

    def send(self, uri: str, *, force: bool = False, delay_ms: int | None = None) -> None:
        with self._reachable():
            self.actor.send_with_options(kwargs={"uri": uri, "force": force}, delay=delay_ms)

    def close(self) -> None:
        self.broker.close()
        # Dramatiq's RedisBroker.close() is a no-op that leaves its client's connections open: a long-lived process
        # (the gateway, whose console re-queues calls) would leak one per queue it opened.
        client = getattr(self.broker, "client", None)
        if client is not None:
            client.close()
            client.connection_pool.disconnect()

    @property
    def safe_url(self) -> str:
        """The URL without its password, fit for output."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        return parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}").geturl()

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        # The one seam where broker client errors become ours.
        try:
            yield
        except self._backend.errors as exc:
            raise CallError(f"cannot reach the queue at {self.safe_url}: {exc or type(exc).__name__}") from None


def open_queue(calls: CallsSettings, handler: Callable[..., None] | None = None) -> CallQueue:
    """The queue `calls.queue_name` at `calls.queue_url`; `handler(uri, force)` processes its messages (workers)."""
    if not calls.queue_url:
        raise ConfigError("no task queue: pass --queue URL or set calls.queue_url")
    return CallQueue(calls.queue_url, calls.queue_name, handler or _sent_elsewhere)


def _sent_elsewhere(uri: str, force: bool = False) -> None:
    raise RuntimeError("this process only sends calls; `aoai-gateway calls worker` processes them")


# -- sending


async def enqueue_command(command: str, args: argparse.Namespace, settings: Settings) -> int:
    """`calls process|watch|retry` with a queue: send the calls instead of processing them here."""
    async with contextlib.AsyncExitStack() as opened:
        queue = open_queue(settings.calls)
        opened.callback(queue.close)
        store = await open_store(settings)
        opened.push_async_callback(store.db.close)
        if command == "process":
            sent = 0
            for path in args.paths:
                source = open_source(path, settings.calls)
                try:
                    for item in await source.scan():
                        queue.send(item.uri, force=args.force)
                        sent += 1
                finally:
                    await source.aclose()
            print(f"enqueued {sent} call(s) to {queue.safe_url}")
        elif command == "retry":
            requeued = await store.requeue_failed(args.ids or None)
            for record in requeued:
                queue.send(record.source_uri)
            print(f"re-queued {len(requeued)} failed call(s); enqueued {len(requeued)} call(s) to {queue.safe_url}")
        else:
            source = open_source(args.source, settings.calls)
            opened.push_async_callback(source.aclose)
            await _watch(queue, store, source, settings, once=args.once)
    return 0


async def _watch(queue: CallQueue, store: CallStore, source: Source, settings: Settings, *, once: bool) -> None:
    calls = settings.calls
    resent: dict[str, float] = {}  # call id -> the record's updated_at when we re-sent it: once per state
    with _until_signalled() as stop:
        while not stop.is_set():
            try:
                items = await source.scan()
            except SourceError as exc:
                log.warning("listing %s failed: %s", source.uri, exc.message)
                items = []
            seen = await store.seen([item.uri for item in items])
            settled_before = time.time() - calls.settle_seconds
            sent = 0
            for item in items:
                if seen.get(item.uri) != item.version and item.modified <= settled_before:
                    queue.send(item.uri)
                    await store.mark_seen(item, None)  # after the send: a restart re-sends, never skips
                    sent += 1
            for record in await store.due(calls.max_attempts):
                if record.source_uri.startswith(source.uri) and resent.get(record.id) != record.updated_at:
                    queue.send(record.source_uri)  # a retry that is due, or a call its worker left behind
                    resent[record.id] = record.updated_at
                    sent += 1
            if sent or once:
                print(f"enqueued {sent} call(s) to {queue.safe_url}", flush=True)
            if once:
                return
            await _wait_for(stop, calls.poll_seconds)


# -- working


async def run_worker(settings: Settings, *, threads: int | None) -> int:
    """`calls worker`: process the queue's calls, `threads` at a time, until SIGTERM or SIGINT."""
    configure_logging(settings.logging)
    async with open_pipeline(settings, settings.calls.model_key) as pipeline:
        consumer = _Consumer(pipeline, asyncio.get_running_loop())
        queue = open_queue(settings.calls, consumer.handle)
        consumer.queue = queue
        queue.broker.emit_after("process_boot")  # starts the time limit's watchdog, as Dramatiq's own CLI does
        threads = threads or settings.calls.concurrency
        worker = dramatiq.Worker(queue.broker, worker_threads=threads)
        with _until_signalled() as stop:
            worker.start()
            try:
                log.info("worker: %d thread(s) on queue %s at %s", threads, queue.name, queue.safe_url)
                await stop.wait()
            finally:
                # Hand calls in flight back (released in the store, re-sent), stop the threads (Dramatiq returns
                # their prefetched messages to the broker), then close the connections and the sources.
                log.info("worker: stopping")
                consumer.stopping = True
                consumer.cancel_all()
                await asyncio.to_thread(worker.stop, 30_000)
                queue.close()
                await consumer.aclose()
    log.info("worker: stopped")
    return 0


@dataclass(frozen=True, slots=True)
class _Resend:
    force: bool
    delay_ms: int | None = None


class _Consumer:
    """The actor's body: each message runs `pipeline.process` on the event loop while a worker thread waits."""

    def __init__(self, pipeline: Pipeline, loop: asyncio.AbstractEventLoop) -> None:
        self.pipeline = pipeline
        self.loop = loop
        self.queue: CallQueue | None = None
        self.stopping = False
        self._sources: dict[str, Source] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def handle(self, uri: str, force: bool = False) -> None:
        """The actor, in a Dramatiq worker thread: returning acknowledges the message, raising retries it."""
        assert self.queue is not None
        future = asyncio.run_coroutine_threadsafe(self._process(uri, force), self.loop)
        try:
            resend = _result(future)
        except concurrent.futures.CancelledError:  # the worker is stopping
            resend = _Resend(force)
        except BaseException:  # the time limit, or an unexpected error Dramatiq retries: stop the call too
            future.cancel()
            raise
        if resend is not None:
            self.queue.send(uri, force=resend.force, delay_ms=resend.delay_ms)

    async def _process(self, uri: str, force: bool) -> _Resend | None:
        if self.stopping:
            return _Resend(force)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            spec, name = split_item_uri(uri)
            try:
                settings = self.pipeline.settings
                source = self._sources.get(spec) or self._sources.setdefault(spec, open_source(spec, settings))
                item = await source.stat(name)
            except SourceError as exc:
                if not exc.retryable:
                    log.warning("%s: message dropped: %s", uri, exc.message)
                    return None
                # Gone, or the storage is unreachable for now: a few retries with back-off, then the dead letters.
                log.warning("%s: %s; the queue retries it", uri, exc.message)
                raise dramatiq.Retry(exc.message) from None
            outcome = await self.pipeline.process(source, item, force=force, wait=True)
        finally:
            self._tasks.discard(task)
        delay = None if outcome.retry_at is None else max(0.0, outcome.retry_at - time.time())
        log.info(
            "call %s %s (%s, %.1f s)%s%s",
            (outcome.call_id or "-")[:12],
            outcome.kind,
            item.uri,
            outcome.seconds,
            f", next attempt in {delay:.1f} s" if outcome.kind == "retry" and delay is not None else "",
            f": {outcome.error}" if outcome.error else "",
        )
        if outcome.kind == "retry" and delay is not None:
            # The store recorded the attempt: its back-off waits in the broker; `force` was spent on the first try.
            return _Resend(False, int(delay * 1000))
        if outcome.kind in ("retry", "busy"):  # nothing recorded (the file could not be read): Dramatiq's retries
            raise dramatiq.Retry(f"{uri}: {outcome.error or outcome.kind}")
        return None

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def aclose(self) -> None:
        for source in self._sources.values():
            await source.aclose()


def _result(future: concurrent.futures.Future[_Resend | None]) -> _Resend | None:
    # Wake every second: Dramatiq's time limit is an exception raised in this thread, delivered between bytecodes.
    while True:
        try:
            return future.result(timeout=1.0)
        except TimeoutError:
            continue


@contextlib.contextmanager
def _until_signalled() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT while the block runs."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _wait_for(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
