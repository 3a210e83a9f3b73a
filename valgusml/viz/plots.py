"""Matplotlib figures (Agg backend, no display) shared by `valgusml predict --plot` and the evaluation report.

`recording_plot` draws one recording: each knee's FPPA over time with the timeline's segments (windows today,
reps or loaded phases when the predictor gives them), a clinical reference angle, and the per-limb valgus
probability of every segment against the decision threshold. `save_figure` writes any figure atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from valgusml.labels import LIMBS  # noqa: E402

LIMB_COLOURS = {"left": "tab:blue", "right": "tab:orange"}
# A reference line only: clinical cut-offs range from ~8° (bilateral squat, men) to ~12° (single-leg tasks, women).
FPPA_REFERENCE_DEG = 10.0


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Lay out, write (through a temporary file, so no half-written PNG is left) and close a figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def segment_bounds(timeline: Sequence[Mapping[str, Any]]) -> list[tuple[float, float]]:
    return [(float(s["start_s"]), float(s["end_s"])) for s in timeline]


def recording_plot(
    times_s: np.ndarray,
    fppa_deg: np.ndarray,
    timeline: Sequence[Mapping[str, Any]],
    decision_threshold: float,
    path: str | Path,
    title: str = "",
    calls: Mapping[str, str] | None = None,
    fppa_reference_deg: float = FPPA_REFERENCE_DEG,
) -> Path:
    """Per-limb FPPA (T, 2 = left, right) over `times_s`, the segments shaded, and below it the timeline of
    per-limb valgus probabilities (one step per segment) against `decision_threshold`. `calls` (limb → text)
    goes in the legend."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    bounds = segment_bounds(timeline)
    for k, (start, end) in enumerate(bounds):
        for ax in (top, bottom):
            ax.axvspan(start, end, color="grey", alpha=0.07 if k % 2 else 0.14, lw=0)
    for i, limb in enumerate(LIMBS):
        label = f"{limb} knee" + (f": {calls[limb]}" if calls and limb in calls else "")
        top.plot(times_s, fppa_deg[:, i], color=LIMB_COLOURS[limb], lw=1.3, label=label)
    top.axhline(fppa_reference_deg, color="crimson", lw=0.9, ls="--", label=f"{fppa_reference_deg:g}° reference")
    top.axhline(0.0, color="black", lw=0.5)
    top.set_ylabel("FPPA (°, + = valgus)")
    top.legend(fontsize=8, loc="upper left", ncol=3)
    top.set_title(title or "Frontal-plane projection angle", fontsize=10, loc="left")
    for limb in LIMBS:
        xs, ys = [], []
        for (start, end), seg in zip(bounds, timeline, strict=True):
            p = seg["valgus_probability"][limb]
            p = np.nan if p is None else float(p)  # None: the limb was not seen in that segment
            xs += [start, end, np.nan]
            ys += [p, p, np.nan]
        bottom.plot(xs, ys, color=LIMB_COLOURS[limb], lw=2.0, label=limb)
    bottom.axhline(decision_threshold, color="crimson", lw=0.9, ls="--", label=f"threshold {decision_threshold:.2f}")
    bottom.set_ylim(-0.03, 1.03)
    bottom.set_ylabel("P(valgus) per segment")
    bottom.set_xlabel("time (s)")
    bottom.legend(fontsize=8, loc="upper left", ncol=3)
    return save_figure(fig, path)


def prediction_plot(seq: Any, prediction: Any, path: str | Path, title: str | None = None) -> Path:
    """`recording_plot` of one sequence and its Prediction (what `valgusml predict --plot` writes)."""
    from valgusml.viz.annotate import knee_fppa, limb_call

    times, angles = knee_fppa(seq)
    calls = {limb: limb_call(prediction, limb) for limb in LIMBS}
    return recording_plot(times, angles, prediction.timeline, prediction.decision_threshold, path,
                          title=title if title is not None else (seq.id or ""), calls=calls)
