"""Labels from the clean motion: the FPPA of each limb over the task's scored phase against the athlete's
threshold (`label_trial`), with healthy limbs rescaled until they stay below it (`simulate_and_label`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from valgusml.features import FRAME_MEASURE_INDEX, LIFTED_MEASURES, frame_measures
from valgusml.features.geometry import limb_fppa_deg
from valgusml.labels import DEFICITS, none_label, task_family, validate_limb_label
from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth.config import GeneratorConfig
from valgusml.synth.kinematics import built_joints
from valgusml.synth.simulation import (
    Simulated,
    emitted_joints,
    length_batches,
    scale_swivel,
    simulate,
)
from valgusml.synth.tasks import Trial

RESCALE_ROUNDS = 4
CEILING_TOLERANCE_DEG = 0.5  # how close a capped knee's dynamic FPPA is brought to its athlete's valgus ceiling
CEILING_ROUNDS = 10


class _CeilingSearch:
    """One trial's knees held at the athlete's valgus ceiling: a deficit's valgus knee that passes it is brought
    back to it, and kept within `CEILING_TOLERANCE_DEG` of it after that (no overshoot below). Per limb, a
    bracketing search over the scale (0, 1] of the knee's swivel, stepping by the square root of the angle's
    ratio (the angle outgrows the swivel as the thigh levels) while that stays inside the bracket, by halving the
    bracket otherwise."""

    def __init__(self, ceiling_deg: float) -> None:
        self.ceiling = float(ceiling_deg)
        self.held = np.zeros(2, dtype=bool)  # limbs that passed the ceiling once
        self.scale, self.low, self.high = np.ones(2), np.zeros(2), np.ones(2)

    def factors(self, dynamic: np.ndarray, deficit_valgus: np.ndarray) -> np.ndarray | None:
        """`(2,)` factors for the knees' swivel given their dynamic FPPA now, None when every held knee is at
        the ceiling (or there is none)."""
        if self.ceiling <= 0:
            return None
        self.held |= deficit_valgus & (dynamic > self.ceiling + CEILING_TOLERANCE_DEG)
        off = np.flatnonzero(self.held & (np.abs(dynamic - self.ceiling) > CEILING_TOLERANCE_DEG))
        if not off.size:
            return None
        out = np.ones(2)
        for k in off:
            if dynamic[k] > self.ceiling:
                self.high[k] = self.scale[k]
            else:
                self.low[k] = self.scale[k]
            guess = self.scale[k] * np.sqrt(self.ceiling / max(float(dynamic[k]), 1e-3))
            new = guess if self.low[k] < guess < self.high[k] else 0.5 * (self.low[k] + self.high[k])
            out[k], self.scale[k] = new / self.scale[k], new
        return out


LEGS = slice(CANONICAL_JOINTS.index("left_hip"), CANONICAL_JOINTS.index("right_ankle") + 1)  # hips, knees, ankles
assert CANONICAL_JOINTS[LEGS] == ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")


_LIFTED_COLUMNS = [FRAME_MEASURE_INDEX[name] for name in LIFTED_MEASURES]


def measure_fppa(sims: list[Simulated]) -> list[tuple[np.ndarray, np.ndarray]]:
    """FPPA `(T, 2)` of each trial and `(2,)` of its standing reference, by `valgusml.features.limb_fppa_deg`
    (what `fppa_deg` computes) on a clean frontal view of the lab (x = subject's left, y down: the frontal
    plane the athlete faces); one call for the whole batch (the measure is per frame)."""
    lengths = [len(s.joints) for s in sims]
    ref_start = sum(lengths)
    legs = np.concatenate([s.joints[:, LEGS] for s in sims] + [s.reference[:, LEGS] for s in sims])  # float32, as simulated
    x, y = legs[..., 0], -legs[..., 2]
    fppa = limb_fppa_deg(x[:, 0:2], y[:, 0:2], x[:, 2:4], y[:, 2:4], x[:, 4:6], y[:, 4:6])
    out, start = [], 0
    for k, n in enumerate(lengths):
        out.append((fppa[start : start + n], fppa[ref_start + k]))
        start += n
    return out


def label_trial(
    cfg: GeneratorConfig, trial: Trial, sim: Simulated, fppa: np.ndarray, standing: np.ndarray
) -> tuple[dict, dict, np.ndarray]:
    """Per-limb labels from the motion: FPPA measured on the clean frontal view by `valgusml.features`.

    Returns (labels, measured, unexplained) where `unexplained[limb]` marks a valgus limb whose swivel at the
    peak comes mostly from healthy variation rather than a deficit (the generator then tones it down). A knee
    of a knee-alone valgus athlete (`Athlete.habitual_valgus`), or of an in-toeing one in gait
    (`Athlete.in_toeing_deg`), is not toned down: it is valgus, and its mechanism is unknown where no deficit
    dominates.
    """
    threshold = cfg.labels.threshold_deg[task_family(trial.task)][trial.athlete.sex]
    under_load = sim.load > cfg.labels.load_threshold  # (T, 2)
    loaded = under_load & sim.scored  # the scored phase only: a drop jump's push-off is a measure, not the label
    was_loaded = loaded.any(axis=0)
    # The loaded peak; a limb never loaded reports its overall peak (and cannot be valgus).
    peak_frames = np.where(was_loaded, np.argmax(np.where(loaded, fppa, -np.inf), axis=0), np.argmax(fppa, axis=0))
    peaks = fppa[peak_frames, [0, 1]]
    dynamic = peaks - standing
    parts = np.maximum(sim.swivel_parts[peak_frames, [0, 1]], 0.0)  # (2 limbs, healthy + DEFICITS)
    deficit_total = parts[:, 1:].sum(axis=1)
    valgus = was_loaded & (dynamic > threshold)
    unexplained = valgus & ((deficit_total <= parts[:, 0]) | (deficit_total <= 1e-6))
    knee_alone = unexplained & (trial.athlete.habitual_valgus | trial.athlete.in_toeing_for(trial.task).any())
    labels = {}
    for k, limb in enumerate(("left", "right")):
        peak = round(float(peaks[k]), 3)
        if knee_alone[k]:
            labels[limb] = validate_limb_label(limb, {"valgus": True, "mechanism": None, "severity_deg": peak})
        elif valgus[k] and deficit_total[k] > 1e-6:
            shares = parts[k, 1:] / deficit_total[k]
            labels[limb] = validate_limb_label(limb, {
                "valgus": True,
                "mechanism": DEFICITS[int(np.argmax(shares))],
                "severity_deg": peak,
                "contributions": {m: round(s, 4) for m, s in zip(DEFICITS, shares.tolist(), strict=True) if s > 1e-4},
            })
        else:
            labels[limb] = none_label(peak)
    measured = {
        "fppa_peak_deg": [round(v, 3) for v in peaks.tolist()],
        "fppa_standing_deg": [round(v, 3) for v in standing.tolist()],
        "dynamic_fppa_deg": [round(v, 3) for v in dynamic.tolist()],
        "peak_time_s": [round(f / trial.fps, 4) for f in peak_frames.tolist()],
        "loaded": was_loaded.tolist(),
        "threshold_deg": threshold,
    }
    unscored = under_load & ~sim.scored
    if unscored.any():  # e.g. a drop jump's push-off and second landing
        outside = np.where(unscored, fppa, -np.inf).max(axis=0)
        measured["unscored_dynamic_fppa_deg"] = [round(float(v), 3) if np.isfinite(v) else None
                                                 for v in (outside - standing).tolist()]
    return labels, measured, unexplained & ~knee_alone


def frame_targets(cfg: GeneratorConfig, sim: Simulated, fppa: np.ndarray, standing: np.ndarray) -> np.ndarray:
    """`(T, C)` per-frame targets (`valgusml.data.frame_targets.FRAME_TARGET_COLUMNS`): each limb's dynamic
    FPPA on the clean 3D frontal plane (FPPA minus standing, the quantity the label thresholds), whether the
    frame is loaded in the scored phase (the frames the label reads), and the 3D values of `LIFTED_MEASURES`."""
    scored = (sim.load > cfg.labels.load_threshold) & sim.scored
    measures = frame_measures(sim.joints[:, : len(CANONICAL_JOINTS)])[:, _LIFTED_COLUMNS]
    return np.concatenate([fppa - standing[None, :], scored, measures], axis=1).astype(np.float32)


def simulate_and_label(cfg: GeneratorConfig, trials: list[Trial]) -> list[tuple[Simulated, dict, dict]]:
    """Simulate, label, and tone down healthy swivel where it alone would make a valgus limb, and a deficit's
    swivel where it would take the knee past the athlete's valgus ceiling (`Athlete.valgus_ceiling_deg`)."""
    # Batches of similar length share padding; each trial's result does not depend on its batch.
    emit = emitted_joints(cfg.observation.skeleton)
    real = {i for i, t in enumerate(trials) if t.params.get("real_index", -1.0) >= 0}
    sims: list[Any] = [None] * len(trials)
    for part in length_batches(trials, [i for i in range(len(trials)) if i not in real]):
        for i, sim in zip(part, simulate(cfg, [trials[i] for i in part], emit), strict=True):
            sims[i] = sim
    if real:
        from valgusml.synth.realmotion import simulate_real

        for i in sorted(real):
            sims[i] = simulate_real(cfg, trials[i], built_joints(emit))
    scale = np.ones((len(trials), 2))
    ceilings = [_CeilingSearch(t.athlete.valgus_ceiling_deg) for t in trials]
    todo = list(range(len(trials)))
    results: list[Any] = [None] * len(trials)
    for round_ in range(max(RESCALE_ROUNDS, CEILING_ROUNDS) + 1):
        factors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, (fppa, standing) in zip(todo, measure_fppa([sims[i] for i in todo]), strict=True):
            labels, measured, unexplained = label_trial(cfg, trials[i], sims[i], fppa, standing)
            dynamic = np.asarray(measured["dynamic_fppa_deg"])
            valgus = np.array([labels[limb]["valgus"] for limb in ("left", "right")])
            # The knee's whole swivel, so the deficit keeps its share of it (and the limb its mechanism).
            whole = ceilings[i].factors(dynamic, valgus & ~unexplained) if round_ < CEILING_ROUNDS else None
            healthy_due = unexplained.any() and round_ < RESCALE_ROUNDS
            if healthy_due or whole is not None:
                toning = np.ones(2)
                for k in np.flatnonzero(unexplained if healthy_due else []):
                    target = measured["threshold_deg"] - cfg.labels.healthy_margin_deg
                    ratio = target / max(dynamic[k], 1e-6)
                    toning[k] = float(np.clip(0.9 * ratio, 0.0, 0.95))
                whole = np.ones(2) if whole is None else whole
                scale[i] *= toning
                factors[i] = (toning * whole, whole)
            else:
                sims[i].healthy_swivel_scale = [round(float(s), 4) for s in scale[i]]  # analysis only
                sims[i].frame_targets = frame_targets(cfg, sims[i], fppa, standing)
                results[i] = (sims[i], labels, measured)
        if not factors:
            break
        todo = list(factors)
        healthy_factors, deficit_factors = (np.array([factors[i][j] for i in todo]) for j in (0, 1))
        scale_swivel([trials[i] for i in todo], [sims[i] for i in todo], healthy_factors, deficit_factors)
    return results
