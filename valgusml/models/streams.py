"""Input streams computed inside the network (so they are part of the exported ONNX graph).

From the preprocessed windows (`valgusml.preprocess`: front-view x, y, confidence per canonical joint, the
frame measures and the frame mask) build, per frame and joint:

- joint coordinates, centred on the mid-hip of that frame and divided by one body-size estimate per window;
- bone vectors: joint − parent (`valgusml.skeleton.CANONICAL_PARENTS`), zero for the root;
- motion: the temporal difference of the normalised coordinates (zero on the first frame);
- the confidence channel;

plus the frame measures as a per-frame stream (batch-normalised per column: they mix degrees and ratios). Everything a missing joint (confidence 0) or a padded frame
(mask 0) touches is zeroed, so padding content never reaches the backbone. No data-dependent Python control
flow: all branches are `torch.where`, which keeps the module exportable with `torch.onnx.export(dynamo=True)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from valgusml.skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS, canonical_index

N_JOINTS = len(CANONICAL_JOINTS)
PARENT_INDEX = tuple(
    canonical_index(CANONICAL_PARENTS[j]) if CANONICAL_PARENTS[j] is not None else canonical_index(j)
    for j in CANONICAL_JOINTS
)
# Segments of the body-size estimate, grouped by kind: thighs, shanks, trunk sides (hip–shoulder).
SIZE_SEGMENTS = {
    "thigh": tuple((canonical_index(f"{s}_hip"), canonical_index(f"{s}_knee")) for s in ("left", "right")),
    "shank": tuple((canonical_index(f"{s}_knee"), canonical_index(f"{s}_ankle")) for s in ("left", "right")),
    "trunk": tuple(
        (canonical_index(f"{s}_hip"), canonical_index(f"{s}_shoulder")) for s in ("left", "right")
    ),
}
_LEFT_HIP, _RIGHT_HIP = canonical_index("left_hip"), canonical_index("right_hip")
_SEG_A = tuple(a for pairs in SIZE_SEGMENTS.values() for a, _ in pairs)
_SEG_B = tuple(b for pairs in SIZE_SEGMENTS.values() for _, b in pairs)
_EPS = 1e-6


def default_n_measures() -> int:
    from valgusml.features import FRAME_MEASURES

    return len(FRAME_MEASURES)


def pelvis_centre(xy: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mid-hip per frame `(B, 2, T, 1)` from `xy (B, 2, T, J)` and `valid (B, 1, T, J)`. Frames without both
    hips use the window's mean mid-hip (or the mean of whatever joints are seen when the hips never are), so
    centring never divides by zero."""
    hips = valid[..., _LEFT_HIP : _LEFT_HIP + 1] * valid[..., _RIGHT_HIP : _RIGHT_HIP + 1]  # (B, 1, T, 1)
    mid = 0.5 * (xy[..., _LEFT_HIP : _LEFT_HIP + 1] + xy[..., _RIGHT_HIP : _RIGHT_HIP + 1])  # (B, 2, T, 1)
    hip_w = hips.sum(2, keepdim=True)  # (B, 1, 1, 1)
    window_mid = (mid * hips).sum(2, keepdim=True) / hip_w.clamp_min(_EPS)
    all_w = valid.sum((2, 3), keepdim=True)
    window_any = (xy * valid).sum((2, 3), keepdim=True) / all_w.clamp_min(_EPS)
    window_mid = torch.where(hip_w > 0, window_mid, window_any)
    return torch.where(hips > 0, mid, window_mid)


