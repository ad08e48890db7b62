"""POST /openai/v1/realtime/client_secrets: an ephemeral key for a browser's realtime session.

create_client_secret(call)   # -> {"value": "ek_...", "expires_at": ..., "session": {...}}
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from .call import Call, Reply
from .errors import InvalidRequest

_DEFAULT_SECONDS = 600
_MAX_SECONDS = 7200


def create_client_secret(call: Call) -> Reply:
    session = call.json.get("session")
    if not isinstance(session, dict):
        raise InvalidRequest(
            "Missing required parameter: 'session'.", param="session", code="missing_required_parameter"
        )
    expires = call.json.get("expires_after") or {}
    seconds = expires.get("seconds", _DEFAULT_SECONDS) if isinstance(expires, dict) else _DEFAULT_SECONDS
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 10 <= seconds <= _MAX_SECONDS:
        raise InvalidRequest(
            f"Invalid 'expires_after.seconds': must be an integer from 10 to {_MAX_SECONDS}.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    expires_at = int(time.time()) + seconds
    described: dict[str, Any] = {
        "type": "realtime",
        "object": "realtime.session",
        "id": f"sess_{uuid.uuid4().hex[:22]}",
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "expires_at": expires_at,
        **session,
        "model": call.deployment.model,
    }
    return Reply.json({"value": "ek_" + secrets.token_hex(16), "expires_at": expires_at, "session": described})
