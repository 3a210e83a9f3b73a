"""Batch augmentations as tensor operations: a whole batch at once, on whatever device the batch lives on.

Per-sample Python in DataLoader workers cannot feed a GPU at hundreds of thousands of sequences per second, so
each augmentation here draws its random parameters per sample as tensors and applies them with broadcasting
and gathers. A batch is the dict the data module yields:

    joints (B, T, 20, 3)   front-view x, y, confidence (canonical joints, `valgusml.preprocess`)
    measures (B, T, F)     frame measures (`valgusml.features.FRAME_MEASURES`)
    mask (B, T)            1 = real frame
    valgus (B, 2), mechanism (B, 2), severity_deg (B, 2)   targets, limb axis (left, right)
    frame_targets (B, T, C)  per-frame 3D targets (`valgusml.data.frame_targets`): they follow the time warp
                           and the mirror; camera changes (rotation, yaw, jitter) leave them as they are,
                           which is what teaches a lifter that the 3D angle does not depend on the camera

Other keys pass through untouched. Every augmentation is a small `nn.Module` with a probability `p` (the
share of samples it touches) and is a no-op in `eval()` mode. `BatchAugment` chains them; Hydra config for the
training side (e.g. `configs/data/augment/default.yaml`, or inline under the data module); these are the
`DEFAULTS`, so any key left out takes them:

    _target_: valgusml.training.augment.BatchAugment
    mirror: {p: 0.5}
    rotate_scale: {p: 0.5, max_deg: 8.0, scale: [0.85, 1.2]}
    yaw: {p: 0.5, max_deg: 35.0}
    jitter: {p: 0.5, sigma: 0.01, knots: 8}
    time_warp: {p: 0.5, speed: [0.8, 1.25], min_keep: 0.75}
    joint_dropout: {p: 0.3, joint_rate: 0.05, point_rate: 0.02}
    upper_body_dropout: null   # off unless given: {p: 0.2}

Set a key to `null` to switch that augmentation off (`data.augment.yaw=null`). Call `.train()` / `.eval()` on
it like any module (the LightningModule should own it as a submodule so it follows `model.train()` and moves
to the GPU with the model); apply it in `on_after_batch_transfer` so it runs on the training device. Geometric augmentations change the joints only: the
frame measures were computed in numpy before batching and are not recomputed, so rotation/yaw angles are kept
small enough that the measures stay plausible (they are scale-free, and FPPA is unchanged by in-plane
rotation). The mirror does transform the measures, exactly, with `FRAME_MEASURE_MIRROR`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from valgusml.models.net import InputMirror
from valgusml.skeleton import canonical_index

Batch = dict[str, Any]
LIMB_TARGETS = ("valgus", "mechanism", "severity_deg", "teacher_valgus", "teacher_mechanism")
FRAME_TARGETS = "frame_targets"
_LEFT_HIP, _RIGHT_HIP = canonical_index("left_hip"), canonical_index("right_hip")
_SIZE_PAIRS = [
    (canonical_index(f"{s}_{a}"), canonical_index(f"{s}_{b}"))
    for s in ("left", "right")
    for a, b in (("hip", "knee"), ("knee", "ankle"))
]


def _uniform(n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, device=device)


def to_planar(batch: Batch) -> Batch:
    """Copy of `batch` with `joints (B, T, J, 3)` split into contiguous `x`, `y`, `conf` `(B, T, J)`.

    Working on planar arrays is several times faster than on strided `[..., 0]` views, and because they are
    fresh copies the augmentations may update them in place without touching the caller's tensors.
    """
    out = {k: v for k, v in batch.items() if k != "joints"}
    joints = batch["joints"]
    out["x"], out["y"], out["conf"] = (joints[..., k].contiguous() for k in range(3))
    for key in ("measures", "mask", FRAME_TARGETS, *LIMB_TARGETS):
        if key in out and isinstance(out[key], torch.Tensor):
            out[key] = out[key].clone()
    return out


def from_planar(planar: Batch) -> Batch:
    out = {k: v for k, v in planar.items() if k not in ("x", "y", "conf")}
    out["joints"] = torch.stack([planar["x"], planar["y"], planar["conf"]], dim=-1)
    return out


def pelvis_centre(
    x: torch.Tensor, y: torch.Tensor, conf: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean mid-hip `(B, 1, 1)` x and y over real frames where both hips are seen (origin of rotations,
    yaw and mirror)."""
    w = ((conf[..., _LEFT_HIP] > 0) & (conf[..., _RIGHT_HIP] > 0)).to(x.dtype) * mask
    total = w.sum(1).clamp_min(1e-6)
    cx = (0.5 * (x[..., _LEFT_HIP] + x[..., _RIGHT_HIP]) * w).sum(1) / total
    cy = (0.5 * (y[..., _LEFT_HIP] + y[..., _RIGHT_HIP]) * w).sum(1) / total
    return cx[:, None, None], cy[:, None, None]


