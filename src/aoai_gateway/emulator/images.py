"""`images/generations`: a small grey PNG per image, as a URL served by the emulator or as `b64_json`.

    reply = create_images(call)   # {"created": ..., "data": [{"url": ..., "revised_prompt": ..., ...}]}

Each item carries Azure's `content_filter_results` and `prompt_filter_results`. The URL points at
`/_emulator/image.png` on the emulator itself, so clients that download the image get real PNG bytes.
`response_format` defaults to `url`, except for `gpt-image-*` models, which only return `b64_json`.
dall-e-3 models refuse `n` > 1, as Azure does.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from functools import cache

from .call import Call, Reply
from .errors import InvalidRequest
from .filters import IMAGE_PROMPT_RESULTS, IMAGE_RESULTS, check_prompt
from .tokens import count_tokens
from .validation import optional_choice, optional_int, required_str

__all__ = ["IMAGE_PATH", "create_images", "png_bytes"]

IMAGE_PATH = "/_emulator/image.png"
_SIDE = 64


def create_images(call: Call) -> Reply:
    body = call.json
    prompt = required_str(body, "prompt")
    check_prompt([prompt])
    model = call.deployment.model
    n = optional_int(body, "n", minimum=1, maximum=10) or 1
    if n > 1 and "dall-e-3" in model:
        raise InvalidRequest("You may only request 1 image at a time when using dall-e-3.", param="n")
    default_format = "b64_json" if model.startswith("gpt-image") else "url"
    response_format = optional_choice(body, "response_format", ("url", "b64_json"), default_format)
    picture = (
        {"b64_json": base64.b64encode(png_bytes()).decode()}
        if response_format == "b64_json"
        else {"url": call.base_url + IMAGE_PATH}
    )
    item = {
        **picture,
        "revised_prompt": prompt,
        "content_filter_results": IMAGE_RESULTS,
        "prompt_filter_results": IMAGE_PROMPT_RESULTS,
    }
    return Reply.json({"created": int(time.time()), "data": [item] * n}, tokens=count_tokens(prompt))


@cache
def png_bytes() -> bytes:
    """A valid 64x64 mid-grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", _SIDE, _SIDE, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\x00" + b"\x80" * _SIDE for _ in range(_SIDE))  # filter byte 0, then the pixels
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
