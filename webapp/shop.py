"""The shop's settings: its name, logo and website, shown on every share page of its models.

One shop per merchant, keyed by the merchant's users.id (`shop.get(data, user.id)`); the share
page shows the shop of the model's owner. DEFAULT is the one shop of a server from before
accounts: `claim_default` hands it to the first owner account (store.claim_orphans calls it).
The row lives in the `shops` table; data/shop/<shop_id>/shop.json mirrors it (written first, like
a model's manifest), so a rebuilt database loses nothing: `get` reads the file when the table has
no row. With shared storage (webapp/storage) every write is pushed and the logo pulled on demand.
No Streamlit import.

    shop.save(data, name="Oak & Co", website="https://oak.example")
    shop.set_logo(data, uploaded_bytes)      # re-encoded PNG, no EXIF; ShopError on a bad image
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipeline import PlinthError, atomic_write

from . import storage, store

log = logging.getLogger("plinth.shop")
DEFAULT = "default"
MAX_NAME = 80
MAX_URL = 500
MAX_LOGO_BYTES = 2 * 1024 * 1024
MAX_LOGO_PIXELS = 40_000_000  # a decoded 6000 x 6000 image; more is refused before it is decoded
LOGO_BOX = 400  # stored at most this many pixels wide and high
LOGO_FILE = "logo.png"
_SHOP_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # DEFAULT or a users.id (token_urlsafe)


class ShopError(PlinthError):
    """Bad input for the shop settings (a URL, a logo); one plain line for the merchant."""

    def __init__(self, message: str):
        super().__init__("shop", message)


@dataclass(frozen=True)
class Shop:
    shop_id: str = DEFAULT
    name: str = ""
    website: str = ""
    logo: Path | None = None  # the stored PNG, None when there is none
    updated: float = 0.0

    @property
    def known(self) -> bool:
        """Whether the merchant told us anything: share pages show plain Plinth branding otherwise."""
        return bool(self.name or self.website or self.logo)

    @property
    def logo_version(self) -> str:
        """For cache-busting the logo URL when it changes."""
        return str(int(self.updated))


def clean_url(text: str, what: str = "The web address") -> str:
    """An http(s) address with a host, or '' for an empty field; ShopError otherwise (javascript:,
    data:, a bare word, spaces). 'shop.example/p/1' becomes 'https://shop.example/p/1'."""
    text = str(text or "").strip()
    if not text:
        return ""
    if len(text) > MAX_URL:
        raise ShopError(f"{what} is too long (at most {MAX_URL} characters).")
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", text) or re.match(r"^[^:/]+\.[^:/]+:\d+(/|$)", text):
        text = "https://" + text  # typed without the scheme, like a browser's address bar
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        parts = None
    if (parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or "." not in parts.hostname and parts.hostname != "localhost"
            or re.search(r"[\s<>\"'`\\]", text)):
        raise ShopError(f"{what} should be a web page address that starts with https:// "
                        "(for example https://myshop.example/products/oak-chair).")
    return text


def _folder(data: Path, shop_id: str) -> Path:
    if not _SHOP_ID.match(shop_id):
        raise ValueError(f"bad shop id {shop_id!r}")
    return Path(data) / "shop" / shop_id


def get(data: Path, shop_id: str = DEFAULT) -> Shop:
    """The shop's settings (empty ones when never saved). Never writes."""
    row = None
    try:
        with store.connect(Path(data), readonly=True) as con:
            found = con.execute("SELECT * FROM shops WHERE shop_id = ?", (shop_id,)).fetchone()
        row = dict(found) if found else None
    except store.DB_ERRORS:  # an older or damaged database, or Postgres down: the mirror file answers
        pass
    if row is None:
        try:
            row = json.loads((_folder(data, shop_id) / "shop.json").read_text())
        except (OSError, ValueError):
            return Shop(shop_id=shop_id)
    logo = _folder(data, shop_id) / LOGO_FILE if row.get("logo") == LOGO_FILE else None
    if logo is not None and storage.configured():
        _fetch_logo(data, shop_id, logo, float(row.get("updated") or 0))
    return Shop(shop_id=shop_id, name=str(row.get("name") or ""), website=str(row.get("website") or ""),
                logo=logo if logo is not None and logo.is_file() else None, updated=float(row.get("updated") or 0))


def _fetch_logo(data: Path, shop_id: str, logo: Path, updated: float) -> None:
    """Pull the logo when this data folder has none, or one older than the row (changed on another
    machine; 2 s of slack: the row is written just after the file)."""
    try:
        if logo.is_file() and logo.stat().st_mtime >= updated - 2.0:
            return
        storage.pull(Path(data), f"shop/{shop_id}/{LOGO_FILE}")
    except (storage.StorageError, OSError) as error:  # the share page still shows the shop's name
        log.warning("could not fetch the shop's logo from the storage: %s", error)


def save(data: Path, name: str, website: str, shop_id: str = DEFAULT) -> Shop:
    """Store the name and website (checked: ShopError with the reason, nothing stored)."""
    name = " ".join("".join(ch for ch in str(name or "") if ch.isprintable()).split())[:MAX_NAME]
    website = clean_url(website, "The shop's web address")
    current = get(data, shop_id)
    return _write(data, shop_id, name, website, LOGO_FILE if current.logo else "")


