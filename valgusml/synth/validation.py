"""Validation report of a generated dataset: do the emitted keypoints look like the literature says?

`valgusml.features` measures every sequence from its EMITTED keypoints (2D image points with camera and
pose-estimator error, exactly what a model sees), then the report puts, per task × class, the measures'
means and ranges beside the BIOMECH.md figures, flags cells outside them, checks that each mechanism's
signature differs from `none` in the documented direction, and draws stick figures at peak load.

    python -m valgusml.synth.validation --preset realistic --n-athletes 200 --out reports/synth_validation

writes `validation.md`, `limb_measures.csv` (one row per loaded limb), `summary.csv` (the table),
`signatures.csv`, `fppa_by_task.png`, `measures_by_class.png` and `stick_figures.png`.

A "class" is the limb's label (`none` or its dominant mechanism). Single-leg tasks contribute their stance limb
only; bilateral tasks, landings and gait contribute both limbs.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.features import LIMB_MEASURES, measures
from valgusml.features.frame import FRAME_MEASURE_INDEX, frame_measures
from valgusml.features.geometry import as_frontal_2d
from valgusml.labels import MECHANISMS, task_family
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL

NOMINAL_LEG_MM = 850.0  # hip–knee–ankle length of an adult (~0.49 × 1.73 m) when the height is unknown
TASK_ORDER = (
    "single_leg_squat",
    "bilateral_squat",
    "drop_vertical_jump",
    "lateral_step_down",
    "walking",
    "running",
)

# (label in the table, column in the limb rows, unit, decimals)
REPORTED: tuple[tuple[str, str, str, int], ...] = (
    ("peak FPPA", "peak_fppa_deg", "°", 1),
    ("pelvic drop (contralateral, vs level)", "pelvic_drop_deg", "°", 1),
    ("pelvic drop change from start", "pelvic_drop_change_deg", "°", 1),
    ("peak hip adduction proxy", "peak_hip_adduction_deg", "°", 1),
    ("medial knee displacement", "medial_knee_displacement_mm", "mm", 0),
    ("ankle medial to forefoot", "foot_roll_in_mm", "mm", 0),
    ("rearfoot eversion proxy", "rearfoot_eversion_deg", "°", 1),
    ("foot progression (toe-out)", "foot_progression_deg", "°", 1),
    ("depth: peak knee flexion proxy", "peak_knee_flexion_deg", "°", 0),
    ("heel rise onset vs deepest point", "heel_rise_onset_s", "s", 2),
    ("share of limbs with heel rise", "heel_rise_share", "", 2),
    ("trunk lean towards stance limb", "trunk_lean_toward_deg", "°", 1),
    ("trunk lean forward proxy", "peak_trunk_lean_sagittal_deg", "°", 0),
    ("knee/ankle separation ratio (min)", "min_knee_ankle_separation_ratio", "", 2),
)


@dataclass(frozen=True)
class Reference:
    task: str
    classes: str  # "none", "valgus" (any mechanism) or one mechanism
    column: str
    low: float
    high: float
    text: str
    flag: bool = True  # False: shown for orientation only (different task or a proxy of another quantity)


# Ranges a class mean should fall in: published mean ± 1 SD, or the published range (BIOMECH.md).
REFERENCES: tuple[Reference, ...] = (
    Reference("single_leg_squat", "none", "peak_fppa_deg", 3.3, 13.5, "8.4±5.1 (Herrington 2014)"),
    Reference("single_leg_squat", "valgus", "peak_fppa_deg", 11.4, 22.2, "16.8±5.4 (Herrington 2014)"),
    Reference("drop_vertical_jump", "none", "peak_fppa_deg", 3.0, 13.0, "women 7–13, men 3–8 (Munro 2012)"),
    Reference("drop_vertical_jump", "valgus", "peak_fppa_deg", 10.6, 35.0, "≥10.6 predicts PFP (Herrington)"),
    Reference(
        "lateral_step_down", "none", "peak_fppa_deg", 1.0, 12.0, "step landing: women 5–12, men 1–9", False
    ),
    Reference("lateral_step_down", "valgus", "peak_fppa_deg", 18.1, 25.3, "step landing PFP 21.7±3.6", False),
    Reference(
        "single_leg_squat", "none", "pelvic_drop_deg", -1.0, 9.1, "3.1±4.1 men / 4.7±4.4 women (BMC 2015)"
    ),
    Reference("single_leg_squat", "hip_weakness", "pelvic_drop_deg", 6.0, 12.0, "6–12 (design choice)"),
    Reference(
        "single_leg_squat", "adductor_tfl_overactivity", "pelvic_drop_deg", -1.0, 9.1, "level pelvis: as none"
    ),
    Reference(
        "single_leg_squat", "none", "peak_hip_adduction_deg", 3.0, 24.2, "12.7±9.7 / 14.4±9.8 (3D hip)", False
    ),
    Reference(
        "single_leg_squat", "none", "medial_knee_displacement_mm", 40.0, 117.0, "66±26 men / 89±28 women"
    ),
    Reference(
        "running", "none", "rearfoot_eversion_deg", 4.0, 8.0, "running peak 4–8 (pronators ~12)", False
    ),
    Reference("running", "pronation", "rearfoot_eversion_deg", 9.0, 16.0, "running peak ~12", False),
)

# Documented signatures: (mechanism, task, column, direction vs none: +1 higher, -1 lower, 0 similar,
# 2 not higher, why)
SIGNATURES: tuple[tuple[str, str, str, int, str], ...] = (
    ("hip_weakness", "single_leg_squat", "pelvic_drop_deg", +1, "contralateral drop under single-leg load"),
    ("hip_weakness", "single_leg_squat", "pelvic_drop_change_deg", +1, "drop grows with load"),
    ("hip_weakness", "single_leg_squat", "peak_hip_adduction_deg", +1, "femur adducts under single-leg load"),
    ("hip_weakness", "single_leg_squat", "trunk_lean_toward_deg", +1, "trunk lean over the stance leg"),
    (
        "adductor_tfl_overactivity",
        "bilateral_squat",
        "min_knee_ankle_separation_ratio",
        -1,
        "knees drawn together",
    ),
    (
        "adductor_tfl_overactivity",
        "bilateral_squat",
        "peak_hip_adduction_deg",
        +1,
        "adducted in bilateral tasks",
    ),
    (
        "adductor_tfl_overactivity",
        "single_leg_squat",
        "pelvic_drop_deg",
        0,
        "pelvis stays level (no excess drop)",
    ),
    ("pronation", "single_leg_squat", "foot_roll_in_mm", +1, "ankle rolls medially over the forefoot"),
    ("pronation", "bilateral_squat", "foot_roll_in_mm", +1, "ankle rolls medially over the forefoot"),
    ("pronation", "single_leg_squat", "rearfoot_eversion_deg", +1, "rearfoot everts"),
    ("pronation", "single_leg_squat", "pelvic_drop_deg", 0, "pelvis near normal"),
    ("limited_dorsiflexion", "bilateral_squat", "peak_knee_flexion_deg", -1, "shallower squat"),
    ("limited_dorsiflexion", "bilateral_squat", "heel_rise_share", +1, "heels rise"),
    ("limited_dorsiflexion", "bilateral_squat", "heel_rise_onset_s", -1, "heels rise earlier"),
    ("limited_dorsiflexion", "bilateral_squat", "peak_trunk_lean_sagittal_deg", +1, "forward trunk lean"),
    ("limited_dorsiflexion", "bilateral_squat", "foot_progression_deg", +1, "feet turn out"),
)
FRONTAL_YAW_DEG = 15.0  # the studies film from the front: literature comparisons use cameras within this yaw
YAW_BANDS = ((0.0, 15.0), (15.0, 30.0), (30.0, 90.0))
EFFECT_SIZE_MIN = 0.2  # Cohen's d a directional signature must reach; |d| below this for "no difference"


def _meta_value(meta: dict[str, Any], key: str) -> Any:
    """`key` from the sequence meta, at the top level or one level down (e.g. meta["athlete"]["sex"])."""
    if key in meta:
        return meta[key]
    for value in meta.values():
        if isinstance(value, dict) and key in value:
            return value[key]
    return None


def limb_rows(sequences: Iterable[KeypointSequence]) -> list[dict[str, Any]]:
    """One row per loaded, labelled limb: identity, label, every summary measure (NaN where unavailable)."""
    rows: list[dict[str, Any]] = []
    for index, seq in enumerate(sequences):
        if seq.labels is None:
            continue
        summary = measures(seq)
        height = _meta_value(seq.meta, "height_m")
        yaw = _meta_value(seq.meta, "yaw_deg")
        leg_mm = 0.491 * 1000.0 * float(height) if isinstance(height, (int, float)) else NOMINAL_LEG_MM
        for limb in summary["stance"]:
            label = seq.labels[limb]
            values = summary[limb]
            row: dict[str, Any] = {
                "index": index,
                "id": seq.id,
                "athlete_id": seq.athlete_id,
                "task": seq.task,
                "family": task_family(seq.task),
                "limb": limb,
                "sex": _meta_value(seq.meta, "sex") or "",
                "class": label["mechanism"],
                "valgus": bool(label["valgus"]),
                "label_severity_deg": label.get("severity_deg", math.nan),
                "dims": seq.dims,
                "skeleton": seq.skeleton,
                "yaw_abs_deg": abs(float(yaw)) if isinstance(yaw, (int, float)) else math.nan,
            }
            for name in LIMB_MEASURES:
                row[name] = math.nan if values[name] is None else float(values[name])
            for name, value in summary["bilateral"].items():
                row[name] = math.nan if value is None else float(value)
            row["medial_knee_displacement_mm"] = row["medial_knee_displacement"] * leg_mm
            row["foot_roll_in_mm"] = row["foot_roll_in"] * leg_mm
            rose = values["peak_heel_rise"] is not None and values["heel_rise_onset_s"] is not None
            row["heel_rise_share"] = math.nan if values["peak_heel_rise"] is None else float(rose)
            rows.append(row)
    return rows


def _finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float64)
    return arr[np.isfinite(arr)]


def _reference_for(task: str, cls: str, column: str) -> Reference | None:
    for ref in REFERENCES:
        if ref.task == task and ref.column == column:
            if ref.classes == cls or (ref.classes == "valgus" and cls != "none"):
                return ref
    return None


def summary_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task × class × measure: n, mean, sd, 5th and 95th percentiles, the reference and a flag."""
    out = []
    families = [t for t in TASK_ORDER if any(r["family"] == t for r in rows)]
    families += sorted({r["family"] for r in rows} - set(families))
    for family in families:
        for cls in MECHANISMS:
            group = [r for r in rows if r["family"] == family and r["class"] == cls]
            if not group:
                continue
            for label, column, unit, _ in REPORTED:
                values = _finite(r[column] for r in group)
                ref = _reference_for(family, cls, column)
                entry = {
                    "task": family,
                    "class": cls,
                    "measure": label,
                    "column": column,
                    "unit": unit,
                    "n": int(values.size),
                    "n_limbs": len(group),
                    "mean": float(values.mean()) if values.size else math.nan,
                    "sd": float(values.std(ddof=1)) if values.size > 1 else math.nan,
                    "p5": float(np.percentile(values, 5)) if values.size else math.nan,
                    "p95": float(np.percentile(values, 95)) if values.size else math.nan,
                    "reference": ref.text if ref else "",
                    "ref_low": ref.low if ref else math.nan,
                    "ref_high": ref.high if ref else math.nan,
                    "flag": "",
                }
                if ref and values.size:
                    outside = not (ref.low <= entry["mean"] <= ref.high)
                    entry["flag"] = ("OUT" if ref.flag else "out (indicative)") if outside else "ok"
                out.append(entry)
    return out


