"""Voice assistant benchmark: from the end of the user's speech to the first byte of the spoken reply, and where
the time goes.

    .venv/bin/python bench/assistant_bench.py                  # the 50 bundled commands, spoken, once each
    .venv/bin/python bench/assistant_bench.py --commands 10    # the first 10

Everything is local and on loopback: the commands of src/aoai_gateway/assistant/commands.json (the scored set)
are spoken once by the gateway's own local voice (`engine: espeak-ng`, at 0.7 of its rate: 2-4 s each) before
the clock starts; the
gateway serves `provider: local` Whisper (the bundled tiny.en) and that voice; the chat model is
`aoai-gateway emulator` with no added latency, scripted for each command with its expected tool calls and a short
answer, so every turn runs two model rounds and real tool calls on the simulated home.

One turn at a time, over HTTP with server-sent events (`"stream": true, "speech": true`), the recording uploaded
whole: the clock starts when the request is sent (the speech has ended) and stops when the `audio` event arrives
(its first byte is the reply's first byte). Stages from the events' arrival times: transcription (to
`transcript`), model (to `reply`, less the tools), tools (first `tool_call` to last `tool_result`), synthesis (to
`audio`), as the client sees the events arrive: writes a few hundred microseconds apart may reach it together, so
stages under a millisecond are not resolved; synthesis counts from the moment the first sentence was complete
(the reply's end, or the delta that ended the sentence when it is spoken while the model writes). Reported: each
command's split, then p50 and p95 of each stage and its share, with the target (under 800 ms p50 on two cores).
Saved as bench/results/assistant-bench-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from aoai_gateway.app import create_app
from aoai_gateway.assistant.evaluate import load_commands
from aoai_gateway.config import Settings
from aoai_gateway.emulator import EmulatorSettings
from aoai_gateway.emulator.server import build_server
from aoai_gateway.logs import AccessLog

RESULTS = Path(__file__).parent / "results"
KEY = "bench-key"
TARGET_P50_MS = 800


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        return None


def _serve(server: uvicorn.Server) -> tuple[str, threading.Thread]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("a server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", thread


def _events(raw: bytes) -> list[tuple[str, Any]]:
    out = []
    for block in raw.split(b"\n\n"):
        if block.strip():
            head, data = block.split(b"\n", 1)
            out.append((head[len(b"event: ") :].decode(), json.loads(data[len(b"data: ") :])))
    return out


def _turn(http: httpx.Client, session: str, audio: bytes) -> dict[str, float]:
    marks: dict[str, float] = {}
    started = time.perf_counter()
    buffer = b""
    with http.stream(
        "POST", f"/sessions/{session}/turns", files={"file": ("command.wav", audio)},
        data={"stream": "true", "speech": "true"},
    ) as response:  # fmt: skip
        response.raise_for_status()
        for piece in response.iter_raw():
            buffer += piece
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                kind = block.split(b"\n", 1)[0][len(b"event: ") :].decode()
                now = (time.perf_counter() - started) * 1000
                marks.setdefault(kind, now)  # the first of each kind
                if kind in ("tool_result", "error"):
                    marks["last_tool_result"] = now
                if kind == "reply_delta" and "audio" not in marks:
                    marks["last_delta_before_audio"] = now
                if kind == "error":
                    raise SystemExit(f"a turn failed: {block.decode()[:300]}")
    tools = marks.get("last_tool_result", 0.0) - marks.get("tool_call", 0.0)
    # Synthesis starts when the first sentence is complete: at the reply's end for a one-sentence reply, else at
    # the delta that finished it (the last delta before the first audio), while the model may still be writing.
    written = marks["reply"] if marks["reply"] <= marks["audio"] else marks["last_delta_before_audio"]
    return {
        "total": marks["audio"],
        "transcription": marks["transcript"],
        "model": written - marks["transcript"] - tools,
        "tools": tools,
        "synthesis": marks["audio"] - written,
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--warm", type=int, default=3, help="turns before the clock starts")
    parser.add_argument("--speech-speed", type=float, default=0.7, help="the commands' speaking rate (2-4 s each)")
    args = parser.parse_args()
    commands = load_commands()[: args.commands]

    emulator = build_server(EmulatorSettings(api_keys=(KEY,), auto_deployments=True), "127.0.0.1", 0,
                            log_level="warning")  # fmt: skip
    emulator_url, _ = _serve(emulator)
    settings = Settings.model_validate(
        {
            "deployments": [
                {"model": "gpt-4o", "deployment": "chat", "endpoint": emulator_url, "api_key": KEY},
                {"model": "whisper-local", "provider": "local"},
                {"model": "tts-local", "provider": "local", "engine": "espeak-ng"},
            ],
            "assistant": {"enabled": True, "transcription_model": "whisper-local", "speech_model": "tts-local"},
        }
    )
    app = create_app(settings, access_log=AccessLog(_Discard()))
    gateway = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False))
    gateway_url, _ = _serve(gateway)

    control = httpx.Client(base_url=f"{emulator_url}/_emulator", timeout=30)
    http = httpx.Client(base_url=f"{gateway_url}/v1/assistant", timeout=120)
    recordings = []
    for command in commands:
        spoken = http.post(f"{gateway_url}/v1/audio/speech",
                           json={"model": "tts-local", "input": command.text, "response_format": "wav",
                                 "speed": args.speech_speed})  # fmt: skip
        spoken.raise_for_status()
        recordings.append(spoken.content)
    seconds = [(len(audio) - 44) / 2 / 22050 for audio in recordings]

    def script(command: Any) -> None:
        calls = [{"name": name, "arguments": arguments} for name, arguments in command.calls]
        turns = [{"tool_calls": calls}, {"content": "Done."}]
        control.post("/script", json={"deployment": "chat", "turns": turns}).raise_for_status()

    for index in range(args.warm):
        script(commands[index % len(commands)])
        _turn(http, http.post("/sessions").json()["id"], recordings[index % len(recordings)])
    samples = []
    for command, audio in zip(commands, recordings, strict=True):
        http.post("/home/reset")
        script(command)
        samples.append(_turn(http, http.post("/sessions").json()["id"], audio))

    stages = ["total", "transcription", "model", "tools", "synthesis"]
    summary = {
        stage: {
            "p50_ms": round(_quantile([s[stage] for s in samples], 0.5), 1),
            "p95_ms": round(_quantile([s[stage] for s in samples], 0.95), 1),
        }
        for stage in stages
    }
    print(f"{len(samples)} spoken commands, {min(seconds):.1f}-{max(seconds):.1f} s of speech each")
    print("\nPer command (ms; where the time to the first byte of reply audio went):\n")
    print("| command | speech s | " + " | ".join(stages) + " |\n| --- | --: |" + " --: |" * len(stages))
    for command, spoken_s, sample in zip(commands, seconds, samples, strict=True):
        cells = " | ".join(f"{sample[stage]:.0f}" for stage in stages)
        print(f"| {command.text[:48]} | {spoken_s:.1f} | {cells} |")
    print("\n| stage | p50 ms | p95 ms | share of total (sum of medians) |\n| --- | --: | --: | --: |")
    parts = sum(summary[stage]["p50_ms"] for stage in stages[1:]) or 1.0
    for stage in stages:
        share = "" if stage == "total" else f"{100 * summary[stage]['p50_ms'] / parts:.0f}%"
        print(f"| {stage} | {summary[stage]['p50_ms']} | {summary[stage]['p95_ms']} | {share} |")
    print(f"target: end of speech -> first byte of reply audio under {TARGET_P50_MS} ms p50")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = RESULTS / f"assistant-bench-{stamp}.json"
    per_command = [
        {"command": command.text, "speech_seconds": spoken_s, **sample}
        for command, spoken_s, sample in zip(commands, seconds, samples, strict=True)
    ]
    out.write_text(json.dumps({"summary": summary, "samples": per_command}, indent=1))
    print(f"saved {out}")
    gateway.should_exit = emulator.should_exit = True


if __name__ == "__main__":
    main()
