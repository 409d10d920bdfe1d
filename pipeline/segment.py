"""Segment stage: find the object in one photo.

Entry point: `segment_photo(photo, cfg) -> Mask`.

* A real alpha channel (a cut-out PNG) is used as is.
* Otherwise: the image border is taken as background. A colour histogram of the border, per
  horizontal strip (a wall above and a table below look different), scores how unlike the
  background each pixel is. The clearly unlike pixels near the centre seed OpenCV GrabCut, which
  then finds the object with colour models plus edge-aware smoothing. All of this runs on a
  ~400 px copy; the mask is upsampled and smoothed to working size.

Seeding from "unlike the border" rather than from a rectangle keeps GrabCut's object model clean:
with a rectangle start, lit table areas near the object end up in the object model and stay.

With `cfg.saliency` (the single-photo path), a learned salient-object model, U²-Net-p, shipped in a
registry package (pipeline/weights.py), then draws the outline where it agrees with GrabCut's;
without its weights installed, GrabCut's mask is the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import CaptureError
from .types import Mask, Photo

STAGE = "segment"

MSG_EDGE = "The object seems to run off the edge of the photo: step back so all of it is in the picture."
MSG_UNCLEAR = "Could not clearly separate the item from the background: use a plain backdrop."
MSG_TOO_BIG = "The item fills almost the whole photo: step back a little so some background shows around it."


@dataclass(frozen=True)
class SegmentConfig:
    work_side: int = 400  # long side of the internal copy, px
    border_band: float = 0.03  # width of the background band, share of the long side
    strips: int = 4  # horizontal strips with their own border colour model
    seed_percentile: float = 3.0  # a pixel is a seed when less likely than this % of border pixels
    grabcut_iters: int = 4
    centre_falloff: float = 0.3  # Gaussian width (share of the frame) of the centre prior for regions
    min_object_share: float = 0.002  # below this share of the frame there is no object
    retest_percentile: float = 90.0  # object pixels as common as this % of border colours may be background
    retest_min_share: float = 0.0015  # ... when they form a region at least this share of the frame
    retest_similarity: float = 0.5  # ... whose colour histogram overlaps the border's this well (Bhattacharyya)
    saliency: bool = False  # refine GrabCut's mask with U²-Net-p when its weights are installed
    # U²-Net-p's mask is the answer whenever it finds an object, GrabCut only when it does not (or
    # without the weights). For the multi-photo path, where the 3D vote overrules a wrong mask.
    saliency_first: bool = False
    saliency_side: int = 320  # px, U²-Net-p's square input (a multiple of 32; rembg uses 320)


PRESETS: dict[str, SegmentConfig] = {
    "fast": SegmentConfig(work_side=320, grabcut_iters=3),
    "balanced": SegmentConfig(),
    "high": SegmentConfig(work_side=512, grabcut_iters=5),
}



def preset(quality: str, multiview: bool) -> SegmentConfig:
    """The settings for one photo of a job: `quality` preset, single- or multi-photo path."""
    if not multiview:
        return replace(PRESETS[quality], saliency=True)
    # Many photos: U²-Net-p alone at 256 px (bench/saliency.py, 45 multi-view photos: mean IoU
    # 0.935 against GrabCut's 0.883, in 0.64 of the time of 320 px). The dense stage on the same
    # poses: banana (12 photos) aligned seen F@1% 0.804 -> 0.971, chair (36) 0.777 -> 0.773. It
    # costs more than GrabCut: about 0.9-1.3 s a photo against 0.6-1.0 s on 2 loaded cores, plus
    # ~0.3 s when the net is loaded for each photo (pass `net` from saliency_net to avoid that).
    return replace(PRESETS[quality], saliency_first=True, saliency_side=256)


_BINS = 16  # histogram bins per Lab channel
_IMAGENET_MEAN, _IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
_MIN_EDGE_CONTRAST = 1.4


def segment_photo(photo: Photo, cfg: SegmentConfig = PRESETS["balanced"], net=None) -> Mask:
    """Object mask at the photo's working size, (H, W) bool.

    `net`: U²-Net-p as `saliency_net` loads it, to load it once for all the photos of a job
    (else it is loaded here when `cfg` asks for it, ~0.1 s).
    Raises CaptureError when no distinct object can be found (blank or noise-like photo).
    """
    if photo.rgb.ndim != 3 or photo.rgb.shape[2] != 3 or photo.rgb.dtype != np.uint8:
        raise ValueError(f"segment: expected (H, W, 3) uint8 rgb, got {photo.rgb.shape} {photo.rgb.dtype}")
    if photo.alpha is not None:
        return _from_alpha(photo, cfg)
    if (cfg.saliency or cfg.saliency_first) and net is None:
        net = saliency_net(cfg)
    if cfg.saliency_first and net is not None:
        found = _salient_object(net, photo, cfg)
        if found is not None:
            return found
    mask = _grabcut(photo, cfg)  # also the judge of "no distinct object" (blank, gradient, noise)
    return _refine_with_saliency(net, photo, mask, cfg) if cfg.saliency and net is not None else mask


def saliency_net(cfg: SegmentConfig):
    """U²-Net-p through OpenCV's DNN module, or None when `cfg` does not use it or its weights are
    not installed (the weights-free path: GrabCut alone)."""
    from . import weights

    if not (cfg.saliency or cfg.saliency_first):
        return None
    try:
        path = weights.locate(weights.U2NETP)
    except weights.WeightsMissing:
        return None
    import cv2

    return cv2.dnn.readNetFromONNX(str(path))


def saliency_map(net, rgb: np.ndarray, side: int = 320) -> tuple[np.ndarray, float]:
    """U²-Net-p's fused output for an (H, W, 3) uint8 photo, as rembg prepares and reads it: a
    `side` x `side` input (rembg: 320) scaled by its maximum with ImageNet mean and std; the first
    output stretched to [0, 1]. Returns ((H, W) float32 map, the raw output's maximum: under 0.5
    nothing stood out). The network is fully convolutional, so any multiple of 32 works."""
    import cv2

    small = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_LANCZOS4).astype(np.float32)
    x = (small / max(float(small.max()), 1.0) - _IMAGENET_MEAN) / _IMAGENET_STD
    net.setInput(x.transpose(2, 0, 1)[None].astype(np.float32))
    out = net.forward("1959")[0, 0]  # the fused map; 1960-1965 are the side outputs
    peak = float(out.max())
    out = (out - out.min()) / max(peak - float(out.min()), 1e-6)
    return cv2.resize(out, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR), peak


def _salient_regions(net, photo: Photo, cfg: SegmentConfig) -> tuple[np.ndarray | None, float]:
    """U²-Net-p's object (H, W) bool, its centre-weighted regions with specks filled, and the
    map's peak; None when nothing stood out (peak under 0.5, or a speck)."""
    sal, peak = saliency_map(net, photo.rgb, cfg.saliency_side)
    found = _fill_small_holes(_pick_regions(sal > 0.5, cfg.centre_falloff), 0.002 * sal.size)
    if peak < 0.5 or found.mean() < cfg.min_object_share:
        return None, peak
    return found, peak


