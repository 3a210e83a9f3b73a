"""Athletes: persistent traits drawn once per athlete from their own random stream.

Segment lengths follow Winter's anthropometric ratios of standing height H (Winter 2009, *Biomechanics and
Motor Control of Human Movement*, fig. 4.1): thigh 0.245 H, shank 0.246 H, foot length 0.152 H, ankle height
0.039 H, shoulder width 0.259 H, upper arm 0.186 H, forearm 0.146 H, shoulder height 0.818 H, hip height
0.530 H. The hip-joint-centre separation is ~0.105 H (wider in women, Bell/Harrington regressions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from valgusml.labels import DEFICITS, GAIT_FAMILIES, MECHANISMS, task_family
from valgusml.synth.config import HARD_NEGATIVES, SIDES, GeneratorConfig

# Simulation precision: float32 trig runs ~15x faster than float64 in numpy, and its ~1e-7 relative error is
# micrometres on a body; every simulation array and constant uses it so nothing silently promotes to float64.
FLOAT = np.float32
LIMB_SIGN = np.array([1.0, -1.0], dtype=FLOAT)  # +x is the subject's left: left limb at +x, right at -x

WINTER = {
    "thigh": 0.245,
    "shank": 0.246,
    "foot": 0.152,
    "ankle_height": 0.039,
    "shoulder_width": 0.259,
    "upper_arm": 0.186,
    "forearm": 0.146,
    "trunk": 0.818 - 0.530,
}


def athlete_id(index: int) -> str:
    return f"a{index:06d}"


def hip_lean_share(compensation):
    """How much of a weak hip's trunk lean (`hip_trunk_lean_deg`) an athlete shows, from their `hip_compensation`
    (0: the pelvis drops, 1: the trunk leans instead): 0.4 to 1.4. A float or an array, as given."""
    return 0.4 + compensation


def uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int | None = None) -> np.ndarray | float:
    lo, hi = bounds
    return rng.uniform(lo, hi, size) if size is not None else float(rng.uniform(lo, hi))


@dataclass
class Athlete:
    index: int
    id: str
    sex: str
    height_m: float
    mass_kg: float
    seg: dict[str, float]
    stance_width_ratio: float
    foot_progression_deg: np.ndarray  # (2,) left, right
    structural_valgus_deg: np.ndarray  # (2,)
    dorsiflexion_rom_deg: np.ndarray  # (2,)
    navicular_drop_mm: float
    rearfoot_eversion_deg: float
    pelvic_drop_deg: float
    healthy_swivel_deg: np.ndarray  # (2,)
    squat_depth_deg: float
    single_leg_depth_deg: float
    landing_depth_deg: float
    trunk_lean_deg: float
    rep_duration_s: float
    fatigue_sensitivity: float
    arm_style: int  # 0 arms forward, 1 hands on hips, 2 arms crossed
    mechanism: str  # dominant deficit or "none"
    shares: dict[str, float]
    severity: float
    side: str
    activation: np.ndarray  # (2, 4): per limb, per deficit (DEFICITS order), severity x share x side
    effects: dict[str, float]  # this athlete's signature sizes at full activation
    # Time profile of each signature (healthy, then DEFICITS): onset and exponent of its load drive.
    drive_onset: np.ndarray = field(default_factory=lambda: np.zeros(5))
    drive_exponent: np.ndarray = field(default_factory=lambda: np.ones(5))
    adductor_start_fraction: float = 0.4
    hip_compensation: float = 0.5  # 0: the pelvis drops, 1: the trunk leans over the stance leg instead
    pronation_static_fraction: float = 0.3
    dorsiflexion_margin_deg: float = 0.0
    hard_negatives: tuple[str, ...] = ()
    knee_track_deg: np.ndarray = field(default_factory=lambda: np.zeros(2))  # knee bend direction vs half the toe-out
    habitual_valgus: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=bool))  # (2,) knee-alone valgus
    # (2,) how far the feet turn in during gait (`AthleteConfig.in_toeing_probability`); 0 for most
    in_toeing_deg: np.ndarray = field(default_factory=lambda: np.zeros(2))
    in_toeing_knee_share: float = 1.0  # how much of that turn the knees follow (`AthleteConfig.in_toeing_knee_share`)
    valgus_ceiling_deg: float = 0.0  # the most dynamic FPPA a deficit's swivel reaches (`MechanismConfig`); 0: none
    gait_step_width_ratio: float = 0.9  # step width in walking / hip-joint-centre separation (`AthleteConfig`)
    trunk_lean_toward_deg: float = 0.0  # lean over the stance leg at full single-leg load beside a weak hip's
    estimator_offsets_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    def in_toeing_for(self, task: str) -> np.ndarray:
        """`(2,)` how far feet and knees turn in during `task`: `in_toeing_deg` in gait, 0 in set tasks."""
        return self.in_toeing_deg * (task_family(task) in GAIT_FAMILIES)

    def observable(self) -> dict:
        """Traits a camera or a clinician sees without knowing the answer: the only athlete facts recorded in a
        sequence's meta. The deficit profile stays out of it (see `profile`)."""
        return {"sex": self.sex, "height_m": round(self.height_m, 4), "mass_kg": round(self.mass_kg, 2)}

    def profile(self) -> dict:
        """The sampled deficit profile and the hidden traits behind it, for analysis only: written to the
        dataset's analysis files (`valgusml.synth.analysis`), never into `seq.meta` (a model must not see it)."""
        return {
            "athlete_id": self.id,
            **self.observable(),
            "dominant_mechanism": self.mechanism,
            "shares": {k: round(v, 4) for k, v in self.shares.items()},
            "severity": round(self.severity, 4),
            "side": self.side,
            "hard_negatives": list(self.hard_negatives),
            "habitual_valgus": [bool(v) for v in self.habitual_valgus],
            "in_toeing_deg": [round(float(v), 3) for v in self.in_toeing_deg],
            "in_toeing_knee_share": round(self.in_toeing_knee_share, 4),
            "valgus_ceiling_deg": round(self.valgus_ceiling_deg, 3),
            "gait_step_width_ratio": round(self.gait_step_width_ratio, 4),
            "structural_valgus_deg": [round(float(v), 3) for v in self.structural_valgus_deg],
            "dorsiflexion_rom_deg": [round(float(v), 3) for v in self.dorsiflexion_rom_deg],
        }


