"""Shared pieces of the Streamlit pages: header, cached resources, choice labels, small formatters."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import streamlit as st

import pipeline

from . import accounts, jobqueue, limits, qr, settings

VIEWS = Path(__file__).resolve().parent / "views"
CREATE, MODEL, LIBRARY, SHOP = (str(VIEWS / n) for n in ("create.py", "model.py", "library_page.py", "shop_page.py"))
SETTINGS = str(VIEWS / "settings_page.py")

_KIND_WORDS = {
    "flat": "Flat (poster, rug, panel)",
    "box": "Box-like (cabinet, speaker, book)",
    "revolve": "Round like a vase or bottle",
    "round": "Rounded (fruit, ball, cushion)",
}
#: The Shape choices: the pipeline's single-photo kinds (a kind without our words shows the report's).
KIND_LABELS = {"auto": "Decide for me",
               **{k: _KIND_WORDS.get(k) or pipeline.KIND_WORDS.get(k, k) for k in pipeline.SINGLE_VIEW_KINDS}}
_QUALITY_WORDS = {"fast": "Quick", "balanced": "Balanced", "high": "Best (slow)"}
QUALITY_LABELS = {q: _QUALITY_WORDS.get(q, q.capitalize()) for q in pipeline.QUALITIES}
PLACEMENT_LABELS = {"floor": "On the floor or a table", "wall": "On a wall"}


@st.cache_resource(show_spinner=False)
def data_dir() -> Path:
    return settings.data_dir()


@st.cache_resource(show_spinner=False)
def workers_started(data: str) -> bool:
    """Start the job workers once per process (the server's lifespan usually did already)."""
    jobqueue.start(Path(data))
    return True


@st.cache_resource(show_spinner=False)
def favicon():
    """Drawn locally: a material-icon favicon would be fetched from Google's servers."""
    from PIL import Image, ImageDraw

    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle((0, 0, 63, 63), radius=14, fill="#1f6f5c")
    draw.polygon([(32, 12), (50, 22), (50, 42), (32, 52), (14, 42), (14, 22)], outline="white", width=4)
    draw.line([(14, 22), (32, 32), (50, 22)], fill="white", width=4)
    draw.line([(32, 32), (32, 52)], fill="white", width=4)
    return im


def browser_url() -> str | None:
    """The address the merchant's browser shows (share links then work from where they are)."""
    try:
        return st.context.url
    except Exception:  # no browser session (AppTest)
        return None


#: st.session_state key of the signed-in user's id, for a run with no cookie to read: AppTests (which
#: cannot send cookies) set it. A browser cannot: no widget has this key, and the server's
#: middleware refuses a page session without a valid sign-in cookie before any script runs.
SIGNED_IN = "plinth_signed_in_user"


def current_user() -> accounts.User | None:
    """The signed-in merchant: the session cookie's user, else the session state's (see SIGNED_IN)."""
    data = data_dir()
    try:
        token = st.context.cookies.get(accounts.COOKIE)
    except Exception:  # no browser session (AppTest)
        token = None
    user = accounts.session_user(data, token) if isinstance(token, str) and token else None
    if user is None and st.session_state.get(SIGNED_IN):
        user = accounts.get_user(data, st.session_state[SIGNED_IN])
    return user


def require_user() -> accounts.User:
    """The signed-in merchant, or a plain "please sign in" link and the end of this run."""
    user = current_user()
    if user is None:
        # Reached only when a session ends while its page is open (the gate refuses new ones).
        st.title("You are signed out")
        st.info("Your sign-in has ended, so this page cannot show your models. Sign in again to go on.",
                icon=":material/lock:")
        st.html('<a class="signin-again" href="/login">Sign in</a>')
        st.stop()
    return user


def session_token() -> str | None:
    """This browser's sign-in token (to keep its session when the password changes)."""
    try:
        token = st.context.cookies.get(accounts.COOKIE)
    except Exception:  # AppTest
        return None
    return token if isinstance(token, str) else None


def qr_png(url: str) -> bytes:
    return qr.qr_png(url)


def style() -> None:
    st.html(settings.STATIC_DIR / "app.css")


def header(active: str) -> None:
    """Brand and the main links (the Model page is reached from a result or the library)."""
    with st.container(horizontal=True, vertical_alignment="center", key="topbar", gap="small"):
        st.markdown(
            '<div class="brand"><span class="brand-mark">▲</span> Plinth'
            '<span class="brand-tag">3D &amp; AR for your products</span></div>',
            unsafe_allow_html=True, width="stretch",
        )
        st.page_link(CREATE, label="Create", icon=":material/add_a_photo:", disabled=active == "create",
                     width="content")
        st.page_link(LIBRARY, label="Library", icon=":material/grid_view:", disabled=active == "library",
                     width="content")
        st.page_link(SHOP, label="Your shop", icon=":material/storefront:", disabled=active == "shop",
                     width="content")
        user = current_user()
        if user is not None:
            st.page_link(SETTINGS, label=md(user.shown_name), icon=":material/account_circle:",
                         disabled=active == "settings", width="content", help="Your account and team")
            # A plain link in this tab (st.html drops `target`): /logout signs a same-site click out at once.
            st.html('<a class="signout" href="/logout">Sign out</a>', width="content")


def md(text: str) -> str:
    """Merchant text (a product or file name, a message quoting one) made inert for Streamlit's
    Markdown (st.markdown, st.caption, st.title, st.error, ...): every punctuation mark Markdown,
    `:red[...]` colours, `:material/...:` icons, `$...$` LaTeX or HTML could use is backslash-escaped
    (`#`, `-`, `+`, `.` too, so a new line starts no heading or list). GFM turns bare URLs and
    e-mail addresses into links after escapes are resolved, so an invisible word joiner (U+2060)
    goes after each `:` and `www` and before each `@`: `http://x` shows as written, not as a link."""
    text = re.sub(r"(?i)(:|\bwww(?=\.))", "\\1\u2060", str(text)).replace("@", "\u2060@")
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~:$&])", r"\\\1", text)


