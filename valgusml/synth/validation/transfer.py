"""The report's transfer checks (generator v3): do the signatures survive the camera and the estimator at the
strength the literature reports, how far is the emitted FPPA from the labelled one by view and estimator
family, and is anything a model could read as a shortcut (a hard negative, an acquisition variable)
independent of the class?"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from valgusml.synth.validation.references import SIGNATURES
from valgusml.synth.validation.statistics import CLASSES, cohens_d, finite_values

# Effect sizes (Cohen's d, class vs healthy) the literature reports or implies (BIOMECH.md); None: no study
# gives one (the direction is still checked).
LITERATURE_D: dict[tuple[str, str, str], tuple[float | None, str]] = {
    ("hip_weakness", "single_leg_squat", "pelvic_drop_deg"): (1.2, "6-12 vs 3.1±4.1 / 4.7±4.4 (design choice; BMC 2015)"),
    ("hip_weakness", "single_leg_squat", "peak_hip_adduction_deg"): (0.5, "femur adducts (moderate; design choice)"),
    ("hip_weakness", "single_leg_squat", "pelvic_drop_change_deg"): (None, ""),
    ("hip_weakness", "single_leg_squat", "trunk_lean_toward_deg"): (None, ""),
    ("adductor_tfl_overactivity", "bilateral_squat", "min_knee_ankle_separation_ratio"): (None, ""),
    ("adductor_tfl_overactivity", "bilateral_squat", "peak_hip_adduction_deg"): (None, ""),
    ("pronation", "single_leg_squat", "foot_roll_in_mm"): (1.0, "navicular drop >10 vs 5-9 mm"),
    ("pronation", "bilateral_squat", "foot_roll_in_mm"): (1.0, "navicular drop >10 vs 5-9 mm"),
    ("pronation", "single_leg_squat", "rearfoot_eversion_deg"): (1.5, "eversion ~12 vs 4-8 (running)"),
    ("limited_dorsiflexion", "bilateral_squat", "peak_knee_flexion_deg"): (None, ""),
    ("limited_dorsiflexion", "bilateral_squat", "heel_rise_share"): (None, ""),
    ("limited_dorsiflexion", "bilateral_squat", "heel_rise_onset_s"): (None, ""),
    ("limited_dorsiflexion", "bilateral_squat", "peak_trunk_lean_sagittal_deg"): (None, ""),
    ("limited_dorsiflexion", "bilateral_squat", "foot_progression_deg"): (None, ""),
}
# Valgus vs healthy peak FPPA (any mechanism): Herrington 2014 (single-leg squat 16.8±5.4 vs 8.4±5.1, d 1.6;
# step landing 21.7±3.6 vs 13.5±5.7, d 1.7).
VALGUS_D = {"single_leg_squat": (1.6, "16.8±5.4 vs 8.4±5.1 (Herrington 2014)"),
            "lateral_step_down": (1.7, "21.7±3.6 vs 13.5±5.7 (step landing, Herrington 2014)")}
FRONT_YAW_DEG = 25.0
INDEPENDENCE_MAX_V = 0.1  # Cramér's V above this: the variable tells the class apart (a shortcut)


def effect_sizes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each directional signature's Cohen's d (class vs `none`, same task) on front views and on every view,
    beside the literature's; `weaker` where every-view d (signed by the expected direction) falls below it."""
    out = []
    front = [r for r in rows if not r["yaw_abs_deg"] > FRONT_YAW_DEG]
    checks = [(m, t, c, d) for m, t, c, d, _ in SIGNATURES if d in (1, -1)]
    checks += [("valgus", task, "peak_fppa_deg", 1) for task in VALGUS_D]
    for mechanism, task, column, direction in checks:
        lit, text = VALGUS_D[task] if mechanism == "valgus" else LITERATURE_D.get((mechanism, task, column), (None, ""))
        entry: dict[str, Any] = {"mechanism": mechanism, "task": task, "measure": column,
                                 "direction": "higher" if direction > 0 else "lower", "literature_d": lit, "source": text}
        for name, group in (("front", front), ("all", rows)):
            cls = finite_values(r[column] for r in group if r["family"] == task
                                and (r["class"] == mechanism or (mechanism == "valgus" and r["valgus"])))
            none = finite_values(r[column] for r in group if r["family"] == task and r["class"] == "none")
            entry[f"d_{name}"] = direction * cohens_d(cls, none)
            entry[f"n_{name}"] = int(cls.size)
        d = entry["d_all"]
        if not math.isfinite(d):
            entry["flag"] = "n/a"
        elif d < 0:
            entry["flag"] = "WRONG direction"
        elif lit is not None and d < lit:
            entry["flag"] = "weaker"
        else:
            entry["flag"] = "ok"
        out.append(entry)
    return out


