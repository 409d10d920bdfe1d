"""Quality gate: is the finished model a faithful model of the item in the photos?"""

from .config import PRESETS, GateConfig
from .stage import judge

__all__ = ["GateConfig", "PRESETS", "judge"]
