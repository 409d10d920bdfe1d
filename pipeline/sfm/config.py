"""Structure-from-motion settings: one frozen config and its named presets."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

STAGE = "poses"

RESHOOT_ADVICE = (
    "Re-shoot: walk around the item taking a photo every 10-15 degrees, keep the whole item in view, "
    "use a textured surface (a newspaper or patterned cloth) under it, and avoid moving the item "
    "between photos."
)


class FeaturePass(Enum):
    """Which local features a pass of the stage matches."""

    SIFT = "sift"  # COLMAP's SIFT: the first pass
    XFEAT = "xfeat"  # learned XFeat features: the second pass for plain surfaces, when installed
    SIFT_HARD = "sift_hard"  # weaker, denser SIFT: the second pass without the XFeat weights


@dataclass(frozen=True)
class SfmConfig:
    max_image_size: int = 1024  # long side the features are found at (px); K is still in working px
    max_features: int = 4096  # SIFT features per photo
    # Affine-adapted SIFT regions: a photo from low down sees the table and the item squashed
    # compared with one from higher up, and plain SIFT matches too few such pairs to place it.
    affine_shape: bool = True
    # COLMAP's default (-1) doubles the photo before the first octave: 4x the pixels for the
    # smallest details, which a 1024 px photo of a centred item does not need (see stage timing).
    first_octave: int = 0
    camera_model: Literal["SIMPLE_RADIAL", "SIMPLE_PINHOLE"] = "SIMPLE_RADIAL"
    pinhole: bool = True  # re-fit without distortion at the end (dense uses pinhole K only)
    default_focal_factor: float = 0.78  # focal / long side when EXIF has none (28 mm equivalent)
    centre_mask: float = 0.65  # find features only in this central ellipse (0: whole photo)
    # With object masks: features only in the mask's bounding box grown by this share of its
    # size (the object plus the table right around it; far table texture repeats and mismatches).
    mask_grow: float = 0.4
    mapper: Literal["incremental", "global"] = "incremental"
    # Pairs to match (pairs.py): each photo with `window` next ones along the walk and with the
    # `retrieval` photos most alike by a bag of words; all pairs when that would be nearly all.
    window: int = 5
    retrieval: int = 12
    ransac_max_trials: int = 2000  # geometric verification; most true pairs converge far sooner
    ba_global_max_iterations: int = 50
    ba_local_max_iterations: int = 25
    ba_growth: float = 1.3  # global bundle adjustment each time the model grows by this factor
    ba_global_refinements: int = 2  # re-runs after filtering outlier observations (COLMAP: 5)
    min_placed_share: float = 0.3  # below max(3, share * photos) placed: CaptureError
    retry_hard: bool = True  # second pass for plain surfaces when the first places too few
    # The second pass runs when the first leaves out more than this share of the photos.
    retry_below_share: float = 0.9
    # Second pass with XFeat (when its weights are installed) instead of the denser SIFT. Off:
    # on the plain-table bench capture it placed 36/36 but at 9.8 deg mean rotation error, where
    # the denser SIFT pass places 36/36 at 0.1 deg (bench/sfm_check.py hard).
    xfeat: bool = False
    xfeat_max_features: int = 4096
    # Repeated patterns (see filter.py and place.py): grow candidate models from pairs confirmed
    # by closing triangles, keep only the matches that agree with each, pick the best-confirmed.
    pair_filter: bool = True
    strict_registration: bool = True  # tighter PnP checks in the mapper (see map_images)
    epipolar_px: float = 4.0  # a match agrees with the model within this Sampson distance
    stray_check: bool = True  # un-place photos looking past the common target (object-centred captures)
    hard_max_features: int = 8192
    hard_peak_threshold: float = 0.002
    num_threads: int = -1
    seed: int = 0  # fixed so a re-run gives the same model


PRESETS: dict[str, SfmConfig] = {
    "fast": SfmConfig(max_image_size=1024, max_features=2048, ba_global_max_iterations=30),
    "balanced": SfmConfig(max_image_size=1024, max_features=4096),
    "high": SfmConfig(max_image_size=1600, max_features=8192, ba_global_max_iterations=100),
}
