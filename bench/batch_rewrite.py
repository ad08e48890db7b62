"""Throughput of the batch input rewrite (batch_input.py): a large JSONL, spooled and mapped like an upload.

    PYTHONPATH=src python bench/batch_rewrite.py [MEGABYTES]

Prints MB/s for the check-and-rewrite of every line (models -> deployments, duplicate-key check, key caps) into
an unlinked temporary file, and the peak growth of anonymous memory (RssAnon, sampled every 1,000 lines; the
mapped file's pages are page cache, not the process's own memory): the file is never held whole in memory.
"""

from __future__ import annotations

import mmap
import sys
import tempfile
import time

import orjson

from aoai_gateway.batch_input import BatchLineRules, rewrite_batch_lines


def main(megabytes: int) -> None:
    line = orjson.dumps(
        {
            "custom_id": "request-000000",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "Summarise the following text in one sentence. " * 8},
                ],
                "max_tokens": 200,
            },
        }
    )
    rules = BatchLineRules(
        targets={"gpt-4o": ("gpt-4o", "chat-4o")},
        configured=frozenset({"gpt-4o", "chat-4o"}),
        models=("gpt-4o",),
        max_tokens=500,
        policy="reject",
        max_line_bytes=1 << 20,
    )
    with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as out:
        count = megabytes * 1024 * 1024 // (len(line) + 1)
        for _ in range(count // 1000):
            source.write((line + b"\n") * 1000)
        source.flush()
        body = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
        before = peak = anonymous_kb()
        started = time.perf_counter()
        for number, rewritten in enumerate(rewrite_batch_lines(body, 0, len(body), rules)):
            out.write(rewritten)
            if number % 1000 == 0:
                peak = max(peak, anonymous_kb())
        seconds = time.perf_counter() - started
        growth = peak - before
        size = len(body) / 1e6
        print(
            f"{size:.0f} MB, {count // 1000 * 1000} lines: {seconds:.2f} s, {size / seconds:.0f} MB/s; "
            f"peak anonymous memory growth {growth / 1024:.1f} MB"
        )


def anonymous_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon:"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
