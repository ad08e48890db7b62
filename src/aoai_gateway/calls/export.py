"""Calls out of the store: JSON lines (the whole documents) or CSV (one column per extracted field).

write_export(records, "csv", sys.stdout)

Every CSV cell, the header's field names included, goes through `csvsafe.neutralise`: a transcript, a file name
or a schema can make text start like a spreadsheet formula. Numeric fields stay numbers.
"""

from __future__ import annotations

import csv
import json
from typing import TextIO

from ..csvsafe import neutralised
from .display import json_text
from .store import CallRecord

_CSV_HEAD = ["id", "status", "name", "source_uri", "duration_seconds", "language", "attempts", "error", "processed_at"]


def write_export(records: list[CallRecord], output: str, out: TextIO) -> None:
    if output == "jsonl":
        for record in records:
            document = record.document or {
                "id": record.id,
                "status": record.status,
                "source": {"uri": record.source_uri, "name": record.name},
                "error": record.error,
                "attempts": record.attempts,
            }
            out.write(json_text({**document, "status": record.status}) + "\n")
        return
    fields: list[str] = []
    for record in records:  # every field any call has, in schema order of first appearance
        fields += [name for name in (record.fields or {}) if name not in fields]
    writer = csv.writer(out)
    writer.writerow(neutralised(_CSV_HEAD + fields))
    for r in records:
        language = ((r.document or {}).get("audio") or {}).get("language")
        processed = (r.document or {}).get("processed_at")
        head = [r.id, r.status, r.name, r.source_uri, r.duration_seconds, language, r.attempts, r.error, processed]
        values = [_cell((r.fields or {}).get(name)) for name in fields]
        writer.writerow(neutralised(["" if v is None else v for v in head] + values))


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, int | float):  # a number stays one (bool is an int: written True/False)
        return value
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
