"""The standalone share page `/ar/<share_id>`: plain HTML with <model-viewer>, no websocket; and
the branded page a link that leads nowhere answers (unknown, taken down, expired).

Every value that comes from the merchant (the product and shop names, their web addresses) is
HTML-escaped here; the page has no inline script, and the server sends a Content-Security-Policy
that forbids inline scripts anyway. All behaviour (sizes on the model, the AR button) is in
static/ar.js.
"""

from __future__ import annotations

from enum import Enum
from html import escape

from pipeline import format_dimensions, format_size

from . import adjust, qr
from .library import Model
from .shop import Shop

# script-src has no 'unsafe-inline' or 'unsafe-eval': an injected <script> in a product name could never
# run. 'wasm-unsafe-eval' lets model-viewer compile its WebAssembly helpers (it allows no JS eval).
# frame-ancestors *: shops embed the page in their product pages (the Model page's snippets).
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https: http:; connect-src 'self' data: blob: https: http:; "
    "worker-src 'self' blob:; frame-ancestors *; base-uri 'none'; form-action 'none'"
)
#: The merchant's private preview (/preview/<id>): only our own pages may frame it.
PREVIEW_CSP = CSP.replace("frame-ancestors *", "frame-ancestors 'self'")
#: The poster (pipeline/export/poster.py) is drawn with a long lens from azimuth 25 deg, elevation
#: 20 deg (or the merchant's angle: adjust.current). The viewer starts there too, with a narrow
#: field of view, so the model replaces the poster in place.
FOV = 'field-of-view="12deg"'
#: Room to step back (ar.js does while the sizes show; so may the shopper).
ZOOM_OUT = 'max-camera-orbit="auto auto 160%"'


class LinkState(Enum):
    """Why a share link shows no model."""

    UNKNOWN = "unknown"  # no such link (mistyped, or the model was deleted for good)
    TRASHED = "trashed"  # the merchant took the model down (in the library's trash)
    EXPIRED = "expired"  # the merchant's expiry date for the link has passed

    @property
    def status(self) -> int:
        """404 for a link that never led anywhere, 410 (gone for good) for one that did."""
        return 404 if self is LinkState.UNKNOWN else 410


_GONE_WORDS = {
    "UNKNOWN": ("This link doesn't lead to a model",
                "The link may be incomplete or mistyped, or the model was removed. "
                "Check that you copied the whole link, or ask the shop that sent it for a new one."),
    "TRASHED": ("This model is no longer available",
                "The shop has taken this 3D model down. The product itself may still be on their website."),
    "EXPIRED": ("This link has expired",
                "The shop shared this 3D model for a limited time only. Ask them for a new link."),
}
#: Plain short text for the file routes (/models/...), by state name.
FILE_WORDS = {
    "UNKNOWN": "Not found. The link may be wrong, or the model was deleted.",
    "TRASHED": "This model is no longer available.",
    "EXPIRED": "This link has expired.",
}


def _e(value) -> str:
    return escape(str(value), quote=True)


def gone_title(state: LinkState) -> str:
    return _GONE_WORDS[state.name][0]


def _head(title: str, extra: str = "", scripts: bool = False) -> str:
    js = ('<script src="/assets/mv-config.js"></script>\n'
          '<script type="module" src="/assets/model-viewer.min.js"></script>\n'
          '<script type="module" src="/assets/ar.js"></script>\n') if scripts else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<title>{title}</title>
{extra}<meta name="theme-color" content="#ffffff">
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/ar.css">
{js}</head>
"""


def _shop_bar(shop: Shop | None, back: str = "") -> str:
    """The shop's logo and name (a link to its website), and "Back to the product" when set."""
    if shop is None or not (shop.known or back):
        return ""
    logo = (f'<img class="shop-logo" src="/assets/shop/{_e(shop.shop_id)}/logo.png?v={_e(shop.logo_version)}" '
            f'alt="{_e(shop.name or "Shop logo")}">' if shop.logo else "")
    label = f'<span class="shop-name">{_e(shop.name)}</span>' if shop.name else ""
    brand = f"{logo}{label}"
    if brand and shop.website:
        brand = f'<a class="shop" href="{_e(shop.website)}" rel="noopener">{brand}</a>'
    elif brand:
        brand = f'<span class="shop">{brand}</span>'
    link = f'<a class="back" href="{_e(back)}" rel="noopener">← Back to the product</a>' if back else ""
    return f'<nav class="shop-bar" aria-label="Shop">{brand}{link}</nav>'


