"""Settings of the files and batches surface (`/v1/files`, `/v1/batches`), which no model owns.

    settings.files.deployment       # whose endpoint holds every file and batch (default: the first azure one)
    settings.files.key_access       # auth: keys: "none" refuses files and batches; "own" shows a key its own ids

Files and batches live on one upstream resource, so a file id never has to be routed back to where it was made:
every files and batches call goes to the endpoint of `deployment`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024


class FilesSettings(BaseModel):
    """Where files and batches go, how large an upload and one batch line may be, and what a key may do.

    `key_access` (auth: keys only): `none` (default) answers 403 to every files and batches call, since the
    upstream resource's files are shared by all keys and batch tokens are not counted against a key's caps;
    `own` lets a key upload files and run batches, and see, read, delete and cancel only the ids it created
    (recorded in the gateway's database).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    deployment: str | None = None
    max_upload_bytes: int = Field(200 * MIB, ge=1024)
    max_line_bytes: int = Field(1 * MIB, ge=1024)
    key_access: Literal["none", "own"] = "none"


__all__ = ["FilesSettings"]
