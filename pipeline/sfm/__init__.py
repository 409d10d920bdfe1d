"""Structure from motion: where each photo was taken (pycolmap).

Entry: `estimate_poses` in stage.py; settings in config.py; the other modules are its helpers.
"""

from .config import PRESETS, RESHOOT_ADVICE, STAGE, SfmConfig
from .stage import estimate_poses

__all__ = ['PRESETS', 'RESHOOT_ADVICE', 'STAGE', 'SfmConfig', 'estimate_poses']
