"""Per-limb measures of emitted sequences and the statistics the report shows: summary table, signature
checks (Cohen's d), and agreement of the labels with the FPPA measured on the emitted keypoints."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from valgusml.features import LIMB_MEASURES, measures
from valgusml.labels import MECHANISMS, task_family
from valgusml.sequence import KeypointSequence
from valgusml.synth.validation.references import (
    EFFECT_SIZE_MIN,
    NOMINAL_LEG_MM,
    REFERENCES,
    REPORTED,
    SIGNATURES,
    TASK_ORDER,
    YAW_BANDS,
    Reference,
)

# A limb's class: `none`, its dominant mechanism, or this for a valgus knee whose mechanism is unknown (the
# generator's knee-alone valgus and in-toeing gait, `AthleteConfig.habitual_valgus_probability` and
# `in_toeing_probability`).
UNKNOWN_CLASS = "unknown"
CLASSES: tuple[str, ...] = (*MECHANISMS, UNKNOWN_CLASS)


def limb_rows(sequences: Iterable[KeypointSequence]) -> list[dict[str, Any]]:
    """One row per loaded, labelled limb: identity, label, every summary measure (NaN where unavailable)."""
    rows: list[dict[str, Any]] = []
    for index, seq in enumerate(sequences):
        if seq.labels is None:
            continue
        summary = measures(seq)
        height = seq.meta_value("height_m")
        yaw = seq.meta_value("yaw_deg")
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
                "sex": seq.meta_value("sex") or "",
                "class": label["mechanism"] or UNKNOWN_CLASS,
                "valgus": bool(label["valgus"]),
                "label_severity_deg": label.get("severity_deg", math.nan),
                "dims": seq.dims,
                "skeleton": seq.skeleton,
                "yaw_abs_deg": abs(float(yaw)) if isinstance(yaw, (int, float)) else math.nan,
                "view": seq.meta_value("view") or ("3d" if seq.dims == 3 else "n/a"),
                "estimator": seq.meta.get("estimator", "n/a"),
                "fps": seq.fps,
                "duration_s": seq.duration_s,
                "camera_height_m": float((seq.meta.get("camera") or {}).get("height_m", math.nan)),
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


def finite_values(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float64)
    return arr[np.isfinite(arr)]


def reference_for(task: str, cls: str, column: str) -> Reference | None:
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
        for cls in CLASSES:
            group = [r for r in rows if r["family"] == family and r["class"] == cls]
            if not group:
                continue
            for label, column, unit, _ in REPORTED:
                values = finite_values(r[column] for r in group)
                ref = reference_for(family, cls, column)
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


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or b.size < 2:
        return math.nan
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else math.nan


def signature_checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each mechanism's documented signature against `none` limbs of the same task (Cohen's d and verdict)."""
    out = []
    for mechanism, family, column, direction, why in SIGNATURES:
        cls = finite_values(r[column] for r in rows if r["family"] == family and r["class"] == mechanism)
        none = finite_values(r[column] for r in rows if r["family"] == family and r["class"] == "none")
        d = cohens_d(cls, none)
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
    """Area under the ROC curve of the finite scores (scikit-learn's, ties count half); NaN with one class."""
    from sklearn.metrics import roc_auc_score

    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    keep = np.isfinite(scores)
    if len(np.unique(positive[keep])) < 2:
        return math.nan
    return float(roc_auc_score(positive[keep], scores[keep]))


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
