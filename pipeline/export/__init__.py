"""Export stage: GLB, USDZ, OBJ zip and poster in the product frame.

Entry: `export_all` in stage.py; settings in config.py; the other modules are its helpers.
"""

from .config import GENERATOR, PRESETS, STAGE, ExportConfig
from .stage import export_all

__all__ = ['GENERATOR', 'PRESETS', 'STAGE', 'ExportConfig', 'export_all']