def _cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or b.size < 2:
        return math.nan
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else math.nan


def signature_checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each mechanism's documented signature against `none` limbs of the same task (Cohen's d and verdict)."""
    out = []
    for mechanism, family, column, direction, why in SIGNATURES:
        cls = _finite(r[column] for r in rows if r["family"] == family and r["class"] == mechanism)
        none = _finite(r[column] for r in rows if r["family"] == family and r["class"] == "none")
        d = _cohens_d(cls, none)
        if not math.isfinite(d):
            verdict = "n/a"
        elif direction == 0:
            verdict = "ok" if abs(d) < 0.5 else "differs"
        elif direction == 2:  # "not higher"
            verdict = "ok" if d < 0.5 else "higher"
        else:
            verdict = "ok" if direction * d >= EFFECT_SIZE_MIN else "WRONG" if direction * d < 0 else "weak"
        out.append(
            {
                "mechanism": mechanism,
                "task": family,
                "measure": column,
                "expected": {1: "higher", -1: "lower", 0: "similar", 2: "not higher"}[direction],
                "why": why,
                "mean_class": float(cls.mean()) if cls.size else math.nan,
                "mean_none": float(none.mean()) if none.size else math.nan,
                "n_class": int(cls.size),
                "n_none": int(none.size),
                "cohens_d": d,
                "verdict": verdict,
            }
        )
    return out


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties count half); NaN with one class only."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    keep = np.isfinite(scores)
    scores, positive = scores[keep], positive[keep]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def yaw_band(row: dict[str, Any]) -> str:
    yaw = row["yaw_abs_deg"]
    if not math.isfinite(yaw):
        return "n/a"
    return next(f"{lo:.0f}–{hi:.0f}°" for lo, hi in YAW_BANDS if yaw < hi or hi == YAW_BANDS[-1][1])


def label_agreement(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task and camera-yaw band: how well the FPPA measured on the emitted keypoints separates the valgus
    labels (which the generator derives from the clean 3D motion)."""
    out = []
    bands = sorted({yaw_band(r) for r in rows})
    for family, band in [
        (t, b) for t in TASK_ORDER for b in ["all"] + bands if any(r["family"] == t for r in rows)
    ]:
        group = [r for r in rows if r["family"] == family and band in ("all", yaw_band(r))]
        if not group or (band != "all" and len(bands) == 1):
            continue
        measured = np.array([r["peak_fppa_deg"] for r in group])
        label_sev = np.array([r["label_severity_deg"] for r in group], dtype=float)
        valgus = np.array([r["valgus"] for r in group])
        both = np.isfinite(measured) & np.isfinite(label_sev)
        corr = float(np.corrcoef(measured[both], label_sev[both])[0, 1]) if both.sum() > 2 else math.nan
        out.append(
            {
                "task": family,
                "yaw": band,
                "n_limbs": len(group),
                "valgus_share": float(valgus.mean()),
                "auroc_peak_fppa": auroc(measured, valgus),
                "r_measured_vs_label_severity": corr,
                "mean_abs_diff_deg": float(np.nanmean(np.abs(measured - label_sev)))
                if both.any()
                else math.nan,
            }
        )
    return out


