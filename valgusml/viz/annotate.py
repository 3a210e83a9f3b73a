"""What the pictures show, computed with numpy only: per-frame knee angles and the per-limb call texts."""

from __future__ import annotations

from typing import Any

import numpy as np

from valgusml.features import fppa_deg
from valgusml.labels import LIMBS
from valgusml.skeleton import canonical_index

# Below this confidence a joint is not drawn and the FPPA through it is not shown.
MIN_CONFIDENCE = 0.3


def knee_fppa(seq: Any) -> tuple[np.ndarray, np.ndarray]:
    """(times in s (T,), FPPA in degrees (T, 2) for left, right; NaN where a hip, knee or ankle is unsure)."""
    canonical = seq.to_canonical()
    angles = fppa_deg(canonical.keypoints)
    for i, limb in enumerate(LIMBS):
        joints = [canonical_index(f"{limb}_{part}") for part in ("hip", "knee", "ankle")]
        unsure = (canonical.confidence[:, joints] < MIN_CONFIDENCE).any(axis=1)
        angles[unsure, i] = np.nan
    return np.arange(seq.n_frames) / seq.fps, angles


def limb_call(prediction: Any, limb: str) -> str:
    """'VALGUS 0.81 hip_weakness' or 'no valgus 0.12' for one limb of a Prediction."""
    lp = prediction.limbs[limb]
    p = float(lp["valgus_probability"])
    return f"VALGUS {p:.2f} {lp['mechanism']}" if lp["valgus"] else f"no valgus {p:.2f}"


def segment_at(timeline: list[dict[str, Any]], t: float) -> int | None:
    """Index of the last segment holding time t (segments may overlap: windows do), or None."""
    hit = None
    for k, seg in enumerate(timeline):
        if seg["start_s"] <= t < seg["end_s"]:
            hit = k
    return hit
