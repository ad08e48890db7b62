"""A stored call's recording, read back for the console's audio player: only from the sources configured for it.

    playback = await Playback.open(settings.calls)        # calls.playback_sources: folders, azure://containers
    recording = await playback.locate(record.source_uri)  # PermissionDenied outside them, NotFound when gone
    async with contextlib.aclosing(recording):
        async for chunk in recording.read(start, length): ...  # a byte range (HTTP Range, so the player can seek)
    await playback.aclose()

The request names a call id, never a path; the path is the one the store holds. Still, that path came from a file
name, so it is checked as if hostile: no `..` segment, and it must name a file inside a configured folder (itself
resolved once at start-up). The check and the open are one operation: the folder is opened as a directory and each
component below it opened relative to the last with O_NOFOLLOW, so a link anywhere below the folder (placed there,
or swapped in while the path is walked) is refused rather than followed, and what is served is the descriptor that
was opened, a regular file, never the path again. A blob must lie in a configured container (and prefix); it is
streamed through the Azure source's own client, a range at a time, never downloaded whole.
"""

from __future__ import annotations

import asyncio
import errno
import mimetypes
import os
import stat
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from ..config import ConfigError
from ..config.calls import CallsSettings
from ..errors import GatewayError, NotFound, PermissionDenied
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

    async def aclose(self) -> None:
        """Let go of what `locate` opened (a file's descriptor); the recording reads nothing after."""


class FileRecording:
    """A file opened (and checked) by `Playback.locate`: read by its descriptor, never by its path again."""

    __slots__ = ("_fd", "content_type", "size")

    def __init__(self, fd: int, size: int, content_type: str) -> None:
        self._fd = fd
        self.size = size
        self.content_type = content_type

    async def read(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        while length > 0:
            chunk = await asyncio.to_thread(os.pread, self._fd, min(CHUNK, length), offset)
            if not chunk:  # the file shrank since it was measured: end the body short
                return
            offset += len(chunk)
            length -= len(chunk)
            yield chunk

    async def aclose(self) -> None:
        if self._fd >= 0:
            # A read-only descriptor of a regular file: closing it does not wait on the disk.
            fd, self._fd = self._fd, -1
            os.close(fd)


@dataclass(frozen=True, slots=True)
class BlobRecording:
    source: AzureBlobSource
    uri: str
    size: int
    content_type: str

    def read(self, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        return self.source.read_range(self.uri, offset, length)

    async def aclose(self) -> None:
        return None  # each read is a download of its own, closed with its generator


@dataclass(frozen=True, slots=True)
class Folder:
    """A configured folder: `real` (links resolved at start-up) is opened; a stored path may spell it either way."""

    real: Path
    spellings: tuple[Path, ...]

    def below(self, given: Path) -> tuple[str, ...] | None:
        """The components of `given` below this folder, or None when it does not lie in it."""
        for spelling in self.spellings:
            if given.is_relative_to(spelling) and given != spelling:
                return given.relative_to(spelling).parts
        return None


class Playback:
    def __init__(self, folders: list[Folder], containers: list[AzureBlobSource]) -> None:
        self.folders = folders
        self.containers = containers

    @classmethod
    async def open(cls, calls: CallsSettings) -> Playback:
        folders: list[Folder] = []
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
                given = Path(spec.removeprefix("file://")).expanduser().absolute()
                real = await asyncio.to_thread(given.resolve)
                folders.append(Folder(real, (real,) if real == given else (real, given)))
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
        for folder in self.folders:
            if (parts := folder.below(given)) is not None:
                fd = _open_below(folder.real, parts)
                try:
                    info = os.fstat(fd)
                    if not stat.S_ISREG(info.st_mode):  # a FIFO, a device, a directory named like audio
                        raise PermissionDenied("This recording is not a regular file; the console plays only files.")
                    return FileRecording(fd, info.st_size, _content_type(given.name))
                except BaseException:
                    os.close(fd)
                    raise
        raise PermissionDenied(
            "The recording lies outside the folders in calls.playback_sources; the console plays only those."
        )

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


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Non-blocking: opening a FIFO named like a recording must not wait for a writer (it is refused after fstat).
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_LINKED = {errno.ELOOP, errno.EMLINK}  # O_NOFOLLOW met a link (EMLINK on some BSDs)


def _open_below(folder: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of `folder/parts...`, every component below the folder opened without following a link."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise NotFound("The recording's folder in calls.playback_sources cannot be opened.") from None
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                opened = os.open(part, _FILE if last else _DIRECTORY, dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, _is_link(fd, part)) from None
            os.close(fd)
            fd = opened
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(fd: int, part: str) -> bool:
    """Whether `part` is a link: O_DIRECTORY meeting a link to a directory says ENOTDIR, not ELOOP (only the
    status of the refusal depends on it; nothing is opened through it)."""
    try:
        return stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _refusal(exc: OSError, link: bool) -> GatewayError:
    if link or exc.errno in _LINKED or exc.errno == errno.EACCES:
        return PermissionDenied(
            "The recording is reached through a link, or cannot be read; the console plays only files inside "
            "the folders in calls.playback_sources."
        )
    # ENOENT, ENOTDIR (a component turned into a file or a link to one), and any other: gone from where it was read.
    return NotFound("The recording is no longer where the call was read from.")


def _content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