def _salient_object(net, photo: Photo, cfg: SegmentConfig) -> Mask | None:
    """U²-Net-p's mask as the answer (the multi-photo path), None when it found nothing."""
    found, peak = _salient_regions(net, photo, cfg)
    # As for GrabCut's masks: a real object's outline is sharper than the image's typical gradient
    # (a blank or smooth photo can still give a confident map).
    if found is None or _edge_contrast(photo.rgb, found) < _MIN_EDGE_CONTRAST:
        return None
    touches = _touches_edge(found, 1)
    warnings = [MSG_EDGE] if touches else []
    if found.mean() > 0.6:
        warnings.append(MSG_TOO_BIG)
    confidence = min(0.95, peak) * (0.8 if touches else 1.0) * (0.6 if found.mean() > 0.6 else 1.0)
    return Mask(mask=found, confidence=float(confidence), touches_border=touches, method="u2netp",
                warnings=tuple(warnings))


def _refine_with_saliency(net, photo: Photo, mask: Mask, cfg: SegmentConfig) -> Mask:
    """U²-Net-p's outline where it and GrabCut agree on what the product is (bench/saliency.py:
    mean IoU 0.956 against GrabCut's 0.873 over 90 bench views). GrabCut's mask stays when the
    two disagree (IoU under 0.5: one of them found something else)."""
    found, _ = _salient_regions(net, photo, cfg)
    if found is None:
        return mask
    agree = float((found & mask.mask).sum() / max(int((found | mask.mask).sum()), 1))
    if agree < 0.5:
        return mask
    touches = _touches_edge(found, 1)
    warnings = tuple(w for w in mask.warnings if w != MSG_EDGE) + ((MSG_EDGE,) if touches else ())
    return Mask(mask=found, confidence=max(mask.confidence, min(0.95, 0.5 + 0.5 * agree)), touches_border=touches,
                method="u2netp", warnings=warnings)


