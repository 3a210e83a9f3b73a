"""What the report compares: the measures it tabulates, the literature ranges a class mean should fall
in (BIOMECH.md), and the direction each mechanism's signature should move a measure relative to `none`."""

from __future__ import annotations

from dataclasses import dataclass

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
