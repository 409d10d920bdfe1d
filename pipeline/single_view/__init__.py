"""Single-photo geometry: one photo and its outline to a shape from a shape prior.

Entry: `shape_from_photo` in stage.py; settings in config.py; the other modules are its helpers.
"""

from .config import PRESETS, STAGE, SingleViewConfig
from .stage import shape_from_photo

__all__ = ['PRESETS', 'STAGE', 'SingleViewConfig', 'shape_from_photo']