def upload_limits_help() -> str:
    """The uploader's help line, with the limits the server enforces (webapp.limits)."""
    return (f"JPG, PNG, WebP or HEIC, up to {limits.MAX_FILE_MB:g} MB each; at most {limits.MAX_JOB_PHOTOS} "
            f"photos and {limits.MAX_JOB_MB:g} MB in all. The first photo should show the front.")


def when(ts: float) -> str:
    return time.strftime("%d %b %Y, %H:%M", time.localtime(ts))



def card_grid(n_items: int, per_row: int = 3, gap: str = "medium") -> list:
    """One cell (a column to write into) per item, filled row by row.

    Built as rows of `per_row` columns, not `per_row` long columns: on a phone each row's columns
    stack, so the items read in the same order as on a wide screen (and as the list they came
    from). The last row keeps its empty cells, so every card has the same width."""
    cells = []
    for start in range(0, n_items, per_row):
        cells += st.columns(per_row, gap=gap)[:min(per_row, n_items - start)]
    return cells


def tile_row(n_items: int, width: int = 150, border: bool = False, keys: list[str] | None = None) -> list:
    """One fixed-width tile (a container) per item in a row that wraps, in reading order on every
    screen: six or so to a row on a wide screen, two on a phone (thumbnails stay thumbnails
    instead of stretching to the phone's width as columns would)."""
    row = st.container(horizontal=True, gap="small")
    return [row.container(width=width, border=border, key=keys[i] if keys else None) for i in range(n_items)]


def photo_thumbnail(path: Path, size: int = 360) -> bytes | None:
    """`thumbnail` of a stored photo; None when it is gone (a clean-up may remove it meanwhile)."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return thumbnail(str(path), mtime, size)


@st.cache_data(show_spinner=False, max_entries=500)
def thumbnail(path: str, _mtime: float, size: int = 360) -> bytes | None:
    """A small JPEG of a stored photo, upright and without metadata; None when it cannot be read.
    `_mtime` is only part of the cache key (a new photo at the same path gets a new thumbnail)."""
    from PIL import Image, ImageOps

    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:
        pass
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=82)
            return buf.getvalue()
    except Exception:  # a photo Pillow cannot open (the job may have failed on it): no picture
        return None
