"""Where the shared benchmark data lives: the one definition for bench scripts and tests.

`bench_root()` is $PLINTH_BENCH, default ../shared/bench beside the project root (see
shared/bench/README.md for what is in it).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_root() -> Path:
    """$PLINTH_BENCH, default ../shared/bench beside the project root (resolved; may not exist)."""
    return Path(os.environ.get("PLINTH_BENCH", ROOT.parent / "shared" / "bench")).resolve()
