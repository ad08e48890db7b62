"""One recording through read -> transcribe -> extract -> ground -> enrich -> store, exactly once whoever else runs.

    pipeline = Pipeline(store, models, extractor, settings.calls)   # transcriber: speech, with the vocabulary
    outcome = await pipeline.process(source, item)    # Outcome("done" | "duplicate" | "failed" | "retry" | "busy")

The call id is the SHA-256 of the audio: the same recording under two names, or uploaded twice, is one call. The
store's lease decides who works on it; the transcript is checkpointed before extraction, so a crash or a failed
extraction never pays for Whisper twice. While a call is being worked on, a heartbeat renews the lease; when the
process dies the lease runs out and the next worker resumes the call. Before extraction, spelled-out names in the
transcript are written as words (spelling.py) and names of the recording's vocabulary that speech recognition
misheard are written as the vocabulary spells them (respell.py; the original is kept, each change listed); after it,
each value's quote is checked against that transcript (grounding.py) and the evidence stored beside the fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..config.calls import CallsSettings
from ..errors import DependencyUnavailable, StorageFull
from .errors import CallError, ExtractionError, ModelCallError
from .extract import Extraction, Extractor
from .grounding import Grounded, ground
from .models import ModelClient
from .respell import Respelling
from .sources import Source, SourceItem
from .store import DONE, FAILED, CallRecord, CallStore, Claim
from .transcribers import SpeechTranscriber, Transcriber
from .transcript import Transcript
from .vocabulary import Vocabulary

log = logging.getLogger("aoai_gateway.calls")

OutcomeKind = Literal["done", "duplicate", "failed", "retry", "busy"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    item: SourceItem
    call_id: str | None = None
    error: str | None = None
    retry_at: float | None = None
    audio_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0  # time spent waiting for the models
    seconds: float = 0.0  # the whole call, reading and storing included


class Pipeline:
    def __init__(
        self,
        store: CallStore,
        models: ModelClient,
        extractor: Extractor,
        settings: CallsSettings,
        transcriber: Transcriber | None = None,
    ) -> None:
        self.store = store
        self.models = models
        self.extractor = extractor
        self.settings = settings
        # Speech with no vocabulary unless given one: open_pipeline() builds the configured transcriber.
        self.transcriber = transcriber or SpeechTranscriber(models, settings, Vocabulary())
        self._forced: set[str] = set()  # `--force` runs each call once more per run, not once per copy of it

    async def process(self, source: Source, item: SourceItem, *, force: bool = False, wait: bool = True) -> Outcome:
        """Take one item as far as it can go now. `wait`: if another worker holds the call, wait for it."""
        started = time.perf_counter()
        try:
            async with source.fetch(item) as path:
                call_id = await asyncio.to_thread(_sha256, path)
                force = force and call_id not in self._forced
                if force:
                    self._forced.add(call_id)
                outcome = await self._claimed(path, call_id, item, force=force, wait=wait)
        except CallError as exc:  # the file could not be read: nothing claimed, the source will offer it again
            return Outcome("retry" if exc.retryable else "failed", item, error=exc.message)
        except (DependencyUnavailable, StorageFull) as exc:
            # The call store, not the recording: say so (asyncpg's refusals are OSErrors, read below as the file's).
            return Outcome("failed", item, error=f"the call store's database failed, not {item.name}: {_detail(exc)}")
        except OSError as exc:  # unreadable where it lies (permissions, a vanished mount)
            return Outcome("failed", item, error=f"cannot read {item.name}: {exc.strerror or exc}")
        if outcome.call_id is not None:  # a watcher need not read this version of the file again
            await self.store.mark_seen(item, outcome.call_id)
        return replace(outcome, seconds=time.perf_counter() - started)

    async def _claimed(self, path: Path, call_id: str, item: SourceItem, *, force: bool, wait: bool) -> Outcome:
        while True:
            claim = await self._claim(call_id, item, force)
            if claim.won:
                return await self._work(path, claim.record, item)
            record = claim.record
            if record.status == DONE:
                return Outcome("duplicate", item, call_id)
            if record.status == FAILED:
                # Still due for an automatic retry (a transient failure), or failed for good until `calls retry`.
                pending = record.next_attempt_at is not None and record.attempts < self.settings.max_attempts
                kind: OutcomeKind = "retry" if pending else "failed"
                return Outcome(kind, item, call_id, error=record.error, retry_at=record.next_attempt_at)
            if not wait:
                return Outcome("busy", item, call_id)
            # Another worker holds it: wait for it to finish, or for its lease to run out if it died.
            pause = max(0.05, min((record.lease_until or 0) - time.time(), self.store.lease_seconds / 4, 1.0))
            await asyncio.sleep(pause)

    async def _claim(self, call_id: str, item: SourceItem, force: bool) -> Claim:
        """`store.claim`, carried through a cancellation: a claim that lands as we stop is handed back at once."""
        claiming = asyncio.ensure_future(
            self.store.claim(call_id, item, max_attempts=self.settings.max_attempts, force=force)
        )
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                if (await claiming).won:
                    await self.store.release(call_id)
            raise

    async def _work(self, path: Path, record: CallRecord, given: SourceItem) -> Outcome:
        item = SourceItem(record.source_uri, record.name, record.size, "", record.recorded_at or 0.0)
        heartbeat = asyncio.create_task(self._heartbeat(record.id))
        model_seconds = 0.0
        try:
            transcription = record.transcription
            if transcription is None:
                heard = await self.transcriber.transcribe(path, given)  # as the source gave it: hints and all
                model_seconds += heard.seconds
                transcription = heard.as_dict()
                await self.store.checkpoint(record.id, transcription)
            heard_text, transcript, respelled = await asyncio.to_thread(read_transcript, transcription)
            text = transcript.text
            if not text.strip():
                raise ExtractionError("the recording has no speech that could be transcribed")
            estimate = len(text) // 4  # ~4 characters a token in English: only a guard against runaway input
            if estimate > self.settings.max_transcript_tokens:
                raise ExtractionError(
                    f"the transcript is about {estimate} tokens, over calls.max_transcript_tokens "
                    f"({self.settings.max_transcript_tokens})"
                )
            extraction = await self.extractor.extract(transcript.lines)
            model_seconds += extraction.seconds
            if self.extractor.grounded:  # CPU work in proportion to the transcript: off the event loop
                grounded = await asyncio.to_thread(ground, extraction.fields, self.extractor.schema, transcript)
            else:
                grounded = Grounded(fields=extraction.fields)
            resolved = text if text != heard_text.text else None
            document = self._document(record, transcription, resolved, respelled, extraction, grounded)
            if not await self.store.complete(record.id, document):
                log.warning("call %s: lease lost before storing; the worker that took over stores it", record.id)
            usage = document["usage"]
            return Outcome(
                "done",
                item,
                record.id,
                audio_seconds=float(transcription.get("duration") or 0.0),
                prompt_tokens=usage["prompt_tokens"],
                completion_tokens=usage["completion_tokens"],
                model_seconds=model_seconds,
            )
        except CallError as exc:
            wait = exc.retry_after if isinstance(exc, ModelCallError) else None
            return await self._failed(record, item, exc.message, exc.retryable, model_seconds, wait)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release(record.id))  # shutting down: hand it on at once
            raise
        except (DependencyUnavailable, StorageFull):
            # The store failed, not the call: nothing to record against it (the store is what failed); the lease
            # runs out and the next run resumes from the checkpoint.
            raise
        except Exception as exc:
            # A bug or an unexpected library error: recorded and retried like a transient failure, never lost.
            log.exception("call %s: unexpected error", record.id)
            return await self._failed(record, item, f"internal error: {type(exc).__name__}", True, model_seconds, None)
        finally:
            heartbeat.cancel()
            # wait(), not `suppress(CancelledError)`: a cancel of this task arriving now must not be swallowed.
            await asyncio.wait({heartbeat})

    async def _failed(
        self,
        record: CallRecord,
        item: SourceItem,
        error: str,
        retryable: bool,
        model_seconds: float,
        retry_after: float | None,
    ) -> Outcome:
        retry_at = None
        if retryable and record.attempts < self.settings.max_attempts:
            # The server's Retry-After when it gave one (never past the back-off cap), else our back-off.
            delay = max(backoff(record.attempts, self.settings), retry_after or 0.0)
            retry_at = time.time() + min(delay, max(self.settings.retry_max_seconds, 0.0))
        await self.store.fail(record.id, error, retry_at)
        log.warning("call %s failed (attempt %d): %s", record.id[:12], record.attempts, error)
        kind: OutcomeKind = "retry" if retry_at is not None else "failed"
        return Outcome(kind, item, record.id, error=error, retry_at=retry_at, model_seconds=model_seconds)

    async def _heartbeat(self, call_id: str) -> None:
        while True:
            await asyncio.sleep(self.store.lease_seconds / 3)
            try:
                if not await self.store.renew(call_id):
                    log.warning("call %s: lease taken over by another worker", call_id[:12])
                    return
            except Exception:  # the database hiccuped: try again at the next beat, before the lease runs out
                log.warning("call %s: renewing the lease failed", call_id[:12], exc_info=True)

    def _document(
        self,
        record: CallRecord,
        transcription: dict[str, Any],
        resolved: str | None,
        respelled: list[Respelling],
        extraction: Extraction,
        grounded: Grounded,
    ) -> dict[str, Any]:
        audio_seconds = float(transcription.get("duration") or 0.0)
        return {
            "id": record.id,
            "source": {
                "uri": record.source_uri,
                "name": record.name,
                "size": record.size,
                "recorded_at": _iso(record.recorded_at),
            },
            "audio": {"sha256": record.id, "duration_seconds": audio_seconds, "language": transcription["language"]},
            "fields": grounded.fields,
            # Per field: the quote it rests on, where it is (segment times) and, for a value dropped, why.
            "evidence": grounded.evidence,
            "transcript": transcription["text"],
            # What the model read when it differs: spelled-out names written as words (spelling.py), misheard
            # names of the vocabulary as it writes them (respell.py; each change below, with what was heard).
            "resolved_transcript": resolved,
            "respelled": [{"heard": r.heard, "name": r.name, "score": r.score} for r in respelled],
            "models": {
                "transcription": {
                    "model": transcription["model"],
                    "deployment": transcription["deployment"],
                    "prompt": transcription.get("prompt"),  # the vocabulary it was primed with
                    "seconds": transcription.get("seconds"),  # wall time (of the run that checkpointed it)
                },
                "extraction": {
                    "model": extraction.model,
                    "deployment": extraction.deployment,
                    "mode": self.extractor.mode,
                    "requests": extraction.attempts,
                    "grounded": self.extractor.grounded,
                    "dropped": grounded.dropped,
                    "seconds": round(extraction.seconds, 3),  # wall time of its requests, re-asks included
                },
            },
            "schema": {"name": self.extractor.schema.name, "sha256": self.extractor.schema.digest},
            "usage": {
                "audio_seconds": audio_seconds,
                "prompt_tokens": extraction.prompt_tokens,
                "completion_tokens": extraction.completion_tokens,
                "total_tokens": extraction.prompt_tokens + extraction.completion_tokens,
            },
            "attempts": record.attempts,
            "created_at": _iso(record.created_at),
            "processed_at": _iso(time.time()),
        }


def read_transcript(transcription: dict[str, Any]) -> tuple[Transcript, Transcript, list[Respelling]]:
    """The transcript as heard, as the model reads it (spelled-out names written as words, misheard names of the
    vocabulary it was primed with written as the vocabulary does), and those respellings."""
    heard = Transcript.from_transcription(transcription)
    names = transcription.get("vocabulary")
    vocabulary = [name for name in names if isinstance(name, str)] if isinstance(names, list) else []
    read, respelled = heard.resolved().respelled(vocabulary)
    return heard, read, respelled


def _detail(exc: DependencyUnavailable | StorageFull) -> str:
    return exc.detail if isinstance(exc, DependencyUnavailable) else exc.message


def backoff(attempts: int, settings: CallsSettings) -> float:
    """Seconds before retry number `attempts`: exponential from retry_base_seconds, capped, half of it jittered."""
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2.0 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as audio:
        while chunk := audio.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