def render(model: Model, base: str, embed: bool = False, preview: bool = False, shop: Shop | None = None) -> str:
    """HTML for the share page. `base` is the absolute origin (plus path prefix) for file URLs.

    preview=True: the merchant's private look (files from /preview/, same origin, so `base` is
    unused), with no AR button: a model that failed its checks is not offered for a room."""
    e = _e
    files = f"/preview/{model.share_id}" if preview else f"{base}/models/{model.share_id}"
    page_url = f"{base}/ar/{model.share_id}"
    w, h, d = model.dimensions_m
    name = e(model.name)
    desc = e(f"See {model.name} in 3D and place it in your room at its real size, "
             f"{format_dimensions(model.dimensions_m)}.")
    facts = "".join(
        f'<div class="fact"><span class="label">{label}</span><span class="value">{e(format_size(v))}</span></div>'
        for label, v in (("Width", w), ("Height", h), ("Depth", d))
    )
    # An adjusted model's files change under the same names: a new query string per revision
    # gets past caches; the backdrop is our own palette's CSS, never the merchant's text.
    v = f"?v={adjust.revision(model)}" if adjust.revision(model) else ""
    css = adjust.background_css(model.background)
    # A plain colour is no background-image layer: as a gradient it is (ar.css layers the poster on it).
    stage = f"; --stage: {e(css if 'gradient' in css else f'linear-gradient({css}, {css})')}" if css else ""
    # The poster is drawn on white unless a backdrop was chosen (then on the backdrop's colour):
    # white multiplied onto the stage vanishes into it; a coloured one is laid on as it is.
    poster_blend = "poster-multiply" if adjust.BACKGROUNDS.get(model.background, adjust.BACKGROUNDS[""]).rgb == (
        255, 255, 255) else "poster-plain"
    # The viewer starts where the poster was drawn from (the merchant may have picked another angle).
    view = adjust.current(model)
    yaw, pitch = view.poster_yaw_deg, view.poster_pitch_deg
    placement = "wall" if model.placement == "wall" else "floor"
    where = "on your wall" if placement == "wall" else "in your room"
    ar = (f'ar ar-modes="webxr scene-viewer quick-look" ar-placement="{placement}" ar-scale="fixed"'
          if not preview else "")
    # model-viewer's own poster (the `poster` attribute, kept for tools that read it) is replaced by
    # an empty slot: the stage draws the poster instead (ar.css).
    # The button sits below the stage (ar.js shows it where AR works): over the stage it covered
    # the product's base and wrapped on a phone. The empty slot keeps model-viewer's own one out.
    button = (f'<button id="ar-button" class="ar-button" type="button" hidden>View {where}</button>'
              if not preview else "")
    hint = ("A private preview for you: this model is not published. Drag to turn it, pinch or scroll to zoom."
            if preview else f"Open this page on your phone to place it {where} at its true size.\n"
                            "    Drag to turn it, pinch or scroll to zoom.")
    phone = "" if preview or embed else (
        f'<aside class="phone-qr" aria-label="Open on your phone"><img src="{qr.qr_data_uri(page_url)}" '
        f'alt="QR code of this page" width="132" height="132"><p><strong>See it in your room</strong><br>'
        f'Scan this code with your phone\'s camera to open this page there and place the product {where}.</p></aside>')
    sizes = dict(zip(("w", "h", "d"), (e(format_size(v)) for v in (w, h, d))))
    dims = f"""
    <button type="button" id="sizes-toggle" class="sizes-toggle" aria-pressed="false" hidden>Show sizes</button>
    <button slot="hotspot-dot+X-Y+Z" class="dot" data-position="0 0 0" data-normal="1 0 0" tabindex="-1"></button>
    <button slot="hotspot-dim+X-Y" class="dim" data-visibility-attribute="visible" data-position="0 0 0" data-normal="1 0 0" tabindex="-1">{sizes['d']}</button>
    <button slot="hotspot-dot+X-Y-Z" class="dot" data-position="0 0 0" data-normal="1 0 0" tabindex="-1"></button>
    <button slot="hotspot-dim+X-Z" class="dim" data-visibility-attribute="visible" data-position="0 0 0" data-normal="1 0 0" tabindex="-1">{sizes['h']}</button>
    <button slot="hotspot-dot+X+Y-Z" class="dot" data-position="0 0 0" data-normal="0 1 0" tabindex="-1"></button>
    <button slot="hotspot-dim+Y-Z" class="dim" data-visibility-attribute="visible" data-position="0 0 0" data-normal="0 1 0" tabindex="-1">{sizes['w']}</button>
    <button slot="hotspot-dot-X+Y-Z" class="dot" data-position="0 0 0" data-normal="0 1 0" tabindex="-1"></button>
    <button slot="hotspot-dim-X-Z" class="dim" data-visibility-attribute="visible" data-position="0 0 0" data-normal="-1 0 0" tabindex="-1">{sizes['h']}</button>
    <button slot="hotspot-dot-X-Y-Z" class="dot" data-position="0 0 0" data-normal="-1 0 0" tabindex="-1"></button>
    <svg id="dim-lines" class="dim-lines" width="100%" height="100%" xmlns="http://www.w3.org/2000/svg" aria-hidden="true">
      <line class="dim-line"></line><line class="dim-line"></line><line class="dim-line"></line><line class="dim-line"></line>
    </svg>"""
    meta = f"""<meta name="description" content="{desc}">
<meta property="og:type" content="website">
<meta property="og:title" content="{name}">
<meta property="og:description" content="{desc}">
<meta property="og:image" content="{e(files)}/poster.png">
<meta property="og:image:alt" content="{name}">
<meta property="og:url" content="{e(page_url)}">
<meta name="twitter:card" content="summary_large_image">
<meta name="twitter:title" content="{name}">
<meta name="twitter:image" content="{e(files)}/poster.png">
"""
    bar = "" if embed or preview else _shop_bar(shop, model.product_url)
    return _head(f"{name} · View in 3D and AR", meta, scripts=True) + f"""<body class="{'embed' if embed else 'standalone'}">
<main class="page">
  {bar}
  <header class="top">
    <h1 class="name">{name}</h1>
    <p class="dims">{e(format_dimensions(model.dimensions_m))}</p>
  </header>
  <model-viewer id="viewer" src="{e(files)}/model.glb{v}" ios-src="{e(files)}/model.usdz{v}"
      poster="{e(files)}/poster.png{v}" style="--poster-image: url('{e(files)}/poster.png{v}'){stage}"
      class="{poster_blend}"
      data-size-m="{w:.4f} {h:.4f} {d:.4f}" data-poster-view="{yaw:.2f} {pitch:.2f}" alt="3D model of {name}"
      {ar}
      camera-orbit="{yaw:.2f}deg {90 - pitch:.2f}deg auto" {FOV} {ZOOM_OUT}
      camera-controls touch-action="pan-y" interaction-prompt="auto" loading="eager"
      shadow-intensity="1" shadow-softness="1" exposure="1" tone-mapping="commerce">
    <div slot="ar-button" hidden></div><div slot="poster" aria-hidden="true"></div>{dims}
    <div slot="progress-bar" class="progress" aria-hidden="true"><div class="bar"></div></div>
  </model-viewer>
  {button}
  <p class="message" id="message" role="status" hidden></p>
  <section class="facts" aria-label="Real size">{facts}</section>
  <p class="hint" id="hint">{hint}</p>
  {phone}
</main>
<footer class="foot">3D model made with Plinth</footer>
</body>
</html>
"""


