"""Medians and percentiles of small 1-D arrays, equal to `np.median`'s and `np.percentile`'s, without their
overhead; and the NaN-aware moving average the summary and the phases smooth with.

`np.median` costs ~25 µs a call however short the array (argument handling, a NaN check, `np.mean` of the
middle pair), `np.percentile` ~15-40 µs; the predictor takes several medians of ~100 values per recording, and
its summary measures some thirty of each. One partition and the middle value(s) give the same number: the mean
of the middle pair is `(low + high) / 2` in the array's dtype, as `np.mean` computes it; a percentile is numpy's
linear interpolation between the two ranks around `(n - 1) q / 100`, in the same operations.
"""

from __future__ import annotations

import math

import numpy as np


def _middle(values: np.ndarray) -> float:
    """The median of a non-empty 1-D float array without NaN."""
    n = values.size
    half = n // 2
    if n % 2:
        return float(np.partition(values, half)[half])
    part = np.partition(values, (half - 1, half))
    return float((part[half - 1] + part[half]) / 2)


def median(values: np.ndarray) -> float:
    """`float(np.median(values))` of a non-empty 1-D float array (NaN if any value is NaN)."""
    return math.nan if np.isnan(values).any() else _middle(values)


def finite_median(values: np.ndarray) -> float:
    """Median of the finite values of a 1-D float array, NaN when there are none."""
    finite = values[np.isfinite(values)]
    return _middle(finite) if finite.size else math.nan


def percentile(values: np.ndarray, q: float) -> float:
    """`float(np.percentile(values, q))` of a non-empty 1-D float array without NaN ("linear" method), in the
    array's own precision as numpy computes it (a float32 array's rank and weight are float32 too)."""
    kind = values.dtype.type
    n = values.size
    position = (n - 1) * (kind(q) / kind(100))
    if position >= n - 1:
        return float(values.max())
    below = math.floor(position)
    part = np.partition(values, (below, below + 1))
    low, high = part[below], part[below + 1]
    weight = position - kind(below)
    step = high - low
    # numpy's `_lerp`: from the nearer end, so the result stays within [low, high]
    return float(high - step * (1 - weight)) if weight >= 0.5 else float(low + step * weight)


__all__ = ["finite_median", "median", "percentile"]


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """NaN-aware centred moving average along axis 0 (a frame with no valid neighbour stays NaN)."""
    if width <= 1:
        return values
    valid = np.isfinite(values)
    filled = np.where(valid, values, 0.0)
    pad = width // 2
    pad_spec = ((pad + 1, width - pad - 1),) + ((0, 0),) * (values.ndim - 1)
    csum = np.cumsum(np.pad(filled, pad_spec), axis=0)
    ccount = np.cumsum(np.pad(valid.astype(np.float64), pad_spec), axis=0)
    total = csum[width:] - csum[:-width]
    count = ccount[width:] - ccount[:-width]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
