"""Biomechanical measures from keypoints (2D and 3D), numpy only.

- `frame_measures(kp_canonical)` → `(T, F)` per-frame stream named by `FRAME_MEASURES` (mirror spec in
  `FRAME_MEASURE_MIRROR`), used by preprocessing as the model's extra input.
- `measures(seq)` → per-limb summary dict (peak FPPA, pelvic drop, …) for reports, baselines, the predictor.
- `measure_vector(seq)` → the same summary as a flat vector named by `MEASURE_NAMES` (NaN where unavailable).
"""

from valgusml.features.frame import (
    FOOT_MEASURES,
    FRAME_MEASURE_INDEX,
    FRAME_MEASURE_MIRROR,
    FRAME_MEASURES,
    LIFTED_MEASURES,
    frame_measures,
    mirror_frame_measures,
)
from valgusml.features.geometry import as_frontal_2d, fppa_deg, frontal_projection
from valgusml.features.summary import (
    BILATERAL_MEASURES,
    LIMB_MEASURES,
    MEASURE_NAMES,
    flatten_measures,
    measure_vector,
    measures,
    summarize,
)

__all__ = [
    "BILATERAL_MEASURES",
    "FOOT_MEASURES",
    "FRAME_MEASURES",
    "FRAME_MEASURE_INDEX",
    "FRAME_MEASURE_MIRROR",
    "LIFTED_MEASURES",
    "LIMB_MEASURES",
    "MEASURE_NAMES",
    "as_frontal_2d",
    "flatten_measures",
    "fppa_deg",
    "frame_measures",
    "frontal_projection",
    "measure_vector",
    "measures",
    "mirror_frame_measures",
    "summarize",
]
