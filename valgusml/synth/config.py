"""Typed generator configuration: every range of BIOMECH.md is a value here, validated before any work starts.

`GeneratorConfig` is the schema (sections of dataclasses), `GeneratorConfig.from_dict` the one conversion of
a plain mapping into it (types checked, then `validate`d), and `validate` the checks of the values. Presets,
their inheritance and the override forms live in `valgusml.synth.presets`.

Ranges are `(low, high)` pairs drawn uniformly unless a comment says otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from valgusml.errors import ConfigError
from valgusml.labels import DEFICITS, MECHANISMS, TASK_FAMILIES
from valgusml.skeleton import SKELETONS

TASKS: tuple[str, ...] = (
    "bilateral_squat",
    "single_leg_squat_left",
    "single_leg_squat_right",
    "drop_vertical_jump",
    "lateral_step_down_left",
    "lateral_step_down_right",
    "walking",
    "running",
)
SIDES: tuple[str, ...] = ("left", "right", "both")
HARD_NEGATIVES: tuple[str, ...] = ("deep_squat", "wide_stance", "narrow_stance", "toe_out", "trunk_lean", "genu_valgum",
                                   "pelvic_drop")

Range = tuple[float, float]


def _range(lo: float, hi: float, *, signed: bool = False) -> Any:
    return field(default=(lo, hi), metadata={"range": True, "signed": signed})


@dataclass
class AthleteConfig:
    """Persistent traits (Winter 2009 segment ratios; BIOMECH.md for the clinical norms)."""

    female_probability: float = 0.5
    height_female_m: Range = _range(1.52, 1.80)
    height_male_m: Range = _range(1.64, 1.94)
    bmi: Range = _range(19.0, 28.0)
    segment_ratio_jitter: float = 0.03  # relative sd of each Winter ratio between athletes
    stance_width_ratio: Range = _range(0.95, 1.35)  # ankle separation / hip-joint-centre separation
    # Gait step width (the feet's lines of progress apart / hip-joint-centre separation, walking; runners land
    # 0.2 closer to the midline, a narrow one across it), drawn for everyone. With one fixed width for every
    # healthy walker and narrow steps only from adductor overactivity, the default model learnt narrow steps as
    # valgus: it called 78% of healthy limbs walking on the midline valgus, where the rule on their knees says
    # none (docs/experiments.md: narrow steps and a dropping pelvis).
    gait_step_width_ratio: Range = _range(0.35, 1.0)
    foot_progression_deg: Range = _range(2.0, 12.0, signed=True)  # toe-out of the planted foot (negative: toe-in)
    structural_valgus_female_deg: Range = _range(-1.0, 4.0, signed=True)  # constant under load
    structural_valgus_male_deg: Range = _range(-3.0, 2.0, signed=True)
    dorsiflexion_rom_deg: Range = _range(36.0, 45.0)  # weight-bearing lunge, normal (Backman 2011)
    navicular_drop_mm: Range = _range(5.0, 9.0)  # normal
    rearfoot_eversion_deg: Range = _range(4.0, 8.0)  # normal peak under load
    pelvic_drop_deg: Range = _range(2.0, 5.0)  # normal contralateral drop in single-leg load
    healthy_swivel_deg: Range = _range(3.0, 9.0)  # medial knee swivel of healthy athletes at full load
    # Knee-alone valgus: a share of athletes, drawn whatever their deficit, whose knees swivel by this much
    # instead (habit, motor control, femoral anteversion), with none of the four mechanisms' pelvis, trunk or
    # foot signs. Where it, not a deficit, puts a knee over the threshold the limb is valgus with mechanism
    # unknown. Without it every valgus knee in the data comes with a mechanism's signs, and a model learns to
    # read the signs instead of the knee.
    habitual_valgus_probability: float = 0.0
    habitual_swivel_deg: Range = _range(8.0, 20.0)
    # In-toeing gait (femoral anteversion): a share of athletes, drawn whatever their deficit, whose feet and
    # knees turn in together by this much from their drawn toe-out when they walk or run (set tasks keep the
    # feet as instructed). A flexed knee that points in projects medially onto the frontal plane, so the label
    # (the rule on that plane) may call it valgus, with mechanism unknown where no deficit carries it. Without
    # it the foot progression is toe-out only (2-12 deg), and a real toe-in walk is geometry no training
    # sequence shows.
    in_toeing_probability: float = 0.0
    in_toeing_deg: Range = _range(8.0, 18.0)
    # How much of the feet's turn the knees follow, per athlete: 0 turns the foot alone below a knee that keeps
    # its course (internal tibial torsion: toe-in with no valgus, as the `toe_out` hard negative turns feet out),
    # 1 turns the whole leg in at the hip (femoral anteversion). At 1 for everyone 95% of in-toeing walking limbs
    # are valgus, so a model learns toe-in as the label; drawn over [0, 1] the knee, not the foot, tells.
    in_toeing_knee_share: Range = _range(1.0, 1.0)
    squat_depth_deg: Range = _range(75.0, 110.0)  # peak knee flexion, bilateral squat
    single_leg_depth_deg: Range = _range(50.0, 80.0)
    landing_depth_deg: Range = _range(65.0, 100.0)
    trunk_lean_deg: Range = _range(0.0, 8.0)  # personal forward-lean style
    rep_duration_s: Range = _range(2.0, 4.0)
    fatigue_sensitivity: Range = _range(0.0, 1.0)
    # Healthy heel rise: a squat uses the lunge range minus this margin before the heels lift (per athlete);
    # with normal range (36-45 deg) about one healthy bilateral squat in five lifts the heels (design choice:
    # no study gives the share; heel lift is a common compensation in deep squats).
    dorsiflexion_margin_deg: Range = _range(-6.0, 6.0, signed=True)


@dataclass
class MechanismConfig:
    """Deficit profile and the size of each signature at full severity and full load."""

    probabilities: dict[str, float] = field(
        default_factory=lambda: {
            "none": 0.3,
            "hip_weakness": 0.175,
            "adductor_tfl_overactivity": 0.175,
            "pronation": 0.175,
            "limited_dorsiflexion": 0.175,
        }
    )
    side_probabilities: dict[str, float] = field(default_factory=lambda: {"left": 0.3, "right": 0.3, "both": 0.4})
    pure_probability: float = 0.4  # athlete with a single deficit; otherwise a mixture
    dominant_share: Range = _range(0.6, 0.9)
    severity: Range = _range(0.65, 1.0)
    # The most dynamic FPPA a deficit's knee swivel may reach, drawn per athlete (off at [0, 0]). A swivel of a
    # given size moves a deeply flexed knee much further across the frontal plane than a straight one, so
    # without a ceiling a deficit's valgus past 115 deg of squat reads 31 deg and more while moderate collapses
    # only happen at moderate depth; with one, where the swivel would pass it, it is scaled down to it.
    valgus_ceiling_deg: Range = _range(0.0, 0.0)
    mild_probability: float = 0.12  # severity drawn from `mild_severity` instead (often labelled none)
    mild_severity: Range = _range(0.1, 0.4)
    unaffected_side_factor: float = 0.2  # one-sided deficits still show a little on the other limb
    # hip_weakness
    hip_pelvic_drop_deg: Range = _range(6.0, 12.0)  # total contralateral drop at full severity (vs 2-5 normal)
    hip_swivel_deg: Range = _range(11.0, 17.0)
    hip_trunk_lean_deg: Range = _range(3.0, 8.0)  # lean over the stance leg
    hip_fatigue_gain: float = 0.5  # relative growth of the hip signature at full fatigue
    fatigue_gain: float = 0.2  # the same for every other signature, healthy variation included
    # Time profiles, drawn per athlete and signature from ONE distribution (healthy included), so the shape of
    # the curve that turns load into a signature says nothing about the class: drive = clip((x - onset) /
    # (1 - onset), 0, 1) ** exponent, with x the load (or depth) of the moment; then a gain per rep.
    drive_onset: Range = _range(0.0, 0.35)
    drive_exponent: Range = _range(0.5, 2.2)
    rep_gain_sd: float = 0.12  # relative sd of each signature's size from rep to rep
    # adductor/TFL
    adductor_swivel_deg: Range = _range(10.0, 15.0)
    adductor_start_fraction: Range = _range(0.15, 0.6)  # share of the pull already present standing / shallow
    adductor_stance_narrowing: float = 0.3  # relative narrowing of the stance at full severity
    adductor_gait_narrowing: float = 0.8  # relative narrowing of the gait step width at full activation
    adductor_pelvic_drop_factor: float = 0.35  # normal drop is multiplied by 1 - factor*activation
    # pronation
    pronation_navicular_drop_mm: Range = _range(10.0, 16.0)
    pronation_rearfoot_eversion_deg: Range = _range(10.0, 15.0)
    pronation_tibial_rotation_deg: Range = _range(12.0, 18.0)  # carried into the knee swivel
    pronation_foot_abduction_deg: Range = _range(3.0, 8.0)
    pronation_static_fraction: Range = _range(0.2, 0.5)  # of the foot signs, already there in quiet stance
    # limited dorsiflexion
    limited_dorsiflexion_rom_deg: Range = _range(22.0, 32.0)  # < 36 deg weight-bearing lunge
    dorsiflexion_depth_loss: float = 0.8  # knee flexion given up per degree of excess shank-tilt demand
    dorsiflexion_swivel_per_deg: float = 1.1  # knee swivel per degree of excess demand at full severity
    dorsiflexion_swivel_max_deg: float = 16.0
    dorsiflexion_trunk_lean_deg: Range = _range(6.0, 14.0)
    dorsiflexion_toe_out_deg: Range = _range(5.0, 12.0)


@dataclass
class HardNegativeConfig:
    """Unusual postures drawn for ANY athlete, independently of the deficit (each flag on its own): an unusual
    posture must not mean "healthy" (or "deficit") in the data."""

    deep_squat: float = 0.2
    wide_stance: float = 0.15
    narrow_stance: float = 0.15  # narrow squat stance and narrow gait steps (x0.72 and x0.45; wide: x1.5, x1.3)
    toe_out: float = 0.15
    trunk_lean: float = 0.15
    genu_valgum: float = 0.15
    # A weak hip's pelvis and trunk (contralateral drop from `mechanisms.hip_pelvic_drop_deg`, a lean over the
    # stance leg from `hip_trunk_lean_deg`) on knees that need not collapse. Without it a large drop came only
    # with hip weakness, and the default model called 77% of healthy walkers with one valgus
    # (docs/experiments.md: narrow steps and a dropping pelvis).
    pelvic_drop: float = 0.15
    genu_valgum_deg: Range = _range(4.0, 8.0)
    deep_squat_depth_deg: Range = _range(110.0, 125.0)


@dataclass
class TaskConfig:
    probabilities: dict[str, float] = field(
        default_factory=lambda: {
            "bilateral_squat": 0.18,
            "single_leg_squat_left": 0.13,
            "single_leg_squat_right": 0.13,
            "drop_vertical_jump": 0.14,
            "lateral_step_down_left": 0.1,
            "lateral_step_down_right": 0.1,
            "walking": 0.1,
            "running": 0.12,
        }
    )
    trials_per_athlete: int = 8
    box_height_m: float = 0.30
    step_height_m: Range = _range(0.15, 0.25)
    contact_to_peak_s: Range = _range(0.1, 0.2)
    walking_speed_m_s: Range = _range(1.0, 1.6)
    running_speed_m_s: Range = _range(2.4, 3.8)
    walking_stride_s: Range = _range(1.0, 1.2)
    running_stride_s: Range = _range(0.64, 0.76)
    depth_rep_variation: float = 0.06  # relative sd of depth from rep to rep
    tempo_variation: float = 0.1  # relative sd of the rep duration between trials
    # Clip structure (squats, single-leg squats, step-downs): reps, standing before/after, pauses, tempo.
    reps: Range = _range(1.0, 5.0)  # whole reps, uniform over the integers (at most MAX_REPS)
    standing_before_s: Range = _range(0.2, 2.0)
    standing_after_s: Range = _range(0.2, 2.0)
    descent_fraction: Range = _range(0.35, 0.65)  # share of a rep spent going down
    rep_tempo_variation: float = 0.12  # relative sd of a rep's duration within a clip
    bottom_pause_s: Range = _range(0.0, 0.5)
    between_pause_s: Range = _range(0.0, 1.2)
    partial_return_probability: float = 0.3  # between reps the athlete does not stand fully up
    # Gait: treadmill (in place) or overground, walking along the facing direction through the scene.
    gait_duration_s: Range = _range(3.0, 10.0)
    overground_probability: float = 0.6
    # Within-clip variation, independent of the deficit.
    weight_shift_sd: float = 0.08  # bilateral tasks: relative load difference between the limbs
    sway_mm: Range = _range(3.0, 15.0)  # slow lateral sway of the pelvis
    knee_wobble_deg: Range = _range(0.3, 2.5)  # medial-lateral knee wobble under load
    fatigue_rate: Range = _range(0.0, 0.6)  # fatigue gained over one clip
    # Drop jumps: valgus that appears in the push-off as the heels rise (scored phase: the landing only).
    pushoff_valgus_probability: float = 0.4
    pushoff_valgus_deg: Range = _range(3.0, 14.0)


@dataclass
class LabelConfig:
    """Valgus when the dynamic FPPA (peak under load minus standing alignment) exceeds the threshold."""

    load_threshold: float = 0.5  # frames whose load exceeds this are 'under load'
    threshold_deg: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            # healthy upper bounds of BIOMECH.md (design choice for squat and gait, which have no cited norm)
            "bilateral_squat": {"female": 10.0, "male": 8.0},
            "single_leg_squat": {"female": 12.0, "male": 10.0},  # 8.4±5.1 healthy vs 16.8±5.4
            "drop_vertical_jump": {"female": 12.0, "male": 9.0},  # women 7-13, men 3-8; ≥10.6 predicts PFP
            "lateral_step_down": {"female": 11.0, "male": 9.0},  # single-leg step: women 5-12, men 1-9
            "walking": {"female": 5.0, "male": 4.0},
            "running": {"female": 8.0, "male": 6.0},
        }
    )
    healthy_margin_deg: float = 2.0  # healthy athletes are kept at least this far below the threshold


@dataclass
class ObservationConfig:
    dims: int = 2  # 2: image pixels through a pinhole camera; 3: world metres (z up)
    skeleton: str = "halpe26"
    fps_choices: tuple[float, ...] = (25.0, 30.0, 50.0, 60.0, 100.0, 120.0)
    duration_s: Range = _range(2.0, 20.0)  # clip length bounds: the clip structure sets the length within them


VIEW_BANDS: dict[str, tuple[float, float]] = {  # |yaw| of each view family, degrees (0 = camera in front)
    "front": (0.0, 25.0),
    "oblique": (25.0, 65.0),
    "side": (65.0, 115.0),
    "rear": (115.0, 180.0),
}


@dataclass
class CameraConfig:
    """Where the camera stands. Yaw is signed around the athlete (0 in front, +-180 behind); its magnitude
    is drawn by view family (`views`: weights over `VIEW_BANDS`), uniformly within the family's band and
    `yaw_deg`; families whose band misses `yaw_deg` are skipped."""

    yaw_deg: Range = _range(0.0, 45.0)  # bounds on |yaw|
    views: dict[str, float] = field(default_factory=lambda: {"front": 1.0})
    pitch_deg: Range = _range(-5.0, 5.0, signed=True)  # extra tilt beyond aiming at the athlete
    height_m: Range = _range(0.8, 1.3)  # floor tripods (0.3 m) to raised wall mounts (2.5 m)
    horizontal_fov_deg: Range = _range(45.0, 70.0)
    fill_fraction: Range = _range(0.55, 0.85)  # athlete height / image height; sets the distance
    resolutions: tuple[tuple[int, int], ...] = ((1920, 1080), (1280, 720), (1080, 1920), (720, 1280))
    distortion_probability: float = 0.0  # share of cameras with radial lens distortion (phones, action cams)
    distortion_k1: Range = _range(-0.25, 0.05, signed=True)  # radial coefficient on normalised coordinates


@dataclass
class NoiseConfig:
    """Pose-estimator error (Needham 2021; Ino 2024), applied in world metres before projection."""

    enabled: bool = True
    hip_knee_offset_mm: Range = _range(30.0, 50.0)  # systematic, per athlete
    ankle_offset_mm: Range = _range(1.0, 15.0)
    foot_offset_mm: Range = _range(1.0, 15.0)  # as the ankle (Needham 2021); feet differ by their jitter
    upper_offset_mm: Range = _range(10.0, 30.0)
    # A pose model's joint-centre bias is largely the same for everyone (same network, same training labels):
    # this share of each offset's direction is a fixed, left/right-mirrored population direction, the rest
    # is the athlete's own.
    offset_consistency: float = 0.7
    jitter_mm: float = 6.0  # sd of the temporally correlated jitter
    jitter_time_constant_s: float = 0.05
    foot_noise_factor: float = 1.8
    dropout_fraction: float = 0.02  # share of joint-frames dropped (in bursts)
    dropout_burst_s: Range = _range(0.03, 0.3)
    dropout_nan_fraction: float = 0.3  # dropped points emitted as NaN (else as a low-confidence guess)
    dropout_confidence: Range = _range(0.0, 0.25)
    confidence: Range = _range(0.65, 1.0)
    # Share of trials whose estimator reports no foot keypoints (heels, toes): COCO-17 models (YOLO-pose,
    # ViTPose, RTMPose-COCO) have none, and a model that only ever saw feet loses the camera yaw and the foot
    # measures they give. Drawn only when above 0, so at 0 every sequence stays as it was.
    no_feet_fraction: float = 0.0
    # Share of trials whose estimator reports heels and one toe but no small toe: MediaPipe's 33 landmarks (a
    # heel and a foot tip per foot), the commonest layout integrators bring. Drawn only when above 0.
    no_small_toe_fraction: float = 0.0
    swap_probability: float = 0.03  # per sequence: a burst of left/right leg swaps (x the family's rate)
    swap_burst_s: Range = _range(0.05, 0.3)
    # Pose-estimator families (`valgusml.synth.estimators.FAMILIES`), drawn per sequence by these weights;
    # each scales the values above its own way and adds its bias, smoothing, swaps and outliers.
    families: dict[str, float] = field(default_factory=lambda: {"rtmpose": 1.0})


@dataclass
class MotionConfig:
    """Where base motion comes from: the analytic task programmes, or, for a share of the trials whose task
    has recordings, real 3D recordings with the mechanisms superimposed (`valgusml.synth.realmotion`).

    Default 0: a dataset must be the same bytes on every machine, and real recordings live outside the
    repository (`../shared/realdata` beside a checkout, or a user's own files); a preset opts in by naming
    them (`real_paths`, files or folders, relative to the checkout) and a share (`real_fraction`)."""

    real_fraction: float = 0.0
    real_paths: tuple[str, ...] = field(default=(), metadata={"strings": True})


@dataclass
class GeneratorConfig:
    n_athletes: int = 100
    seed: int = 0
    preset: str = "custom"
    athletes: AthleteConfig = field(default_factory=AthleteConfig)
    mechanisms: MechanismConfig = field(default_factory=MechanismConfig)
    hard_negatives: HardNegativeConfig = field(default_factory=HardNegativeConfig)
    tasks: TaskConfig = field(default_factory=TaskConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        cfg = cls()
        _apply_mapping(cfg, data, prefix="")
        validate(cfg)
        return cfg


SECTIONS = tuple(f.name for f in fields(GeneratorConfig) if dataclasses.is_dataclass(f.default_factory))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- plain mapping → typed config -------------------------------------------------------------------


def _coerce(path: str, current: Any, value: Any, spec: dataclasses.Field | None) -> Any:
    if spec is not None and spec.metadata.get("range"):
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key {path!r} must be a [low, high] pair of numbers, got {value!r}") from None
        return (lo, hi)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key {path!r} must be true or false, got {value!r}")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ConfigError(f"config key {path!r} must be an integer, got {value!r}")
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {path!r} must be a number, got {value!r}")
        return float(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(f"config key {path!r} must be a string, got {value!r}")
        return value
    if isinstance(current, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {path!r} must be a mapping, got {value!r}")
        return _plain(dict(value))
    if isinstance(current, tuple):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"config key {path!r} must be a list, got {value!r}")
        items = list(value)
        if spec is not None and spec.metadata.get("strings"):
            if not all(isinstance(x, str) for x in items):
                raise ConfigError(f"config key {path!r} must be a list of strings, got {value!r}")
            return tuple(items)
        if current and isinstance(current[0], tuple):
            try:
                return tuple(tuple(int(x) for x in item) for item in items)
            except (TypeError, ValueError):
                raise ConfigError(f"config key {path!r} must be a list of [width, height], got {value!r}") from None
        try:
            return tuple(float(x) for x in items)
        except (TypeError, ValueError):
            raise ConfigError(f"config key {path!r} must be a list of numbers, got {value!r}") from None
    return value


def _apply_mapping(target: Any, data: dict[str, Any], prefix: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"config section {prefix.rstrip('.') or 'root'!r} must be a mapping, got {data!r}")
    specs = {f.name: f for f in fields(target)}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in specs:
            raise ConfigError(f"unknown config key {path!r} (known here: {sorted(specs)})")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            _apply_mapping(current, value, prefix=path + ".")
        else:
            setattr(target, key, _coerce(path, current, value, specs[key]))


# -- validation ---------------------------------------------------------------------------------------------


def _canonical_probabilities(path: str, probs: dict[str, float], allowed: tuple[str, ...], *,
                             complete: bool) -> dict[str, float]:
    """`probs` checked, and in the order of `allowed`. Sampling walks the names in order (cumulative weights),
    so without it the same weights written in another order (a `generator.json` stores its keys sorted) would
    draw other tasks, views, families and mechanisms from the same random numbers."""
    unknown = sorted(set(probs) - set(allowed))
    if unknown:
        raise ConfigError(f"config key {path!r}: unknown name(s) {unknown}; expected some of {list(allowed)}")
    if complete and set(probs) != set(allowed):
        raise ConfigError(f"config key {path!r} must give a probability for each of {list(allowed)}")
    for name, p in probs.items():
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not math.isfinite(p) or p < 0:
            raise ConfigError(f"config key '{path}.{name}' must be a probability >= 0, got {p!r}")
    total = float(sum(probs.values()))
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        # the mapping itself: a command-line `key={a: 1}` is merged into the preset's, not put in its place
        raise ConfigError(f"config key {path!r}: probabilities must sum to 1, they sum to {total:.6g} in {probs}")
    return {name: probs[name] for name in allowed if name in probs}


def _check_section(name: str, section: Any) -> None:
    for f in fields(section):
        path = f"{name}.{f.name}"
        value = getattr(section, f.name)
        if f.metadata.get("range"):
            lo, hi = value
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ConfigError(f"config key {path!r} must be finite, got {value!r}")
            if lo > hi:
                raise ConfigError(f"config key {path!r} is inverted: low {lo} > high {hi}")
            if not f.metadata.get("signed") and lo < 0:
                raise ConfigError(f"config key {path!r} must not be negative, got {value!r}")
        elif isinstance(value, bool) or isinstance(value, dict):
            continue
        elif isinstance(value, (int, float)):
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"config key {path!r} must be finite and >= 0, got {value!r}")
            if (f.name.endswith("probability") or f.name.endswith("fraction") or f.name.endswith("factor")) and (
                value > 1 and f.name != "foot_noise_factor"
            ):
                raise ConfigError(f"config key {path!r} must be in [0, 1], got {value!r}")


def validate(cfg: GeneratorConfig) -> GeneratorConfig:
    """Raise `ConfigError` naming the first bad key; returns `cfg` when everything is usable."""
    if cfg.n_athletes < 1:
        raise ConfigError(f"config key 'n_athletes' must be >= 1, got {cfg.n_athletes}")
    if cfg.seed < 0:
        raise ConfigError(f"config key 'seed' must be >= 0, got {cfg.seed}")
    for name in SECTIONS:
        _check_section(name, getattr(cfg, name))
    from valgusml.synth.estimators import FAMILIES

    m, t = cfg.mechanisms, cfg.tasks
    m.probabilities = _canonical_probabilities("mechanisms.probabilities", m.probabilities, MECHANISMS, complete=False)
    m.side_probabilities = _canonical_probabilities("mechanisms.side_probabilities", m.side_probabilities, SIDES,
                                                    complete=False)
    t.probabilities = _canonical_probabilities("tasks.probabilities", t.probabilities, TASKS, complete=False)
    cfg.camera.views = _canonical_probabilities("camera.views", cfg.camera.views, tuple(VIEW_BANDS), complete=False)
    cfg.noise.families = _canonical_probabilities("noise.families", cfg.noise.families, tuple(FAMILIES),
                                                  complete=False)
    lo, hi = cfg.camera.yaw_deg
    if not any(w > 0 and b_lo <= hi and lo <= b_hi for v, w in cfg.camera.views.items() for b_lo, b_hi in [VIEW_BANDS[v]]):
        raise ConfigError(f"config key 'camera.views': no view family with weight > 0 overlaps camera.yaw_deg {cfg.camera.yaw_deg}")
    if cfg.tasks.reps[0] < 1 or cfg.tasks.reps[1] > 8:
        raise ConfigError(f"config key 'tasks.reps' must lie in [1, 8], got {cfg.tasks.reps}")
    if cfg.tasks.trials_per_athlete < 1:
        raise ConfigError(f"config key 'tasks.trials_per_athlete' must be >= 1, got {cfg.tasks.trials_per_athlete}")
    lo, hi = cfg.mechanisms.dominant_share
    if hi > 1.0 or lo <= 1.0 / len(DEFICITS):
        raise ConfigError(f"config key 'mechanisms.dominant_share' must lie in ({1 / len(DEFICITS)}, 1], got {(lo, hi)}")
    families = set(TASK_FAMILIES)
    thresholds = cfg.labels.threshold_deg
    unknown = sorted(set(thresholds) - families)
    if unknown:
        raise ConfigError(f"config key 'labels.threshold_deg': unknown task(s) {unknown}; expected {sorted(families)}")
    for family in TASK_FAMILIES:
        per_sex = thresholds.get(family)
        if not isinstance(per_sex, dict) or set(per_sex) != {"female", "male"}:
            raise ConfigError(f"config key 'labels.threshold_deg.{family}' must give 'female' and 'male' thresholds")
        for sex, value in per_sex.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"config key 'labels.threshold_deg.{family}.{sex}' must be > 0, got {value!r}")
    obs = cfg.observation
    if obs.dims not in (2, 3):
        raise ConfigError(f"config key 'observation.dims' must be 2 or 3, got {obs.dims}")
    if obs.skeleton not in SKELETONS:
        raise ConfigError(f"config key 'observation.skeleton': unknown skeleton {obs.skeleton!r}; expected {sorted(SKELETONS)}")
    if not obs.fps_choices or any(f <= 0 or not math.isfinite(f) for f in obs.fps_choices):
        raise ConfigError(f"config key 'observation.fps_choices' must be a non-empty list of fps > 0, got {obs.fps_choices}")
    if obs.duration_s[0] <= 0.5:
        raise ConfigError(f"config key 'observation.duration_s' must exceed 0.5 s, got {obs.duration_s}")
    if cfg.camera.yaw_deg[1] > 180 or abs(cfg.camera.pitch_deg[0]) > 45 or abs(cfg.camera.pitch_deg[1]) > 45:
        raise ConfigError("config key 'camera.yaw_deg'/'camera.pitch_deg' out of range (|yaw| <= 180, |pitch| <= 45)")
    if not cfg.camera.resolutions or any(len(r) != 2 or min(r) < 16 for r in cfg.camera.resolutions):
        raise ConfigError(f"config key 'camera.resolutions' must list [width, height] pairs, got {cfg.camera.resolutions}")
    if cfg.camera.fill_fraction[1] > 1.0 or cfg.camera.fill_fraction[0] <= 0:
        raise ConfigError(f"config key 'camera.fill_fraction' must lie in (0, 1], got {cfg.camera.fill_fraction}")
    for key in ("dropout_confidence", "confidence"):
        lo, hi = getattr(cfg.noise, key)
        if hi > 1.0:
            raise ConfigError(f"config key 'noise.{key}' must lie in [0, 1], got {(lo, hi)}")
    for key in ("no_feet_fraction", "no_small_toe_fraction"):
        if not 0.0 <= getattr(cfg.noise, key) <= 1.0:
            raise ConfigError(f"config key 'noise.{key}' must lie in [0, 1], got {getattr(cfg.noise, key)}")
    if cfg.observation.fps_choices and cfg.noise.jitter_time_constant_s <= 0:
        raise ConfigError("config key 'noise.jitter_time_constant_s' must be > 0")
    return cfg
