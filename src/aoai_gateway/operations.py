"""The closed set of API operations the gateway forwards: a name, and the body it takes.

    kind = operation_kind("chat/completions")     # JSON
    operation_kind("../premium/chat/completions")  # RouteNotFound: nothing is sent upstream

Upstream URLs are built from these names alone: a client's path text is never pasted into an upstream URL, so
dot segments, encoded slashes, `?` or `#` smuggled into a path cannot reach another deployment or another route
of the upstream resource. A later feature adds its operations here.

Operations that are not scoped to a model (files, batches) are `ResourceOperation`s: a method, a path template
and the body they take; the ids in their paths must match a strict pattern before they are placed into the
upstream path, so only `file-...` / `batch_...` ids of letters and digits ever reach it:

    operation, ids = resource_operation("GET", "files/file-abc123/content")   # files/{file_id}/content
    operation.path(ids)                                                       # "files/file-abc123/content"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .errors import InvalidRequest, RouteNotFound


class BodyKind(Enum):
    JSON = "json"
    FORM = "form"
    NONE = "none"  # nothing is read: GET, DELETE, a cancel


OPERATIONS: dict[str, BodyKind] = {
    "chat/completions": BodyKind.JSON,
    "completions": BodyKind.JSON,
    "embeddings": BodyKind.JSON,
    "images/generations": BodyKind.JSON,
    "audio/speech": BodyKind.JSON,
    "audio/transcriptions": BodyKind.FORM,
    "audio/translations": BodyKind.FORM,
    "responses": BodyKind.JSON,
}

# Operations that name a stored Responses object in their path. The id is checked against a strict pattern and
# then placed into the upstream path here; nothing else of the client's path is used.
RESPONSE_ID = re.compile(r"resp_[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True, slots=True)
class ResponseOperation:
    """An operation on one stored response: its method and the path it takes upstream, `{id}` for the response."""

    method: str
    template: str

    def path(self, object_id: str) -> str:
        """The upstream operation path for a validated id; `InvalidRequest` for anything else."""
        if RESPONSE_ID.fullmatch(object_id) is None:
            raise InvalidRequest(
                "Invalid 'response_id': expected an ID that begins with 'resp_' followed by letters, digits, "
                "'_' or '-' (at most 128).",
                param="response_id",
                code="invalid_value",
            )
        return self.template.replace("{id}", object_id)


RESPONSE_OPERATIONS: dict[str, ResponseOperation] = {
    "responses.retrieve": ResponseOperation("GET", "responses/{id}"),
    "responses.delete": ResponseOperation("DELETE", "responses/{id}"),
    "responses.input_items": ResponseOperation("GET", "responses/{id}/input_items"),
    "responses.cancel": ResponseOperation("POST", "responses/{id}/cancel"),
}


def is_responses(operation: str) -> bool:
    """Whether an upstream operation path belongs to the Responses API (create, or one stored response)."""
    return operation == "responses" or operation.startswith("responses/")


def operation_kind(name: str, method: str = "POST", path: str = "") -> BodyKind:
    """The body kind of a known operation; `RouteNotFound` for anything else."""
    kind = OPERATIONS.get(name)
    if kind is None:
        raise RouteNotFound(method, path or name)
    return kind


# What an id in a path must look like before it is placed into an upstream path (OpenAI's and Azure's own shapes).
ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "file_id": re.compile(r"file-[A-Za-z0-9]{1,64}"),
    "batch_id": re.compile(r"batch_[A-Za-z0-9]{1,64}"),
}
_SEGMENT = re.compile(r"{(\w+)}")


@dataclass(frozen=True, slots=True)
class ResourceOperation:
    """A forwarded operation on the upstream resource itself (not a deployment): `GET files/{file_id}`."""

    method: str
    template: str
    body: BodyKind

    def path(self, ids: dict[str, str]) -> str:
        """The upstream path with each id checked against its pattern again (never the client's text unchecked)."""

        def fill(match: re.Match[str]) -> str:
            value = ids[match[1]]
            if not ID_PATTERNS[match[1]].fullmatch(value):
                raise RouteNotFound(self.method, self.template)
            return value

        return _SEGMENT.sub(fill, self.template)


RESOURCE_OPERATIONS: tuple[ResourceOperation, ...] = (
    ResourceOperation("POST", "files", BodyKind.FORM),
    ResourceOperation("GET", "files", BodyKind.NONE),
    ResourceOperation("GET", "files/{file_id}", BodyKind.NONE),
    ResourceOperation("DELETE", "files/{file_id}", BodyKind.NONE),
    ResourceOperation("GET", "files/{file_id}/content", BodyKind.NONE),
    ResourceOperation("POST", "batches", BodyKind.JSON),
    ResourceOperation("GET", "batches", BodyKind.NONE),
    ResourceOperation("GET", "batches/{batch_id}", BodyKind.NONE),
    ResourceOperation("POST", "batches/{batch_id}/cancel", BodyKind.NONE),
)
_RESOURCE_PATTERNS = [
    (re.compile("^" + _SEGMENT.sub(lambda m: f"(?P<{m[1]}>[^/]+)", op.template) + "$"), op)
    for op in RESOURCE_OPERATIONS
]


def resource_operation(method: str, path: str) -> tuple[ResourceOperation, dict[str, str]]:
    """The resource operation `path` names (e.g. "files/file-1/content") and its checked ids; else `RouteNotFound`."""
    for pattern, operation in _RESOURCE_PATTERNS:
        found = pattern.match(path)
        if found is None or operation.method != method:
            continue
        ids = found.groupdict()
        if all(ID_PATTERNS[name].fullmatch(value) for name, value in ids.items()):
            return operation, ids
        break  # the right shape with a hostile id: nothing is sent upstream
    raise RouteNotFound(method, path)


__all__ = [
    "ID_PATTERNS",
    "OPERATIONS",
    "RESOURCE_OPERATIONS",
    "RESPONSE_ID",
    "RESPONSE_OPERATIONS",
    "BodyKind",
    "ResourceOperation",
    "ResponseOperation",
    "is_responses",
    "operation_kind",
    "resource_operation",
]