def _draw_side(mcfg, rng: np.random.Generator) -> str:
    """left, right or both, by `mechanisms.side_probabilities`."""
    return SIDES[rng.choice(3, p=np.array([mcfg.side_probabilities.get(s, 0.0) for s in SIDES]))]


def _limbs_of(side: str) -> np.ndarray:
    """`(2,)` bool: the limbs (left, right) a side names."""
    return np.array([side in ("left", "both"), side in ("right", "both")])


def _deficit_profile(cfg: GeneratorConfig, rng: np.random.Generator) -> tuple[str, dict[str, float], float, str]:
    mcfg = cfg.mechanisms
    names = list(MECHANISMS)
    probs = np.array([mcfg.probabilities.get(m, 0.0) for m in names])
    dominant = names[rng.choice(len(names), p=probs / probs.sum())]
    side = _draw_side(mcfg, rng)
    mild = rng.random() < mcfg.mild_probability
    severity = uniform(rng, mcfg.mild_severity if mild else mcfg.severity)
    shares = {m: 0.0 for m in DEFICITS}
    pure = rng.random() < mcfg.pure_probability
    others = rng.dirichlet(np.ones(len(DEFICITS) - 1))  # drawn always: keeps the stream layout fixed
    dominant_share = uniform(rng, mcfg.dominant_share)
    if dominant == "none":
        return "none", shares, 0.0, side
    shares[dominant] = 1.0 if pure else dominant_share
    rest = [m for m in DEFICITS if m != dominant]
    if not pure:
        for m, w in zip(rest, others, strict=True):
            shares[m] = (1.0 - dominant_share) * float(w)
    return dominant, shares, float(severity), side


