"""The QR code of an event's registration link, drawn on the server as SVG (segno: pure Python, no image library).

    GET {prefix}/events/{event_id}/qr.svg      the link `{origin}{prefix}/events/{event_id}` as a QR code

Public like the landing page it points to (the link is what organisers hand out). The origin is the one the
browser asked for (its Host header), as the page beside it shows; the answer is never cached, so no shared cache
can keep a code drawn for another Host.
"""

from __future__ import annotations

import io

import segno

from .pages import Html, Visit

SVG = b"image/svg+xml"


def qr_svg(text: str) -> bytes:
    """`text` as a QR code (error correction M, boosted when it fits): an SVG of dark modules, 8 px each."""
    code = segno.make_qr(text, error="m")
    out = io.BytesIO()
    code.save(out, kind="svg", scale=8, border=4, xmldecl=False, title="Registration link", dark="#000", light="#fff")
    return out.getvalue()


def registration_qr(visit: Visit, prefix: str, event_id: str) -> Html:
    return Html(200, qr_svg(f"{visit.origin}{prefix}/events/{event_id}"), visit.headers(), True, SVG)
