"""Canonical JSON: one text for one value (sorted keys, no spaces, numpy values as plain ones, NaN kept as in
Python's json), so that hashes taken of it (dataset fingerprints, cache keys) are stable."""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, NaN allowed as in Python's json) used everywhere hashes are taken."""
    return json.dumps(value, sort_keys=True, default=json_default, separators=(",", ":"))