def leg_length(x: torch.Tensor, y: torch.Tensor, conf: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean thigh + shank length `(B,)` over seen segments: the unit of jitter noise."""
    a, b = [p[0] for p in _SIZE_PAIRS], [p[1] for p in _SIZE_PAIRS]
    w = ((conf[..., a] > 0) & (conf[..., b] > 0)).to(x.dtype) * mask[..., None]
    length = torch.hypot(x[..., a] - x[..., b], y[..., a] - y[..., b])
    return 2.0 * (length * w).sum((1, 2)) / w.sum((1, 2)).clamp_min(1e-6)


class Augmentation(nn.Module):
    """Base: draws which samples to touch (share `p`), runs `apply` on that sub-batch only and writes it back.

    Subclasses implement `apply(sub) -> dict of changed keys` on a planar sub-batch (`to_planar`). `forward`
    takes and returns the ordinary batch (joints `(B, T, J, 3)`); `BatchAugment` calls `augment_planar` to
    avoid repacking between steps. A no-op in `eval()` mode.
    """

    #: None: pick by device (rows on CPU, blend elsewhere); True / False forces one (tests compare the two).
    select_rows: bool | None = None

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, batch: Batch) -> Batch:
        if not self.training or self.p == 0.0:
            return batch
        return from_planar(self.augment_planar(to_planar(batch)))

    def augment_planar(self, planar: Batch, chosen: torch.Tensor | None = None) -> Batch:
        mask = planar["mask"]
        if chosen is None:
            chosen = torch.rand(mask.shape[0], device=mask.device) < self.p
        select_rows = self.select_rows if self.select_rows is not None else mask.device.type == "cpu"
        if not select_rows:
            # On an accelerator, selecting the chosen rows would need a host sync (`nonzero`) per step; computing
            # every row and blending with `where` keeps the whole pipeline asynchronous.
            sub = {k: v for k, v in planar.items() if isinstance(v, torch.Tensor)}
            for key, value in self.apply(sub).items():
                old = planar[key]
                keep = chosen.reshape(-1, *([1] * (old.dim() - 1)))
                planar[key] = torch.where(keep, value.to(old.dtype), old)
            return planar
        # On CPU, compute only the chosen rows: the work scales with p.
        idx = chosen.nonzero().squeeze(1)
        if idx.numel() == 0:
            return planar
        sub = {k: v.index_select(0, idx) for k, v in planar.items() if isinstance(v, torch.Tensor)}
        for key, value in self.apply(sub).items():
            planar[key][idx] = value.to(planar[key].dtype)
        return planar

    def apply(self, sub: Batch) -> Batch:  # pragma: no cover - abstract
        raise NotImplementedError


class Mirror(Augmentation):
    """Left/right mirror: x → 2·pelvis_x − x, joints swapped with `CANONICAL.flip_index`, measures permuted and
    signed with `FRAME_MEASURE_MIRROR`, and the per-limb targets swapped. An involution."""

    def __init__(self, p: float = 0.5, measure_mirror: Sequence[Sequence[float]] | None = None):
        super().__init__(p)
        inputs = InputMirror(measure_mirror)  # the buffers the network's own mirror mean gathers with
        self.register_buffer("measure_source", inputs.measure_source, persistent=False)
        self.register_buffer("measure_sign", inputs.measure_sign, persistent=False)
        self.register_buffer("flip_index", inputs.joint_source, persistent=False)

        from valgusml.data.frame_targets import FRAME_TARGET_MIRROR, FRAME_TARGET_MIRROR_SIGN

        self.register_buffer("target_mirror", torch.tensor(FRAME_TARGET_MIRROR, dtype=torch.long), persistent=False)
        self.register_buffer("target_sign", torch.tensor(FRAME_TARGET_MIRROR_SIGN), persistent=False)

    def mirror(self, batch: Batch) -> Batch:
        """Mirror every sample of `batch` (deterministic, any mode; `forward` mirrors a random share)."""
        planar = to_planar(batch)
        every = torch.ones(planar["mask"].shape[0], dtype=torch.bool, device=planar["mask"].device)
        return from_planar(self.augment_planar(planar, every))

    def apply(self, sub: Batch) -> Batch:
        cx, _ = pelvis_centre(sub["x"], sub["y"], sub["conf"], sub["mask"])
        flip = self.flip_index
        keep = sub["mask"][..., None]  # padding stays exactly zero
        out = {
            "x": (2.0 * cx - sub["x"].index_select(2, flip)) * keep,
            "y": sub["y"].index_select(2, flip),
            "conf": sub["conf"].index_select(2, flip),
        }
        if "measures" in sub and sub["measures"].shape[-1] == len(self.measure_source):
            out["measures"] = sub["measures"].index_select(2, self.measure_source) * self.measure_sign
        for key in LIMB_TARGETS:
            if key in sub:
                out[key] = sub[key].flip(1)
        if FRAME_TARGETS in sub:
            out[FRAME_TARGETS] = sub[FRAME_TARGETS].index_select(2, self.target_mirror) * self.target_sign
        return out


class RotateScale(Augmentation):
    """In-plane rotation (camera roll, ±`max_deg`) and isotropic scale about the pelvis."""

    def __init__(self, p: float = 0.5, max_deg: float = 8.0, scale: Sequence[float] = (0.85, 1.2)):
        super().__init__(p)
        self.max_rad = math.radians(max_deg)
        self.scale = (float(scale[0]), float(scale[1]))

    def apply(self, sub: Batch) -> Batch:
        x, y = sub["x"], sub["y"]
        n, dev = x.shape[0], x.device
        angle = _uniform(n, -self.max_rad, self.max_rad, dev)
        scale = _uniform(n, *self.scale, dev)
        cos, sin = (torch.cos(angle) * scale)[:, None, None], (torch.sin(angle) * scale)[:, None, None]
        cx, cy = pelvis_centre(x, y, sub["conf"], sub["mask"])
        dx, dy = x - cx, y - cy
        keep = sub["mask"][..., None]  # padding stays exactly zero
        return {"x": (cx + cos * dx - sin * dy) * keep, "y": (cy + sin * dx + cos * dy) * keep}


class CameraYaw(Augmentation):
    """Camera yaw: a camera turned by θ about the vertical sees horizontal distances shortened by cos θ, so x
    is compressed about the pelvis by cos θ, θ uniform in ±`max_deg` per sample."""

    def __init__(self, p: float = 0.5, max_deg: float = 35.0):
        super().__init__(p)
        self.max_rad = math.radians(max_deg)

    def apply(self, sub: Batch) -> Batch:
        x = sub["x"]
        yaw = _uniform(x.shape[0], -self.max_rad, self.max_rad, x.device)
        cx, _ = pelvis_centre(x, sub["y"], sub["conf"], sub["mask"])
        return {"x": (cx + (x - cx) * torch.cos(yaw)[:, None, None]) * sub["mask"][..., None]}


class Jitter(Augmentation):
    """Temporally correlated keypoint noise: Gaussian values on `knots` control points over the window,
    linearly interpolated to every frame, `sigma` × leg length; only on seen joints (confidence > 0)."""

    def __init__(self, p: float = 0.5, sigma: float = 0.01, knots: int = 8):
        super().__init__(p)
        if knots < 2:
            raise ValueError(f"Jitter needs knots >= 2, got {knots}")
        self.sigma, self.knots = float(sigma), int(knots)

    def apply(self, sub: Batch) -> Batch:
        x, y, conf, mask = sub["x"], sub["y"], sub["conf"], sub["mask"]
        n, t, j = x.shape
        control = torch.randn(n, 2 * j, self.knots, device=x.device, dtype=x.dtype)
        noise = nn.functional.interpolate(control, size=t, mode="linear", align_corners=True)  # (n, 2J, T)
        amp = (self.sigma * leg_length(x, y, conf, mask))[:, None, None] * (conf > 0).to(x.dtype)
        return {"x": x + noise[:, :j].transpose(1, 2) * amp, "y": y + noise[:, j:].transpose(1, 2) * amp}


class TimeWarp(Augmentation):
    """Temporal crop and speed change in one resampling.

    Per sample: keep a random stretch of at least `min_keep` of its real frames and play it at a speed in
    `speed` (> 1 faster); output frame t reads source position start + t·speed by linear interpolation
    (confidence: the smaller of the two neighbours, so nothing missing is invented). Frames past the kept
    stretch become padding (mask 0, zeros), so the real frames stay a prefix of the window.
    """

    def __init__(self, p: float = 0.5, speed: Sequence[float] = (0.8, 1.25), min_keep: float = 0.75):
        super().__init__(p)
        self.speed = (float(speed[0]), float(speed[1]))
        if not 0.0 < min_keep <= 1.0:
            raise ValueError(f"TimeWarp min_keep must be in (0, 1], got {min_keep}")
        self.min_keep = float(min_keep)

    def apply(self, sub: Batch) -> Batch:
        mask = sub["mask"]
        n, t = mask.shape
        dev, dt = mask.device, sub["x"].dtype
        length = mask.sum(1)  # real frames (a prefix)
        keep = length * _uniform(n, self.min_keep, 1.0, dev)
        start = (length - keep) * torch.rand(n, device=dev)
        speed = _uniform(n, *self.speed, dev)
        pos = start[:, None] + speed[:, None] * torch.arange(t, device=dev, dtype=dt)[None, :]  # (n, T)
        new_mask = (pos <= (start + keep)[:, None] - 1.0 + 1e-4).to(dt)
        pos = pos.clamp(0.0, float(t - 1))
        i0 = pos.floor().long()
        i1 = (i0 + 1).clamp(max=t - 1)
        w = (pos - i0.to(dt))[..., None]
        keep_frames = new_mask[..., None]

        def at(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return torch.gather(v, 1, idx[..., None].expand(-1, -1, v.shape[2]))

        out = {"mask": new_mask}
        for key in ("x", "y", *(k for k in ("measures", FRAME_TARGETS) if k in sub)):
            a, b = at(sub[key], i0), at(sub[key], i1)
            out[key] = (a + (b - a) * w) * keep_frames
        ca, cb = at(sub["conf"], i0), at(sub["conf"], i1)
        out["conf"] = torch.where(w > 1e-6, torch.minimum(ca, cb), ca) * keep_frames
        return out


class JointDropout(Augmentation):
    """Occlusion: each joint of a chosen sample is lost for the whole window with `joint_rate`, and single
    points with `point_rate` (confidence set to 0, which is what a missing joint looks like)."""

    def __init__(self, p: float = 0.3, joint_rate: float = 0.05, point_rate: float = 0.02):
        super().__init__(p)
        self.joint_rate, self.point_rate = float(joint_rate), float(point_rate)

    def apply(self, sub: Batch) -> Batch:
        conf = sub["conf"]
        n, t, j = conf.shape
        drop = (torch.rand(n, 1, j, device=conf.device) < self.joint_rate) | (
            torch.rand(n, t, j, device=conf.device) < self.point_rate
        )
        return {"conf": conf.masked_fill(drop, 0.0)}


_UPPER_BODY = [canonical_index(j) for j in ("nose", "neck", "left_shoulder", "right_shoulder", "left_elbow",
                                             "right_elbow", "left_wrist", "right_wrist")]
# The frame measures read off the points above the hips: `preprocess` leaves them 0 when those are never seen.
_UPPER_BODY_MEASURES = ("trunk_lean_frontal_deg", "trunk_lean_sagittal_deg")


class UpperBodyDropout(Augmentation):
    """A camera framing the legs: every point above the hips lost for the whole window (confidence 0), and the
    frame measures read off them (the trunk's lean) set to the 0 that `preprocess` gives when they are never
    seen. The networks read the whole body, and read the knee less well without it (docs/experiments.md: a
    camera framing only the legs)."""

    def __init__(self, p: float = 0.2):
        super().__init__(p)
        from valgusml.features import FRAME_MEASURE_INDEX

        self.register_buffer("joint_index", torch.tensor(_UPPER_BODY), persistent=False)
        self.register_buffer("measure_index", torch.tensor([FRAME_MEASURE_INDEX[name] for name in _UPPER_BODY_MEASURES]),
                             persistent=False)

    def apply(self, sub: Batch) -> Batch:
        out = {key: sub[key].index_fill(2, self.joint_index, 0.0) for key in ("x", "y", "conf")}
        out["measures"] = sub["measures"].index_fill(2, self.measure_index, 0.0)
        return out


_ORDER: tuple[tuple[str, type[Augmentation]], ...] = (
    ("time_warp", TimeWarp),
    ("mirror", Mirror),
    ("rotate_scale", RotateScale),
    ("yaw", CameraYaw),
    ("jitter", Jitter),
    ("joint_dropout", JointDropout),
    ("upper_body_dropout", UpperBodyDropout),
)


# The recommended training recipe: what `BatchAugment()` applies when a key is not given; upper-body dropout,
# off unless named, takes its parameters from here.
DEFAULTS: dict[str, dict[str, Any]] = {
    "time_warp": {"p": 0.5, "speed": (0.8, 1.25), "min_keep": 0.75},
    "mirror": {"p": 0.5},
    "rotate_scale": {"p": 0.5, "max_deg": 8.0, "scale": (0.85, 1.2)},
    "yaw": {"p": 0.5, "max_deg": 35.0},
    "jitter": {"p": 0.5, "sigma": 0.01, "knots": 8},
    "joint_dropout": {"p": 0.3, "joint_rate": 0.05, "point_rate": 0.02},
    "upper_body_dropout": {"p": 0.2},
}
Spec = Mapping[str, Any] | Augmentation | str | None


class BatchAugment(nn.Module):
    """The augmentation pipeline: `BatchAugment(...)(batch) -> batch` in training mode, identity in eval.

    Each keyword takes that augmentation's parameters as a dict (missing parameters take `DEFAULTS`), an
    already-built module, `"default"` (the `DEFAULTS` entry, also what an omitted keyword means) or `None` to
    switch it off. Order: time warp, mirror, rotation/scale, yaw, jitter, joint dropout, upper-body dropout.
    """

    def __init__(
        self,
        mirror: Spec = "default",
        rotate_scale: Spec = "default",
        yaw: Spec = "default",
        jitter: Spec = "default",
        time_warp: Spec = "default",
        joint_dropout: Spec = "default",
        upper_body_dropout: Spec = None,
    ):
        super().__init__()
        given = dict(
            mirror=mirror,
            rotate_scale=rotate_scale,
            yaw=yaw,
            jitter=jitter,
            time_warp=time_warp,
            joint_dropout=joint_dropout,
            upper_body_dropout=upper_body_dropout,
        )
        self.steps = nn.ModuleDict()
        for name, cls in _ORDER:
            spec = given[name]
            if spec is None:
                continue
            if isinstance(spec, nn.Module):
                self.steps[name] = spec
            elif spec == "default":
                self.steps[name] = cls(**DEFAULTS[name])
            elif isinstance(spec, Mapping):
                self.steps[name] = cls(**{**DEFAULTS[name], **dict(spec)})
            else:
                raise ValueError(
                    f"BatchAugment {name}: expected a dict of parameters, a module, 'default' or None, "
                    f"got {spec!r}"
                )

    def forward(self, batch: Batch) -> Batch:
        if not self.training or len(self.steps) == 0:
            return batch
        planar = to_planar(batch)
        for step in self.steps.values():
            if step.p > 0.0:
                planar = step.augment_planar(planar)
        return from_planar(planar)
