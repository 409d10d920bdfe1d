"""Export stage: GLB, USDZ, OBJ zip and poster in the product frame.

Entry: `export_all` in stage.py (and `adjust_model` / `preview_adjustment` to correct a finished
model from its GLB); settings in config.py; the other modules are its helpers.
"""

from .config import GENERATOR, PRESETS, STAGE, ExportConfig
from .stage import adjust_model, export_all, preview_adjustment

__all__ = ['GENERATOR', 'PRESETS', 'STAGE', 'ExportConfig', 'adjust_model', 'export_all', 'preview_adjustment']