def render_gone(state: LinkState, shop: Shop | None = None, embed: bool = False) -> str:
    """The page a share link answers when it shows no model: what happened, in the shop's colours
    when the shop is known, and a way on to its website."""
    title, text = _GONE_WORDS[state.name]
    on = (f'<a class="go-shop" href="{_e(shop.website)}" rel="noopener">Visit {_e(shop.name or "the shop")}</a>'
          if shop is not None and shop.website else "")
    brand = _shop_bar(shop) or '<nav class="shop-bar" aria-label="Plinth"><span class="shop plinth">▲ Plinth</span></nav>'
    return _head(f"{_e(title)}", '<meta name="robots" content="noindex">\n') + f"""<body class="gone-page {'embed' if embed else 'standalone'}" data-state="{state.value}">
<main class="page">
  {brand}
  <section class="gone" role="alert">
    <div class="gone-mark" aria-hidden="true">◇</div>
    <h1>{_e(title)}</h1>
    <p>{_e(text)}</p>
    {on}
  </section>
</main>
<footer class="foot">3D model made with Plinth</footer>
</body>
</html>
"""


def iframe_snippet(model: Model, base: str) -> str:
    """What a merchant pastes into a product page: the share page, framed (AR works from it)."""
    return (f'<iframe src="{_e(base)}/ar/{_e(model.share_id)}?embed=1" title="{_e(model.name)} in 3D" '
            'width="100%" height="520" style="border:0;border-radius:14px;max-width:900px" '
            'allow="xr-spatial-tracking; fullscreen" loading="lazy"></iframe>')


def viewer_snippet(model: Model, base: str) -> str:
    """The same as a bare <model-viewer> tag, for shops that style their own page around it."""
    files = f"{_e(base)}/models/{_e(model.share_id)}"
    v = f"?v={adjust.revision(model)}" if adjust.revision(model) else ""
    view = adjust.current(model)
    placement = "wall" if model.placement == "wall" else "floor"
    return (f'<script type="module" src="{_e(base)}/assets/model-viewer.min.js"></script>\n'
            f'<model-viewer src="{files}/model.glb{v}" ios-src="{files}/model.usdz{v}" poster="{files}/poster.png{v}"\n'
            f'  alt="3D model of {_e(model.name)}" ar ar-modes="webxr scene-viewer quick-look" '
            f'ar-placement="{placement}" ar-scale="fixed"\n'
            f'  camera-orbit="{view.poster_yaw_deg:.2f}deg {90 - view.poster_pitch_deg:.2f}deg auto" {FOV} camera-controls touch-action="pan-y" shadow-intensity="1"\n'
            '  style="width:100%;height:520px;background:#eef1f3;border-radius:14px"></model-viewer>')
