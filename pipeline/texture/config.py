"""Texture settings: one frozen config and its named presets."""

from __future__ import annotations

from dataclasses import dataclass

STAGE = "texture"

#: Kinds whose back is plausibly a mirror image of the front (single photo).
MIRROR_KINDS = ("revolve", "round")


@dataclass(frozen=True)
class TextureConfig:
    texture_size: int = 2048  # output texture side (power of two)
    bake_size: int = 1024  # side the colours are computed at, then upsampled to texture_size
    padding_px: int = 4  # atlas gutter between charts, in bake texels
    depth_size: int = 384  # long side of each view's z-buffer
    mask_erode_px: int = 3  # never sample this close to the mask edge (background bleed)
    feather_px: float = 8.0  # views fade in over this many pixels inside the eroded mask
    sharpness: float = 6.0  # view blend exponent: higher = best view dominates, sharper seams
    balance_exposure: bool = True  # per-view colour gains matched on the overlaps
    # A placed photo whose colours differ this much from the others' (see _unlike_views) shows
    # another item and is not painted from.
    unlike_ratio: float = 4.0
    unlike_margin: float = 12.0
    steep_cos: float = 0.35  # single photo: below this cosine fade to a blurred colour (no streaks)
    fill_blur: float = 0.04  # blur of the fill colours, as a share of the object's size in the photo
    tight_atlas: bool = True  # re-pack charts with xatlas (about 2x the texel density, ~0.2 s)
    heldout_views: int = 3  # photos left out of the bake to measure the photometric error honestly
    heldout_min_views: int = 12  # only hold photos out when at least this many are placed


PRESETS: dict[str, TextureConfig] = {
    "fast": TextureConfig(bake_size=512, depth_size=256, sharpness=4.0, tight_atlas=False),
    "balanced": TextureConfig(),
    "high": TextureConfig(bake_size=2048, depth_size=512, padding_px=6),
}
