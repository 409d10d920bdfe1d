"""Dense-geometry settings: one frozen config and its named presets."""

from __future__ import annotations

from dataclasses import dataclass

STAGE = "geometry"


@dataclass(frozen=True)
class DenseConfig:
    grid: int = 128  # voxels along the longest side of the object's box
    coarse_grid: int = 64  # voxels along the search cube used to find the object
    mask_long_side: int = 512  # px, masks are reduced to this for the hull's distance maps
    vote_tolerance: float = 0.15  # share of the views that may disagree with the hull (bad masks)
    # ... but never more: each extra one keeps parts a real segmenter misses in a few views (chair
    # legs) but lets flat faces bulge more, since only the views seeing a face edge-on carve it.
    max_bad_views: int = 5
    # Second pass (see refine.py): outlines snapped to each photo's edges, then a stricter
    # vote. 3, not 0-2: one dark part GrabCut drops in a few views (a boombox's grille) would
    # be carved away.
    refine: bool = True
    refine_band: float = 0.012  # share of the long side (12 px at 1024) GrabCut may move an outline
    refined_max_bad_views: int = 3
    # A single view may pull the voted surface in by up to this many px (see hull_field). Only in
    # the second pass, where outlines are sharp: with the segmenter's own masks it carves away
    # real parts. 5 px (36 bench photos, true cameras): F@1% +0.05 banana, +0.02 avocado, chair
    # and water bottle; 6-7 px start to thin the boombox's dark grille and handle.
    snap_px: float = 0.0
    refined_snap_px: float = 5.0
    # In the second pass, outline pixels whose texture lies on the table plane (a contact shadow)
    # are background (see table_pixels); the test planes sit this share of the camera distance
    # (and twice it) above the table. 0: off.
    table_rise: float = 0.02
    # Thin parts (see thin.py): a point the vote dropped comes back when at least thin_share
    # of the masks hold it and its colour agrees (within the tolerance, CIELAB) in thin_agree of
    # the views. 0: off.
    thin_share: float = 0.4
    thin_agree: float = 0.4
    thin_colour_tolerance: float = 20.0
    photo_consistency: bool = True  # carve concavities with depth maps (False: hull only)
    depth_long_side: int = 320  # px, images are reduced to this for the plane sweep
    planes: int = 48  # depth hypotheses per pixel, between the hull's front and back
    neighbours: int = 4  # views matched against each reference view
    ncc_radius: int = 2  # ZNCC window is (2r+1)^2 px
    min_score: float = 0.0  # ZNCC a depth must reach to be used (0.6 loses most of a chair's carving)
    min_texture: float = 0.015  # grey-level std (0..1) below which a patch is too plain to match
    consistency: float = 0.01  # relative depth agreement between views
    min_agree: int = 3  # neighbour depth maps that must confirm a depth (2 lets reflections carve)
    trunc_voxels: float = 3.0  # TSDF truncation, in voxels
    min_observations: float = 2.0  # views that must see a voxel before the TSDF may carve it
    silhouette_long_side: int = 640  # px, the carved masks are drawn at this size, then scaled up
    min_free_share: float = 0.25  # of the views with a depth there, share that must see a voxel
    keep_component: float = 0.1  # keep pieces at least this share of the largest piece
    # The item among the sparse points (see locate.py): clustered at this share of the camera
    # distance, from this many points on. A mask votes when it holds locate_min_recall of the
    # item's points and at most locate_max_spill of its area lies outside the item's box; that
    # rule applies while at least locate_trust of the placed photos pass it (chair, 36 photos:
    # the two GrabCut masks under IoU 0.5 fail it, every true mask passes). When the outlines do
    # not meet in 3D, the hull stays inside the box grown by locate_room of its size, and fewer
    # than locate_min_agree of the placed photos passing means re-shoot.
    locate_cell: float = 0.025
    locate_min_points: int = 12
    locate_min_recall: float = 0.6
    locate_max_spill: float = 0.5
    locate_trust: float = 0.5
    locate_room: float = 0.3
    locate_min_agree: float = 0.34
    chunk: int = 131072  # voxels per batch (memory ~ chunk x views x 40 bytes)
    seed: int = 0


PRESETS: dict[str, DenseConfig] = {
    "fast": DenseConfig(grid=96, mask_long_side=384, depth_long_side=256, planes=32, neighbours=3, min_agree=2),
    "balanced": DenseConfig(),
    "high": DenseConfig(grid=176, mask_long_side=768, depth_long_side=448, planes=64, neighbours=6, min_agree=3),
}
