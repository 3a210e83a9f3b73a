"""Mechanisms: how each deficit bends the intended movement, driven by load and phase (BIOMECH.md signatures).

Each deficit adds to a per-limb *knee swivel* (medial rotation of the knee about the hip-ankle axis: femoral
adduction and internal rotation, or tibial internal rotation carried up from the foot) and to its own
signature channels:

- hip_weakness: swivel and contralateral pelvic drop grow with single-leg load and fatigue; trunk leans over the
  stance leg; small in bilateral tasks (their single-leg share is low). Foot normal.
- adductor_tfl_overactivity: swivel already present at the start and at shallow depth, in every task; the
  pelvis stays level (normal drop reduced, in `athletes.py`) and the stance is narrow.
- pronation: rearfoot eversion and navicular drop from initial loading, tibial internal rotation carried into
  the knee swivel, foot abduction; femur and pelvis near normal.
- limited_dorsiflexion: the shank's forward tilt is capped by the ankle's range; the excess demand is paid with
  less depth, heel rise and forward trunk lean, and (at full severity) a valgus collapse near the bottom.

Swivel components are kept apart (healthy, then DEFICITS order) so labels can name the dominant contributor.
"""

from __future__ import annotations

import numpy as np

from valgusml.synth.athletes import FLOAT, hip_lean_share
from valgusml.synth.config import GeneratorConfig
from valgusml.synth.tasks import CHAIN, GAIT, smoothstep


def softplus(x: np.ndarray, width: float = 2.0) -> np.ndarray:
    """A smooth max(x, 0): the cap bites progressively, not as a kink. (`width * logaddexp(0, x / width)`,
    written with exp and log1p, which numpy vectorises for float32 and logaddexp not.)"""
    x = x / width
    return width * (np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))))


