"""Where recordings come from: a local folder or an Azure Blob Storage container, chosen by URI from a registry.

    source = open_source("/srv/calls", settings.calls)                            # a folder (recursively)
    source = open_source("azure://calls?connection_string=...", settings.calls)  # a container (or prefix)
    for item in await source.scan():          # audio files only, by name
        async with source.fetch(item) as path: # a local file holding the content
            ...

Every item has a secret-free `uri` that stays valid across restarts and machines ("/srv/calls/a.wav",
"azure://calls/a.wav"): the store keeps it, and `open_source(split_item_uri(uri)[0], ...)` finds the source again
(a retry, a worker on another machine) with credentials from that process's settings (`calls.azure_storage`).
`version` changes whenever the content may have: modification time and size for files, the ETag for blobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config.calls import CallsSettings
from .errors import SourceError

AUDIO_EXTENSIONS = frozenset(
    {".flac", ".mp3", ".mp4", ".mpeg", ".mpga", ".m4a", ".ogg", ".oga", ".opus", ".wav", ".webm"}
)


@dataclass(frozen=True, slots=True)
class SourceItem:
    uri: str  # stable and secret-free: "/abs/path/a.wav", "azure://container/dir/a.wav"
    name: str  # relative to the source root: "dir/a.wav"
    size: int
    version: str  # "mtime_ns:size" for files, the ETag for blobs
    modified: float  # epoch seconds: the recording's timestamp as the source knows it
    # Names the source keeps with the recording (an Azure blob's `vocabulary` metadata): Whisper's prompt for it.
    hints: tuple[str, ...] = ()


class Source(Protocol):
    uri: str  # the source's own secret-free URI: "/abs/folder", "azure://container" or "azure://container/prefix"

    async def scan(self) -> list[SourceItem]:
        """The audio files under the source, sorted by name."""

    async def stat(self, name: str) -> SourceItem:
        """One item by its name relative to the source; SourceError when it is gone."""

    def fetch(self, item: SourceItem) -> contextlib.AbstractAsyncContextManager[Path]:
        """A local file with the item's content for the duration of the block (downloaded when remote)."""

    async def aclose(self) -> None: ...


def is_audio(name: str) -> bool:
    return Path(name).suffix.lower() in AUDIO_EXTENSIONS


class LocalSource:
    """A folder, read recursively; or a single file (its folder is the root)."""

    def __init__(self, path: str, suffixes: frozenset[str] = AUDIO_EXTENSIONS) -> None:
        root = Path(path).expanduser().resolve()
        self.suffixes = suffixes  # what counts as a recording: audio, or `calls eval`'s scripts (.json)
        if not root.exists():
            raise SourceError(f"{path}: no such file or folder")
        self._only = root.name if root.is_file() else None
        self.root = root.parent if root.is_file() else root
        self.uri = str(root)

    async def scan(self) -> list[SourceItem]:
        return await asyncio.to_thread(self._scan)

    def _scan(self) -> list[SourceItem]:
        if self._only is not None:
            return [self._item(self.root / self._only)]
        items = []
        for directory, _, files in os.walk(self.root):
            for file in files:
                if Path(file).suffix.lower() in self.suffixes and not file.startswith("."):
                    with contextlib.suppress(FileNotFoundError):  # deleted while we looked
                        items.append(self._item(Path(directory, file)))
        return sorted(items, key=lambda item: item.name)

    def _item(self, path: Path) -> SourceItem:
        info = path.stat()
        return SourceItem(
            uri=str(path),
            name=path.relative_to(self.root).as_posix(),
            size=info.st_size,
            version=f"{info.st_mtime_ns}:{info.st_size}",
            modified=info.st_mtime,
        )

    async def stat(self, name: str) -> SourceItem:
        try:
            return await asyncio.to_thread(self._item, self.root / name)
        except FileNotFoundError:
            raise SourceError(f"{self.root / name}: no such file", retryable=False) from None
        except OSError as exc:
            raise SourceError(f"{self.root / name}: {exc.strerror or exc}") from None

    @contextlib.asynccontextmanager
    async def fetch(self, item: SourceItem) -> AsyncIterator[Path]:
        yield Path(item.uri)

    async def aclose(self) -> None:
        return None


def _local(spec: str, settings: CallsSettings) -> Source:
    return LocalSource(spec.removeprefix("file://"))


def _azure(spec: str, settings: CallsSettings) -> Source:
    from .azure_blob import open_azure_source  # the Azure SDK loads only when a container is used

    return open_azure_source(spec, settings.azure_storage)


SOURCES: dict[str, Callable[[str, CallsSettings], Source]] = {"": _local, "file": _local, "azure": _azure}


def open_source(spec: str, settings: CallsSettings) -> Source:
    """The source a command-line SOURCE names: a path, `file://path` or `azure://container[/prefix][?...]`."""
    scheme = spec.split("://", 1)[0] if "://" in spec else ""
    try:
        factory = SOURCES[scheme]
    except KeyError:
        raise SourceError(f"{spec!r}: use a folder path or azure://container") from None
    return factory(spec, settings)


def split_item_uri(uri: str) -> tuple[str, str]:
    """(source spec, item name) of a stored item URI: the item's folder or container, and the rest."""
    if uri.startswith("azure://"):
        container, _, name = uri.removeprefix("azure://").partition("/")
        return f"azure://{container}", name
    path = Path(uri)
    return str(path.parent), path.name
