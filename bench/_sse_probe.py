"""Per-chunk relay delay: a paced SSE upstream that stamps each chunk, and a client that reads the stamps.

    python bench/_sse_probe.py --port 9100 --chunks 200 --interval-ms 10     # the upstream (own process)
    python bench/_sse_probe.py --port 9101 --relay-to 9100                   # a bare TCP relay (the floor)
    delays_ms = asyncio.run(probe(port, path, body))                         # the client, in the benchmark

The upstream answers every POST with an Azure-like chunked `text/event-stream`: `--chunks` events spaced
`--interval-ms` apart (after a random phase within the first interval), each carrying `"t":<time.time_ns()
just before the write>`, then `data: [DONE]`. A POST whose path ends in `/responses` gets a Responses stream
instead: typed `event:` lines, `response.created` and `response.in_progress`, the paced
`response.output_text.delta` events (stamped), then `response.completed` with the usage (no `[DONE]`).
The client notes `time.time_ns()` as each read returns; arrival minus stamp is the chunk's delay. Measured
against the upstream directly it is the floor (loopback + two event loops); through the gateway the difference
is the relay cost. Both ends run on raw sockets, on the same machine and clock.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time

_STAMP = re.compile(rb'"t":(\d+)}')
_EVENT = (
    '{"choices":[{"content_filter_results":{},"delta":{"content":" token"},"finish_reason":null,"index":0,'
    '"logprobs":null}],"created":1732190000,"id":"chatcmpl-paced","model":"gpt-4o-2024-08-06",'
    '"object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","t":%d}'
)
_RESPONSE = (
    '{"id":"resp_paced0123456789","object":"response","created_at":1732190000,"status":"%s","model":"dep1",'
    '"output":[],"usage":%s}'
)
_USAGE = '{"input_tokens":8,"output_tokens":%d,"total_tokens":%d}'
_DELTA = (
    '{"type":"response.output_text.delta","item_id":"msg_paced0123456789","output_index":0,"content_index":0,'
    '"delta":" token","sequence_number":%d,"t":%d}'
)
_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
    b"Cache-Control: no-cache\r\napim-request-id: 3f1e2d4c-5b6a-4789-8a9b-0c1d2e3f4a5b\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _typed(kind: str, data: str) -> bytes:
    return _chunk(b"event: %s\ndata: %s\n\n" % (kind.encode(), data.encode()))


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """Consume one request (head and Content-Length body): its path, or None when the peer closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return head.split(b" ", 2)[1].split(b"?")[0]


async def _chat_events(writer: asyncio.StreamWriter, chunks: int, interval: float) -> None:
    for _ in range(chunks):
        await asyncio.sleep(interval)
        writer.write(_chunk(b"data: " + (_EVENT % time.time_ns()).encode() + b"\n\n"))
        await writer.drain()
    writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    await writer.drain()


async def _responses_events(writer: asyncio.StreamWriter, chunks: int, interval: float) -> None:
    opening = _RESPONSE % ("in_progress", "null")
    for kind in ("response.created", "response.in_progress"):
        writer.write(_typed(kind, f'{{"type":"{kind}","response":{opening}}}'))
    await writer.drain()
    for number in range(chunks):
        await asyncio.sleep(interval)
        writer.write(_typed("response.output_text.delta", _DELTA % (number + 2, time.time_ns())))
        await writer.drain()
    usage = _USAGE % (chunks, chunks + 8)
    completed = f'{{"type":"response.completed","response":{_RESPONSE % ("completed", usage)}}}'
    writer.write(_typed("response.completed", completed) + b"0\r\n\r\n")
    await writer.drain()


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunks: int, interval: float
) -> None:
    try:
        while (path := await _read_request(reader)) is not None:
            writer.write(_HEAD)
            await writer.drain()
            # A random phase, so that many streams started together do not all send in the same instant.
            await asyncio.sleep(random.uniform(0, interval))
            events = _responses_events if path.endswith(b"/responses") else _chat_events
            await events(writer, chunks, interval)
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(port: int, chunks: int, interval: float) -> None:
    server = await asyncio.start_server(lambda r, w: _serve_connection(r, w, chunks, interval), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _relay_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int) -> None:
    upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def relay(port: int, target: int) -> None:
    """Forward bytes both ways between clients of `port` and `target`: the cheapest hop between cores, so the
    probe through it shows what any relay on the gateway's core adds, the gateway's own work apart."""
    server = await asyncio.start_server(lambda r, w: _relay_connection(r, w, target), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def probe(port: int, path: str, body: str, timeout: float = 60.0, end: bytes = b"[DONE]") -> list[float]:
    """POST `body` to loopback `port` at `path`; the delay (ms) of each stamped chunk of the answer, until `end`
    (`b"response.completed"` for a Responses stream)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = body.encode()
    writer.write(
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\napi-key: client-key\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data)
    )
    await writer.drain()
    delays: list[float] = []
    pending = b""
    status_checked = False
    try:
        async with asyncio.timeout(timeout):
            while True:
                received = await reader.read(65536)
                arrived = time.time_ns()
                if not received:
                    raise RuntimeError(f"the stream ended before {end.decode()}")
                pending += received
                if not status_checked and b"\r\n" in pending:
                    if not pending.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")):
                        raise RuntimeError(f"the stream failed: {pending[:300]!r}")
                    status_checked = True
                last = 0
                for match in _STAMP.finditer(pending):
                    delays.append((arrived - int(match[1])) / 1e6)
                    last = match.end()
                pending = pending[last:]
                if end in pending:
                    break
    finally:
        writer.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description="Paced, timestamped SSE upstream for the relay-delay probe.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--relay-to", type=int, metavar="PORT", help="be a bare TCP relay to PORT instead")
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=10.0)
    args = parser.parse_args()
    if args.relay_to:
        asyncio.run(relay(args.port, args.relay_to))
    else:
        asyncio.run(serve(args.port, args.chunks, args.interval_ms / 1000))


if __name__ == "__main__":
    main()
