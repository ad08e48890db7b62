"""`completions` (the legacy text API): one choice per prompt and `n`, echoing the prompt back.

    reply = create_completion(call)   # {"object": "text_completion", "choices": [{"text": "You said: ..."}]}

`prompt` may be a string, a list of strings, a token array or a list of token arrays (tokens are counted,
not decoded). `max_tokens` defaults to 16, as in the OpenAI API, so long echoes end with "length".
Fixed content (`x-emulator-content`, `responses`) and the filter markers work as for chat.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .call import Call, Reply
from .chat import usage_block
from .errors import InvalidRequest
from .filters import CHOICE_RESULTS, EMPTY_RESULTS, check_prompt, filtered_choice_results, output_filtered
from .filters import prompt_filter_results as prompt_results
from .tokens import count_tokens, split_for_stream, truncate
from .validation import optional_bool, optional_int, optional_mapping

__all__ = ["create_completion"]

_DEFAULT_MAX_TOKENS = 16


def create_completion(call: Call) -> Reply:
    body = call.json
    prompts = _prompts(body.get("prompt"))
    check_prompt(text for text, _ in prompts)
    n = optional_int(body, "n", minimum=1, maximum=128) or 1
    max_tokens = optional_int(body, "max_tokens", minimum=0)
    limit = _DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    echo = optional_bool(body, "echo") or False
    stream = optional_bool(body, "stream") or False
    include_usage = bool((optional_mapping(body, "stream_options") or {}).get("include_usage"))
    fixed = call.fixed_content()

    choices: list[tuple[str, str]] = []  # (text, finish_reason)
    for text, _ in prompts:
        if output_filtered(text):
            choices += [("", "content_filter")] * n
            continue
        answer = fixed if fixed is not None else f"You said: {text.strip()}"
        answer, cut = truncate(answer, limit)
        choices += [((text if echo else "") + answer, "length" if cut else "stop")] * n

    prompt_tokens = sum(tokens for _, tokens in prompts)
    completion_tokens = sum(count_tokens(text) for text, _ in choices)
    usage = usage_block(prompt_tokens, completion_tokens)
    head = {
        "id": f"cmpl-{os.urandom(15).hex()[:29]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": call.deployment.model,
    }
    total = prompt_tokens + completion_tokens
    if stream:
        return Reply.sse(_stream_events(head, choices, len(prompts), usage if include_usage else None), tokens=total)
    return Reply.json(
        {
            **head,
            "prompt_filter_results": prompt_results(len(prompts)),
            "choices": [
                {
                    "text": text,
                    "index": index,
                    "finish_reason": finish,
                    "logprobs": None,
                    "content_filter_results": _results(finish),
                }
                for index, (text, finish) in enumerate(choices)
            ],
            "usage": {key: usage[key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")},
        },
        tokens=total,
    )


def _prompts(prompt: Any) -> list[tuple[str, int]]:
    """Each prompt's text and token count."""
    if prompt is None:
        return [("", 1)]  # the API's default prompt is the end-of-text token
    if isinstance(prompt, str):
        return [(prompt, count_tokens(prompt))]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(item, str) for item in prompt):
            return [(item, count_tokens(item)) for item in prompt]
        if all(isinstance(item, int) for item in prompt):
            return [("", len(prompt))]
        if all(isinstance(item, list) and all(isinstance(t, int) for t in item) for item in prompt):
            return [("", len(item)) for item in prompt]
    raise InvalidRequest(
        "Invalid type for 'prompt': expected a string, an array of strings, an array of tokens, or an array "
        "of token arrays.",
        param="prompt",
        code="invalid_type",
    )


def _results(finish: str) -> dict[str, Any]:
    return filtered_choice_results() if finish == "content_filter" else CHOICE_RESULTS


def _stream_events(
    head: dict[str, Any], choices: list[tuple[str, str]], prompts: int, usage: dict[str, Any] | None
) -> list[dict[str, Any]]:
    def event(index: int, text: str, finish: str | None, results: dict[str, Any]) -> dict[str, Any]:
        choice = {"text": text, "index": index, "finish_reason": finish, "logprobs": None}
        return {**head, "choices": [{**choice, "content_filter_results": results}]}

    events: list[dict[str, Any]] = [
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": prompt_results(prompts),
        }
    ]
    for index, (text, finish) in enumerate(choices):
        events += [event(index, piece, None, CHOICE_RESULTS) for piece in split_for_stream(text)]
        events.append(event(index, "", finish, _results(finish) if finish == "content_filter" else EMPTY_RESULTS))
    if usage is not None:
        events.append({**head, "choices": [], "usage": usage})
    return events
