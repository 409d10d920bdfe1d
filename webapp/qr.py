"""QR codes of share links, drawn locally with segno (no Streamlit: the share page uses it too)."""

from __future__ import annotations

import base64
import functools
import io


@functools.lru_cache(maxsize=256)
def qr_png(url: str, scale: int = 8) -> bytes:
    import segno

    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=scale, border=3, dark="#1d2433")
    return buf.getvalue()


def qr_data_uri(url: str, scale: int = 4) -> str:
    """The QR code as a data: URI, for an <img> in a page whose CSP allows data: images."""
    return "data:image/png;base64," + base64.b64encode(qr_png(url, scale)).decode("ascii")