# -- plots ---------------------------------------------------------------------------------------------------


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
}
SHORT = {
    "none": "none",
    "hip_weakness": "hip",
    "adductor_tfl_overactivity": "add/TFL",
    "pronation": "pron",
    "limited_dorsiflexion": "DF",
}


def _boxplot(ax, rows, family, column):
    data, labels, colours = [], [], []
    for cls in MECHANISMS:
        values = _finite(r[column] for r in rows if r["family"] == family and r["class"] == cls)
        if values.size:
            data.append(values)
            labels.append(f"{SHORT[cls]}\n{values.size}")
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
            ref = _reference_for(family, cls if cls == "none" else "hip_weakness", "peak_fppa_deg")
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
    chosen = []
    fig, axes = plt.subplots(
        max(1, len(families)),
        len(MECHANISMS),
        figsize=(2.6 * len(MECHANISMS), 3.6 * max(1, len(families))),
        squeeze=False,
    )
    for i, family in enumerate(families):
        for j, cls in enumerate(MECHANISMS):
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
            yaws = [abs(_meta_value(sequences[r["index"]].meta, "yaw_deg") or 0.0) for r in group]
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


# -- report ------------------------------------------------------------------------------------------------


def _fmt(value: float, decimals: int) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _load(source: Any) -> list[KeypointSequence]:
    if isinstance(source, (str, Path)):
        from valgusml.data import open_dataset

        return list(open_dataset(source))
    return list(source)


