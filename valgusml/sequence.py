"""`KeypointSequence`: one recording of one person, validated on construction."""

from __future__ import annotations

import copy
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

import numpy as np

from valgusml.errors import InputError
from valgusml.labels import validate_labels
from valgusml.limits import frame_rate
from valgusml.skeleton import SKELETONS, WHOLE_BODY_LAYOUTS, get_skeleton, map_to_canonical, missing_points

MIN_VALID_FRAMES = 2
# Proper rotations (determinant +1, so left and right never swap) that turn 3D keypoints whose up direction is
# the named axis into the +z up that 3D sequences use: `keypoints @ UP_AXIS_ROTATIONS[axis].T`.
UP_AXIS_ROTATIONS: dict[str, np.ndarray] = {
    "+z": np.eye(3),
    "-z": np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]]),
    "+y": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
    "-y": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "+x": np.array([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]]),
    "-x": np.array([[0.0, 1, 0], [0, 0, -1], [-1, 0, 0]]),
}


def _shape_hint(shape: tuple[int, ...], n_joints: int) -> str:
    """How keypoints of a refused `shape` most likely become `(T, J, 2|3)` for a skeleton of `n_joints`."""
    if len(shape) == 4 and shape[0] == 1:
        return "; one recording per call: drop the leading axis (keypoints[0]), or use predict_batch for several"
    if len(shape) == 2 and shape[1] in (2 * n_joints, 3 * n_joints):
        return f"; flat rows of x, y[, z] per joint? reshape to (T, {n_joints}, {shape[1] // n_joints})"
    if len(shape) == 3 and shape[0] == n_joints and shape[1] != n_joints and shape[2] in (2, 3):
        return "; joints first, (J, T, C)? pass keypoints.transpose(1, 0, 2)"
    if len(shape) == 3 and shape[0] in (2, 3) and shape[1] != n_joints:
        return "; coordinates first, (C, T, J)? pass keypoints.transpose(1, 2, 0)"
    if len(shape) == 3 and shape[2] in (2, 3):
        return _layout_hint(shape[1])
    return ""


def _layout_hint(n_joints: int) -> str:
    """The layouts keypoints of `n_joints` most likely are, and how to pass them."""
    if n_joints in WHOLE_BODY_LAYOUTS:
        name, body = WHOLE_BODY_LAYOUTS[n_joints]
        return f"; {name}? its body and feet come first: pass keypoints[:, :{SKELETONS[body].n_joints}] with skeleton={body!r}"
    fits = sorted(name for name, skel in SKELETONS.items() if skel.n_joints == n_joints)
    return f"; {' or '.join(f'skeleton={name!r}' for name in fits)} ha{'ve' if len(fits) > 1 else 's'} {n_joints}" if fits else ""


def _confidence_hint(conf: np.ndarray, refused: float) -> str:
    """What out-of-range confidences most likely are (`refused`: the value the error names), for the error that
    refuses them."""
    if np.isnan(refused):
        return "; give 0 for a joint not detected"
    finite = conf[np.isfinite(conf)]
    if finite.size and np.isin(finite, (0.0, 1.0, 2.0)).all():
        return "; COCO's visibility flags (0 unlabelled, 1 hidden, 2 visible)? pass (v == 2) or v / 2"
    if finite.size and finite.min() >= 0 and finite.max() <= 100:
        return "; a percentage? divide by 100"
    return ""