def drive(x: np.ndarray, onset: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """How far a signature has grown at load (or depth) `x` in [0, 1]: nothing before `onset`, then a power
    curve to 1. Each athlete draws onset and exponent per signature from one distribution shared by every
    class (healthy variation included), so the curve's shape carries no class."""
    return np.clip((x - onset) / (1.0 - onset), 0.0, 1.0) ** exponent


def apply_mechanisms(cfg: GeneratorConfig, m: dict, p: dict) -> dict:
    """Add deficit channels to the programme `m` in place; `p` holds per-trial athlete arrays `(n, 1[, 2])`."""
    mcfg = cfg.mechanisms
    load, uni, depth = m["load"], m["unilateral"], m["depth"]
    n_frames = load.shape[1]
    # Per-limb values `(n, 1, 2)` repeated over frames once: broadcasting them in every operation would run
    # numpy's inner loop over the 2-long limb axis, ~20x slower.
    over_frames = lambda x: np.repeat(x, n_frames, axis=1)  # noqa: E731
    act = over_frames(p["activation"])  # (n, T, 2, 4)
    a_hip, a_add, a_pron, a_df = (np.ascontiguousarray(act[..., k]) for k in range(4))  # (n, T, 2)
    onset, exponent = p["drive_onset"], p["drive_exponent"]  # (n, 1, 1, 5): healthy, then DEFICITS
    shape = lambda x, k: drive(x, onset[..., k], exponent[..., k])  # noqa: E731
    fatigue = m["fatigue"][..., None]
    sensitivity = p["fatigue_sensitivity"][..., None]
    gain = m["gain"][..., None] * (1.0 + mcfg.fatigue_gain * sensitivity * fatigue)  # (n, T, 1): rep x fatigue
    hip_fatigue = 1.0 + mcfg.hip_fatigue_gain * sensitivity * fatigue  # hip weakness grows most with fatigue
    hip_drive = uni * hip_fatigue

    chain = over_frames((m["kind"] == CHAIN)[:, None, :])  # (n, T, 2)
    beta_demand = m["beta_ratio"] * m["theta"]
    beta_max = over_frames(p["dorsiflexion_rom"] - p["dorsiflexion_margin_deg"][..., None])
    excess = np.where(chain, softplus(beta_demand - beta_max) - softplus(FLOAT(-40.0)), 0.0)
    excess = np.maximum(excess, 0.0)
    theta = np.where(chain, m["theta"] - mcfg.dorsiflexion_depth_loss * excess, m["theta"])
    beta = m["beta_ratio"] * theta
    heel_rise = np.where(chain, softplus(beta - beta_max, 1.5) - softplus(FLOAT(-40.0), 1.5), 0.0)
    m["theta"] = theta
    m["beta"] = np.where(chain, beta - np.maximum(heel_rise, 0.0), 0.0)  # ankle dorsiflexion actually used
    m["shank_tilt"] = beta
    m["rho"] = m["rho"] + np.maximum(heel_rise, 0.0)
    m["dorsiflexion_excess"] = excess

    start = p["adductor_start_fraction"][..., None]
    pronation_load = shape(load, 3)
    task_factor = m["deficit_swivel_factor"][..., None]  # (n, 1, 1)
    parts = [
        over_frames(p["healthy_swivel"]) * shape(load, 0) * gain + m["wobble"] * load + m["pushoff"],
        a_hip * p["hip_swivel"][..., None] * shape(uni, 1) * m["gain"][..., None] * hip_fatigue * task_factor,
        a_add * p["adductor_swivel"][..., None] * (start + (1.0 - start) * shape(np.maximum(load, depth[..., None]), 2)) * gain * task_factor,
        a_pron * p["pronation_tibial_rotation"][..., None] * pronation_load * gain * task_factor,
        a_df * np.minimum(mcfg.dorsiflexion_swivel_per_deg * excess, mcfg.dorsiflexion_swivel_max_deg) * gain * task_factor,
    ]
    m["swivel_parts"] = np.stack(parts, axis=-1)  # (n, T, 2, 5)
    m["swivel"] = parts[0] + parts[1] + parts[2] + parts[3] + parts[4]  # not .sum(-1): slow over a short axis

    # Contralateral pelvic drop: stance on the left lowers the right hip (negative obliquity), and vice versa.
    # Weak abductors either let the pelvis drop or are spared by leaning the trunk over the stance leg: each
    # athlete compensates to their own degree (`hip_compensation`), trading drop for lean.
    compensation = p["hip_compensation"][..., None]
    excess = np.maximum(p["hip_pelvic_drop"][..., None] - p["pelvic_drop"][..., None], 0.0)
    extra = a_hip * excess * (1.0 - 0.4 * compensation) * hip_drive  # the weak athlete's excess drop
    drop = p["pelvic_drop"][..., None] * hip_drive + extra  # (n, T, 2): drop caused by each limb's single-leg load
    m["pelvic_obliquity"] = drop[..., 1] - drop[..., 0]
    m["pelvic_drop"] = drop
    # The dropping (swing) side also swings forward: the pelvis rotates (design choice, 0.25 deg per deg of
    # excess drop; positive rotation brings the right side forward).
    m["pelvis_rot"] = m["pelvis_rot"] + 0.25 * (extra[..., 0] - extra[..., 1])
    # over the stance leg; `trunk_lean_toward_deg`: the pelvic-drop hard negative's, without a weak hip
    lean = (1.5 + p["trunk_lean_toward_deg"][..., None] + a_hip * p["hip_trunk_lean"][..., None] * hip_lean_share(compensation)) * hip_drive
    m["trunk_lateral"] = lean[..., 0] - lean[..., 1] + m["trunk_sway"]
    gait = over_frames((m["kind"] == GAIT)[:, None, :])
    # Gait: adductors pull the swing foot in: narrower steps than the athlete's own (healthy athletes walk narrow
    # too, so a narrow step alone says nothing about the knee).
    m["ball"][..., 0] = np.where(gait, m["ball"][..., 0] * (1.0 - mcfg.adductor_gait_narrowing * a_add), m["ball"][..., 0])
    # Gait: a tight calf lifts the heel early and tips the trunk forward.
    m["rho"] = m["rho"] + np.where(gait, a_df * m["early_heel_rise"], 0.0)
    df_lean_per_limb = a_df * p["dorsiflexion_trunk_lean"][..., None] * np.minimum(excess / 10.0, 1.0)
    df_lean = np.maximum(df_lean_per_limb[..., 0], df_lean_per_limb[..., 1])
    m["trunk_fwd"] = m["trunk_fwd"] + df_lean + 3.0 * np.max(np.where(gait, a_df, 0.0), axis=-1)

    # Foot signs: part already there in quiet stance (a pronated foot), the rest grows with load.
    static = p["pronation_static_fraction"][..., None]
    foot = static + (1.0 - static) * pronation_load
    healthy_foot = smoothstep(load / 0.4)
    excess_eversion = a_pron * np.maximum(p["pronation_rearfoot_eversion"][..., None] - p["rearfoot_eversion"][..., None], 0.0)
    m["eversion"] = p["rearfoot_eversion"][..., None] * healthy_foot + excess_eversion * foot
    excess_drop = a_pron * np.maximum(p["pronation_navicular_drop"][..., None] - p["navicular_drop"][..., None], 0.0)
    m["navicular_drop"] = 1e-3 * (p["navicular_drop"][..., None] * healthy_foot + excess_drop * foot)
    m["foot_abduction"] = a_pron * p["pronation_foot_abduction"][..., None] * foot
    return m
