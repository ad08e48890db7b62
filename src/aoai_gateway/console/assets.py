"""The console's static files (CSS, JavaScript), shipped in the package and read once at start-up.

    assets = Assets.load()                      # every file of console/static/, in memory
    assets.url("/console", "playground.js")     # "/console/static/playground.js?v=3f2a9c1b" (content hash)
    asset = assets.get("playground.js")         # None for anything else: no path ever reaches the disk

Nothing is fetched from a CDN: the console works offline and behind strict firewalls. URLs carry the content's
hash, so browsers may keep a file for a day and still see a new release at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

_TYPES = {
    ".css": b"text/css; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: bytes
    version: str


class Assets:
    def __init__(self, files: dict[str, Asset]) -> None:
        self._files = files

    @classmethod
    def load(cls) -> Assets:
        """Every file of the package's console/static/ (read at start-up, before any request)."""
        files: dict[str, Asset] = {}
        for entry in resources.files(__package__).joinpath("static").iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in _TYPES:
                body = entry.read_bytes()
                files[entry.name] = Asset(body, _TYPES[suffix], hashlib.sha256(body).hexdigest()[:12])
        return cls(files)

    def get(self, name: str) -> Asset | None:
        return self._files.get(name)

    def url(self, prefix: str, name: str) -> str:
        return f"{prefix}/static/{name}?v={self._files[name].version}"
