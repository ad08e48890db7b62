"""Names that speech recognition should spell right, given to Whisper as its `prompt`.

    vocabulary = Vocabulary.load(settings.calls.vocabulary_path)   # the config's list, read once at start
    prompt = await vocabulary.prompt_for(item)   # "Fjordline Seafood, Ingrid Solberg, ..." or None
    names = await vocabulary.names_for(item)     # the same names as a list: what respell.py writes back

Whisper takes its prompt as text said just before the recording, so names in it come out spelled that way. Three
lists are joined, broadest first: `calls.vocabulary_path` (a CRM export of company, product and contact names),
`vocabulary.txt` in the recording's folder (that team's or campaign's), and `NAME.vocabulary.txt` beside the
recording (this call's customer), or for a blob its `vocabulary` metadata (`item.hints`, azure_blob.py).
Whisper keeps only the prompt's last 224 tokens, so the most specific names go last and the list is cut from the
front, at a name, to `MAX_PROMPT_CHARS`. One name a line; blank lines and lines starting with `#` are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from .errors import SourceError
from .sources import SourceItem

__all__ = ["MAX_PROMPT_CHARS", "VOCABULARY_METADATA", "Vocabulary", "metadata_names", "prompt_names", "read_names"]

log = logging.getLogger("aoai_gateway.calls")

MAX_PROMPT_CHARS = 800  # about 200 tokens of names: what Whisper reads of a prompt
MAX_FILE_BYTES = 1 << 20
MAX_NAME_CHARS = 100
FOLDER_FILE = "vocabulary.txt"
CALL_SUFFIX = ".vocabulary.txt"
VOCABULARY_METADATA = "vocabulary"


@dataclass(frozen=True)
class Vocabulary:
    names: tuple[str, ...] = ()  # the config's list

    @classmethod
    def load(cls, path: str | None) -> Vocabulary:
        if path is None:
            return cls()
        try:
            return cls(tuple(read_names(Path(path).expanduser())))
        except OSError as exc:
            raise SourceError(f"calls.vocabulary_path {path}: {exc.strerror or exc}", retryable=False) from None

    async def prompt_for(self, item: SourceItem) -> str | None:
        """Whisper's prompt for this recording: the configured names, then its folder's and its own."""
        return prompt_text(await self.names_for(item))

    async def names_for(self, item: SourceItem) -> list[str]:
        """The names of this recording's prompt, most specific last: the configured ones, its folder's, its own,
        as many as the prompt holds (what respell.py compares the transcript with)."""
        local: list[str] = []
        if item.uri.startswith("/"):  # a file of a folder source: its sidecar lists may lie beside it
            recording = Path(item.uri)
            for sidecar in (recording.parent / FOLDER_FILE, recording.parent / (recording.name + CALL_SUFFIX)):
                local += await asyncio.to_thread(_read_if_there, sidecar)
        return prompt_names([*self.names, *local, *item.hints])


def prompt_text(names: list[str]) -> str | None:
    """The names as one comma-separated line, later names first to stay, at most MAX_PROMPT_CHARS; None if none."""
    kept = prompt_names(names)
    return ", ".join(kept) + "." if kept else None


def prompt_names(names: list[str]) -> list[str]:
    """The names a prompt keeps, in order: each once (at its latest place), the latest that fit MAX_PROMPT_CHARS."""
    seen: set[str] = set()
    unique = []
    for name in reversed(names):  # a name listed twice keeps its most specific (latest) place
        if name.casefold() not in seen:
            seen.add(name.casefold())
            unique.append(name)
    kept: list[str] = []
    size = 0
    for name in unique:
        if size + len(name) + 2 > MAX_PROMPT_CHARS:
            break
        kept.append(name)
        size += len(name) + 2
    return kept[::-1]


def read_names(path: Path) -> list[str]:
    """One name a line; blank and `#` lines skipped; control characters dropped; names over 100 characters cut."""
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES)
    return [name for name in _cleaned(data.decode("utf-8", "replace").splitlines()) if not name.startswith("#")]


def metadata_names(value: str | None) -> list[str]:
    """The names of a blob's `vocabulary` metadata: `;`-separated, each percent-decoded (UTF-8), cleaned."""
    return list(_cleaned(unquote(part) for part in (value or "").split(";")))


def _cleaned(lines: Iterator[str] | list[str]) -> Iterator[str]:
    """Each non-empty line with control and invisible characters dropped, spaces collapsed, cut to 100."""
    for line in lines:
        name = " ".join("".join(c for c in line if c.isprintable()).split())[:MAX_NAME_CHARS]
        if name:
            yield name


def _read_if_there(path: Path) -> list[str]:
    try:
        return read_names(path)
    except FileNotFoundError:
        return []
    except OSError as exc:  # a hint, not the call: transcribe without it
        log.warning("vocabulary %s unreadable, not used: %s", path, exc.strerror or exc)
        return []
