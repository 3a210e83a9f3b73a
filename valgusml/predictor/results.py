"""What a prediction is: `Prediction` (one recording) and `LimbPrediction` (one limb), and the rule that turns
the network's two heads into them.

Mechanism probabilities: the network has a valgus head (P(valgus)) and a mechanism head (a distribution over
MECHANISMS). The reported distribution is
    P(none) = 1 - P(valgus),   P(m) = P(valgus) * q(m) / sum_k q(k)   for m in DEFICITS,
where q is the mechanism head's output without its `none` entry, each deficit's weighed by exp(its offset) when
the folder holds `mechanism_offsets` (chosen on validation athletes at export, as the threshold is:
`valgusml.scoring.mechanism_offsets`; zero without them). It sums to 1, its `none` entry agrees with the
valgus probability, and the ranking of the deficits is the (weighed) mechanism head's. A limb's `mechanism` is
`none` when its valgus probability is below the stored decision threshold, and otherwise its most probable
deficit (labels use the same rule: `none` exactly when there is no valgus).

`Prediction.measures` (`valgusml.features.measures` of the recording) is computed on first access: it costs
more than the network call, and a caller that only reads probabilities should not pay for it. It reads the
canonical-skeleton sequence that `predict` already mapped, so the mapping is done once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from valgusml.errors import InputError
from valgusml.json_safe import to_jsonable
from valgusml.labels import DEFICITS, LIMBS, MECHANISMS
from valgusml.sequence import KeypointSequence


@dataclass(frozen=True)
class LimbPrediction:
    """One limb's answer. Fields read as attributes (`limb.valgus_probability`) or keys (`limb["mechanism"]`)."""

    valgus_probability: float
    mechanism: str
    mechanism_probabilities: dict[str, float]
    valgus: bool
    severity_deg: float
    # The knee's dynamic frontal-plane angle (peak under load minus standing, deg) the presence call rests on:
    # lifted from 2D by the network, measured on 3D input; None when the model reports none or sees no load.
    frontal_fppa_deg: float | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valgus_probability": self.valgus_probability,
            "valgus": self.valgus,
            "mechanism": self.mechanism,
            "mechanism_probabilities": dict(self.mechanism_probabilities),
            "severity_deg": self.severity_deg,
            "frontal_fppa_deg": self.frontal_fppa_deg,
        }


class _LazyMeasures:
    """`valgusml.features.measures(seq)`, computed on first use and kept (thread-safe).

    The summary measures cost more than the network call itself; callers that only read probabilities do not
    pay for them, and `Prediction.measures` / `to_dict()` compute them once.
    """

    __slots__ = ("_lock", "_sequence", "_value")

    def __init__(self, sequence: KeypointSequence | None = None, value: dict[str, Any] | None = None) -> None:
        self._sequence, self._value, self._lock = sequence, value, threading.Lock()

    def get(self) -> dict[str, Any]:
        with self._lock:
            if self._value is None:
                from valgusml.features import measures

                self._value = to_jsonable(measures(self._sequence)) if self._sequence is not None else {}
                self._sequence = None
            return self._value


