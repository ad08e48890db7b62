"""Azure's content-filter annotations, and the prompt markers that make the emulator trip the filter.

    check_prompt(["tell me [[content_filter]]"])   # raises ContentFiltered (Azure's 400)
    output_filtered("[[content_filter:output]]")    # -> True: answer 200 with finish_reason "content_filter"

Every annotation says "safe"; the dicts are shared and read-only (they are only ever serialised).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from .errors import ContentFiltered

__all__ = [
    "CHOICE_RESULTS",
    "CONTENT_FILTER_MARKER",
    "EMPTY_RESULTS",
    "IMAGE_PROMPT_RESULTS",
    "IMAGE_RESULTS",
    "OUTPUT_FILTER_MARKER",
    "PROMPT_RESULTS",
    "check_prompt",
    "filtered_choice_results",
    "output_filtered",
    "prompt_filter_results",
]

CONTENT_FILTER_MARKER: Final = "[[content_filter]]"
OUTPUT_FILTER_MARKER: Final = "[[content_filter:output]]"

_SAFE: Final = {"filtered": False, "severity": "safe"}
_NOT_DETECTED: Final = {"filtered": False, "detected": False}
_HARMS: Final = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}

EMPTY_RESULTS: Final[dict[str, Any]] = {}
PROMPT_RESULTS: Final = {**_HARMS, "jailbreak": _NOT_DETECTED}
CHOICE_RESULTS: Final = {
    **_HARMS,
    "protected_material_code": _NOT_DETECTED,
    "protected_material_text": _NOT_DETECTED,
}
IMAGE_RESULTS: Final = _HARMS
IMAGE_PROMPT_RESULTS: Final = {**_HARMS, "jailbreak": _NOT_DETECTED, "profanity": _NOT_DETECTED}


def prompt_filter_results(prompts: int = 1) -> list[dict[str, Any]]:
    """The top-level `prompt_filter_results`: one safe entry per prompt."""
    return [{"prompt_index": index, "content_filter_results": PROMPT_RESULTS} for index in range(prompts)]


def filtered_choice_results(category: str = "violence") -> dict[str, Any]:
    """A choice's annotations when the completion itself was filtered."""
    return {**CHOICE_RESULTS, category: {"filtered": True, "severity": "high"}}


def check_prompt(texts: Iterable[str]) -> None:
    """Raise Azure's 400 `content_filter` error when any prompt text carries the marker."""
    if any(CONTENT_FILTER_MARKER in text for text in texts):
        raise ContentFiltered()


def output_filtered(text: str) -> bool:
    """Whether the prompt asks for the completion to be filtered (finish_reason `content_filter`)."""
    return OUTPUT_FILTER_MARKER in text