def set_logo(data: Path, content: bytes, shop_id: str = DEFAULT) -> Shop:
    """Store an uploaded logo: checked (an image, at most MAX_LOGO_BYTES), scaled into LOGO_BOX and
    re-encoded as PNG from its pixels, so no EXIF, GPS or text chunk survives."""
    from PIL import Image, UnidentifiedImageError

    if len(content) > MAX_LOGO_BYTES:
        raise ShopError(f"That logo is {len(content) / 1e6:.1f} MB; please use one under "
                        f"{MAX_LOGO_BYTES // (1024 * 1024)} MB (a PNG of a few hundred pixels is plenty).")
    try:
        with Image.open(io.BytesIO(content)) as im:
            if im.format not in ("PNG", "JPEG", "WEBP", "GIF"):
                raise ShopError("The logo should be a PNG, JPG or WebP image.")
            if im.width * im.height > MAX_LOGO_PIXELS:
                raise ShopError("That logo image is far too large; please use a smaller one.")
            im.seek(0)
            im.load()
            pixels = _upright(im).convert("RGBA")
    except ShopError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise ShopError("That file is not an image Plinth can read. Please upload a PNG, JPG or WebP logo.") from None
    pixels.thumbnail((LOGO_BOX, LOGO_BOX))
    clean = Image.new("RGBA", pixels.size)
    clean.paste(pixels)
    buf = io.BytesIO()
    clean.save(buf, format="PNG", optimize=True)
    folder = _folder(data, shop_id)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / LOGO_FILE, buf.getvalue())
    _stored(storage.push, data, f"shop/{shop_id}/{LOGO_FILE}")
    current = get(data, shop_id)
    return _write(data, shop_id, current.name, current.website, LOGO_FILE)


def remove_logo(data: Path, shop_id: str = DEFAULT) -> Shop:
    current = get(data, shop_id)
    shop = _write(data, shop_id, current.name, current.website, "")
    (_folder(data, shop_id) / LOGO_FILE).unlink(missing_ok=True)
    _stored(storage.remove, data, f"shop/{shop_id}/{LOGO_FILE}")
    return shop


def of_owner(data: Path, owner: str) -> Shop:
    """The shop a share page of a model owned by `owner` (a users.id) shows: theirs, or DEFAULT for
    a model made before any account existed (owner ''). Never writes."""
    return get(data, owner or DEFAULT)


def claim_default(data: Path, owner: str) -> bool:
    """Give the shop of a server from before accounts (DEFAULT) to the first owner account, unless
    they have a shop already: its folder (shop.json, logo) is renamed, then the row follows. True
    when it moved. Run after the owner account exists (store.claim_orphans)."""
    data = Path(data)
    old, new = _folder(data, DEFAULT), _folder(data, owner)
    if storage.configured():  # the shop may have been set on another machine: the storage decides
        try:
            if storage.exists(data, f"shop/{owner}"):
                return False
            storage.pull(data, f"shop/{DEFAULT}")
        except storage.StorageError as error:  # the next account change tries again
            log.warning("could not hand the shop settings over: %s", error)
            return False
    if new.exists() or not old.is_dir():
        return False
    try:
        mirror = json.loads((old / "shop.json").read_text())
    except (OSError, ValueError):
        mirror = None
    old.rename(new)  # one step: the logo and the mirror file move together
    if isinstance(mirror, dict):
        atomic_write(new / "shop.json", json.dumps({**mirror, "shop_id": owner}, indent=1))
    if storage.configured():
        try:
            storage.push(data, f"shop/{owner}")
            storage.remove(data, f"shop/{DEFAULT}")
        except storage.StorageError as error:
            log.warning("could not store the handed-over shop settings: %s", error)
    with store.connect(data) as con:
        con.execute("DELETE FROM shops WHERE shop_id = ?", (owner,))
        con.execute("UPDATE shops SET shop_id = ? WHERE shop_id = ?", (owner, DEFAULT))
    return True


def _upright(im):
    """Turn a phone photo's pixels the way its EXIF says before the EXIF is dropped."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(im)


def _stored(action, data: Path, rel: str) -> None:
    """storage.push or storage.remove, a failure as the ShopError the settings page shows."""
    try:
        action(Path(data), rel)
    except storage.StorageError as error:
        raise ShopError(f"The shop's settings could not be stored: {error.message}") from error


def _write(data: Path, shop_id: str, name: str, website: str, logo: str) -> Shop:
    row = {"shop_id": shop_id, "name": name, "website": website, "logo": logo, "updated": time.time()}
    folder = _folder(data, shop_id)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "shop.json", json.dumps(row, indent=1))  # first, like a model's manifest
    _stored(storage.push, data, f"shop/{shop_id}/shop.json")
    with store.connect(Path(data)) as con:
        con.execute("INSERT INTO shops (shop_id, name, website, logo, updated) VALUES (:shop_id, :name, "
                    ":website, :logo, :updated) ON CONFLICT(shop_id) DO UPDATE SET name = excluded.name, "
                    "website = excluded.website, logo = excluded.logo, updated = excluded.updated", row)
    return get(data, shop_id)
