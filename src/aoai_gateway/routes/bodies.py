"""Turning an HTTP request into a `Call`, with the body limit and content type its operation expects.

call = await read_call(request, limits, "audio/transcriptions", BodyKind.FORM)
"""

from __future__ import annotations

from ..api_call import Call, form_call, json_call
from ..config import BodyLimits
from ..errors import UnsupportedMediaType
from ..http.request import Request
from ..http.spool import read_spooled
from ..operations import BodyKind

_JSON_TYPES = ("application/json", "")


def _is_json(content_type: str) -> bool:
    return content_type in _JSON_TYPES or content_type.endswith("+json")


async def read_call(
    request: Request,
    limits: BodyLimits,
    operation: str,
    kind: BodyKind,
    model: str | None = None,
    max_upload: int | None = None,
) -> Call:
    """Read and parse the body of a known operation.

    `max_upload`: the largest multipart body any deployment takes (local models take more than Azure's 25 MiB;
    each deployment's own limit is applied once the model is known). Bodies past `limits.max_audio_bytes` are
    spooled to a temporary file instead of memory.
    """
    content_type = request.content_type
    if kind is BodyKind.FORM:
        if content_type != "multipart/form-data":
            raise UnsupportedMediaType(content_type, "multipart/form-data with the audio `file` and a `model` field")
        form = await read_spooled(request, max_upload or limits.max_audio_bytes, in_memory=limits.max_audio_bytes)
        request.exchange.bytes_in = len(form)
        return form_call(form, request.headers["content-type"], operation, model)
    if not _is_json(content_type):
        raise UnsupportedMediaType(content_type, "application/json")
    body = await request.body(limits.max_json_bytes)
    request.exchange.bytes_in = len(body)
    return json_call(body, operation, model)