def body_size(xy: torch.Tensor, confidence: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """One length per window `(B,)` from `xy (B, 2, T, J)`, `confidence`, `valid (B, 1, T, J)`: mean thigh +
    mean shank + mean trunk side, each a confidence-weighted mean over the frames (and both sides) where the
    segment is seen. A kind never seen is replaced by the mean of the kinds that are (x3 keeps the scale)."""
    weight = confidence * valid
    a, b = list(_SEG_A), list(_SEG_B)
    d = xy[..., a] - xy[..., b]  # (B, 2, T, 6)
    length = (d * d).sum(1).clamp_min(_EPS).sqrt()  # (B, T, 6)
    w = torch.minimum(weight[..., a], weight[..., b])[:, 0]  # (B, T, 6)
    w_sum = w.sum(1).reshape(-1, len(SIZE_SEGMENTS), 2).sum(-1)  # (B, kinds)
    len_sum = (length * w).sum(1).reshape(-1, len(SIZE_SEGMENTS), 2).sum(-1)
    seen = (w_sum > 0).to(xy.dtype)
    mean_len = len_sum / w_sum.clamp_min(_EPS) * seen
    size = 3.0 * mean_len.sum(-1) / seen.sum(-1).clamp_min(1.0)
    # A window with no segment at all (cannot come out of `prepare`, which needs hips and a leg) keeps unit
    # scale instead of dividing by zero.
    return torch.where(size > _EPS, size, torch.ones_like(size))


class Streams(nn.Module):
    """`(joints (B, T, 20, 3), measures (B, T, F), mask (B, T))` → channels-first
    `(nodes (B, C, T, 20), measures (B, F, T))`.

    C = `node_channels` = 2 (coordinates) + 2 (bone) + 2 (motion) + 1 (confidence) for the streams switched on.
    `out_channels` = 20·C + F is the width of the flattened per-frame vector used by the 1D backbones.
    Channels-first because every backbone convolves or transposes from it, and because broadcasting a mask
    over an outer axis is several times faster on CPU than over a trailing axis of size 2.
    """

    def __init__(
        self,
        n_measures: int | None = None,
        joints: bool = True,
        bones: bool = True,
        motion: bool = True,
        confidence: bool = True,
        use_measures: bool = True,
        motion_scale: float = 10.0,
    ):
        super().__init__()
        if not (joints or bones or motion):
            raise ValueError("Streams needs at least one of joints, bones, motion")
        self.use_joints, self.use_bones, self.use_motion = joints, bones, motion
        self.use_confidence, self.use_measures = confidence, use_measures
        self.motion_scale = float(motion_scale)
        self.n_measures = int(default_n_measures() if n_measures is None else n_measures)
        self.n_joints = N_JOINTS
        self.node_channels = 2 * (int(joints) + int(bones) + int(motion)) + int(confidence)
        self.out_measures = self.n_measures if use_measures else 0
        self.out_channels = self.n_joints * self.node_channels + self.out_measures
        # Node channels that hold an image x (they change sign when the subject is mirrored left for right).
        self.x_channels = tuple(range(0, 2 * (int(joints) + int(bones) + int(motion)), 2))
        self.register_buffer("parent_index", torch.tensor(PARENT_INDEX, dtype=torch.long), persistent=False)
        # The measures mix degrees (up to ~180) and ratios (~0.1): a per-column BatchNorm brings them to the
        # coordinates' unit scale; its running statistics are exported with the model.
        self.measure_norm = nn.BatchNorm1d(self.out_measures) if self.out_measures > 0 else None

    def normalise(
        self, joints: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pelvis-centred, body-size-scaled coordinates `(B, 2, T, J)` (zero where missing), the validity
        `(B, 1, T, J)` and the confidence `(B, 1, T, J)` (zero on padding)."""
        jt = joints.permute(0, 3, 1, 2).contiguous()  # (B, 3, T, J)
        m = mask[:, None, :, None]
        conf = jt[:, 2:3] * m
        valid = (conf > 0).to(jt.dtype)
        xy = jt[:, :2] * valid  # padding / missing content must not leak into the statistics
        centre = pelvis_centre(xy, valid)
        size = body_size(xy, conf, valid)
        norm = (xy - centre) * (valid / size[:, None, None, None])
        return norm, valid, conf

    def forward(
        self, joints: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        norm, valid, conf = self.normalise(joints, mask)
        parts = []
        if self.use_joints:
            parts.append(norm)
        if self.use_bones:
            parent = self.parent_index
            parts.append((norm - norm.index_select(3, parent)) * (valid * valid.index_select(3, parent)))
        if self.use_motion:
            step = (norm[:, :, 1:] - norm[:, :, :-1]) * (
                valid[:, :, 1:] * valid[:, :, :-1] * self.motion_scale
            )
            parts.append(F.pad(step, (0, 0, 1, 0)))  # no motion on the first frame
        if self.use_confidence:
            parts.append(conf)
        nodes = torch.cat(parts, dim=1)
        if self.measure_norm is not None:
            meas = self.measure_norm((measures * mask[..., None]).transpose(1, 2)) * mask[:, None, :]
        else:
            meas = measures[..., :0].transpose(1, 2)
        return nodes, meas
