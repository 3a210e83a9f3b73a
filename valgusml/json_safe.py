"""Values made ready for `json.dumps`: plain Python types, and None where JSON has no number (NaN, ±inf).

The one sanitiser used wherever valgusml writes JSON of its own: predictions, `model.json`, summary measures and
the pose-file writers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def json_float(value: float, digits: int | None = None) -> float | None:
    """A float for JSON: None when not finite, rounded to `digits` if given, and never `-0.0`."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return (value if digits is None else round(value, digits)) + 0.0  # + 0.0 turns -0.0 into 0.0


def to_jsonable(value: Any) -> Any:
    """Nested mappings, sequences, numpy arrays and scalars as plain JSON types (NaN → None, keys → str);
    anything else becomes its `str`."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return json_float(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)
