"""Real motion as a base: 3D recordings of real people (the TRC files of `../shared/realdata`, or a user's
own) replace the analytic task programme of some trials, and the athlete's deficits are superimposed on them.

A model then sees real timing, coordination and variability beside the analytic motion. What the real
recording fixes it keeps: the pelvis, the trunk, the feet (they stay planted where the real motion plants
them) and the knee flexion. What the deficit adds is the medial knee swivel about the hip-ankle axis, with
each mechanism's own drive (hip weakness under single-leg load, adductor/TFL from the start and at shallow
depth, pronation from initial loading, limited dorsiflexion where the shank's forward tilt exceeds the
athlete's range), sized and timed per athlete as in the analytic motion (`mechanisms.py`). Pelvic drop,
trunk lean and foot roll-in are not added to real motion (they would move what the recording measured).

Recordings come from `valgusml.synth.recordings`. A recording is used only where its own scored-phase FPPA
stays below every threshold of its task (`recordings.usable`): the label must come from the superimposed
deficit, not from the person recorded.
"""

from __future__ import annotations

import numpy as np

from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth.kinematics import HAND_POINTS, HEAD_POINTS
from valgusml.synth.recordings import C, recordings, resample


def complete_joints(kp: np.ndarray, names: tuple[str, ...], height_m: float) -> np.ndarray:
    """Generator joints `names` (canonical ones first, as `built_joints`) from canonical joints `(T, 20, 3)`:
    head, spine and hand points placed from the trunk and forearms as the analytic model places them."""
    T = len(kp)
    out = np.empty((T, len(names), 3))
    out[:, : len(CANONICAL_JOINTS)] = kp
    neck, mid_hip = kp[:, C["neck"]], 0.5 * (kp[:, C["left_hip"]] + kp[:, C["right_hip"]])
    ex = kp[:, C["left_shoulder"]] - kp[:, C["right_shoulder"]]
    ex /= np.linalg.norm(ex, axis=1, keepdims=True) + 1e-12
    ez = neck - mid_hip
    ez -= (ez * ex).sum(1, keepdims=True) * ex
    ez /= np.linalg.norm(ez, axis=1, keepdims=True) + 1e-12
    ey = np.cross(ez, ex)  # backward
    scale = height_m / 1.75
    column = {name: k for k, name in enumerate(names)}
    for name, (v0, v1, v2) in HEAD_POINTS.items():
        point = neck + scale * (v0 * ex + v1 * ey + v2 * ez)
        if name == "nose" and np.isfinite(kp[:, C["nose"]]).all():
            continue
        if name in column:
            out[:, column[name]] = point
    if "mid_hip" in column:
        out[:, column["mid_hip"]] = mid_hip
    if "spine" in column:
        out[:, column["spine"]] = 0.5 * (mid_hip + neck)
    for name in HAND_POINTS:
        if name in column:
            side, part = name.split("_")
            wrist, elbow = kp[:, C[f"{side}_wrist"]], kp[:, C[f"{side}_elbow"]]
            along = (wrist - elbow) / (np.linalg.norm(wrist - elbow, axis=1, keepdims=True) + 1e-12)
            out[:, column[name]] = wrist + {"pinky": 0.07, "index": 0.08, "thumb": 0.04}[part] * along
    return out


def rotate_knees(kp: np.ndarray, swivel_deg: np.ndarray) -> np.ndarray:
    """Knees `(T, 2, 3)` of canonical joints `kp` turned medially by `swivel_deg` `(T, 2)` about each limb's
    hip-ankle axis (Rodrigues): bone lengths, hips and ankles unchanged."""
    out = np.empty((len(kp), 2, 3))
    for k, side in enumerate(("left", "right")):
        hip, knee, ankle = kp[:, C[f"{side}_hip"]], kp[:, C[f"{side}_knee"]], kp[:, C[f"{side}_ankle"]]
        u = ankle - hip
        u /= np.linalg.norm(u, axis=1, keepdims=True) + 1e-12
        r = knee - hip
        cross = np.cross(u, r)
        medial = np.array([-1.0 if side == "left" else 1.0, 0.0, 0.0])
        sign = np.where(cross @ medial >= 0, 1.0, -1.0)[:, None]
        s = np.radians(swivel_deg[:, k])[:, None] * sign
        along = (u * r).sum(1, keepdims=True) * u
        out[:, k] = hip + r * np.cos(s) + cross * np.sin(s) + along * (1.0 - np.cos(s))
    return out


