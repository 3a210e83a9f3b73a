"""Presence read off 3D input itself: where the frontal plane is measured, the call is the label's own rule.

The label is a threshold on the knee's dynamic FPPA in the 3D frontal plane over the task's scored phase
(`valgusml.features.rule`). A network has to estimate that angle from 2D keypoints; 3D joint centres carry it,
so a 3D recording's presence probability comes from the measured angle, and the network keeps what geometry
does not settle (the mechanism). The probability admits the measurement's error: a 3D FPPA is taken to be off
by `valgusml.labels.FPPA_SEM_DEG` (BIOMECH.md: SEM 2-4 deg), so

    P(valgus | sex) = Phi((dynamic FPPA - threshold(task, sex)) / SEM)   (logistic approximation),

averaged over both sexes when the recording does not say which. It is reported on the model's scale, shifted
so that P = 0.5 lands on the stored decision threshold: `valgus` stays `p >= decision_threshold` for every
input. Severity is the measured peak FPPA, the label's own severity.

Only joint centres that hold still against each other are measured so. Marker-based capture moves a segment's
ends together: a thigh or shank changes length only slowly, with the skin under its markers (the OpenCap lab
recordings: 1-4% over a recording, but a median second difference of 0.1-0.3% of its length from one 1/30 s to
the next; the generator's clean 3D 0). Estimated 3D (markerless triangulation, monocular lifting) errs frame by
frame: 0.8-3.3% for the Pose2Sim recordings, a median of 2.5% and a 5th percentile of 0.5% for the generator's
estimated 3D, and the rule's peak over frames picks that error up: on 60 held-out athletes regenerated as
estimated 3D the measured angle scores presence AUROC 0.83, the network 0.98. Past `MEASURED_3D_MAX_JITTER` the
network reads the recording and a warning says why.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from valgusml.features.rule import (
    MEASURED_3D_MAX_JITTER,
    SEXES,
    RuleFrames,
    rule_frames,
    segment_length_jitter,
)
from valgusml.labels import FPPA_SEM_DEG, LIMBS, VALGUS_THRESHOLD_DEG
from valgusml.sequence import KeypointSequence

_LOGISTIC_PER_SD = 1.702  # sigmoid(1.702 z) ~ Phi(z)


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1.0 - 1e-9)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class MeasuredPresence:
    """The rule's frames of one 3D recording and the mapping of its angles to probabilities."""

    frames: RuleFrames
    fps: float
    sex: str | None
    decision_threshold: float

    def probability(self, dynamic_fppa_deg: float) -> float:
        """P(valgus) of a measured dynamic FPPA, on the model's scale (see the module docstring)."""
        sexes = (self.sex,) if self.sex else SEXES
        thresholds = VALGUS_THRESHOLD_DEG[self.frames.task_family]
        slope = _LOGISTIC_PER_SD / FPPA_SEM_DEG
        p = float(np.mean([1.0 / (1.0 + math.exp(-slope * (dynamic_fppa_deg - thresholds[s]))) for s in sexes]))
        return 1.0 / (1.0 + math.exp(-(_logit(p) + _logit(self.decision_threshold))))

    @functools.cached_property
    def readings(self) -> tuple[tuple[float, float, float, float] | None, ...]:
        """`limb(k)` of each limb over the whole recording: the recording's answer, read once for it and its
        timeline."""
        return tuple(self.limb(k) for k in range(len(LIMBS)))

    def limb(self, k: int, start_s: float = 0.0, end_s: float = math.inf) -> tuple[float, float, float, float] | None:
        """`(probability, peak FPPA, peak time s, dynamic FPPA)` of limb `k` over its scored frames between
        `start_s` and `end_s`, None when the limb has no scored frame there."""
        n = len(self.frames.fppa_deg)
        span = slice(max(0, math.floor(start_s * self.fps)), min(n, math.ceil(end_s * self.fps)) if math.isfinite(end_s) else n)
        frame = self.frames.peak_frame(k, span)
        if frame is None:
            return None
        peak = float(self.frames.fppa_deg[frame, k])
        dynamic = peak - float(self.frames.standing_fppa_deg[k])
        if not math.isfinite(dynamic):
            return None
        return self.probability(dynamic), peak, frame / self.fps, dynamic


def estimated_3d_warning(canonical: KeypointSequence) -> str | None:
    """The warning for 3D input whose segments jitter past `MEASURED_3D_MAX_JITTER` (read by the network, not
    the rule), None for 2D input and for joint centres that hold still against each other."""
    if canonical.keypoints.shape[-1] != 3:
        return None
    jitter = segment_length_jitter(canonical)
    if not jitter > MEASURED_3D_MAX_JITTER:
        return None
    return (f"3D input whose thighs and shanks change length by {jitter:.1%} from one frame to the next: estimated "
            "3D, not marker-based joint centres; valgus probability from the network, which reads such input "
            "better than the frontal-plane angle measured on it")


def read_measured(canonical: KeypointSequence, decision_threshold: float) -> tuple[MeasuredPresence | None, str | None]:
    """`(measured_presence, estimated_3d_warning)` of a recording, its joints' steadiness read once: the rule's
    frames for steady 3D, the warning for estimated 3D, neither for 2D."""
    warning = estimated_3d_warning(canonical)
    if canonical.keypoints.shape[-1] != 3 or warning is not None:
        return None, warning
    frames = rule_frames(canonical.seen_keypoints(), canonical.fps, canonical.task or "")
    sex = canonical.meta_value("sex")  # meta["sex"] or meta["athlete"]["sex"]
    presence = MeasuredPresence(frames, float(canonical.fps), sex if sex in SEXES else None, float(decision_threshold))
    return presence, None


def measured_presence(canonical: KeypointSequence, decision_threshold: float) -> MeasuredPresence | None:
    """The rule on a canonical-skeleton recording when it is 3D with steady joint centres, None for 2D input
    and for estimated 3D (`estimated_3d_warning`)."""
    return read_measured(canonical, decision_threshold)[0]


def apply_measured(
    presence: MeasuredPresence, valgus: np.ndarray, severity: np.ndarray, frontal: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """`(valgus (2,), severity (2,), frontal (2,), limbs read)`: the network's per-limb outputs with each limb the
    rule scores replaced by its measured probability, peak FPPA and dynamic FPPA."""
    valgus, severity = np.array(valgus, dtype=np.float64), np.array(severity, dtype=np.float64)
    frontal = np.array(frontal, dtype=np.float64)
    read = []
    for k, (limb, measured) in enumerate(zip(LIMBS, presence.readings, strict=True)):
        if measured is not None:
            valgus[k], severity[k], _, frontal[k] = measured
            read.append(limb)
    return valgus, severity, frontal, read