def fppa_error(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Emitted peak FPPA minus the labelled (clean 3D) one, by estimator family and view family."""
    out = []
    keys = sorted({(r.get("estimator", ""), r.get("view", "")) for r in rows})
    for estimator, view in keys:
        group = [r for r in rows if r.get("estimator", "") == estimator and r.get("view", "") == view]
        measured = np.array([r["peak_fppa_deg"] for r in group], dtype=float)
        label = np.array([r["label_severity_deg"] for r in group], dtype=float)
        ok = np.isfinite(measured) & np.isfinite(label)
        if ok.sum() < 3:
            continue
        diff = measured[ok] - label[ok]
        out.append({"estimator": estimator, "view": view, "n_limbs": int(ok.sum()), "bias_deg": float(diff.mean()),
                    "mae_deg": float(np.abs(diff).mean()), "r": float(np.corrcoef(measured[ok], label[ok])[0, 1])})
    return out


def cramers_v(a: list[Any], b: list[Any]) -> float:
    """Association of two categorical variables: 0 independent, 1 one determines the other."""
    ca, cb = sorted(set(a), key=str), sorted(set(b), key=str)
    if len(ca) < 2 or len(cb) < 2:
        return 0.0
    table = np.zeros((len(ca), len(cb)))
    ia, ib = {v: k for k, v in enumerate(ca)}, {v: k for k, v in enumerate(cb)}
    for x, y in zip(a, b, strict=True):
        table[ia[x], ib[y]] += 1
    n = table.sum()
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    # bias-corrected (Bergsma 2013): small tables of independent variables read near 0, not ~sqrt(k/n)
    r, k = table.shape
    phi2 = max(0.0, chi2 / n - (r - 1) * (k - 1) / (n - 1))
    r_c, k_c = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    return math.sqrt(phi2 / max(min(r_c - 1, k_c - 1), 1e-9))


def _bins(values: list[float], edges: tuple[float, ...]) -> list[str]:
    return [next((f"<{e:g}" for e in edges if v < e), f">={edges[-1]:g}") if math.isfinite(v) else "n/a" for v in values]


def independence(rows: list[dict[str, Any]], analysis: dict[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Per variable (hard negatives from the analysis rows, acquisition variables from the sequences): its
    association with the limb's class (Cramér's V) and the share of each class among its levels."""
    classes = [r["class"] for r in rows]
    variables: dict[str, list[Any]] = {
        "view": [r.get("view", "n/a") for r in rows],
        "estimator": [r.get("estimator", "n/a") for r in rows],
        "fps": [r.get("fps", math.nan) for r in rows],
        "duration_s": _bins([r.get("duration_s", math.nan) for r in rows], (4.0, 8.0, 12.0)),
        "camera_height_m": _bins([r.get("camera_height_m", math.nan) for r in rows], (0.8, 1.3, 1.8)),
        "skeleton": [r["skeleton"] for r in rows],
    }
    if analysis:
        hard = [analysis.get(r["id"], {}).get("athlete", {}).get("hard_negatives", []) for r in rows]
        for flag in sorted({f for h in hard for f in h}):
            variables[f"hard negative: {flag}"] = [flag in h for h in hard]
    out = []
    for name, values in variables.items():
        v = cramers_v(values, classes)
        levels = Counter(values)
        shares = {}
        for level in sorted(levels, key=str):
            members = [c for c, x in zip(classes, values, strict=True) if x == level]
            shares[str(level)] = {m: round(members.count(m) / len(members), 3) for m in CLASSES}
        out.append({"variable": name, "levels": len(levels), "cramers_v": v,
                    "flag": "ok" if v <= INDEPENDENCE_MAX_V else "DEPENDS on class", "class_shares": shares})
    return out
