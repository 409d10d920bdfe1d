"""The standalone share page `/ar/<share_id>`: plain HTML with <model-viewer>, no websocket.

Every value that comes from the merchant (the product name) is HTML-escaped here; the page has no
inline script, and the server sends a Content-Security-Policy that forbids inline scripts anyway.
"""

from __future__ import annotations

from html import escape

from pipeline import format_dimensions, format_size

from . import adjust
from .library import Model

# script-src has no 'unsafe-inline' or 'unsafe-eval': an injected <script> in a product name could never
# run. 'wasm-unsafe-eval' lets model-viewer compile its WebAssembly helpers (it allows no JS eval).
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https: http:; connect-src 'self' data: blob: https: http:; "
    "worker-src 'self' blob:; frame-ancestors *; base-uri 'none'; form-action 'none'"
)
#: The merchant's private preview (/preview/<id>): only our own pages may frame it.
PREVIEW_CSP = CSP.replace("frame-ancestors *", "frame-ancestors 'self'")


def render(model: Model, base: str, embed: bool = False, preview: bool = False) -> str:
    """HTML for the share page. `base` is the absolute origin (plus path prefix) for file URLs.

    preview=True: the merchant's private look (files from /preview/, same origin, so `base` is
    unused), with no AR button: a model that failed its checks is not offered for a room."""
    e = lambda s: escape(str(s), quote=True)  # noqa: E731 - local shorthand keeps the template readable
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
    stage = f' style="--stage: {e(css)}"' if css else ""
    placement = "wall" if model.placement == "wall" else "floor"
    where = "on your wall" if placement == "wall" else "in your room"
    ar = (f'ar ar-modes="webxr scene-viewer quick-look" ar-placement="{placement}" ar-scale="fixed"'
          if not preview else "")
    button = (f'<button slot="ar-button" class="ar-button" type="button">View {where}</button>'
              if not preview else "")
    hint = ("A private preview for you: this model is not published. Drag to turn it, pinch or scroll to zoom."
            if preview else f"Open this page on your phone to place it {where} at its true size.\n"
                            "    Drag to turn it, pinch or scroll to zoom.")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<title>{name} · View in 3D and AR</title>
<meta name="description" content="{desc}">
<meta property="og:type" content="website">
<meta property="og:title" content="{name}">
<meta property="og:description" content="{desc}">
<meta property="og:image" content="{e(files)}/poster.png">
<meta property="og:image:alt" content="{name}">
<meta property="og:url" content="{e(page_url)}">
<meta name="twitter:card" content="summary_large_image">
<meta name="twitter:title" content="{name}">
<meta name="twitter:image" content="{e(files)}/poster.png">
<meta name="theme-color" content="#ffffff">
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/ar.css">
<script src="/assets/mv-config.js"></script>
<script type="module" src="/assets/model-viewer.min.js"></script>
<script type="module" src="/assets/ar.js"></script>
</head>
<body class="{'embed' if embed else 'standalone'}">
<main class="page">
  <header class="top">
    <h1 class="name">{name}</h1>
    <p class="dims">{e(format_dimensions(model.dimensions_m))}</p>
  </header>
  <model-viewer id="viewer" src="{e(files)}/model.glb{v}" ios-src="{e(files)}/model.usdz{v}"
      poster="{e(files)}/poster.png{v}" alt="3D model of {name}"{stage}
      {ar}
      camera-controls touch-action="pan-y" interaction-prompt="auto" loading="eager"
      shadow-intensity="1" shadow-softness="1" exposure="1" tone-mapping="commerce">
    {button}
    <div slot="progress-bar" class="progress" aria-hidden="true"><div class="bar"></div></div>
  </model-viewer>
  <p class="message" id="message" role="status" hidden></p>
  <section class="facts" aria-label="Real size">{facts}</section>
  <p class="hint" id="hint">{hint}</p>
</main>
<footer class="foot">3D model made with Plinth</footer>
</body>
</html>
"""
