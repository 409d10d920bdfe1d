"""Dense multi-photo geometry: photos, masks and poses to a watertight shape (torch).

Entry: `reconstruct_dense` in stage.py; settings in config.py; the other modules are its helpers.
"""

from .config import PRESETS, STAGE, DenseConfig
from .stage import reconstruct_dense

__all__ = ['PRESETS', 'STAGE', 'DenseConfig', 'reconstruct_dense']
