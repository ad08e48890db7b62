"""Locate the fields of a multipart/form-data body without copying it, so one can be replaced exactly.

    form = MultipartForm.parse(body, content_type)
    form.value("model")                      # b"whisper-1"
    form.replace("model", b"my-deployment")  # the same bytes but that one value
    body, content_type = form_body({"model": "whisper-1"}, "a.wav", wav)   # a form to send in-process

Everything else (file names, part content types, repeated `timestamp_granularities[]` fields, the boundary)
stays byte-for-byte as the client sent it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from ..errors import InvalidRequest
from .spool import Body

_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    start: int  # the value's first byte
    end: int  # one past its last byte


class MultipartForm:
    __slots__ = ("body", "delimiter", "end", "parts")

    def __init__(self, body: Body, parts: list[Part], delimiter: bytes, end: int) -> None:
        self.body = body
        self.parts = parts
        self.delimiter = delimiter
        self.end = end  # where the closing delimiter starts

    @classmethod
    def parse(cls, body: Body, content_type: str) -> MultipartForm:
        found = _BOUNDARY.search(content_type)
        if not found:
            raise InvalidRequest("multipart/form-data request without a boundary parameter in Content-Type.")
        delimiter = b"--" + (found[1] or found[2]).encode("latin-1")
        parts: list[Part] = []
        position = body.find(delimiter)
        if position < 0:
            raise _malformed("the boundary never appears in the body")
        while True:
            closing = position
            position += len(delimiter)
            if body[position : position + 2] == b"--":  # a slice: large bodies are mmaps
                return cls(body, parts, delimiter, closing)
            header_start = body.find(b"\r\n", position)
            header_end = body.find(b"\r\n\r\n", position)
            if header_start < 0 or header_end < 0:
                raise _malformed("a part's headers never end (truncated upload?)")
            name = _NAME.search(body, header_start, header_end)
            value_start = header_end + 4
            next_delimiter = body.find(b"\r\n" + delimiter, value_start)
            if next_delimiter < 0:
                raise _malformed("the closing boundary is missing (truncated upload?)")
            if name:
                parts.append(Part(name[1].decode("utf-8", "replace"), value_start, next_delimiter))
            position = next_delimiter + 2

    def value(self, name: str) -> bytes | None:
        for part in self.parts:
            if part.name == name:
                return self.body[part.start : part.end]
        return None

    def replace(self, name: str, value: bytes) -> bytes:
        """The body with field `name` set to `value`; the field is appended when the form lacks it."""
        for part in self.parts:
            if part.name == name:
                return self.body[: part.start] + value + self.body[part.end :]
        added = b'%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (
            self.delimiter,
            name.encode(),
            value,
        )
        return self.body[: self.end] + added + self.body[self.end :]


def _malformed(why: str) -> InvalidRequest:
    return InvalidRequest(f"Malformed multipart/form-data body: {why}.")


def form_body(fields: dict[str, str], name: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with `fields` and `data` as `file`, and its content type (in-process calls)."""
    boundary = secrets.token_hex(16)
    safe = "".join("_" if c in '"\\\r\n' or ord(c) < 32 else c for c in name) or "audio"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode()
        for field, value in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = b"".join([*parts, head, data, f"\r\n--{boundary}--\r\n".encode()])
    return body, f"multipart/form-data; boundary={boundary}"