def write_report(dataset: Any, out_dir: str | Path, title: str = "Synthetic data validation") -> Path:
    """Measure a generated dataset (path, `Dataset` or sequences) and write the report; returns `validation.md`."""
    sequences = _load(dataset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = limb_rows(sequences)
    # The studies film from the front; a yawed camera mixes sagittal motion into every frontal 2D measure.
    frontal = [r for r in rows if not r["yaw_abs_deg"] > FRONTAL_YAW_DEG]  # NaN yaw (3D, unknown) is kept
    primary = frontal if len(frontal) >= max(20, 0.15 * len(rows)) else rows
    subset_text = (
        f"cameras within {FRONTAL_YAW_DEG:.0f}° of frontal ({len(primary)} of {len(rows)} limbs), as in the studies"
        if primary is not rows and len(primary) < len(rows)
        else f"all {len(rows)} limbs"
    )
    table = summary_table(primary)
    checks = signature_checks(primary)
    agreement = label_agreement(rows)
    _write_csv(out / "limb_measures.csv", rows)
    _write_csv(out / "summary.csv", table)
    _write_csv(out / "signatures.csv", checks)
    plot_fppa(primary, out / "fppa_by_task.png")
    plot_measures(primary, out / "measures_by_class.png")
    sticks = plot_stick_figures(sequences, rows, out / "stick_figures.png")

    skeletons = sorted({r["skeleton"] for r in rows})
    dims = sorted({r["dims"] for r in rows})
    lines = [
        f"# {title}",
        "",
        f"{len(sequences)} sequences, {len({s.athlete_id for s in sequences})} athletes, {len(rows)} loaded limbs; "
        f"skeleton {', '.join(skeletons)}, {', '.join(f'{d}D' for d in dims)} keypoints as emitted "
        "(camera + pose-estimator error), measured with `valgusml.features`.",
        "",
        "Class = the limb's label (`none` or its dominant mechanism). Single-leg tasks: stance limb only. "
        f"Millimetres = leg-length fractions × 0.491 × athlete height (or {NOMINAL_LEG_MM:.0f} mm). "
        "Cells: mean ± SD [5th–95th percentile] (n). Flag: `OUT` = class mean outside the literature range, "
        "`out (indicative)` = outside a range from a neighbouring task or a 3D quantity our 2D proxy only "
        "approximates.",
        "",
        f"Tables, signatures and plots below use {subset_text}; the first table shows every camera.",
        "",
        "## Labels vs the FPPA measured on the emitted keypoints, by camera yaw",
        "",
        "Labels come from the clean 3D motion; this is what a 2D FPPA rule can recover after the camera and the "
        "pose-estimator error.",
        "",
        "| task | camera yaw | limbs | valgus share | AUROC of peak FPPA | r (measured vs label severity) | "
        "mean abs diff (°) |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in agreement:
        lines.append(
            f"| {a['task']} | {a['yaw']} | {a['n_limbs']} | {a['valgus_share']:.2f} | {_fmt(a['auroc_peak_fppa'], 3)} | "
            f"{_fmt(a['r_measured_vs_label_severity'], 2)} | {_fmt(a['mean_abs_diff_deg'], 1)} |"
        )
    lines += [
        "",
        "## Mechanism signatures vs `none` (same task)",
        "",
        "| mechanism | task | measure | expected | mean (class) | mean (none) | Cohen's d | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        lines.append(
            f"| {c['mechanism']} | {c['task']} | {c['measure']} | {c['expected']} ({c['why']}) | "
            f"{_fmt(c['mean_class'], 2)} (n={c['n_class']}) | {_fmt(c['mean_none'], 2)} (n={c['n_none']}) | "
            f"{_fmt(c['cohens_d'], 2)} | {c['verdict']} |"
        )
    decimals = {column: d for _, column, _, d in REPORTED}
    for family in dict.fromkeys(e["task"] for e in table):
        classes = [c for c in MECHANISMS if any(e["task"] == family and e["class"] == c for e in table)]
        lines += [
            "",
            f"## {family}",
            "",
            "| measure | " + " | ".join(classes) + " | literature |",
            "|---|" + "---|" * (len(classes) + 1),
        ]
        for label, column, unit, _ in REPORTED:
            cells, refs = [], []
            for cls in classes:
                e = next(
                    x for x in table if x["task"] == family and x["class"] == cls and x["column"] == column
                )
                d = decimals[column]
                if e["n"] == 0:
                    cells.append("–")
                    continue
                cell = f"{_fmt(e['mean'], d)} ± {_fmt(e['sd'], d)} [{_fmt(e['p5'], d)}–{_fmt(e['p95'], d)}] ({e['n']})"
                if e["flag"]:
                    cell += f" **{e['flag']}**" if e["flag"] != "ok" else " ok"
                    refs.append(f"{cls}: {e['reference']}")
                cells.append(cell)
            if all(c == "–" for c in cells):
                continue
            unit_text = f" ({unit})" if unit else ""
            lines.append(f"| {label}{unit_text} | " + " | ".join(cells) + f" | {'; '.join(refs)} |")
    lines += [
        "",
        "## Pictures",
        "",
        "- `fppa_by_task.png`: peak FPPA per task and class; shaded bands = literature ranges (grey none, red valgus).",
        "- `measures_by_class.png`: the mechanism measures per task and class.",
        "- `stick_figures.png`: one limb per task × class at peak load, front view (grey: first frame; red: the "
        "labelled limb; dashed: its hip–ankle line).",
        "",
        "Stick figures drawn: "
        + ", ".join(f"{s['class']}/{s['task']} = {s['id']} {s['limb']} frame {s['frame']}" for s in sticks),
        "",
    ]
    path = out / "validation.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m valgusml.synth.validation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--preset", default="realistic")
    parser.add_argument("--n-athletes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="an existing generated dataset folder (instead of generating)")
    parser.add_argument("--out", default="reports/synth_validation")
    args = parser.parse_args(argv)
    if args.dataset:
        source: Any = args.dataset
    else:
        from valgusml.synth import generate_sequences, load_preset

        cfg = load_preset(args.preset, n_athletes=args.n_athletes, seed=args.seed)
        source = generate_sequences(cfg, range(args.n_athletes))
    title = f"Synthetic data validation: preset {args.preset}, {args.n_athletes} athletes, seed {args.seed}"
    path = write_report(
        source, args.out, title=title if not args.dataset else f"Validation of {args.dataset}"
    )
    print(path)
    return path


if __name__ == "__main__":
    main()
