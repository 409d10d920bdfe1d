"""Run the Khronos glTF-Validator (npm package `gltf-validator`, via node) on a GLB file.

Needs `node` on PATH and `npm install` run in the project root. Missing tools raise, so tests that
use this fail loudly instead of skipping.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).with_name("gltf_validate.js")


def validate_glb(path: str | Path) -> dict:
    """Return the validator's report: `report["issues"]["numErrors"]`, `numWarnings`, `messages`, ..."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed; the glTF validator needs it")
    if not (ROOT / "node_modules" / "gltf-validator").is_dir():
        raise RuntimeError("gltf-validator is missing: run `npm install` in the project root")
    done = subprocess.run(
        [node, str(SCRIPT), str(Path(path).resolve())],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"glTF validator failed on {path}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def errors_of(report: dict) -> list[str]:
    """Plain lines for the error-severity messages of a report (severity 0)."""
    return [
        f"{m.get('code')}: {m.get('message')} at {m.get('pointer', '')}"
        for m in report.get("issues", {}).get("messages", [])
        if m.get("severity") == 0
    ]
