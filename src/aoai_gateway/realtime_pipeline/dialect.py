"""The beta Realtime protocol, for clients that still speak it (`client.beta.realtime.connect()`, which sends
`OpenAI-Beta: realtime=v1`): the session writes GA events, and a beta session's are renamed on their way out.

    beta = speaks_beta(request.headers)          # from the handshake's forwarded headers
    event = to_beta(event)                       # None: GA-only, not sent (conversation.item.done)

Beta names: `response.audio.delta` for `response.output_audio.delta`, `response.audio_transcript.*`,
`response.text.*`, `conversation.item.created` for `.added`; an item's `output_audio` / `output_text` parts are
`audio` / `text`; the session object is the beta's flat one (`modalities`, `voice`, `turn_detection`, `pcm16`).
What a client sends is read in either shape already (session_config.py, conversation.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_RENAMED = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "conversation.item.added": "conversation.item.created",
}
_GA_ONLY = frozenset({"conversation.item.done"})
_PARTS = {"output_audio": "audio", "output_text": "text"}


def speaks_beta(headers: Iterable[tuple[str, str]]) -> bool:
    return any(name.lower() == "openai-beta" and "realtime=v1" in value.lower() for name, value in headers)


def to_beta(event: dict[str, Any]) -> dict[str, Any] | None:
    kind = event["type"]
    if kind in _GA_ONLY:
        return None
    event = {**event, "type": _RENAMED.get(kind, kind)}
    if isinstance(event.get("item"), dict):
        event["item"] = _item(event["item"])
    if isinstance(event.get("response"), dict):
        response = event["response"]
        event["response"] = {
            **{k: v for k, v in response.items() if k not in ("output_modalities", "audio")},
            "modalities": ["text", "audio"] if response.get("output_modalities") == ["audio"] else ["text"],
            "output": [_item(item) for item in response.get("output", [])],
        }
    if isinstance(event.get("session"), dict):
        event["session"] = _session(event["session"])
    return event


def _item(item: dict[str, Any]) -> dict[str, Any]:
    content = item.get("content")
    if not isinstance(content, list):
        return item
    return {**item, "content": [{**part, "type": _PARTS.get(part["type"], part["type"])} for part in content]}


def _session(session: dict[str, Any]) -> dict[str, Any]:
    audio = session["audio"]
    return {
        "object": "realtime.session",
        "id": session["id"],
        "model": session["model"],
        "modalities": ["text", "audio"] if session["output_modalities"] == ["audio"] else ["text"],
        "instructions": session["instructions"],
        "voice": audio["output"]["voice"],
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": audio["input"]["transcription"],
        "turn_detection": audio["input"]["turn_detection"],
        "tools": session["tools"],
        "tool_choice": session["tool_choice"],
        "max_response_output_tokens": "inf",
    }
