"""A stored call's recording, read back for the console's audio player: only from the sources configured for it.

    playback = await Playback.open(settings.calls)        # calls.playback_sources: folders, azure://containers
    recording = await playback.locate(record.source_uri)  # PermissionDenied outside them, NotFound when gone
    async for chunk in recording.read(start, length): ...  # a byte range (HTTP Range, so the player can seek)
    await playback.aclose()

The request names a call id, never a path; the path is the one the store holds. Still, that path came from a file
name, so it is checked as if hostile: no `..` segment, and after resolving every link it must lie inside a
configured folder (itself resolved once at start-up), so neither a crafted URI nor a symlink placed in the folder
reads a file outside it. A blob must lie in a configured container (and prefix); it is streamed through the Azure
source's own client, a range at a time, never downloaded whole.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from ..config import ConfigError
from ..config.calls import CallsSettings
from ..errors import NotFound, PermissionDenied
from ..extras import MissingExtra
from .errors import SourceError
from .sources import is_audio

if TYPE_CHECKING:
    from .azure_blob import AzureBlobSource

__all__ = ["Playback", "Recording"]

CHUNK = 256 * 1024
_TYPES = {".opus": "audio/ogg", ".oga": "audio/ogg", ".m4a": "audio/mp4", ".mpga": "audio/mpeg", ".webm": "audio/webm"}


class Recording(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def content_type(self) -> str: ...

    def read(self, offset: int, length: int) -> AsyncGenerator[bytes, None]: ...


@dataclass(frozen=True, slots=True)
class FileRecording:
    path: Path
    size: int
    content_type: str

    async def read(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        file = await asyncio.to_thread(self.path.open, "rb")
        try:
            await asyncio.to_thread(file.seek, offset)
            while length > 0:
                chunk = await asyncio.to_thread(file.read, min(CHUNK, length))
                if not chunk:  # the file shrank since it was measured: end the body short
                    return
                length -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(file.close)


@dataclass(frozen=True, slots=True)
class BlobRecording:
    source: AzureBlobSource
    uri: str
    size: int
    content_type: str

    def read(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        return self.source.read_range(self.uri, offset, length)


class Playback:
    def __init__(self, folders: list[Path], containers: list[AzureBlobSource]) -> None:
        self.folders = folders
        self.containers = containers

    @classmethod
    async def open(cls, calls: CallsSettings) -> Playback:
        folders: list[Path] = []
        containers: list[AzureBlobSource] = []
        for spec in calls.playback_sources:
            if spec.startswith("azure://"):
                try:  # the Azure SDK loads only when a container is used
                    from .azure_blob import open_azure_source
                except ModuleNotFoundError as exc:  # its name is "azure" (azure.core), which `needs` does not match
                    raise MissingExtra("calls.playback_sources: azure://", "calls") from exc

                try:
                    containers.append(open_azure_source(spec, calls.azure_storage))
                except SourceError as exc:  # a start-up problem of the configuration, said as one
                    raise ConfigError(f"calls.playback_sources: {exc.message}") from None
            else:
                folders.append(await asyncio.to_thread(Path(spec.removeprefix("file://")).expanduser().resolve))
        return cls(folders, containers)

    @property
    def configured(self) -> bool:
        return bool(self.folders or self.containers)

    async def locate(self, uri: str) -> Recording:
        """The recording at a stored item URI, if it lies in a configured source."""
        if uri.startswith("azure://"):
            return await self._blob(uri)
        return await asyncio.to_thread(self._file, uri)

    def _file(self, uri: str) -> FileRecording:
        given = Path(uri)
        if not given.is_absolute() or ".." in given.parts or "\x00" in uri or not is_audio(given.name):
            raise PermissionDenied("This recording's path is not one the console plays.")
        try:
            real = given.resolve(strict=True)
        except (OSError, RuntimeError):  # gone, or a loop of links
            raise NotFound("The recording is no longer where the call was read from.") from None
        if not any(real.is_relative_to(folder) for folder in self.folders) or not real.is_file():
            raise PermissionDenied(
                "The recording lies outside the folders in calls.playback_sources; the console plays only those."
            )
        return FileRecording(real, real.stat().st_size, _content_type(real.name))

    async def _blob(self, uri: str) -> BlobRecording:
        name = uri.removeprefix("azure://")
        if ".." in PurePosixPath(name).parts or not is_audio(name):
            raise PermissionDenied("This recording's name is not one the console plays.")
        for source in self.containers:
            if uri.startswith(source.uri.rstrip("/") + "/"):
                try:
                    size = await source.size_of(uri)
                except SourceError as exc:
                    raise NotFound(f"The recording cannot be read: {exc.message}") from None
                return BlobRecording(source, uri, size, _content_type(name))
        raise PermissionDenied(
            "The recording lies outside the containers in calls.playback_sources; the console plays only those."
        )

    async def aclose(self) -> None:
        for source in self.containers:
            await source.aclose()


def _content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
