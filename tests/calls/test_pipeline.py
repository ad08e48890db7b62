"""The pipeline end to end, in-process through the gateway, against the emulator (and local Whisper).

Every test runs real parts: the gateway's ASGI app under the official OpenAI client, the emulator on a loopback
socket, SQLite (and PostgreSQL where named), the recordings decoded by PyAV.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from aoai_gateway.calls.cli import open_pipeline
from aoai_gateway.calls.pipeline import Pipeline
from aoai_gateway.calls.runner import Runner, Summary, due_work
from aoai_gateway.calls.schema import ExtractionSchema
from aoai_gateway.calls.sources import LocalSource
from aoai_gateway.config import Settings
from aoai_gateway.speech.wer import word_error_rate

from ..servers import AsgiServer, eventually
from .conftest import ACME, CALL_AUDIO, SPEECH_AUDIO, CallsSettingsFactory, one_recording, requests_to

KEY = "caller-key"


async def process(settings: Settings, folder: Path, *, force: bool = False) -> tuple[Summary, Pipeline]:
    source = LocalSource(str(folder))
    async with open_pipeline(settings, KEY) as pipeline:
        summary = await Runner(pipeline, settings.calls.concurrency, force=force).run_batch(
            [(source, item) for item in await source.scan()]
        )
        return summary, pipeline


async def documents(settings: Settings) -> dict[str, Any]:
    from aoai_gateway.calls.cli import open_store

    store = await open_store(settings)
    try:
        return {record.name: record for record in await store.query(limit=None)}
    finally:
        await store.db.close()


async def test_a_folder_becomes_one_document_per_distinct_recording(
    calls_settings: CallsSettingsFactory, recordings: Path, reset_emulator: AsgiServer
) -> None:
    settings = calls_settings()
    summary, _ = await process(settings, recordings)

    assert (summary.processed, summary.duplicates, summary.failed) == (5, 1, 0)
    stored = await documents(settings)
    assert len(stored) == 5 and {r.status for r in stored.values()} == {"done"}
    # The copy is the same call: one document, one transcription, one extraction.
    assert requests_to(reset_emulator, "whisper") == 5
    assert requests_to(reset_emulator, "gpt-4o") == 5

    record = stored["weather.mp3"]
    audio = (recordings / "weather.mp3").read_bytes()
    assert record.id == hashlib.sha256(audio).hexdigest()
    document = record.document
    assert document is not None
    jsonschema.validate(document["fields"], ExtractionSchema.load(None).schema)
    assert document["source"] == {
        "uri": str(recordings / "weather.mp3"),
        "name": "weather.mp3",
        "size": len(audio),
        "recorded_at": document["source"]["recorded_at"],
    }
    assert document["source"]["recorded_at"].endswith("Z")
    assert document["audio"]["language"] == "english" and document["audio"]["duration_seconds"] > 0
    assert document["transcript"] == "This is an emulated transcription of weather.mp3."
    transcription = document["models"]["transcription"]
    took = transcription.pop("seconds")  # wall time, to the millisecond: the emulator may answer in less
    assert isinstance(took, float) and took >= 0
    assert transcription == {"model": "whisper-1", "deployment": "whisper", "prompt": None}
    assert document["models"]["extraction"]["deployment"] == "gpt-4o"
    assert document["models"]["extraction"]["requests"] == 1
    usage = document["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert summary.prompt_tokens == sum(r.prompt_tokens for r in stored.values())
    assert stored["2026/11/train.webm"].source_uri == str(recordings / "2026" / "11" / "train.webm")


async def test_processing_again_calls_no_model_unless_forced(
    calls_settings: CallsSettingsFactory, recordings: Path, reset_emulator: AsgiServer
) -> None:
    settings = calls_settings()
    await process(settings, recordings)
    again, _ = await process(settings, recordings)
    assert (again.processed, again.duplicates) == (0, 6)
    assert requests_to(reset_emulator, "gpt-4o") == 5

    forced, _ = await process(settings, recordings, force=True)
    # Once more per distinct recording, not once per copy.
    assert (forced.processed, forced.duplicates) == (5, 1)
    assert requests_to(reset_emulator, "gpt-4o") == 10
    assert requests_to(reset_emulator, "whisper") == 10
    assert len(await documents(settings)) == 5


async def test_an_invalid_answer_is_asked_again_with_the_reason(
    calls_settings: CallsSettingsFactory, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    folder = one_recording(tmp_path / "one", "call.wav", SPEECH_AUDIO / "report.wav")
    settings = calls_settings(extract="extract-reask", reasks=2)

    summary, _ = await process(settings, folder)

    assert summary.processed == 1
    record = (await documents(settings))["call.wav"]
    assert record.fields == ACME
    assert record.document is not None and record.document["models"]["extraction"]["requests"] == 3
    assert requests_to(reset_emulator, "extract-reask") == 3


async def test_never_valid_answers_fail_the_call_with_the_reason(
    calls_settings: CallsSettingsFactory, recordings: Path, reset_emulator: AsgiServer
) -> None:
    settings = calls_settings(extract="extract-garbage", reasks=1)
    summary, _ = await process(settings, recordings)

    assert (summary.processed, summary.failed) == (0, 5)
    record = (await documents(settings))["office.ogg"]
    assert record.status == "failed" and record.next_attempt_at is None
    assert record.error is not None and "not valid JSON" in record.error and "after 2 attempt(s)" in record.error
    # A failed extraction keeps its transcript: no second transcription is ever paid for it.
    assert record.transcription is not None and record.transcription["text"].startswith("This is an emulated")
    assert requests_to(reset_emulator, "extract-garbage") == 10


async def test_transient_failures_are_retried_with_back_off_then_retry_requeues(
    calls_settings: CallsSettingsFactory, recordings: Path, reset_emulator: AsgiServer
) -> None:
    faults = {"deployment": "gpt-4o", "faults": [{"kind": "500"}]}
    httpx.post(f"{reset_emulator.url}/_emulator/faults", json=faults).raise_for_status()
    settings = calls_settings(max_attempts=2)

    summary, _ = await process(settings, recordings)

    assert (summary.processed, summary.failed, summary.duplicates) == (0, 5, 1)
    assert summary.retried >= 5  # each call once; the copy may also wait out its original's back-off
    stored = await documents(settings)
    record = stored["office.ogg"]
    assert (record.status, record.attempts) == ("failed", 2)
    # The gateway's breaker may open after a few 500s and answer 429 itself: both are worth a retry.
    assert record.error is not None and ("gpt-4o answered 500" in record.error or "answered 429" in record.error)
    assert requests_to(reset_emulator, "whisper") == 5  # transcribed once, extraction tried twice
    assert 5 <= requests_to(reset_emulator, "gpt-4o") <= 10

    # `calls retry`: re-queued with a fresh count, read again from the source, finished; still no new Whisper call.
    httpx.delete(f"{reset_emulator.url}/_emulator/faults").raise_for_status()
    async with open_pipeline(settings, KEY) as pipeline:
        requeued = await pipeline.store.requeue_failed()
        assert len(requeued) == 5
        work = await due_work(pipeline)
        retried = await Runner(pipeline, 2).run_batch(work)
    assert (retried.processed, retried.failed) == (5, 0)
    assert requests_to(reset_emulator, "whisper") == 5
    assert {r.status for r in (await documents(settings)).values()} == {"done"}


async def test_an_unreadable_recording_fails_at_once_without_retries(
    calls_settings: CallsSettingsFactory, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "garbage.mp3").write_bytes(b"ID3" + bytes(range(256)) * 8)
    settings = calls_settings(transcribe_model="whisper-local")

    summary, _ = await process(settings, folder)

    assert summary.failed == 1 and summary.retried == 0
    record = (await documents(settings))["garbage.mp3"]
    assert record.error is not None and "whisper-local answered 400" in record.error
    assert requests_to(reset_emulator, "gpt-4o") == 0


@pytest.mark.slow
async def test_local_whisper_transcribes_a_real_call(
    calls_settings: CallsSettingsFactory, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    folder = one_recording(tmp_path / "calls", "short-call.ogg", CALL_AUDIO / "short-call.ogg")
    script = json.loads((CALL_AUDIO / "short-call.json").read_text())
    settings = calls_settings(transcribe_model="whisper-local", extract="extract-acme")

    summary, _ = await process(settings, folder)

    assert summary.processed == 1
    record = (await documents(settings))["short-call.ogg"]
    assert record.document is not None
    spoken = " ".join(turn["text"] for turn in script["turns"])
    # tiny.en on espeak-ng voices: names are the hard part (bench/README.md measures ~0.3 on the dev set).
    assert word_error_rate(spoken, record.document["transcript"]) < 0.35
    assert 18 < record.document["audio"]["duration_seconds"] < 21
    transcription = record.document["models"]["transcription"]
    assert transcription.pop("seconds") > 0
    assert transcription == {"model": "whisper-local", "deployment": "whisper-local", "prompt": None}
    assert record.document["usage"]["audio_seconds"] == record.document["audio"]["duration_seconds"]


async def test_tool_mode_forces_the_extraction_tool(
    calls_settings: CallsSettingsFactory, recordings: Path, reset_emulator: AsgiServer
) -> None:
    settings = calls_settings(extract_mode="tool")
    summary, _ = await process(settings, recordings)
    assert summary.processed == 5
    record = (await documents(settings))["market.flac"]
    assert record.document is not None and record.document["models"]["extraction"]["mode"] == "tool"
    jsonschema.validate(record.fields, ExtractionSchema.load(None).schema)


async def test_a_user_schema_drives_the_fields(
    calls_settings: CallsSettingsFactory, recordings: Path, tmp_path: Path
) -> None:
    schema = {
        "title": "support call",
        "type": "object",
        "properties": {"product": {"type": ["string", "null"]}, "severity": {"enum": ["low", "high"]}},
        "required": ["product", "severity"],
    }
    path = tmp_path / "support.json"
    path.write_text(json.dumps(schema))
    loaded = ExtractionSchema.load(str(path))
    assert (loaded.name, loaded.strict) == ("support_call", False)  # not closed: sent without strict

    summary, _ = await process(calls_settings(schema_path=str(path)), recordings)
    assert summary.processed == 5
    record = (await documents(calls_settings()))["market.flac"]
    assert record.fields is not None and set(record.fields) <= {"product", "severity"}
    assert record.document is not None and record.document["schema"]["name"] == "support_call"


def test_unusable_schemas_are_refused_with_the_reason(tmp_path: Path) -> None:
    from aoai_gateway.calls.errors import SchemaError

    cases = {"a.json": "{not json", "b.json": '{"type": "array"}', "c.json": '{"type": "object", "properties": 3}'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SchemaError, match=name):
            ExtractionSchema.load(str(tmp_path / name))
    with pytest.raises(SchemaError, match="No such file"):
        ExtractionSchema.load(str(tmp_path / "missing.json"))


async def test_no_transcript_or_field_value_reaches_a_log(
    calls_settings: CallsSettingsFactory, recordings: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await process(calls_settings(extract="extract-garbage", reasks=0, max_attempts=1), recordings)
    await process(calls_settings(extract="extract-acme"), recordings, force=True)
    text = caplog.text
    assert "emulated transcription" not in text and "Dana Whitfield" not in text and KEY not in text
    assert "Here are the fields" not in text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_documents_are_json_queryable(
    backend: str, request: pytest.FixtureRequest, calls_settings: CallsSettingsFactory, recordings: Path
) -> None:
    database_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    settings = calls_settings(extract="extract-acme", **({"database_url": database_url} if database_url else {}))
    summary, _ = await process(settings, recordings)
    assert summary.processed == 5

    from aoai_gateway.calls.cli import open_store

    store = await open_store(settings)
    try:
        if backend == "postgresql":
            kind = await store.db.fetch(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'calls' AND column_name = ?",
                ["document"],
            )
            assert kind == [{"data_type": "jsonb"}]
            await store.db.execute("DELETE FROM calls")  # the session's database is shared by parametrized runs
            await store.db.execute("DELETE FROM call_files")
            summary, _ = await process(settings, recordings)
        assert len(await store.query(where=[("company", "ACME LTD")])) == 5
        assert len(await store.query(where=[("products_of_interest", "home battery")])) == 5
        assert len(await store.query(where=[("company", "Initech")])) == 0
        assert len(await store.query(status="done", where=[("timeline", "BEFORE THE SUMMER")])) == 5
        assert await store.counts() == {"done": 5}
    finally:
        await store.db.close()


async def test_in_keys_mode_the_calls_are_accounted_to_the_pipelines_key(
    calls_config: Any, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    from aoai_gateway.store import KeySpec, KeyStore, Limits, connect_database, migrate

    folder = one_recording(tmp_path / "in", "short-call.ogg", CALL_AUDIO / "short-call.ogg")
    config = calls_config("extract-acme", transcribe_model="whisper-local")
    settings = Settings.model_validate({**config, "auth": "keys", "access": {"usage_flush_seconds": 0.05}})
    db = await connect_database(settings.database_url)
    await migrate(db)
    key, secret = await KeyStore(db).create(KeySpec("call-analytics", None, Limits(), None))

    source = LocalSource(str(folder))
    async with open_pipeline(settings, secret) as pipeline:
        summary = await Runner(pipeline, 1).run_batch([(source, item) for item in await source.scan()])
    assert summary.processed == 1
    rows = await eventually(
        lambda: db.fetch("SELECT model, route, status, prompt_tokens, audio_seconds, key_id FROM usage ORDER BY at"),
        lambda rows: len(rows) >= 2,
    )
    await db.close()
    assert [(r["model"], r["status"], r["key_id"]) for r in rows] == [
        ("whisper-local", 200, key.id),
        ("acme", 200, key.id),
    ]
    assert 18 < rows[0]["audio_seconds"] < 21  # the local model's audio seconds reach the ledger
    assert rows[1]["prompt_tokens"] == summary.prompt_tokens

    async with open_pipeline(settings, "sk-gw-not-a-key") as pipeline:
        (folder / "again.wav").write_bytes((SPEECH_AUDIO / "report.wav").read_bytes())
        refused = await Runner(pipeline, 1).run_batch([(source, await source.stat("again.wav"))])
    assert refused.failed == 1 and "answered 401" in refused.errors[0][1]


async def test_a_recording_too_large_for_one_request_is_transcribed_in_pieces(
    calls_config: Any, tmp_path: Path, reset_emulator: AsgiServer
) -> None:
    folder = one_recording(tmp_path / "long", "report.wav", SPEECH_AUDIO / "report.wav")
    config = calls_config(piece_seconds=2)
    settings = Settings.model_validate({**config, "limits": {"max_audio_bytes": 100_000}})  # the file is 174 kB

    summary, _ = await process(settings, folder)

    assert summary.processed == 1
    document = (await documents(settings))["report.wav"].document
    assert document is not None
    assert document["transcript"] == " ".join(
        f"This is an emulated transcription of report-part{n}.wav." for n in (1, 2, 3)
    )
    assert document["audio"]["duration_seconds"] == pytest.approx(5.43, abs=0.05)
    assert requests_to(reset_emulator, "whisper") == 3  # the gateway refused the whole file itself (413)
    # Each piece's segment times count from the recording's start, so evidence points into the whole call.
    segments = (await documents(settings))["report.wav"].transcription["segments"]
    assert [s["text"] for s in segments] == [
        f"This is an emulated transcription of report-part{n}.wav." for n in (1, 2, 3)
    ]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(5.43, abs=0.05)
    assert all(a["end"] == pytest.approx(b["start"], abs=0.01) for a, b in itertools.pairwise(segments))
    # The emulator quoted the second piece for some field: its times are the second piece's in the call.
    assert any(
        note["found"] and note["start"] > 1.0 for note in document["evidence"].values() if isinstance(note, dict)
    )


def test_pieces_are_cut_at_the_quietest_moment(tmp_path: Path) -> None:
    import io
    import wave

    import numpy as np

    from aoai_gateway.calls.pieces import audio_pieces

    rate = 16_000
    tone = (0.5 * np.sin(np.arange(rate * 10) * 2 * np.pi * 440 / rate)).astype(np.float32)
    tone[int(9.35 * rate) : int(9.55 * rate)] = 0  # a pause late in the first 10 s
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.concatenate([tone, tone]) * 32767).astype("<i2").tobytes())

    pieces = list(audio_pieces(path, piece_seconds=10))
    lengths = []
    for _, data in pieces:
        with wave.open(io.BytesIO(data)) as piece:
            lengths.append(piece.getnframes() / rate)
    assert [name for name, _ in pieces] == ["tone-part1.wav", "tone-part2.wav", "tone-part3.wav"]
    assert 9.35 <= lengths[0] <= 9.55 and sum(lengths) == pytest.approx(20, abs=0.01)


async def test_an_unreadable_file_is_reported_and_the_batch_goes_on(
    calls_settings: CallsSettingsFactory, recordings: Path
) -> None:
    locked = recordings / "locked.wav"
    locked.mkdir()  # unreadable as a file for every user, root included (chmod 0 would not stop root)
    from aoai_gateway.calls.sources import SourceItem

    settings = calls_settings()
    source = LocalSource(str(recordings))
    items = [*(await source.scan()), SourceItem(str(locked), "locked.wav", 4, "1:4", 0.0)]
    async with open_pipeline(settings, KEY) as pipeline:
        summary = await Runner(pipeline, 2).run_batch([(source, item) for item in items])
    assert (summary.processed, summary.duplicates, summary.failed) == (5, 1, 1)
    assert summary.errors[0][0] == "locked.wav" and "cannot read locked.wav" in summary.errors[0][1]


def _dev_set(tmp_path: Path) -> Path:
    """A one-call set in the calls-dev layout, with a stand-in for its score.py that scores customer_name."""
    import shutil
    import textwrap

    dev = tmp_path / "dev"
    (dev / "calls").mkdir(parents=True)
    (dev / "audio").mkdir()
    shutil.copy(CALL_AUDIO / "short-call.json", dev / "calls")
    shutil.copy(CALL_AUDIO / "short-call.ogg", dev / "audio")
    (dev / "score.py").write_text(
        textwrap.dedent(
            """
            import argparse, json, pathlib
            p = argparse.ArgumentParser()
            for name in ("--gold-dir", "--pred", "--json"):
                p.add_argument(name)
            a = p.parse_args()
            scripts = [json.loads(f.read_text()) for f in pathlib.Path(a.gold_dir).glob("*.json")]
            pred = {r["id"]: r["fields"] for r in map(json.loads, open(a.pred))}
            hit = sum(pred[s["id"]]["customer_name"] == s["gold"]["customer_name"] for s in scripts)
            f1 = hit / len(scripts)
            fields = {"customer_name": {"f1": f1}}
            pathlib.Path(a.json).write_text(json.dumps({"hits": hit, "fields": fields, "overall_f1": f1}))
            print(f"overall_f1={f1:.2f}")
            """
        )
    )
    return dev


def test_eval_runs_a_scored_set_and_reports_fields_and_wer(
    calls_config: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoai_gateway.cli import main

    from .conftest import write_config

    dev = _dev_set(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "caller-key")
    config = write_config(tmp_path / "config.yaml", calls_config("extract-acme", transcribe_model="whisper-local"))
    out = tmp_path / "eval"

    assert main(["calls", "eval", str(dev), "--config", str(config), "--out", str(out)]) == 0

    printed = capfd.readouterr().out
    assert "=== calls eval: transcripts from the audio" in printed and "gold transcripts" not in printed
    assert "processed 1" in printed and "overall_f1=0.00" in printed
    wer = float(printed.split("transcript_wer=")[1].split()[0])
    assert wer < 0.35
    # The scripted answer names someone the call never mentions, quoting words the call never says: every value
    # but the sentiment (never null) is dropped, and the evidence says why.
    fields = json.loads((out / "predictions.jsonl").read_text())["fields"]
    assert fields["customer_name"] is None and fields["products_of_interest"] == []
    assert fields["sentiment"] == "positive" and fields["summary"] == ACME["summary"]
    assert "values_dropped_without_quote=9" in printed
    evidence = json.loads((out / "evidence.jsonl").read_text())["evidence"]
    assert evidence["customer_name"]["value"] == "Dana Whitfield" and not evidence["customer_name"]["found"]
    assert evidence["customer_name"]["reason"].startswith("dropped: the quote is not in the transcript")
    assert evidence["sentiment"]["reason"].startswith("kept unsupported")
    assert json.loads((out / "scores.json").read_text())["hits"] == 0
    assert json.loads((out / "transcripts.jsonl").read_text())["id"] == "short-call"


def test_eval_from_audio_and_from_gold_transcripts_reports_both_apart(
    calls_config: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aoai_gateway.cli import main

    from .conftest import write_config

    dev = _dev_set(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "caller-key")
    # The emulator's own answer: placeholders, each quoting a passage of the transcript it was given.
    config = write_config(tmp_path / "config.yaml", calls_config("gpt-4o", transcribe_model="whisper-local"))
    out = tmp_path / "eval"

    status = main(["calls", "eval", str(dev), "--config", str(config), "--out", str(out), "--transcripts", "both"])

    assert status == 0
    printed = capfd.readouterr().out
    audio_part, gold_part = printed.split("=== calls eval: gold transcripts")
    assert "=== calls eval: transcripts from the audio" in audio_part
    assert float(audio_part.split("transcript_wer=")[1].split()[0]) > 0
    assert "transcript_wer=0.0000" in gold_part  # the scripts are what was said
    assert "names_heard=customer_name 1/1, company 1/1, location 1/1" in gold_part
    assert "names_heard=customer_name " in audio_part
    assert "seconds_per_call=transcription median " in audio_part and ", extraction median " in audio_part
    assert "seconds_per_call=transcription median 0.0 s" in gold_part  # no speech to wait for
    assert "overall_f1_audio=0.00 overall_f1_gold=0.00" in printed
    table = printed.split("field F1, from the audio and from the gold transcripts ===")[1]
    assert table.split("\n")[1].split() == ["field", "audio", "gold"]
    assert table.split("\n")[2].split() == ["customer_name", "0.000", "0.000"]
    for mode in ("audio", "gold"):
        assert json.loads((out / mode / "scores.json").read_text())["hits"] == 0
        # Every quote is found; the placeholders are all "example", so customer_name and company name what
        # agent_name names and are dropped for it (x-differs-from), of company and seller_company, which name the
        # same, the seller is dropped (no one in the call is from it, roles.settle_seller), the location has no
        # capitalised word (x-proper-noun), the budget states no amount (x-amount) and the timeline no time
        # (x-time), and the product "example" is the name of the company (x-differs-from on a list). The customer
        # is then the other person the call names (roles.name_the_customer).
        assert "values_dropped_without_quote=7" in (audio_part if mode == "audio" else gold_part)
    # Every quote the emulator gave was found where it lies: with its segment's times from speech, ...
    heard = json.loads((out / "audio" / "evidence.jsonl").read_text())["evidence"]
    assert heard["customer_name"]["found"] and heard["customer_name"]["score"] == 1.0
    assert 0 <= heard["customer_name"]["start"] < heard["customer_name"]["end"] <= 21
    # ... and in the script's turns, which have no times.
    scripted = json.loads((out / "gold" / "evidence.jsonl").read_text())["evidence"]
    assert scripted["customer_name"]["found"] and scripted["customer_name"]["start"] is None
    assert scripted["agent_name"]["passage"].startswith("Hello, this is Anna")  # the emulator's first quote
    gold_transcript = json.loads((out / "gold" / "transcripts.jsonl").read_text())["transcript"]
    assert gold_transcript.startswith("Hello, this is Anna from Brightwater Pumps.")


def test_eval_from_gold_transcripts_needs_no_recordings(
    calls_config: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from aoai_gateway.cli import main

    from .conftest import write_config

    dev = _dev_set(tmp_path)
    shutil.rmtree(dev / "audio")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no espeak-ng to make recordings with
    config = write_config(tmp_path / "config.yaml", calls_config("extract-acme"))
    out = tmp_path / "eval"

    assert main(["calls", "eval", str(dev), "--config", str(config), "--out", str(out), "--transcripts", "gold"]) == 0

    printed = capfd.readouterr().out
    assert "=== calls eval: gold transcripts" in printed and "from the audio" not in printed
    assert not (out / "audio").exists() and (out / "predictions.jsonl").is_file()
    # The scripted answer's quotes are the emulator's own words, not the script's: nothing it says is kept.
    assert json.loads((out / "predictions.jsonl").read_text())["fields"]["customer_name"] is None
    assert "values_dropped_without_quote=9" in printed