def sample_athlete(cfg: GeneratorConfig, index: int) -> Athlete:
    """Athlete `index` of a dataset: a pure function of (seed, index) and the config."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(index, 0)))
    acfg, mcfg, hcfg = cfg.athletes, cfg.mechanisms, cfg.hard_negatives
    sex = "female" if rng.random() < acfg.female_probability else "male"
    height = uniform(rng, acfg.height_female_m if sex == "female" else acfg.height_male_m)
    mass = uniform(rng, acfg.bmi) * height**2
    jitter = 1.0 + acfg.segment_ratio_jitter * np.clip(rng.standard_normal(len(WINTER) + 1), -2.5, 2.5)
    seg = {k: height * r * float(j) for (k, r), j in zip(WINTER.items(), jitter[:-1], strict=True)}
    seg["hip_width"] = height * (0.112 if sex == "female" else 0.102) * float(jitter[-1])
    seg["height"] = height

    mechanism, shares, severity, side = _deficit_profile(cfg, rng)
    side_factor = np.where(_limbs_of(side), 1.0, mcfg.unaffected_side_factor)
    activation = severity * side_factor[:, None] * np.array([shares[m] for m in DEFICITS])[None, :]
    a_hip, a_add, a_pron, a_df = activation.max(axis=0)

    effects = {
        "hip_pelvic_drop_deg": uniform(rng, mcfg.hip_pelvic_drop_deg),
        "hip_swivel_deg": uniform(rng, mcfg.hip_swivel_deg),
        "hip_trunk_lean_deg": uniform(rng, mcfg.hip_trunk_lean_deg),
        "adductor_swivel_deg": uniform(rng, mcfg.adductor_swivel_deg),
        "pronation_navicular_drop_mm": uniform(rng, mcfg.pronation_navicular_drop_mm),
        "pronation_rearfoot_eversion_deg": uniform(rng, mcfg.pronation_rearfoot_eversion_deg),
        "pronation_tibial_rotation_deg": uniform(rng, mcfg.pronation_tibial_rotation_deg),
        "pronation_foot_abduction_deg": uniform(rng, mcfg.pronation_foot_abduction_deg),
        "dorsiflexion_trunk_lean_deg": uniform(rng, mcfg.dorsiflexion_trunk_lean_deg),
        "dorsiflexion_toe_out_deg": uniform(rng, mcfg.dorsiflexion_toe_out_deg),
    }

    stance = uniform(rng, acfg.stance_width_ratio) * (1.0 - mcfg.adductor_stance_narrowing * a_add)
    progression = uniform(rng, acfg.foot_progression_deg) + rng.normal(0.0, 1.5, 2)
    progression = progression + effects["dorsiflexion_toe_out_deg"] * activation[:, 3]
    struct_range = acfg.structural_valgus_female_deg if sex == "female" else acfg.structural_valgus_male_deg
    structural = uniform(rng, struct_range) + rng.normal(0.0, 0.7, 2)
    df_normal = uniform(rng, acfg.dorsiflexion_rom_deg, 2)
    df_limited = uniform(rng, mcfg.limited_dorsiflexion_rom_deg, 2)
    # Activation (severity x share x side) slides the lunge range from normal towards the limited value.
    dorsiflexion = df_normal + np.minimum(1.0, 1.4 * activation[:, 3]) * (df_limited - df_normal)
    squat_depth = uniform(rng, acfg.squat_depth_deg)
    trunk_lean = uniform(rng, acfg.trunk_lean_deg)

    postures = HARD_NEGATIVES[:-1]  # pelvic_drop, added last, is drawn last (below), so these keep their draws
    flags = rng.random(len(postures))
    valgum = uniform(rng, hcfg.genu_valgum_deg)
    deep = uniform(rng, hcfg.deep_squat_depth_deg)
    valgum_sides = rng.normal(0.0, 0.5, 2)
    # Drawn for every athlete whatever the deficit: an unusual posture says nothing about the class.
    hard = [name for name, u in zip(postures, flags, strict=True) if u < getattr(hcfg, name)]
    if "narrow_stance" in hard and "wide_stance" in hard:
        hard.remove("wide_stance")
    if "deep_squat" in hard:
        squat_depth = deep
    if "wide_stance" in hard:
        stance *= 1.5
    if "narrow_stance" in hard:
        stance *= 0.72
    knee_track = np.zeros(2)
    if "toe_out" in hard:
        # Feet turned out by the shank (tibial torsion), the knees still tracking forward: the feet look
        # unusual, the frontal knee geometry (and so the label) does not change.
        progression = progression + 12.0
        knee_track = knee_track - 6.0
    if "trunk_lean" in hard:
        trunk_lean += 15.0
    if "genu_valgum" in hard:
        structural = valgum + valgum_sides
    onset = rng.uniform(*mcfg.drive_onset, 5)
    exponent = rng.uniform(*mcfg.drive_exponent, 5)

    offsets = rng.standard_normal((len(OFFSET_GROUPS), 3))
    offsets /= np.linalg.norm(offsets, axis=1, keepdims=True)
    offsets *= rng.random((len(OFFSET_GROUPS), 1))  # length in [0, 1]: where in the configured range
    athlete = Athlete(
        index=index,
        id=athlete_id(index),
        sex=sex,
        height_m=height,
        mass_kg=mass,
        seg=seg,
        stance_width_ratio=float(stance),
        foot_progression_deg=np.asarray(progression, dtype=float),
        structural_valgus_deg=np.asarray(structural, dtype=float),
        dorsiflexion_rom_deg=np.asarray(dorsiflexion, dtype=float),
        navicular_drop_mm=uniform(rng, acfg.navicular_drop_mm),
        rearfoot_eversion_deg=uniform(rng, acfg.rearfoot_eversion_deg),
        pelvic_drop_deg=uniform(rng, acfg.pelvic_drop_deg) * (1.0 - mcfg.adductor_pelvic_drop_factor * a_add),
        healthy_swivel_deg=uniform(rng, acfg.healthy_swivel_deg) + rng.normal(0.0, 0.8, 2),
        squat_depth_deg=squat_depth,
        single_leg_depth_deg=uniform(rng, acfg.single_leg_depth_deg),
        landing_depth_deg=uniform(rng, acfg.landing_depth_deg),
        trunk_lean_deg=trunk_lean,
        rep_duration_s=uniform(rng, acfg.rep_duration_s),
        fatigue_sensitivity=uniform(rng, acfg.fatigue_sensitivity),
        arm_style=int(rng.integers(3)),
        mechanism=mechanism,
        shares=shares,
        severity=severity,
        side=side,
        activation=activation,
        effects=effects,
        drive_onset=onset,
        drive_exponent=exponent,
        adductor_start_fraction=uniform(rng, mcfg.adductor_start_fraction),
        hip_compensation=float(rng.random()),
        pronation_static_fraction=uniform(rng, mcfg.pronation_static_fraction),
        dorsiflexion_margin_deg=uniform(rng, acfg.dorsiflexion_margin_deg),
        hard_negatives=tuple(hard),
        knee_track_deg=knee_track,
        estimator_offsets_m=offsets,  # direction x position in the configured range; scaled by the noise config
    )
    # Drawn after every other trait and for everyone, so the other traits keep their draws; the knees by the
    # deficits' side odds.
    habitual_draw = rng.random()
    habitual_side = _draw_side(mcfg, rng)
    habitual_swivel = uniform(rng, acfg.habitual_swivel_deg, 2)
    if habitual_draw < acfg.habitual_valgus_probability:
        athlete.habitual_valgus = _limbs_of(habitual_side)
        athlete.healthy_swivel_deg = np.where(athlete.habitual_valgus, habitual_swivel, athlete.healthy_swivel_deg)
    # Drawn last, for the same reason (applied in gait by `simulation`).
    in_toeing_draw = rng.random()
    in_toeing = uniform(rng, acfg.in_toeing_deg) + rng.normal(0.0, 1.0, 2)
    if in_toeing_draw < acfg.in_toeing_probability:
        athlete.in_toeing_deg = np.maximum(in_toeing, 0.0)
    # Drawn last, for the same reason (applied in labelling by `simulate_and_label`).
    athlete.valgus_ceiling_deg = uniform(rng, mcfg.valgus_ceiling_deg)
    # Drawn last, for the same reason; the stance hard negatives walk narrow or wide too (applied by `tasks`).
    step_width = uniform(rng, acfg.gait_step_width_ratio)
    if "narrow_stance" in hard:
        step_width *= 0.45
    if "wide_stance" in hard:
        step_width *= 1.3
    athlete.gait_step_width_ratio = step_width
    # Drawn last, for the same reason: a weak hip's pelvis and trunk on any athlete (applied by `mechanisms`).
    pelvic_flag = rng.random()
    pelvic_drop = uniform(rng, mcfg.hip_pelvic_drop_deg)
    lean = uniform(rng, mcfg.hip_trunk_lean_deg) * hip_lean_share(athlete.hip_compensation)  # as a weak hip's
    if pelvic_flag < hcfg.pelvic_drop:
        athlete.hard_negatives = (*athlete.hard_negatives, "pelvic_drop")
        athlete.pelvic_drop_deg = max(athlete.pelvic_drop_deg, pelvic_drop)
        athlete.trunk_lean_toward_deg = lean
    # Drawn last, for the same reason (applied in gait by `simulation`).
    athlete.in_toeing_knee_share = uniform(rng, acfg.in_toeing_knee_share)
    return athlete


# Joint groups sharing one systematic pose-estimator offset direction (magnitudes set by the noise config).
OFFSET_GROUPS: tuple[str, ...] = (
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_foot", "right_foot", "upper",
)
