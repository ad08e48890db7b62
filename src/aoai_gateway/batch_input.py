"""A batch input file, checked and rewritten line by line: OpenAI model names become the deployments that serve them.

    rules = BatchLineRules(targets={"gpt-4o": "chat-4o"}, models=None, max_tokens=None, policy="reject",
                           max_line_bytes=1 << 20)
    for line in rewrite_batch_lines(body, start, end, rules): out.write(line)   # one line in memory at a time

Every line must be one JSON object (`custom_id`, `method: POST`, a batchable `url`, a `body` naming a `model`),
with no key named twice; its model must be configured with a deployment on the files resource and, in keys mode,
be allowed to the key; with a key's `max_tokens` cap each token field is checked (refused or clamped by
`access.max_tokens_policy`) and one is inserted where the request generates and names none. The first line that
fails is refused with its number, before anything is sent upstream. Lines are re-encoded only where they change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .api_call import parse_json
from .errors import GatewayError, InvalidRequest, PermissionDenied
from .http.spool import Body

# The operations a batch line may name (OpenAI's with /v1, Azure's documented ones without).
OPENAI_BATCH_URLS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses")
BATCH_URLS = frozenset({*OPENAI_BATCH_URLS, *(url.removeprefix("/v1") for url in OPENAI_BATCH_URLS)})
_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
_INSERTED = {"chat/completions": "max_completion_tokens", "responses": "max_output_tokens"}


@dataclass(frozen=True, slots=True)
class BatchLineRules:
    """What a line may name: `targets` maps a model (or deployment) name to its deployment on the files resource."""

    targets: Mapping[str, tuple[str, str]]  # name in a line -> (model, deployment on the files resource)
    configured: frozenset[str]  # every configured model and deployment name, to tell "elsewhere" from "unknown"
    models: tuple[str, ...] | None  # the key's allowlist; None: any
    max_tokens: int | None  # the key's per-request cap; None: none
    policy: Literal["reject", "clamp"]
    max_line_bytes: int


def rewrite_batch_lines(body: Body, start: int, end: int, rules: BatchLineRules) -> Iterator[bytes]:
    """The lines of `body[start:end]`, checked and rewritten, each ending in a newline."""
    position, number = start, 0
    while position < end:
        number += 1
        # Look for the newline no further than one line may reach: a line without one is never scanned whole.
        newline = body.find(b"\n", position, min(end, position + rules.max_line_bytes + 2))
        if newline < 0 and end - position > rules.max_line_bytes + 1:
            raise _refused(number, f"is longer than {rules.max_line_bytes} bytes")
        stop = end if newline < 0 else newline
        raw = body[position:stop]
        position = stop + 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > rules.max_line_bytes:
            raise _refused(number, f"is longer than {rules.max_line_bytes} bytes")
        if not raw.strip():
            if position >= end:
                break  # a trailing empty line
            raise _refused(number, "is empty; every line must be one request")
        yield _rewritten(raw, number, rules)


def _rewritten(raw: bytes, number: int, rules: BatchLineRules) -> bytes:
    try:
        line = parse_json(raw)
    except InvalidRequest as exc:
        raise _refused(number, f"is not a valid JSON object ({exc.message})", code=exc.code) from None
    if not isinstance(line.get("custom_id"), str) or not line["custom_id"]:
        raise _refused(number, "needs a `custom_id` string")
    if line.get("method") != "POST":
        raise _refused(number, 'needs `"method": "POST"`')
    url = line.get("url")
    if url not in BATCH_URLS:
        raise _refused(number, f"names `url` {str(url)[:80]!r}; a batch runs {', '.join(OPENAI_BATCH_URLS)}")
    request = line.get("body")
    if not isinstance(request, dict):
        raise _refused(number, "needs a `body` object")
    name = request.get("model")
    if not isinstance(name, str) or not name:
        raise _refused(number, "needs a `model` in its body")
    target = rules.targets.get(name)
    if target is None:
        where = "has no deployment on the files resource" if name in rules.configured else "is not served here"
        raise _refused(number, f"names the model `{name[:80]}`, which {where}", code="model_not_found")
    model, deployment = target
    if rules.models is not None and model not in rules.models:
        raise _refused(
            number, f"names `{model}`, which this key may not use", code="model_not_allowed", error=PermissionDenied
        )
    changed = _bound_tokens(request, str(url).removeprefix("/v1/").lstrip("/"), number, rules)
    if deployment != name:
        request["model"] = deployment
        changed = True
    return (orjson.dumps(line) if changed else raw) + b"\n"


def _bound_tokens(request: dict[str, Any], operation: str, number: int, rules: BatchLineRules) -> bool:
    """Apply the key's per-request cap to this line like to a served request; True when the line changed."""
    cap = rules.max_tokens
    if cap is None:
        return False
    changed = False
    named = False
    for field in _TOKEN_FIELDS:
        value = request.get(field)
        if value is None:
            continue
        named = True
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _refused(number, f"has a {field} that is not a non-negative integer", code="invalid_type")
        if value > cap:
            if rules.policy == "reject":
                why = f"asks {field} {value}, above this key's cap of {cap}"
                raise _refused(number, why, code="max_tokens_exceeded")
            request[field] = cap
            changed = True
    if not named and operation in _INSERTED:
        request[_INSERTED[operation]] = cap
        changed = True
    return changed


def _refused(
    number: int, why: str, *, code: str | None = "invalid_batch_line", error: type[GatewayError] = InvalidRequest
) -> GatewayError:
    return error(f"Line {number} of the batch input file {why}.", param="file", code=code or "invalid_batch_line")


__all__ = ["BATCH_URLS", "OPENAI_BATCH_URLS", "BatchLineRules", "rewrite_batch_lines"]
