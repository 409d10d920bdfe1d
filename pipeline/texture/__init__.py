"""Texture stage: UV atlas and a base colour baked from the photos (torch).

Entry: `bake_texture` in stage.py; settings in config.py; the other modules are its helpers.
"""

from .config import MIRROR_KINDS, PRESETS, STAGE, TextureConfig
from .stage import bake_texture

__all__ = ['MIRROR_KINDS', 'PRESETS', 'STAGE', 'TextureConfig', 'bake_texture']