def _from_alpha(photo: Photo, cfg: SegmentConfig) -> Mask:
    mask = photo.alpha > 127
    if mask.mean() < cfg.min_object_share:
        raise CaptureError(
            STAGE, f"No distinct object found in {photo.name}: the cut-out is empty.",
            "Export the photo again with the item visible.",
        )
    touches = _touches_edge(mask, 1)
    return Mask(
        mask=mask, confidence=0.98 if not touches else 0.8, touches_border=touches, method="alpha",
        warnings=(MSG_EDGE,) if touches else (),
    )


def _no_object(photo: Photo) -> CaptureError:
    return CaptureError(
        STAGE, f"No distinct object found in {photo.name}.",
        "Put the item in the middle of the photo, on a plain background that looks different from it.",
    )


def _grabcut(photo: Photo, cfg: SegmentConfig) -> Mask:
    import cv2

    cv2.setRNGSeed(0)  # GrabCut's k-means start is random: keep results repeatable
    H, W = photo.rgb.shape[:2]
    s = min(1.0, cfg.work_side / max(H, W))
    small = cv2.resize(photo.rgb, (max(8, round(W * s)), max(8, round(H * s))), interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    b = max(2, int(round(cfg.border_band * max(h, w))))
    band = np.zeros((h, w), bool)
    band[:b], band[-b:], band[:, :b], band[:, -b:] = True, True, True, True

    lab = cv2.cvtColor(cv2.GaussianBlur(small, (0, 0), 1.0), cv2.COLOR_RGB2Lab)
    score = _unlikeness(lab, band, cfg.strips)
    threshold = float(np.percentile(score[band], 100.0 - cfg.seed_percentile))
    unlike = score > threshold
    seed = cv2.morphologyEx((unlike & ~band).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    seed = _pick_regions(seed, cfg.centre_falloff)
    if seed.sum() < cfg.min_object_share * h * w:
        raise _no_object(photo)

    labels = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    labels[cv2.dilate(seed.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0] = cv2.GC_PR_FGD
    labels[band] = cv2.GC_BGD
    bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(bgr, labels, None, bgd, fgd, cfg.grabcut_iters, cv2.GC_INIT_WITH_MASK)
    fg = _pick_regions(_is_fg(labels), cfg.centre_falloff)
    if fg.sum() < 0.3 * seed.sum():
        # GrabCut dropped the seed (object colours also common in the background): fall back to
        # the classic start, everything in a box around the seed is probably object.
        labels = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        ys, xs = np.nonzero(seed)
        my, mx = int(0.3 * (np.ptp(ys) + 1)) + 2, int(0.3 * (np.ptp(xs) + 1)) + 2
        labels[max(ys.min() - my, b):ys.max() + my + 1, max(xs.min() - mx, b):xs.max() + mx + 1] = cv2.GC_PR_FGD
        labels[band] = cv2.GC_BGD
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(bgr, labels, None, bgd, fgd, cfg.grabcut_iters, cv2.GC_INIT_WITH_MASK)
        fg = _pick_regions(_is_fg(labels), cfg.centre_falloff)

    # The band is forced background, so an object that runs off the frame stops just inside it.
    # Free the band on those sides and let GrabCut decide there.
    sides = _sides_reaching(fg, b)
    if sides:
        for side in sides:
            labels[_side_band(side, h, w, b)] = cv2.GC_PR_BGD
        cv2.grabCut(bgr, labels, None, bgd, fgd, 1, cv2.GC_EVAL)
        fg = _pick_regions(_is_fg(labels), cfg.centre_falloff)
    touches = _touches_edge(fg, 1) or bool(sides)
    fg = _retest_background_regions(small, lab, score, band, fg, bgr, cfg)

    fg = _fill_small_holes(fg, 0.002 * h * w)
    share = float(fg.mean())
    edge = _edge_contrast(small, fg)
    # A real object has an outline sharper than the image's typical gradient (bench views: >= 2);
    # a smooth gradient or noise gives about 1.
    if share < cfg.min_object_share or edge < _MIN_EDGE_CONTRAST:
        raise _no_object(photo)

    # How much of the mask is clearly unlike the background, and how crisp its outline is.
    distinct = float(unlike[fg].mean())
    confidence = 0.15 + 0.45 * min(1.0, distinct / 0.6) + 0.4 * min(1.0, edge / 3.0)
    warnings = []
    if touches:
        confidence *= 0.8
        warnings.append(MSG_EDGE)
    if share > 0.6:
        confidence *= 0.6
        warnings.append(MSG_TOO_BIG)
    confidence = float(np.clip(confidence, 0.0, 1.0))
    if confidence < 0.45:
        warnings.append(MSG_UNCLEAR)

    up = cv2.resize(cv2.GaussianBlur(fg.astype(np.float32), (0, 0), 0.7), (W, H), interpolation=cv2.INTER_LINEAR)
    return Mask(mask=up > 0.5, confidence=confidence, touches_border=touches, method="grabcut",
                warnings=tuple(warnings))


def _is_fg(labels: np.ndarray) -> np.ndarray:
    import cv2

    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def _retest_background_regions(small, lab, score, band, fg, bgr, cfg: SegmentConfig) -> np.ndarray:
    """Give regions inside the mask that look like the background back to GrabCut as background.

    GrabCut's smoothing fills see-through gaps (between chair legs, under a seat) and takes in the
    contact shadow, because the first seed (pixels unlike the border) holds the shadow too. Here the
    object pixels whose colour is common on the border, or whose chromaticity is and that are darker
    (shadow), are grouped into regions; a region whose colour histogram looks like the border's (a
    patch of floor, not a uniformly dark cap that merely shares a colour with some confetti) starts
    the second GrabCut as probable background, and GrabCut decides with fresh colour models.
    """
    import cv2

    h, w = fg.shape
    like = score <= np.percentile(score[band], cfg.retest_percentile)
    f = small.astype(np.float32) + 4.0
    chroma = f[..., :2] / f.sum(2, keepdims=True)  # (r, g) chromaticity: unchanged by shading
    cq = np.minimum((chroma * 64).astype(np.int32), 31)
    cscore = _code_unlikeness(cq[..., 0] * 32 + cq[..., 1], 32 * 32, (32, 32), band, cfg.strips)
    light = lab[..., 0].astype(np.float32)
    strips = np.linspace(0, h, cfg.strips + 1).astype(int)
    row_light = np.empty(h, np.float32)
    for i in range(cfg.strips):
        lo, hi = strips[max(i - 1, 0)], strips[min(i + 2, cfg.strips)]
        row_light[strips[i]:strips[i + 1]] = np.median(light[lo:hi][band[lo:hi]])
    shadow = (cscore <= np.percentile(cscore[band], 70.0)) & (light < 0.92 * row_light[:, None])
    cand = cv2.morphologyEx((fg & (like | shadow)).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, comp, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=4)
    if n <= 1:
        return fg
    q = (lab.astype(np.int32) * 8) // 256
    code = (q[..., 0] * 8 + q[..., 1]) * 8 + q[..., 2]
    border_hist = np.bincount(code[band], minlength=512) / max(int(band.sum()), 1)
    ccode = cq[..., 0] // 4 * 8 + cq[..., 1] // 4
    border_chroma = np.bincount(ccode[band], minlength=64) / max(int(band.sum()), 1)
    retest = np.zeros(n, bool)
    for j in np.nonzero(stats[1:, cv2.CC_STAT_AREA] >= cfg.retest_min_share * h * w)[0] + 1:
        sel = comp == j
        hist = np.bincount(code[sel], minlength=512) / stats[j, cv2.CC_STAT_AREA]
        chist = np.bincount(ccode[sel], minlength=64) / stats[j, cv2.CC_STAT_AREA]
        # A shadowed patch of floor keeps the floor's chromaticities and its mix of colours; a dark
        # object part (a black cap) is neutral too but nearly one colour.
        shaded_floor = np.sqrt(chist * border_chroma).sum() >= 0.8 and 1.0 / (hist**2).sum() >= 6.0
        retest[j] = np.sqrt(hist * border_hist).sum() >= cfg.retest_similarity or shaded_floor
    if not retest.any():
        return fg
    labels = np.where(fg, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    labels[retest[comp]] = cv2.GC_PR_BGD
    labels[band & ~fg] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(bgr, labels, None, bgd, fgd, 2, cv2.GC_INIT_WITH_MASK)
    out = _pick_regions(_is_fg(labels), cfg.centre_falloff)
    # Never let the retest wipe out the object (a background-coloured item): keep the first mask.
    return out if out.sum() > 0.5 * fg.sum() else fg


def _unlikeness(lab: np.ndarray, band: np.ndarray, strips: int) -> np.ndarray:
    """(h, w) float32: -log density of each pixel's Lab colour among the border pixels near its row.

    Each strip uses the border pixels of itself and its neighbours, so a colour seen only on the
    wall at the top does not make the same colour on the object (lower down) look like background.
    """
    q = (lab.astype(np.int32) * _BINS) // 256
    code = (q[..., 0] * _BINS + q[..., 1]) * _BINS + q[..., 2]
    return _code_unlikeness(code, _BINS**3, (_BINS,) * 3, band, strips)


def _code_unlikeness(code: np.ndarray, n_codes: int, shape: tuple, band: np.ndarray, strips: int) -> np.ndarray:
    """(h, w) float32: -log density of each pixel's colour code among the border pixels per strip."""
    from scipy import ndimage as ndi

    h, w = band.shape
    out = np.empty((h, w), np.float32)
    edges = np.linspace(0, h, strips + 1).astype(int)
    rows = np.arange(h)[:, None]
    for i in range(strips):
        lo, hi = edges[max(i - 1, 0)], edges[min(i + 2, strips)]
        sel = band & (rows >= lo) & (rows < hi)
        hist = np.bincount(code[sel], minlength=n_codes).astype(np.float32).reshape(shape)
        # Smoothing over neighbouring bins stands in for the lighting and noise the border missed.
        hist = ndi.uniform_filter(hist, 3, mode="constant") / max(int(sel.sum()), 1)
        rs = slice(edges[i], edges[i + 1])
        out[rs] = -np.log(hist.ravel()[code[rs]] + 1e-7)
    return out


def _pick_regions(mask: np.ndarray, falloff: float) -> np.ndarray:
    """Keep the connected regions that matter: big and near the centre (the photo's subject)."""
    import cv2

    n, lab, stats, cent = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    h, w = mask.shape
    d = np.hypot((cent[1:, 0] - w / 2) / w, (cent[1:, 1] - h / 2) / h)
    weight = stats[1:, cv2.CC_STAT_AREA] * np.exp(-((d / falloff) ** 2))
    keep = np.zeros(n, bool)
    keep[1:] = weight > 0.15 * weight.max()
    return keep[lab]


def _fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fill enclosed holes smaller than max_area px (specks); big ones (chair backs) are real."""
    import cv2

    holes = (~mask).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    h, w = mask.shape
    out = mask.copy()
    for j in range(1, n):
        x, y, bw, bh, area = stats[j]
        enclosed = x > 0 and y > 0 and x + bw < w and y + bh < h
        if enclosed and area < max_area:
            out[lab == j] = True
    return out


def _side_band(side: str, h: int, w: int, b: int) -> tuple[slice, slice]:
    return {
        "top": (slice(0, b), slice(None)), "bottom": (slice(h - b, h), slice(None)),
        "left": (slice(None), slice(0, b)), "right": (slice(None), slice(w - b, w)),
    }[side]


def _sides_reaching(fg: np.ndarray, b: int) -> list[str]:
    """Sides where the mask lies against the background band along more than 3% of the side."""
    h, w = fg.shape
    rows = {"top": fg[b], "bottom": fg[h - b - 1], "left": fg[:, b], "right": fg[:, w - b - 1]}
    return [side for side, line in rows.items() if line.mean() > 0.03]


def _touches_edge(mask: np.ndarray, px: int) -> bool:
    h, w = mask.shape
    edge_px = int(mask[:px].sum() + mask[-px:].sum() + mask[:, :px].sum() + mask[:, -px:].sum())
    return edge_px > 0.01 * (h + w)


def _edge_contrast(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Mean gradient on the mask outline over the image's median gradient (1 = no edge)."""
    import cv2

    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    m8 = mask.astype(np.uint8)
    outline = (cv2.dilate(m8, np.ones((3, 3), np.uint8)) - cv2.erode(m8, np.ones((3, 3), np.uint8))) > 0
    if not outline.any():
        return 0.0
    return float(mag[outline].mean() / max(float(np.median(mag)), 1.0))
