"""Label vocabulary and encoding shared by the generator, the models and the predictor."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from valgusml.errors import InputError

MECHANISMS: tuple[str, ...] = (
    "none",
    "hip_weakness",
    "adductor_tfl_overactivity",
    "pronation",
    "limited_dorsiflexion",
)
DEFICITS: tuple[str, ...] = MECHANISMS[1:]
LIMBS: tuple[str, ...] = ("left", "right")
MECHANISM_INDEX: dict[str, int] = {name: i for i, name in enumerate(MECHANISMS)}
# A valgus limb whose mechanism nobody knows (real motion labelled by the presence rule, `valgusml convert
# --label-by-rule`): `"mechanism": None` in labels, this index in label arrays; mechanism losses and metrics
# skip it, presence uses it.
MECHANISM_UNKNOWN: int = -1
# Axis and legend labels of plots (the evaluation report's confusion matrix, the generator's validation report).
MECHANISM_SHORT_NAMES: dict[str, str] = {
    "none": "none",
    "hip_weakness": "hip",
    "adductor_tfl_overactivity": "add/TFL",
    "pronation": "pronation",
    "limited_dorsiflexion": "limited DF",
}
# Tasks are named in snake_case with the stance side where there is one (`single_leg_squat_left`); norms
# and summaries are per family, since the stance side does not change them.
TASK_FAMILIES: tuple[str, ...] = (
    "bilateral_squat",
    "single_leg_squat",
    "drop_vertical_jump",
    "lateral_step_down",
    "walking",
    "running",
)
GAIT_FAMILIES: tuple[str, ...] = ("walking", "running")  # scored per stance, not per rep or landing


# Valgus presence thresholds on the dynamic FPPA (peak over the scored phase minus standing), degrees, per
# task family and sex: BIOMECH.md's healthy ranges (drop-jump landing women 7-13 / men 3-8, single-leg squat
# 8.4 +- 5.1, ...). The generator's presets label with these numbers; the real-motion rule reads them here.
VALGUS_THRESHOLD_DEG: dict[str, dict[str, float]] = {
    "bilateral_squat": {"female": 10.0, "male": 8.0},
    "single_leg_squat": {"female": 12.0, "male": 10.0},
    "drop_vertical_jump": {"female": 12.0, "male": 9.0},
    "lateral_step_down": {"female": 11.0, "male": 9.0},
    "walking": {"female": 5.0, "male": 4.0},
    "running": {"female": 8.0, "male": 6.0},
}


# Standard error of measurement of the frontal-plane projection angle (BIOMECH.md: 2-4 deg between sessions):
# a dynamic FPPA within this of its threshold is a call the rule itself cannot make reliably.
FPPA_SEM_DEG = 3.0


def beyond_measurement_error(margin_deg: float | np.ndarray) -> bool | np.ndarray:
    """Whether a dynamic FPPA `margin_deg` from its threshold (angle minus threshold; -inf for a limb with no
    scored phase) stands at least `FPPA_SEM_DEG` from it: a call the rule would repeat. Elementwise on arrays;
    NaN (not known) is never beyond."""
    with np.errstate(invalid="ignore"):
        return np.abs(margin_deg) >= FPPA_SEM_DEG


def task_family(task: str) -> str:
    """`single_leg_squat_left` → `single_leg_squat`; a task without a stance side is its own family."""
    for suffix in ("_left", "_right"):
        if task.endswith(suffix):
            return task[: -len(suffix)]
    return task


_SINGLE_LEG = re.compile(r"^(single_leg|lateral_step_down|step_down|single_leg_landing).*_(left|right)$")


def stance_from_task(task: str) -> tuple[str, ...] | None:
    """The loaded limb named by a single-leg task (`single_leg_squat_left` → ("left",)), else None."""
    match = _SINGLE_LEG.match(task or "")
    return (match.group(2),) if match else None


KNOWN_TASKS_TEXT = f"{', '.join(TASK_FAMILIES)} (single-leg ones may end in _left or _right)"


def is_known_task(task: str) -> bool:
    """A task the rule and the predictor score: a family of `TASK_FAMILIES`, a single-leg one with or
    without its stance side (`single_leg_squat_left`, `lateral_step_down`)."""
    return task_family(task) in TASK_FAMILIES


def check_task(task: str, where: str = "") -> str:
    """`task` when empty or known (`is_known_task`), else `InputError` naming the tasks there are."""
    if task and not is_known_task(task):
        raise InputError(f"{where}unknown task {task!r}; expected one of {KNOWN_TASKS_TEXT}, or no task to read it "
                         "from the motion")
    return task


def encode_mechanism(name: str) -> int:
    try:
        return MECHANISM_INDEX[name]
    except KeyError:
        raise InputError(f"unknown mechanism {name!r}; expected one of {MECHANISMS}") from None


def _severity(limb: str, label: dict) -> float:
    """The peak FPPA in degrees; NaN (or absent) when unknown. An infinite one is no angle."""
    try:
        severity = float(label.get("severity_deg", float("nan")))
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"labels[{limb!r}].severity_deg must be a number, got {label['severity_deg']!r:.40}") from None
    if math.isinf(severity):
        raise InputError(f"labels[{limb!r}].severity_deg must be finite degrees (or blank/NaN when unknown), got {severity}")
    return severity


def mechanism_index(name: str | None) -> int:
    """The label-array index of a mechanism; `MECHANISM_UNKNOWN` for None (unknown)."""
    return MECHANISM_UNKNOWN if name is None else MECHANISM_INDEX[name]


def validate_limb_label(limb: str, label: Any) -> dict[str, Any]:
    """Check one limb's label and return it normalised (plain Python types, contributions summing to 1)."""
    if not isinstance(label, dict):
        raise InputError(f"labels[{limb!r}] must be a dict, got {type(label).__name__}")
    for key in ("valgus", "mechanism"):
        if key not in label:
            raise InputError(f"labels[{limb!r}] is missing {key!r}")
    valgus = bool(label["valgus"])
    if label["mechanism"] is None:  # presence known, mechanism unknown: only a valgus limb can be so
        if not valgus:
            raise InputError(f"labels[{limb!r}]: a limb without valgus has mechanism 'none', not unknown (None)")
        return {"valgus": True, "mechanism": None, "severity_deg": _severity(limb, label), "contributions": {}}
    mechanism = str(label["mechanism"])
    encode_mechanism(mechanism)
    if valgus == (mechanism == "none"):
        raise InputError(
            f"labels[{limb!r}]: mechanism must be 'none' exactly when valgus is false "
            f"(valgus={valgus}, mechanism={mechanism!r})"
        )
    severity = _severity(limb, label)
    contributions = label.get("contributions") or {mechanism: 1.0}
    if not isinstance(contributions, dict):
        raise InputError(f"labels[{limb!r}].contributions must be a dict mechanism -> share")
    clean: dict[str, float] = {}
    for name, share in contributions.items():
        encode_mechanism(name)
        try:
            share = float(share)
        except (TypeError, ValueError):
            raise InputError(f"labels[{limb!r}].contributions[{name!r}] must be a number, got {share!r}") from None
        if not (share >= 0.0):
            raise InputError(f"labels[{limb!r}].contributions[{name!r}] must be >= 0, got {share}")
        clean[name] = share
    total = sum(clean.values())
    if total <= 0:
        raise InputError(f"labels[{limb!r}].contributions must not be all zero")
    if abs(total - 1.0) > 1e-12:  # only when off: normalising twice must give the same label
        clean = {name: share / total for name, share in clean.items()}
    return {"valgus": valgus, "mechanism": mechanism, "severity_deg": severity, "contributions": clean}


def validate_labels(labels: Any) -> dict[str, dict[str, Any]] | None:
    if labels is None:
        return None
    if not isinstance(labels, dict) or set(labels) != set(LIMBS):
        raise InputError(f"labels must be a dict with exactly the keys {LIMBS}, got {labels!r:.120}")
    return {limb: validate_limb_label(limb, labels[limb]) for limb in LIMBS}


def none_label(severity_deg: float = float("nan")) -> dict[str, Any]:
    return {"valgus": False, "mechanism": "none", "severity_deg": severity_deg, "contributions": {"none": 1.0}}