def simulate_real(cfg, trial, names: tuple[str, ...]):
    """A trial whose base motion is a real recording (`trial.params["real_index"]`): the recording at the
    trial's frame rate with the athlete's deficits superimposed as medial knee swivel; joints `names`.

    Load and scored phase come from the motion itself (`valgusml.features.phases`: what the valgus rule reads
    in any recording), so the labels follow the same rule as for real data; the swivel's drive per mechanism
    is the analytic model's (`mechanisms.drive`, the athlete's own onset and exponent)."""
    from valgusml.features.phases import (
        CONTACT_TOLERANCE,
        foot_height,
        knee_flexion,
        loaded_mask,
        phases,
        scored_mask,
        standing_frames,
    )
    from valgusml.labels import task_family
    from valgusml.synth.athletes import FLOAT
    from valgusml.synth.mechanisms import drive, softplus
    from valgusml.synth.simulation import Simulated

    mcfg, athlete, p = cfg.mechanisms, trial.athlete, trial.params
    rec = recordings(cfg.motion.real_paths)[int(p["real_index"])]
    kp = resample(rec, trial.fps, p["real_start"], trial.n_frames)
    T, family = len(kp), task_family(trial.task)
    flexion = np.nan_to_num(knee_flexion(kp, trial.fps), nan=0.0)
    standing = standing_frames(flexion)
    level = np.median(flexion[standing], axis=0) if standing.any() else flexion.min(axis=0)
    found = phases(kp, trial.fps, trial.task)
    scored = scored_mask(found, T)
    peak = np.where(scored.any(axis=0), np.where(scored, flexion, -np.inf).max(axis=0), flexion.max(axis=0))
    depth = np.clip((flexion - level) / np.maximum(peak - level, 5.0), 0.0, 1.0)
    with np.errstate(invalid="ignore"):
        contact = np.nan_to_num(foot_height(kp), nan=1.0) <= CONTACT_TOLERANCE
    if family in ("walking", "running"):
        load = contact.astype(float)
        uni = load
    elif family == "drop_vertical_jump":
        load = depth * contact
        uni = 0.5 * load
    else:
        load = depth
        uni = (0.25 if family == "bilateral_squat" else 1.0) * load
    time = np.arange(T)[:, None] / trial.fps
    fatigue = np.clip(p["fatigue0"] + p["fatigue_rate"] * time, 0.0, 1.5)
    gain = 1.0 + mcfg.fatigue_gain * athlete.fatigue_sensitivity * fatigue
    hip_gain = 1.0 + mcfg.hip_fatigue_gain * athlete.fatigue_sensitivity * fatigue
    shape = lambda x, k: drive(x, athlete.drive_onset[k], athlete.drive_exponent[k])  # noqa: E731
    a, e = athlete.activation, athlete.effects
    shin = kp[:, [C["left_knee"], C["right_knee"]]] - kp[:, [C["left_ankle"], C["right_ankle"]]]
    tilt = np.degrees(np.arctan2(-shin[..., 1], shin[..., 2]))  # forward (-y) tilt of the shank
    beta_max = athlete.dorsiflexion_rom_deg - athlete.dorsiflexion_margin_deg
    excess = np.maximum(softplus(tilt - beta_max) - softplus(np.float64(-40.0)), 0.0)
    start = athlete.adductor_start_fraction
    parts = np.zeros((T, 2, 5))
    parts[..., 1] = a[:, 0] * e["hip_swivel_deg"] * shape(uni, 1) * hip_gain
    parts[..., 2] = a[:, 1] * e["adductor_swivel_deg"] * (start + (1.0 - start) * shape(np.maximum(load, depth), 2)) * gain
    parts[..., 3] = a[:, 2] * e["pronation_tibial_rotation_deg"] * shape(load, 3) * gain
    parts[..., 4] = a[:, 3] * np.minimum(mcfg.dorsiflexion_swivel_per_deg * excess, mcfg.dorsiflexion_swivel_max_deg) * gain
    moved = kp.copy()
    moved[:, [C["left_knee"], C["right_knee"]]] = rotate_knees(kp, parts.sum(axis=-1))
    frame = int(np.flatnonzero(standing)[np.argmin(flexion[standing].sum(axis=1))]) if standing.any() else int(np.argmin(flexion.sum(axis=1)))
    rule_reads = loaded_mask(kp, trial.fps, trial.task) | scored_mask(found, T, kind="push_off")
    return Simulated(
        joints=complete_joints(moved, names, athlete.height_m).astype(FLOAT),
        load=rule_reads.astype(FLOAT),
        swivel_parts=parts.astype(FLOAT),
        reference=kp[frame][None].astype(FLOAT),
        knee_bend=np.zeros((3, T, 2), dtype=FLOAT),
        chained=np.zeros(2, dtype=bool),  # label rescaling leaves real knees alone
        scored=scored,
    )
