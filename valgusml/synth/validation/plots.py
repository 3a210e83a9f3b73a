"""The report's figures: peak FPPA per task, mechanism measures per class, stick figures at peak load."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.features.frame import FRAME_MEASURE_INDEX, frame_measures
from valgusml.features.geometry import as_frontal_2d
from valgusml.labels import MECHANISM_SHORT_NAMES
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL
from valgusml.synth.validation.references import TASK_ORDER
from valgusml.synth.validation.statistics import (
    CLASSES,
    UNKNOWN_CLASS,
    finite_values,
    reference_for,
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


CLASS_COLOURS = {
    "none": "#7f7f7f",
    "hip_weakness": "#d62728",
    "adductor_tfl_overactivity": "#9467bd",
    "pronation": "#1f77b4",
    "limited_dorsiflexion": "#2ca02c",
    UNKNOWN_CLASS: "#ff7f0e",
}


def _boxplot(ax, rows, family, column):
    data, labels, colours = [], [], []
    for cls in CLASSES:
        values = finite_values(r[column] for r in rows if r["family"] == family and r["class"] == cls)
        if values.size:
            data.append(values)
            labels.append(f"{MECHANISM_SHORT_NAMES.get(cls, UNKNOWN_CLASS)}\n{values.size}")
            colours.append(CLASS_COLOURS[cls])
    if not data:
        ax.set_axis_off()
        return
    parts = ax.boxplot(data, tick_labels=labels, patch_artist=True, showfliers=False, widths=0.6)
    for patch, colour in zip(parts["boxes"], colours, strict=False):
        patch.set_facecolor(colour)
        patch.set_alpha(0.5)
    ax.tick_params(axis="x", labelsize=7)
    ax.tick_params(axis="y", labelsize=7)


def plot_fppa(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    families = [t for t in TASK_ORDER if any(r["family"] == t for r in rows)]
    fig, axes = plt.subplots(
        1, max(1, len(families)), figsize=(3.2 * max(1, len(families)), 3.6), squeeze=False
    )
    for ax, family in zip(axes[0], families, strict=False):
        for cls, colour in (("none", "#7f7f7f"), ("valgus", "#d62728")):
            ref = reference_for(family, cls if cls == "none" else "hip_weakness", "peak_fppa_deg")
            if ref is not None:
                ax.axhspan(ref.low, ref.high, color=colour, alpha=0.12, lw=0)
        _boxplot(ax, rows, family, "peak_fppa_deg")
        ax.set_title(family.replace("_", " "), fontsize=9)
    axes[0][0].set_ylabel("peak FPPA, emitted 2D (°)\nshaded: literature none / valgus")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_measures(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    columns = [
        ("pelvic_drop_deg", "pelvic drop (°)"),
        ("peak_hip_adduction_deg", "hip adduction proxy (°)"),
        ("min_knee_ankle_separation_ratio", "knee/ankle separation"),
        ("foot_roll_in_mm", "ankle medial to toes (mm)"),
        ("peak_knee_flexion_deg", "knee flexion proxy (°)"),
        ("heel_rise_onset_s", "heel rise onset (s)"),
        ("peak_trunk_lean_sagittal_deg", "trunk forward proxy (°)"),
    ]
    families = [t for t in TASK_ORDER[:4] if any(r["family"] == t for r in rows)] or sorted(
        {r["family"] for r in rows}
    )
    fig, axes = plt.subplots(
        len(columns), len(families), figsize=(3.0 * len(families), 2.2 * len(columns)), squeeze=False
    )
    for i, (column, label) in enumerate(columns):
        for j, family in enumerate(families):
            _boxplot(axes[i][j], rows, family, column)
            if i == 0:
                axes[i][j].set_title(family.replace("_", " "), fontsize=9)
            if j == 0:
                axes[i][j].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _peak_load_frame(seq: KeypointSequence, limb: str) -> int:
    kp = seq.to_canonical().keypoints
    flexion = frame_measures(kp)[:, FRAME_MEASURE_INDEX[f"{limb}_knee_flexion_deg"]]
    fppa = frame_measures(kp)[:, FRAME_MEASURE_INDEX[f"{limb}_fppa_deg"]]
    if np.isfinite(flexion).any():
        deep = flexion >= np.nanpercentile(flexion, 90)
        candidates = np.where(deep & np.isfinite(fppa))[0]
        if candidates.size:
            return int(candidates[np.argmax(fppa[candidates])])
    return int(np.nanargmax(np.where(np.isfinite(fppa), fppa, -np.inf))) if np.isfinite(fppa).any() else 0


def _draw_stick(ax, seq: KeypointSequence, frame: int, limb: str) -> None:
    canonical = seq.to_canonical()
    view = as_frontal_2d(canonical.keypoints)
    index = {j: i for i, j in enumerate(CANONICAL.joints)}
    labelled = {(f"{limb}_hip", f"{limb}_knee"), (f"{limb}_knee", f"{limb}_ankle")}
    for t, colour, width in ((0, "#bbbbbb", 1.0), (frame, "black", 2.0)):
        pts = view[t]
        for a, b in CANONICAL.bones:
            p, q = pts[index[a]], pts[index[b]]
            if np.isfinite(p).all() and np.isfinite(q).all():
                red = t == frame and (a, b) in labelled
                ax.plot([p[0], q[0]], [p[1], q[1]], color="#d62728" if red else colour, lw=width)
    hip, knee, ankle = (view[frame, index[f"{limb}_{j}"]] for j in ("hip", "knee", "ankle"))
    if np.isfinite([hip, knee, ankle]).all():
        ax.plot([hip[0], ankle[0]], [hip[1], ankle[1]], ls="--", color="#1f77b4", lw=1)  # hip–ankle line
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])


def plot_stick_figures(
    sequences: list[KeypointSequence],
    rows: list[dict[str, Any]],
    path: Path,
    families=("single_leg_squat", "bilateral_squat"),
) -> list[dict[str, Any]]:
    """One panel per task × class: the limb closest to its class median peak FPPA, drawn at peak load (front
    view; grey = first frame, red = the labelled limb's thigh and shank, dashed = its hip–ankle line)."""
    plt = _pyplot()
    families = [f for f in families if any(r["family"] == f for r in rows)]
    classes = [c for c in CLASSES if c != UNKNOWN_CLASS or any(r["class"] == c for r in rows)]
    chosen = []
    fig, axes = plt.subplots(
        max(1, len(families)),
        len(classes),
        figsize=(2.6 * len(classes), 3.6 * max(1, len(families))),
        squeeze=False,
    )
    for i, family in enumerate(families):
        for j, cls in enumerate(classes):
            ax = axes[i][j]
            group = [
                r
                for r in rows
                if r["family"] == family and r["class"] == cls and math.isfinite(r["peak_fppa_deg"])
            ]
            if not group:
                ax.set_axis_off()
                continue
            # prefer near-frontal cameras, where a person can judge the picture
            yaws = [abs(sequences[r["index"]].meta_value("yaw_deg") or 0.0) for r in group]
            frontal = [r for r, y in zip(group, yaws, strict=False) if y <= 15.0] or group
            median = float(np.median([r["peak_fppa_deg"] for r in frontal]))
            row = min(frontal, key=lambda r: abs(r["peak_fppa_deg"] - median))
            seq = sequences[row["index"]]
            frame = _peak_load_frame(seq, row["limb"])
            _draw_stick(ax, seq, frame, row["limb"])
            ax.set_title(
                f"{cls}\n{family.replace('_', ' ')} ({row['limb']})\nFPPA {row['peak_fppa_deg']:.0f}°, "
                f"drop {row['pelvic_drop_deg']:.0f}°",
                fontsize=8,
            )
            chosen.append(
                {"task": family, "class": cls, "id": row["id"], "limb": row["limb"], "frame": frame}
            )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return chosen
