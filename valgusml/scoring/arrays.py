"""What every scorer returns (`ScoreArrays`) and what the labels look like as arrays (`LabelArrays`).

Both carry a limb axis of size 2 in the order of `valgusml.labels.LIMBS` (left, right), so metrics can pool
limbs or report them one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from valgusml.errors import InputError
from valgusml.labels import LIMBS, MECHANISMS, beyond_measurement_error, mechanism_index
from valgusml.sequence import KeypointSequence

N_MECHANISMS = len(MECHANISMS)


@dataclass
class ScoreArrays:
    """Scores for N sequences: `valgus_probability (N, 2)`, `mechanism_probabilities (N, 2, 5)`,
    `severity_deg (N, 2)` (NaN where a scorer does not estimate severity) and, from scorers whose presence call
    rests on a frontal-plane angle, that angle `frontal_fppa_deg (N, 2)` (NaN for a limb with none; None for a
    scorer that reads no angle), so evaluations can score the geometry apart from the call."""

    valgus_probability: np.ndarray
    mechanism_probabilities: np.ndarray
    severity_deg: np.ndarray
    frontal_fppa_deg: np.ndarray | None = None

    def __post_init__(self) -> None:
        p = np.asarray(self.valgus_probability, dtype=np.float64)
        m = np.asarray(self.mechanism_probabilities, dtype=np.float64)
        s = np.asarray(self.severity_deg, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 2:
            raise InputError(f"valgus_probability must have shape (N, 2), got {p.shape}")
        n = len(p)
        if m.shape != (n, 2, N_MECHANISMS):
            raise InputError(f"mechanism_probabilities must have shape {(n, 2, N_MECHANISMS)}, got {m.shape}")
        if s.shape != (n, 2):
            raise InputError(f"severity_deg must have shape {(n, 2)}, got {s.shape}")
        if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise InputError("valgus_probability must be finite and in [0, 1]")
        if not np.isfinite(m).all() or (m < 0).any():
            raise InputError("mechanism_probabilities must be finite and >= 0")
        sums = m.sum(axis=-1, keepdims=True)
        if (sums <= 0).any():
            raise InputError("mechanism_probabilities has a limb whose probabilities are all zero")
        self.valgus_probability = p
        self.mechanism_probabilities = m / sums  # tolerate float drift; every row sums to 1 exactly
        self.severity_deg = s
        if self.frontal_fppa_deg is not None:
            angle = np.asarray(self.frontal_fppa_deg, dtype=np.float64)
            if angle.shape != (n, 2):
                raise InputError(f"frontal_fppa_deg must have shape {(n, 2)}, got {angle.shape}")
            if np.isinf(angle).any():
                raise InputError("frontal_fppa_deg must be finite (NaN for a limb with no angle)")
            self.frontal_fppa_deg = angle

    def __len__(self) -> int:
        return len(self.valgus_probability)

    def take(self, index: np.ndarray | Sequence[int]) -> ScoreArrays:
        index = np.asarray(index)
        return ScoreArrays(
            self.valgus_probability[index], self.mechanism_probabilities[index], self.severity_deg[index],
            None if self.frontal_fppa_deg is None else self.frontal_fppa_deg[index],
        )

    @property
    def mechanism(self) -> np.ndarray:
        """Predicted mechanism index per limb `(N, 2)` (argmax of the probabilities)."""
        return self.mechanism_probabilities.argmax(axis=-1)

    def decide_mechanism(self, threshold: float) -> np.ndarray:
        """The mechanism call per limb `(N, 2)`, by the rule the predictor and the labels follow: `none` (0)
        when the valgus probability is below `threshold`, else the most probable deficit."""
        deficit = 1 + self.mechanism_probabilities[..., 1:].argmax(axis=-1)
        return np.where(self.valgus_probability >= threshold, deficit, 0)

    @staticmethod
    def concatenate(parts: Sequence[ScoreArrays]) -> ScoreArrays:
        return ScoreArrays(
            np.concatenate([p.valgus_probability for p in parts]),
            np.concatenate([p.mechanism_probabilities for p in parts]),
            np.concatenate([p.severity_deg for p in parts]),
            # an angle only where every part reads one: a half-filled column would pass for a scorer's NaNs
            None if any(p.frontal_fppa_deg is None for p in parts)
            else np.concatenate([p.frontal_fppa_deg for p in parts]),
        )

    def to_npz(self, path) -> None:
        angle = {} if self.frontal_fppa_deg is None else {"frontal_fppa_deg": self.frontal_fppa_deg}
        np.savez_compressed(
            path,
            valgus_probability=self.valgus_probability,
            mechanism_probabilities=self.mechanism_probabilities,
            severity_deg=self.severity_deg,
            **angle,
        )


@dataclass
class LabelArrays:
    """Ground truth of N labelled sequences as arrays, plus the grouping used by the athlete bootstrap."""

    valgus: np.ndarray  # (N, 2) int 0/1
    mechanism: np.ndarray  # (N, 2) int index into MECHANISMS; MECHANISM_UNKNOWN (-1) where unknown
    severity_deg: np.ndarray  # (N, 2) float, NaN when unknown
    athlete_id: np.ndarray  # (N,) str
    task: np.ndarray  # (N,) str
    sequence_id: np.ndarray  # (N,) str
    # (N, 2) float: each limb's dynamic FPPA minus the threshold its label was called at (`rule_margin_deg`);
    # NaN where the labels do not say, None for none known
    rule_margin_deg: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.valgus)

    def take(self, index: np.ndarray | Sequence[int]) -> LabelArrays:
        index = np.asarray(index)
        return LabelArrays(
            self.valgus[index],
            self.mechanism[index],
            self.severity_deg[index],
            self.athlete_id[index],
            self.task[index],
            self.sequence_id[index],
            None if self.rule_margin_deg is None else self.rule_margin_deg[index],
        )

    def clear_of_threshold(self) -> np.ndarray:
        """`(N, 2)` bool: limbs whose label the rule calls beyond the angle's measurement error (dynamic FPPA at
        least `FPPA_SEM_DEG` from its threshold; a limb never loaded is clearly none). A call within it is one
        the rule itself would not repeat between sessions. All False where the margins are unknown."""
        if self.rule_margin_deg is None:
            return np.zeros(self.valgus.shape, dtype=bool)
        return beyond_measurement_error(self.rule_margin_deg)

    def clear_share(self) -> float:
        """The share of limbs `clear_of_threshold`; NaN where the margins are unknown."""
        known = self.rule_margin_deg is not None and self.valgus.size > 0
        return float(self.clear_of_threshold().mean()) if known else float("nan")

    @classmethod
    def from_sequences(cls, sequences: Sequence[KeypointSequence]) -> LabelArrays:
        """Labels of every sequence; an unlabelled one is an error naming it (it cannot be scored)."""
        n = len(sequences)
        valgus = np.zeros((n, 2), dtype=np.int64)
        mechanism = np.zeros((n, 2), dtype=np.int64)
        severity = np.full((n, 2), np.nan)
        for i, seq in enumerate(sequences):
            if seq.labels is None:
                raise InputError(f"sequence {seq.id or i!r} (athlete {seq.athlete_id!r}) has no labels to evaluate")
            for k, limb in enumerate(LIMBS):
                label = seq.labels[limb]
                valgus[i, k] = int(bool(label["valgus"]))
                mechanism[i, k] = mechanism_index(label["mechanism"])
                severity[i, k] = float(label.get("severity_deg", np.nan))
        margins = np.array([rule_margin_deg(s) for s in sequences], dtype=np.float64).reshape(n, 2)
        return cls(
            valgus=valgus,
            mechanism=mechanism,
            severity_deg=severity,
            athlete_id=np.asarray([str(s.athlete_id) for s in sequences]),
            task=np.asarray([str(s.task) for s in sequences]),
            sequence_id=np.asarray([str(s.id) for s in sequences]),
            rule_margin_deg=None if np.isnan(margins).all() else margins,
        )


def rule_margin_deg(seq: KeypointSequence) -> np.ndarray:
    """`(2,)` how far each limb's dynamic FPPA lies above (+) or below (-) the threshold its label was called
    at, in degrees, as the labelling recorded it: the generator's `meta["measured"]`, or the presence rule's
    `meta["rule"]` (`valgusml convert --label-by-rule`; sex unknown: the higher threshold, as its labels). A
    limb never loaded is -inf (no phase to call); NaN where the sequence does not say (labels from a CSV)."""
    meta = seq.meta or {}
    out = np.full(2, np.nan)
    measured = meta.get("measured")
    if isinstance(measured, dict) and _pair(measured.get("dynamic_fppa_deg")):
        loaded = measured.get("loaded") if _pair(measured.get("loaded")) else [True, True]
        threshold = _number(measured.get("threshold_deg"))
        for k in range(2):
            out[k] = -np.inf if not loaded[k] else _number(measured["dynamic_fppa_deg"][k]) - threshold
    elif isinstance(rule := meta.get("rule"), dict) and all(isinstance(rule.get(limb), dict) for limb in LIMBS):
        sex = meta.get("sex")
        for k, limb in enumerate(LIMBS):
            recorded = rule[limb].get("threshold_deg")
            thresholds = {key: _number(value) for key, value in recorded.items()} if isinstance(recorded, dict) else {}
            threshold = thresholds[sex] if sex in thresholds else max(thresholds.values(), default=np.nan)
            loaded = rule[limb].get("loaded", True)
            out[k] = -np.inf if not loaded else _number(rule[limb].get("dynamic_fppa_deg")) - threshold
    return out


def _pair(value: object) -> bool:
    """A per-limb list as the labelling writes it (left, right); anything else is read as not recorded."""
    return isinstance(value, (list, tuple)) and len(value) == 2


def _number(value: object) -> float:
    """`value` as a float; NaN for None or anything that is not a number (a record that does not say)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def athlete_weights(athlete_id: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """`(n_boot, N)` weights: how many times each sequence's athlete was drawn in each replicate (the athlete
    bootstrap of the evaluation's CIs and of the mechanism offsets' replicates)."""
    athletes, codes = np.unique(np.asarray(athlete_id), return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(athletes), size=(n_boot, len(athletes)))
    counts = np.zeros((n_boot, len(athletes)))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts[:, codes]