@dataclass(frozen=True)
class Prediction:
    """The answer for one recording; the top-level fields are those of the more affected limb (`limb`).

    `measures` (the biomechanical summary of the recording, `valgusml.features.measures`) is computed on first
    access; everything else is computed by `predict`.
    """

    valgus_probability: float
    mechanism: str
    mechanism_probabilities: dict[str, float]
    valgus: bool
    severity_deg: float
    limb: str
    limbs: dict[str, LimbPrediction]
    warnings: list[str]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    decision_threshold: float = 0.5
    view: dict[str, Any] = field(default_factory=dict)
    _measures: _LazyMeasures = field(default_factory=_LazyMeasures, repr=False, compare=False)

    @property
    def measures(self) -> dict[str, Any]:
        return self._measures.get()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (NaN becomes None), ready for `json.dumps`."""
        return to_jsonable(
            {
                "valgus_probability": self.valgus_probability,
                "valgus": self.valgus,
                "mechanism": self.mechanism,
                "mechanism_probabilities": self.mechanism_probabilities,
                "severity_deg": self.severity_deg,
                "limb": self.limb,
                "decision_threshold": self.decision_threshold,
                "limbs": {name: limb.to_dict() for name, limb in self.limbs.items()},
                "measures": self.measures,
                "warnings": list(self.warnings),
                "view": dict(self.view),
                "timeline": self.timeline,
            }
        )


def _finite_or_none(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def combine_mechanisms(valgus_probability: np.ndarray, mechanism_probabilities: np.ndarray) -> np.ndarray:
    """`(..., 5)` distribution over MECHANISMS consistent with `(...)` valgus probabilities (see module doc)."""
    p = np.clip(np.asarray(valgus_probability, dtype=np.float64), 0.0, 1.0)
    deficits = np.clip(np.asarray(mechanism_probabilities, dtype=np.float64)[..., 1:], 0.0, None)
    total = deficits.sum(axis=-1, keepdims=True)
    # A head that puts all its mass on `none` says nothing about which deficit: spread evenly.
    conditional = np.where(total > 1e-12, deficits / np.maximum(total, 1e-12), 1.0 / len(DEFICITS))
    return np.concatenate([(1.0 - p)[..., None], p[..., None] * conditional], axis=-1)


def offsets_array(offsets: Mapping[str, float] | np.ndarray | None) -> np.ndarray:
    """`(4,)` offsets in `DEFICITS` order from a `{deficit: offset}` mapping (absent deficits 0) or an array;
    zeros for None."""
    if offsets is None:
        return np.zeros(len(DEFICITS))
    if isinstance(offsets, Mapping):
        unknown = sorted(set(offsets) - set(DEFICITS))
        if unknown:
            raise InputError(f"mechanism offsets name {unknown}, which are not deficits {DEFICITS}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) for v in offsets.values()):
            raise InputError(f"mechanism offsets must map deficits to numbers, got {dict(offsets)!r:.80}")
        values = np.array([float(offsets.get(name, 0.0)) for name in DEFICITS])
    else:
        values = np.asarray(offsets, dtype=np.float64)
    if values.shape != (len(DEFICITS),) or not np.isfinite(values).all():
        raise InputError(f"mechanism offsets must be {len(DEFICITS)} finite numbers, one per deficit; got {values}")
    return values


def weigh_deficits(mechanism_probabilities: np.ndarray, offsets: Mapping[str, float] | np.ndarray | None) -> np.ndarray:
    """`(..., 5)` probabilities over `MECHANISMS` with each deficit's scaled by exp(offset) and the deficits
    renormalised to their previous total; `none` is left as it is."""
    probabilities = np.asarray(mechanism_probabilities, dtype=np.float64)
    values = offsets_array(offsets)
    if not values.any():
        return probabilities
    deficits = probabilities[..., 1:]
    weighted = deficits * np.exp(values)
    total, new_total = deficits.sum(axis=-1, keepdims=True), weighted.sum(axis=-1, keepdims=True)
    scaled = np.where(new_total > 0, weighted * total / np.maximum(new_total, 1e-300), deficits)
    return np.concatenate([probabilities[..., :1], scaled], axis=-1)


def limb_arrays(predictions: Sequence[Prediction]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`(valgus_probability (N, 2), mechanism_probabilities (N, 2, 5), severity_deg (N, 2), frontal_fppa_deg
    (N, 2))` of predictions, limbs in `LIMBS` order (the angle NaN where a limb has none): what scorers and
    threshold choices read of a batch, in `ScoreArrays`' order."""
    limbs = [[p.limbs[limb] for limb in LIMBS] for p in predictions]
    n = len(limbs)  # shaped even when there are none
    return (np.array([[limb.valgus_probability for limb in row] for row in limbs], dtype=np.float64).reshape(n, 2),
            np.array([[[limb.mechanism_probabilities[m] for m in MECHANISMS] for limb in row] for row in limbs],
                     dtype=np.float64).reshape(n, 2, len(MECHANISMS)),
            np.array([[limb.severity_deg for limb in row] for row in limbs], dtype=np.float64).reshape(n, 2),
            np.array([[np.nan if limb.frontal_fppa_deg is None else limb.frontal_fppa_deg for limb in row]
                      for row in limbs], dtype=np.float64).reshape(n, 2))


def mechanism_name(valgus_probability: float, combined: np.ndarray, decision_threshold: float) -> str:
    """`none` below the threshold, else the most probable deficit of a combined distribution."""
    if valgus_probability < decision_threshold:
        return "none"
    return DEFICITS[int(np.argmax(combined[1:]))]


def make_prediction(
    valgus: np.ndarray,
    mechanism: np.ndarray,
    severity: np.ndarray,
    *,
    decision_threshold: float,
    canonical: KeypointSequence,
    warnings: Sequence[str],
    timeline: list[dict[str, Any]],
    view: dict[str, Any] | None = None,
    frontal_fppa_deg: np.ndarray | None = None,
    mechanism_offsets: np.ndarray | None = None,
) -> Prediction:
    """One recording's `Prediction` from its aggregated outputs: `(2,)` valgus, `(2, 5)` mechanism head,
    `(2,)` severity and (optional, NaN = none) frontal angle, per limb. `canonical` is the recording on the
    canonical skeleton (for `measures`); `mechanism_offsets` (`(4,)`, `DEFICITS` order) weigh the deficits."""
    combined = weigh_deficits(combine_mechanisms(valgus, mechanism), mechanism_offsets)
    limbs = {}
    for k, limb in enumerate(LIMBS):
        p = float(valgus[k])
        limbs[limb] = LimbPrediction(
            valgus_probability=p,
            mechanism=mechanism_name(p, combined[k], decision_threshold),
            mechanism_probabilities={m: float(combined[k, j]) for j, m in enumerate(MECHANISMS)},
            valgus=p >= decision_threshold,
            severity_deg=float(severity[k]),
            frontal_fppa_deg=_finite_or_none(None if frontal_fppa_deg is None else frontal_fppa_deg[k]),
        )
    worst = max(LIMBS, key=lambda name: limbs[name].valgus_probability)
    top = limbs[worst]
    return Prediction(
        valgus_probability=top.valgus_probability,
        mechanism=top.mechanism,
        mechanism_probabilities=dict(top.mechanism_probabilities),
        valgus=top.valgus,
        severity_deg=top.severity_deg,
        limb=worst,
        limbs=limbs,
        warnings=list(dict.fromkeys(warnings)),
        timeline=timeline,
        decision_threshold=decision_threshold,
        view=dict(view or {}),
        _measures=_LazyMeasures(canonical),
    )
