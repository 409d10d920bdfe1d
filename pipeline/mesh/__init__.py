"""Mesh stage: clean, simplify and size a shape.

Entry: `finish_mesh` in stage.py; settings in config.py; the other modules are its helpers.
"""

from .config import PRESETS, STAGE, MeshConfig
from .stage import finish_mesh

__all__ = ['PRESETS', 'STAGE', 'MeshConfig', 'finish_mesh']
