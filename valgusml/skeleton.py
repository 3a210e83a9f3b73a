"""Skeleton registry: joint names, bones, left/right pairs, and the mapping of every layout onto `canonical`.

Joint names are snake_case with the subject's side first (`left_knee` is the subject's own left knee).
The canonical skeleton keeps what knee valgus needs: head and neck, the arms (for trunk and balance),
hips, knees, ankles, heels and big/small toes.

Derived points, documented because users will meet them:
- `neck` is the midpoint of the shoulders where a layout has no neck (mediapipe33, coco17, coco23).
- The mid-hip (pelvis centre) is never stored; `mid_hip(keypoints)` computes it from the two hips. body25's
  and halpe26's own mid-hip joints are therefore not mapped.
- mediapipe33's `foot_index` is its big-toe tip; it has no small toe, so `*_small_toe` is missing (NaN,
  confidence 0). coco17 and h36m17 have no feet at all: heels and toes are missing.
- h36m17 (Human3.6M's 17 joints, as 3D lifters write them): its thorax is the canonical `neck`; its pelvis is
  named `mid_hip` and its spine and head top are not mapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

import numpy as np

from valgusml.errors import InputError

# A canonical joint comes from one source joint, from the mean of several (a derived point), or is missing.
Source = str | tuple[str, ...] | None


@dataclass(frozen=True)
class Skeleton:
    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[str, str], ...]
    to_canonical: Mapping[str, Source] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = {j for bone in self.bones for j in bone} - set(self.joints)
        if unknown:
            raise ValueError(f"skeleton {self.name}: bones name unknown joints {sorted(unknown)}")

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise InputError(f"skeleton {self.name!r} has no joint {joint!r}") from None

    @property
    def flip_index(self) -> np.ndarray:
        """For each joint, the index of its mirror joint (left<->right); unsided joints map to themselves."""
        out = []
        for joint in self.joints:
            if joint.startswith("left_"):
                mirror = "right_" + joint[5:]
            elif joint.startswith("right_"):
                mirror = "left_" + joint[6:]
            else:
                mirror = joint
            out.append(self.joints.index(mirror) if mirror in self.joints else self.joints.index(joint))
        return np.asarray(out, dtype=np.int64)

    @property
    def left_right_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (j, "right_" + j[5:]) for j in self.joints if j.startswith("left_") and "right_" + j[5:] in self.joints
        )


def _sided(*parts: str) -> tuple[str, ...]:
    return tuple(f"{side}_{p}" for p in parts for side in ("left", "right"))


CANONICAL_JOINTS: tuple[str, ...] = (
    "nose",
    "neck",
    *_sided("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "heel", "big_toe", "small_toe"),
)

# Parent of each canonical joint; `neck` is the root. Used for the bone stream and the ST-GCN graph.
CANONICAL_PARENTS: Mapping[str, str | None] = MappingProxyType(
    {
        "nose": "neck",
        "neck": None,
        **{f"{s}_shoulder": "neck" for s in ("left", "right")},
        **{f"{s}_elbow": f"{s}_shoulder" for s in ("left", "right")},
        **{f"{s}_wrist": f"{s}_elbow" for s in ("left", "right")},
        **{f"{s}_hip": "neck" for s in ("left", "right")},
        **{f"{s}_knee": f"{s}_hip" for s in ("left", "right")},
        **{f"{s}_ankle": f"{s}_knee" for s in ("left", "right")},
        **{f"{s}_heel": f"{s}_ankle" for s in ("left", "right")},
        **{f"{s}_big_toe": f"{s}_ankle" for s in ("left", "right")},
        **{f"{s}_small_toe": f"{s}_ankle" for s in ("left", "right")},
    }
)

_CANONICAL_BONES = tuple((p, j) for j, p in CANONICAL_PARENTS.items() if p is not None) + (
    ("left_hip", "right_hip"),
    ("left_shoulder", "right_shoulder"),
    ("left_heel", "left_big_toe"),
    ("right_heel", "right_big_toe"),
)

_LIMB_BONES = tuple(
    (f"{s}_{a}", f"{s}_{b}")
    for s in ("left", "right")
    for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))
)

_FOOT_BONES = tuple((f"{s}_ankle", f"{s}_{f}") for s in ("left", "right") for f in ("heel", "big_toe", "small_toe"))

_COCO17_JOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    *_sided("shoulder", "elbow", "wrist", "hip", "knee", "ankle"),
)
# COCO-WholeBody's body and feet, its first 23 points (RTMW, DWPose, RTMPose-WholeBody); its face and hands follow.
_COCO23_JOINTS = _COCO17_JOINTS + (
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)
_HALPE26_JOINTS = _COCO17_JOINTS + (
    "head",
    "neck",
    "mid_hip",
    "left_big_toe",
    "right_big_toe",
    "left_small_toe",
    "right_small_toe",
    "left_heel",
    "right_heel",
)
_BODY25_JOINTS = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "mid_hip",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)
# OpenPose's older COCO output (18 points): body25 without mid-hip and feet.
_OPENPOSE18_JOINTS = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
_MEDIAPIPE33_JOINTS = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    *_sided("shoulder", "elbow", "wrist", "pinky", "index", "thumb", "hip", "knee", "ankle", "heel", "foot_index"),
)

# Human3.6M's 17 joints in the order 3D lifters write them (VideoPose3D, MotionBERT, ...): the pelvis (the hips'
# midpoint), legs right then left, spine, thorax (the neck's base, between the shoulders), nose, head top, arms
# left then right. No feet.
_H36M17_JOINTS = (
    "mid_hip",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "nose",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)

_SHOULDER_MID = ("left_shoulder", "right_shoulder")


def _identity_map(joints: tuple[str, ...], **overrides: Source) -> dict[str, Source]:
    mapping: dict[str, Source] = {j: (j if j in joints else None) for j in CANONICAL_JOINTS}
    mapping.update(overrides)
    return mapping


SKELETONS: Mapping[str, Skeleton] = MappingProxyType(
    {
        "canonical": Skeleton("canonical", CANONICAL_JOINTS, _CANONICAL_BONES, _identity_map(CANONICAL_JOINTS)),
        "coco17": Skeleton(
            "coco17",
            _COCO17_JOINTS,
            _LIMB_BONES + (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
            _identity_map(_COCO17_JOINTS, neck=_SHOULDER_MID),
        ),
        "coco23": Skeleton(
            "coco23",
            _COCO23_JOINTS,
            _LIMB_BONES
            + _FOOT_BONES
            + (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
            _identity_map(_COCO23_JOINTS, neck=_SHOULDER_MID),
        ),
        "halpe26": Skeleton(
            "halpe26",
            _HALPE26_JOINTS,
            _LIMB_BONES
            + _FOOT_BONES
            + (("neck", "head"), ("neck", "mid_hip"), ("left_hip", "right_hip")),
            _identity_map(_HALPE26_JOINTS),
        ),
        "body25": Skeleton(
            "body25",
            _BODY25_JOINTS,
            _LIMB_BONES
            + _FOOT_BONES
            + (("neck", "nose"), ("neck", "mid_hip"), ("mid_hip", "left_hip"), ("mid_hip", "right_hip")),
            _identity_map(_BODY25_JOINTS),
        ),
        "openpose18": Skeleton(
            "openpose18",
            _OPENPOSE18_JOINTS,
            _LIMB_BONES + (("neck", "nose"), ("neck", "left_hip"), ("neck", "right_hip")),
            _identity_map(_OPENPOSE18_JOINTS),
        ),
        "h36m17": Skeleton(
            "h36m17",
            _H36M17_JOINTS,
            _LIMB_BONES
            + (("mid_hip", "left_hip"), ("mid_hip", "right_hip"), ("mid_hip", "spine"), ("spine", "thorax"),
               ("thorax", "nose"), ("nose", "head"), ("thorax", "left_shoulder"), ("thorax", "right_shoulder")),
            _identity_map(_H36M17_JOINTS, neck="thorax"),
        ),
        "mediapipe33": Skeleton(
            "mediapipe33",
            _MEDIAPIPE33_JOINTS,
            _LIMB_BONES
            + tuple((f"{s}_ankle", f"{s}_{f}") for s in ("left", "right") for f in ("heel", "foot_index"))
            + (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
            _identity_map(
                _MEDIAPIPE33_JOINTS,
                neck=_SHOULDER_MID,
                left_big_toe="left_foot_index",
                right_big_toe="right_foot_index",
            ),
        ),
    }
)

CANONICAL = SKELETONS["canonical"]

# Whole-body layouts by their number of points: what they are, and the layout of their leading body and feet.
WHOLE_BODY_LAYOUTS: Mapping[int, tuple[str, str]] = MappingProxyType({
    133: ("COCO-WholeBody (RTMW, DWPose)", "coco23"),
    136: ("Halpe-136 (AlphaPose)", "halpe26"),
})


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown skeleton {name!r}; supported: {sorted(SKELETONS)}") from None


def missing_points(keypoints: np.ndarray) -> np.ndarray:
    """`(..., J)` bool: points of `(..., J, C)` keypoints with a NaN coordinate. One comparison per coordinate
    instead of `np.isnan(kp).any(axis=-1)`, whose reduction over a last axis of 2 or 3 costs ~10x more."""
    missing = np.isnan(keypoints[..., 0])
    for c in range(1, keypoints.shape[-1]):
        missing |= np.isnan(keypoints[..., c])
    return missing


@dataclass(frozen=True)
class _MappingPlan:
    """How one layout maps onto the canonical skeleton: `targets` (canonical joints) taken from single
    `sources` joints, `derived` targets as means of several; `complete` when every canonical joint is a
    single source joint (then one gather builds the whole output)."""

    targets: np.ndarray
    sources: np.ndarray
    derived: tuple[tuple[int, tuple[int, ...]], ...]
    complete: bool


@cache
def _mapping_plan(skeleton_name: str) -> _MappingPlan:
    skeleton = get_skeleton(skeleton_name)
    targets, sources, derived = [], [], []
    for k, joint in enumerate(CANONICAL_JOINTS):
        src = skeleton.to_canonical.get(joint)
        if src is None:
            continue
        if isinstance(src, str):
            targets.append(k)
            sources.append(skeleton.index(src))
        else:
            derived.append((k, tuple(skeleton.index(s) for s in src)))
    complete = not derived and targets == list(range(len(CANONICAL_JOINTS)))
    return _MappingPlan(
        np.asarray(targets, dtype=np.int64), np.asarray(sources, dtype=np.int64), tuple(derived), complete
    )


def map_to_canonical(keypoints: np.ndarray, confidence: np.ndarray, skeleton: str) -> tuple[np.ndarray, np.ndarray]:
    """Map `(T, J, C)` keypoints and `(T, J)` confidence of `skeleton` onto the canonical layout.

    Missing joints come out NaN with confidence 0; a derived point is the mean of its sources and has the
    lowest confidence among them (missing if any source is missing).
    """
    plan = _mapping_plan(skeleton)
    n_frames, _, dims = keypoints.shape
    if plan.complete:
        # Every canonical joint exists as such (halpe26, body25): one gather, no NaN-filled output to write into.
        out = np.take(keypoints, plan.sources, axis=1).astype(np.float32, copy=False)
        conf = np.take(confidence, plan.sources, axis=1).astype(np.float32, copy=False)
    else:
        out = np.full((n_frames, len(CANONICAL_JOINTS), dims), np.nan, dtype=np.float32)
        conf = np.zeros((n_frames, len(CANONICAL_JOINTS)), dtype=np.float32)
        # One gather for the joints that exist as such; a per-joint loop only for the few derived points.
        out[:, plan.targets] = keypoints[:, plan.sources]
        conf[:, plan.targets] = confidence[:, plan.sources]
        for k, idx in plan.derived:
            out[:, k] = keypoints[:, list(idx)].mean(axis=1)
            conf[:, k] = confidence[:, list(idx)].min(axis=1)
    conf[missing_points(out)] = 0.0
    return out, conf


def canonical_index(joint: str) -> int:
    return CANONICAL.index(joint)


def mid_hip(keypoints: np.ndarray) -> np.ndarray:
    """Pelvis centre of canonical keypoints `(..., J, C)` as the midpoint of the two hips."""
    return 0.5 * (keypoints[..., canonical_index("left_hip"), :] + keypoints[..., canonical_index("right_hip"), :])
