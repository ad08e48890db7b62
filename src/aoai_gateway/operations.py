"""The closed set of API operations the gateway forwards: a name, and the body it takes.

    kind = operation_kind("chat/completions")     # JSON
    operation_kind("../premium/chat/completions")  # RouteNotFound: nothing is sent upstream

Upstream URLs are built from these names alone: a client's path text is never pasted into an upstream URL, so
dot segments, encoded slashes, `?` or `#` smuggled into a path cannot reach another deployment or another route
of the upstream resource. A later feature adds its operations here.
"""

from __future__ import annotations

from enum import Enum

from .errors import RouteNotFound


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
}


def operation_kind(name: str, method: str = "POST", path: str = "") -> BodyKind:
    """The body kind of a known operation; `RouteNotFound` for anything else."""
    kind = OPERATIONS.get(name)
    if kind is None:
        raise RouteNotFound(method, path or name)
    return kind


__all__ = ["OPERATIONS", "BodyKind", "operation_kind"]
