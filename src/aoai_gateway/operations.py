"""The closed set of API operations the gateway forwards: a name, and the body it takes.

    kind = operation_kind("chat/completions")     # JSON
    operation_kind("../premium/chat/completions")  # RouteNotFound: nothing is sent upstream

Upstream URLs are built from these names alone: a client's path text is never pasted into an upstream URL, so
dot segments, encoded slashes, `?` or `#` smuggled into a path cannot reach another deployment or another route
of the upstream resource. A later feature adds its operations here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .errors import InvalidRequest, RouteNotFound


class BodyKind(Enum):
    JSON = "json"
    FORM = "form"


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
class ResourceOperation:
    """An operation on one stored object: its method and the path it takes upstream, `{id}` for the object."""

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


RESOURCE_OPERATIONS: dict[str, ResourceOperation] = {
    "responses.retrieve": ResourceOperation("GET", "responses/{id}"),
    "responses.delete": ResourceOperation("DELETE", "responses/{id}"),
    "responses.input_items": ResourceOperation("GET", "responses/{id}/input_items"),
    "responses.cancel": ResourceOperation("POST", "responses/{id}/cancel"),
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


__all__ = [
    "OPERATIONS",
    "RESOURCE_OPERATIONS",
    "RESPONSE_ID",
    "BodyKind",
    "ResourceOperation",
    "is_responses",
    "operation_kind",
]
