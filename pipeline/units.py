"""Parsing real-world sizes such as "80cm", "0.8 m" or "31.5in" into metres."""

from __future__ import annotations

import math
import numbers
import re

from .errors import InputError

_UNITS = {
    "mm": 0.001, "millimeter": 0.001, "millimetre": 0.001, "millimeters": 0.001, "millimetres": 0.001,
    "cm": 0.01, "centimeter": 0.01, "centimetre": 0.01, "centimeters": 0.01, "centimetres": 0.01,
    "m": 1.0, "meter": 1.0, "metre": 1.0, "meters": 1.0, "metres": 1.0,
    "in": 0.0254, "inch": 0.0254, "inches": 0.0254, '"': 0.0254,
    "ft": 0.3048, "foot": 0.3048, "feet": 0.3048, "'": 0.3048,
}
_PATTERN = re.compile(r"^\s*([+-]?)([0-9]*[.,]?[0-9]+)\s*([a-zA-Z\"']*)\s*$")

#: Sizes outside this range are almost certainly typos (a 0.1 mm sofa, a 200 m vase). One rule
#: for every way a size arrives (CLI text, the web form, `KnownSize` in the API): nothing a
#: merchant sells and a phone can place in a room is under 5 mm or over 20 m.
MIN_SIZE_M = 0.005
MAX_SIZE_M = 20.0
_RANGE_WORDS = "sizes between 5 mm and 20 m are supported"


def parse_size(text: str, default_unit: str = "m") -> float:
    """Return the size in metres. A bare number uses `default_unit`.

    Raises InputError with a plain message for anything else.
    """
    if not str(text).strip():
        raise InputError("options", "The size is empty. Write it like 80cm, 0.8m or 31.5in.")
    match = _PATTERN.match(str(text))
    if not match:
        raise InputError("options", f"Could not read the size '{text}'. Write it like 80cm, 0.8m or 31.5in.")
    sign, digits, unit_text = match.groups()
    unit = (unit_text or default_unit).lower()
    if unit not in _UNITS:
        raise InputError("options", f"Unknown unit '{unit_text}' in '{text}'. Use mm, cm, m, in or ft.")
    metres = float(digits.replace(",", ".")) * _UNITS[unit]
    if sign == "-" or metres == 0:  # "-0cm" too: a real item has a size above zero
        raise InputError("options", f"The size must be more than zero, not '{text}'. Write it like 80cm.")
    if not MIN_SIZE_M <= metres <= MAX_SIZE_M:
        raise InputError("options", f"The size '{text}' ({metres:g} m) looks wrong: {_RANGE_WORDS}.")
    return metres


def check_metres(value: object, what: str = "size") -> float:
    """`value` as a float number of metres in [MIN_SIZE_M, MAX_SIZE_M]; InputError otherwise.

    For sizes that arrive as numbers (the API's `KnownSize`): NaN, infinities, zero, negatives,
    absurd values, text and booleans each get one line naming the value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shown = f"'{value}'" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
        raise InputError("options", f"The {what} must be a number of metres, not {shown}. "
                                    "For text such as '80cm' use pipeline.parse_size.")
    metres = float(value)
    if math.isnan(metres) or math.isinf(metres):
        raise InputError("options", f"The {what} must be a real number of metres, not {metres}.")
    if metres <= 0:
        raise InputError("options", f"The {what} must be more than zero, not {metres:g} m.")
    if not MIN_SIZE_M <= metres <= MAX_SIZE_M:
        raise InputError("options", f"The {what} {metres:g} m looks wrong: {_RANGE_WORDS}.")
    return metres


def format_size(metres: float) -> str:
    """'52.0 cm (20.5 in)': the way sizes are shown to merchants."""
    return f"{metres * 100:.1f} cm ({metres / 0.0254:.1f} in)"


def format_dimensions(dims_m: tuple[float, float, float]) -> str:
    """'44 × 85 × 42 cm (17.3 × 33.5 × 16.5 in)': width x height x depth, as merchants see them."""
    w, h, d = (float(v) for v in dims_m)
    return f"{w * 100:.0f} × {h * 100:.0f} × {d * 100:.0f} cm ({w / 0.0254:.1f} × {h / 0.0254:.1f} × {d / 0.0254:.1f} in)"
