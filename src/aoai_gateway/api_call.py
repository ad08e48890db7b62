"""An API call's body as the gateway sees it: the `model` it names and how to change it without re-encoding.

call = json_call(request_body, operation="chat/completions")
call.model, call.stream
call.body_with_model("my-deployment")   # the original bytes unless the model really has to change
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import InvalidRequest
from .http.multipart import MultipartForm
from .http.spool import Body


@dataclass(slots=True)
class Call:
    """One proxied API call: the operation path, the model asked for, and the body as received."""

    operation: str
    model: str
    body: Body  # bytes, or the mapped temporary file of a large upload (http/spool.py)
    stream: bool = False
    document: dict[str, Any] | None = None
    form: MultipartForm | None = None
    client_api_version: str | None = None
    query: list[tuple[str, str]] | None = None
    patched: bool = False
    method: str = "POST"
    # The stored response this call refers to (its path, or a create's `previous_response_id`): routed sticky.
    response_id: str | None = None

    @property
    def content_type(self) -> bytes:
        """The body's media type, as an in-process caller's request would declare it."""
        if self.form is not None:
            return b"multipart/form-data; boundary=" + self.form.delimiter[2:]
        return b"application/json"

    def patch(self, field: str, value: Any) -> None:
        """Change one top-level JSON field (max_tokens clamping, stream_options); the body is re-encoded once."""
        if self.document is None:
            return
        self.document[field] = value
        self.patched = True

    def body_with_model(self, model: str | None) -> Body:
        """The body to send upstream: byte-for-byte unless it must name a different model or was patched."""
        if self.patched and self.document is not None:
            return orjson.dumps(self.document if model is None else {**self.document, "model": model})
        if model is None or model == self.model:
            return self.body
        if self.form is not None:
            return self.form.replace("model", model.encode())
        if self.document is not None:
            # Only this translation re-encodes JSON; orjson keeps key order and values.
            return orjson.dumps({**self.document, "model": model})
        return self.body


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; a duplicate key anywhere is refused, since the upstream might read the other one."""
    if not body:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc}.") from None
    if not isinstance(document, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if not _surely_unique(body, document):
        # orjson keeps the last of duplicate keys silently; the C scanner with a pairs hook sees them all. orjson
        # has already validated the text, so this pass cannot fail for any other reason.
        try:
            _DUPLICATES.decode(body.decode("utf-8"))
        except _DuplicateKey as exc:
            raise InvalidRequest(
                f"The JSON body names the key {exc.key!r} twice in one object; send each key once.",
                code="duplicate_key",
            ) from None
    return document


_SPACE_BEFORE_COLON = re.compile(rb'"[ \t\r\n]+:')


def _surely_unique(body: bytes, document: dict[str, Any]) -> bool:
    """True when the text cannot hold a duplicate key: a count, with no second parse (most requests).

    In valid JSON a `":` is either a key's closing quote and its colon, or an escaped quote inside a string.
    With no whitespace between any key and its colon, every key written contributes one `":`, so the count of
    `":` is at least the keys written, which are at least the distinct keys parsed; equality leaves no room for
    a duplicate. Anything else (spaced colons, `\":` in a text) goes to the exact check.
    """
    if _SPACE_BEFORE_COLON.search(body) is not None:
        return False
    keys = 0
    pending: list[Any] = [document]
    while pending:
        value = pending.pop()
        if type(value) is dict:  # orjson makes exact dicts and lists: `type` is the cheap test here
            keys += len(value)
            value = value.values()
        for item in value:
            if type(item) is dict or type(item) is list:
                pending.append(item)
    return body.count(b'":') == keys


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key[:64]


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return document


_DUPLICATES = json.JSONDecoder(object_pairs_hook=_unique_pairs)


def json_call(body: bytes, operation: str, model: str | None = None) -> Call:
    """A JSON call; `model` comes from the path when given (legacy engines route), else from the body."""
    document = parse_json(body)
    if model is None:
        model = _model_field(document.get("model"))
    stream = document.get("stream") is True
    call = Call(operation, model, body, stream=stream, document=document)
    if operation == "responses":
        previous = document.get("previous_response_id")
        if previous is not None and not isinstance(previous, str):
            raise InvalidRequest(
                "previous_response_id must be a string.", param="previous_response_id", code="invalid_type"
            )
        call.response_id = previous or None
    return call


def resource_call(operation: str, method: str, response_id: str) -> Call:
    """A call on one stored response (retrieve, delete, input items, cancel): no model, no body of its own."""
    return Call(operation, "", b"", method=method, response_id=response_id)


def form_call(body: Body, content_type: str, operation: str, model: str | None = None) -> Call:
    form = MultipartForm.parse(body, content_type)
    if model is None:
        raw = form.value("model")
        model = _model_field(raw.decode("utf-8", "replace").strip() if raw is not None else None)
    stream_field = form.value("stream")
    stream = stream_field is not None and stream_field.strip().lower() == b"true"
    return Call(operation, model, body, stream=stream, form=form)


def _model_field(value: object) -> str:
    if value is None or value == "":
        raise InvalidRequest("You must provide a model parameter.", param="model", code="missing_required_parameter")
    if not isinstance(value, str):
        raise InvalidRequest("The model parameter must be a string.", param="model", code="invalid_type")
    return value