@dataclass
class KeypointSequence:
    """Keypoints `(T, J, 2|3)` float32 in a named skeleton layout, with per-joint confidence `(T, J)`.

    2D arrays are image coordinates (y down); 3D arrays are world metres with +z up and the floor at z=0 once
    imported. Missing points are NaN with confidence 0: validation enforces that the two agree.
    """

    keypoints: np.ndarray
    skeleton: str
    fps: float
    confidence: np.ndarray | None = None
    id: str = ""
    athlete_id: str = ""
    task: str = ""
    source: str = ""
    labels: dict[str, dict[str, Any]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    min_valid_frames: int = field(default=MIN_VALID_FRAMES, repr=False)

    def __post_init__(self) -> None:
        skel = get_skeleton(self.skeleton)
        what = f"sequence {self.id!r}: " if self.id else ""
        try:
            kp = np.asarray(self.keypoints)
        except Exception as exc:  # ragged lists and other non-arrays
            raise InputError(f"{what}keypoints are not an array: {exc}") from None
        if kp.dtype == object or not (np.issubdtype(kp.dtype, np.number) or kp.dtype == bool):
            raise InputError(f"{what}keypoints must be numeric, got dtype {kp.dtype}")
        if np.iscomplexobj(kp):
            raise InputError(f"{what}keypoints must be real numbers, got {kp.dtype}")
        if kp.ndim != 3:
            raise InputError(f"{what}keypoints must have shape (T, J, 2|3), got rank {kp.ndim} shape {kp.shape}"
                             f"{_shape_hint(kp.shape, skel.n_joints)}")
        n_frames, n_joints, dims = kp.shape
        if dims not in (2, 3):
            raise InputError(f"{what}keypoints last axis must be 2 or 3 coordinates, got {dims}"
                             f"{_shape_hint(kp.shape, skel.n_joints)}")
        if n_joints != skel.n_joints:
            raise InputError(
                f"{what}skeleton {skel.name!r} has {skel.n_joints} joints but keypoints have {n_joints}"
                f"{_shape_hint(kp.shape, skel.n_joints)}"
            )
        with np.errstate(all="ignore"):
            kp = kp.astype(np.float32, copy=True)
        if np.isinf(kp).any():
            t, j, _ = np.argwhere(np.isinf(kp))[0]
            raise InputError(
                f"{what}keypoint of joint {skel.joints[j]!r} at frame {t} is infinite (or overflows float32)"
            )
        fps = frame_rate(self.fps, what)
        missing = missing_points(kp)  # no infinities are left, so a point is missing exactly where it is NaN
        if self.confidence is None:
            conf = (~missing).astype(np.float32)
        else:
            try:  # iscomplexobj builds an array too: a ragged list fails there, not in asarray
                complex_values = np.iscomplexobj(self.confidence)
                conf = None if complex_values else np.asarray(self.confidence, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{what}confidence is not a numeric array: {exc}") from None
            if conf is None:
                raise InputError(f"{what}confidence must be real numbers")
            if conf.shape != (n_frames, n_joints):
                squeeze = " (drop its last axis)" if conf.shape == (n_frames, n_joints, 1) else ""
                raise InputError(
                    f"{what}confidence must have shape (T, J) = {(n_frames, n_joints)}, got {conf.shape}{squeeze}"
                )
            bad = ~np.isfinite(conf) | (conf < 0) | (conf > 1)
            if bad.any():
                t, j = np.argwhere(bad)[0]
                raise InputError(
                    f"{what}confidence must be in [0, 1]; frame {t} joint {skel.joints[j]!r} has {conf[t, j]}"
                    f"{_confidence_hint(conf, float(conf[t, j]))}"
                )
            conf = conf.copy()
        conf[missing] = 0.0
        kp[missing] = np.nan
        n_valid = int((conf > 0).any(axis=1).sum())
        if n_valid == 0:
            raise InputError(f"{what}no frame has any finite keypoint ({n_frames} frames, all NaN or confidence 0)")
        if n_valid < self.min_valid_frames:
            raise InputError(
                f"{what}only {n_valid} frame(s) with valid keypoints; at least {self.min_valid_frames} needed"
            )
        self.keypoints = kp
        self.confidence = conf
        self.fps = fps
        self.labels = validate_labels(self.labels)

    @classmethod
    def trusted(cls, **values: Any) -> KeypointSequence:
        """Construct without validation, for producers whose output already holds every invariant that
        `__post_init__` enforces (float32 arrays, NaN points with confidence 0, labels as `validate_labels`
        returns them). The generator uses it: re-checking its own arrays cost ~15% of its time. Unknown or
        missing fields still raise `TypeError`."""
        out = cls.__new__(cls)
        for f in fields(cls):
            if f.name in values:
                value = values.pop(f.name)
            elif f.default is not MISSING:
                value = f.default
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"KeypointSequence.trusted() missing field {f.name!r}")
            out.__dict__[f.name] = value
        if values:
            raise TypeError(f"KeypointSequence.trusted() got unknown fields {sorted(values)}")
        return out

    # -- shape ------------------------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def n_joints(self) -> int:
        return int(self.keypoints.shape[1])

    @property
    def dims(self) -> int:
        return int(self.keypoints.shape[2])

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    @property
    def joints(self) -> tuple[str, ...]:
        return get_skeleton(self.skeleton).joints

    def joint(self, name: str) -> np.ndarray:
        """`(T, C)` trajectory of one joint by name."""
        return self.keypoints[:, get_skeleton(self.skeleton).index(name)]

    def seen_keypoints(self) -> np.ndarray:
        """The keypoints with every point of confidence 0 set to NaN: what the measures and the rule read."""
        return np.where((self.confidence > 0)[..., None], self.keypoints, np.nan)

    def meta_value(self, key: str) -> Any:
        """`key` from `meta`, at the top level or one level down (`meta["athlete"]["sex"]`); None if absent."""
        if key in self.meta:
            return self.meta[key]
        for value in self.meta.values():
            if isinstance(value, dict) and key in value:
                return value[key]
        return None

    # -- conversions -------------------------------------------------------------------------------------
    def to_canonical(self) -> KeypointSequence:
        """The same motion on the canonical skeleton (missing joints NaN with confidence 0)."""
        if self.skeleton == "canonical":
            return self
        kp, conf = map_to_canonical(self.keypoints, self.confidence, self.skeleton)
        # Valid by construction (a mapping of validated arrays): skip re-validation, which the predictor
        # would otherwise pay on every call.
        out = copy.copy(self)
        out.keypoints, out.confidence, out.skeleton, out.meta = kp, conf, "canonical", dict(self.meta)
        return out

    def replace(self, **changes: Any) -> KeypointSequence:
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (no arrays)."""
        present = (self.confidence > 0).mean(axis=0)
        return {
            "id": self.id,
            "athlete_id": self.athlete_id,
            "task": self.task,
            "skeleton": self.skeleton,
            "dims": self.dims,
            "fps": self.fps,
            "n_frames": self.n_frames,
            "duration_s": round(self.duration_s, 3),
            "source": self.source,
            "joints_present": round(float((present > 0).mean()), 3),
            "labels": self.labels,
        }
