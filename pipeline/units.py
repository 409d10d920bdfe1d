"""Parsing real-world sizes such as "80cm", "0.8 m" or "31.5in" into metres."""

from __future__ import annotations

import re

from .errors import InputError

_UNITS = {
    "mm": 0.001, "millimeter": 0.001, "millimetre": 0.001, "millimeters": 0.001, "millimetres": 0.001,
    "cm": 0.01, "centimeter": 0.01, "centimetre": 0.01, "centimeters": 0.01, "centimetres": 0.01,
    "m": 1.0, "meter": 1.0, "metre": 1.0, "meters": 1.0, "metres": 1.0,
    "in": 0.0254, "inch": 0.0254, "inches": 0.0254, '"': 0.0254,
    "ft": 0.3048, "foot": 0.3048, "feet": 0.3048, "'": 0.3048,
}
_PATTERN = re.compile(r"^\s*([0-9]*[.,]?[0-9]+)\s*([a-zA-Z\"']*)\s*$")

#: Sizes outside this range are almost certainly typos (a 0.1 mm sofa, a 200 m vase).
MIN_SIZE_M = 0.005
MAX_SIZE_M = 20.0


def parse_size(text: str, default_unit: str = "m") -> float:
    """Return the size in metres. A bare number uses `default_unit`.

    Raises InputError with a plain message for anything else.
    """
    match = _PATTERN.match(str(text))
    if not match:
        raise InputError("options", f"Could not read the size '{text}'. Write it like 80cm, 0.8m or 31.5in.")
    number = float(match.group(1).replace(",", "."))
    unit = (match.group(2) or default_unit).lower()
    if unit not in _UNITS:
        raise InputError("options", f"Unknown unit '{match.group(2)}' in '{text}'. Use mm, cm, m, in or ft.")
    metres = number * _UNITS[unit]
    if not MIN_SIZE_M <= metres <= MAX_SIZE_M:
        raise InputError(
            "options",
            f"The size '{text}' ({metres:g} m) looks wrong: sizes between 5 mm and 20 m are supported.",
        )
    return metres


def format_size(metres: float) -> str:
    """'52.0 cm (20.5 in)': the way sizes are shown to merchants."""
    return f"{metres * 100:.1f} cm ({metres / 0.0254:.1f} in)"


def format_dimensions(dims_m: tuple[float, float, float]) -> str:
    """'44 × 85 × 42 cm (17.3 × 33.5 × 16.5 in)': width x height x depth, as merchants see them."""
    w, h, d = (float(v) for v in dims_m)
    return f"{w * 100:.0f} × {h * 100:.0f} × {d * 100:.0f} cm ({w / 0.0254:.1f} × {h / 0.0254:.1f} × {d / 0.0254:.1f} in)"
