"""The presence rule inside the network: the frontal-plane evidence a valgus call can be traced to.

The label is geometric (dynamic FPPA over the loaded phase above a threshold, DESIGN.md). `FrontalEvidence`
reads that quantity off each window's raw frame measures (`valgusml.features.FRAME_MEASURES`, computed in
numpy with the view correction and rear-view mirroring of `valgusml.preprocess`): per limb, the peak FPPA over
the window's loaded frames (knee flexion in the upper `loaded_fraction` of the window's range) minus the
FPPA of its straightest frames. `GeometryAnchor` turns it into the presence logit,

    logit = gain x (evidence - offset) + cap x tanh(backbone_logit / cap),

so the learned features can move the call by at most `cap` logits (task, sex, 2D noise), never overrule the
geometry; a window without a loaded phase (knee range below `min_range_deg`) rests on the backbone alone.
Everything is tensor algebra without data-dependent control flow, so it exports to ONNX with the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from valgusml.labels import LIMBS

_BIG = 1e4


def _measure_index(name: str) -> list[int]:
    from valgusml.features import FRAME_MEASURE_INDEX

    return [FRAME_MEASURE_INDEX[f"{side}_{name}"] for side in LIMBS]


def _bilateral_index(name: str) -> list[int]:
    from valgusml.features import FRAME_MEASURE_INDEX

    return [FRAME_MEASURE_INDEX[name]]


def _least_flexion(flexion: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """`(B, 2)` each limb's smallest knee flexion over the real frames of `(B, T, 2)`."""
    return torch.where(real, flexion, torch.full_like(flexion, _BIG)).amin(1)


def _standing_fppa(fppa: torch.Tensor, flexion: torch.Tensor, real: torch.Tensor, low: torch.Tensor,
                   margin_deg: float) -> torch.Tensor:
    """`(B, 2)` each limb's mean FPPA over its straightest real frames (flexion within `margin_deg` of `low`):
    the standing value a dynamic FPPA is measured from."""
    standing = (real & (flexion <= (low + margin_deg)[:, None])).to(fppa.dtype)
    return (fppa * standing).sum(1) / standing.sum(1).clamp_min(1.0)


class FrontalEvidence(nn.Module):
    """`(measures (B, T, F) raw, mask (B, T))` → `(dynamic_fppa_deg (B, 2), has_load (B, 2))`."""

    def __init__(self, loaded_fraction: float = 0.5, standing_margin_deg: float = 10.0, min_range_deg: float = 20.0):
        super().__init__()
        self.loaded_fraction = float(loaded_fraction)
        self.standing_margin_deg = float(standing_margin_deg)
        self.min_range_deg = float(min_range_deg)
        self.register_buffer("fppa_index", torch.tensor(_measure_index("fppa_deg")), persistent=False)
        self.register_buffer("flexion_index", torch.tensor(_measure_index("knee_flexion_deg")), persistent=False)

    def forward(self, measures: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fppa = measures.index_select(2, self.fppa_index)  # (B, T, 2)
        flexion = measures.index_select(2, self.flexion_index)
        real = (mask > 0)[..., None].expand_as(flexion)
        low = _least_flexion(flexion, real)  # (B, 2)
        high = torch.where(real, flexion, torch.full_like(flexion, -_BIG)).amax(1)
        loaded = real & (flexion >= (low + self.loaded_fraction * (high - low))[:, None])
        peak = torch.where(loaded, fppa, torch.full_like(fppa, -_BIG)).amax(1)
        stand = _standing_fppa(fppa, flexion, real, low, self.standing_margin_deg)
        has_load = ((high - low) >= self.min_range_deg).to(fppa.dtype)
        return (peak - stand) * has_load, has_load


def anchored_logit(backbone_logit: torch.Tensor, evidence: torch.Tensor, has_load: torch.Tensor,
                   gain: torch.Tensor, offset: torch.Tensor, cap: float) -> torch.Tensor:
    """gain x (evidence - offset) where there is load, plus the backbone's logit bounded to +-cap."""
    return cap * torch.tanh(backbone_logit / cap) + has_load * gain * (evidence - offset)


class _Anchor(nn.Module):
    """A presence logit anchored on frontal-plane evidence: `evidence(*inputs)` gives `(angle (B, 2), has_load
    (B, 2))`, `logit` combines it with the backbone's logit by `anchored_logit` with the learned `gain` and
    `offset`. `ValgusNet` calls the two apart to keep the evidence as `frontal_fppa_deg`."""

    def __init__(self, gain: float, offset_deg: float, cap: float):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(gain)))
        self.offset = nn.Parameter(torch.tensor(float(offset_deg)))
        self.cap = float(cap)

    def logit(self, backbone_logit: torch.Tensor, evidence: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return anchored_logit(backbone_logit, *evidence, self.gain, self.offset, self.cap)

    def forward(self, backbone_logit: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        return self.logit(backbone_logit, self.evidence(*inputs))


class GeometryAnchor(_Anchor):
    """Presence logit anchored on `FrontalEvidence` of the raw measures `(measures, mask)` (see the module
    docstring); `gain` and `offset` are learned, starting at a logistic slope of `gain` per degree around
    `offset` degrees."""

    def __init__(self, gain: float = 0.4, offset_deg: float = 9.0, cap: float = 3.0, evidence: FrontalEvidence | None = None):
        super().__init__(gain, offset_deg, cap)
        self.evidence = evidence if evidence is not None else FrontalEvidence()


MEASURE_SCALE_DEG = 30.0  # the unit of the lifted 3D measures: the lifter's output scale and the head's summary


def lifted_measure_columns(lift_measures: bool | Sequence[str]) -> tuple[int, ...]:
    """Which of `LIFTED_MEASURES` a lifter reads: all (True), none (False), or those whose name without the
    limb is listed (`["hip_adduction_deg", "pelvic_obliquity_deg"]`)."""
    from valgusml.features import LIFTED_MEASURES

    if isinstance(lift_measures, bool):
        return tuple(range(len(LIFTED_MEASURES))) if lift_measures else ()
    names = {str(name) for name in lift_measures}
    base = [name.removeprefix("left_").removeprefix("right_") for name in LIFTED_MEASURES]
    unknown = names - set(base)
    if unknown:
        raise ValueError(f"lift_measures: unknown measure(s) {sorted(unknown)}; expected some of {sorted(set(base))}")
    return tuple(k for k, name in enumerate(base) if name in names)


class FrameLifter(nn.Module):
    """Per-frame lifter on the backbone's frame features `(B, T, C)`: each limb's dynamic FPPA on the 3D frontal
    plane (`frame_fppa_deg (B, T, 2)`, what the label thresholds) and whether the frame is loaded in a scored
    phase (`frame_loaded_logit (B, T, 2)`). Trained frame by frame on the generator's 3D answers
    (`valgusml.data.frame_targets`), it learns how the camera distorts the frontal plane (yaw, rear views,
    perspective) rather than which clips the generator labels valgus.

    With `lift_measures` it also reads the 3D values of the mechanism measures (`frame_measures_3d (B, T, M)`,
    columns `valgusml.features.LIFTED_MEASURES`): a training signal only, which makes the backbone's
    features, and so the mechanism head that pools them, carry the body's 3D signs (pelvic drop, hip adduction,
    rearfoot eversion, ankle dorsiflexion) rather than how the generator's cameras happen to show them.

    With `lift_view` it also reads the camera's view, the sine of its yaw in the front view the model sees
    (`frame_view_sin_yaw (B, T)`, target column `view_sin_yaw`): a few degrees of yaw move both flexed knees
    the same way in the image, a collapse moves them towards each other, and features trained to know the yaw
    can tell the two apart."""

    def __init__(self, in_channels: int, hidden: int = 128, fppa_scale_deg: float = 10.0,
                 lift_measures: bool | Sequence[str] = False, measure_scale_deg: float = MEASURE_SCALE_DEG,
                 lift_view: bool = False):
        super().__init__()
        self.fppa_scale_deg = float(fppa_scale_deg)
        self.measure_scale_deg = float(measure_scale_deg)
        self.measure_columns = lifted_measure_columns(lift_measures)
        self.n_measures = len(self.measure_columns)
        self.lift_view = bool(lift_view)
        self.net = nn.Sequential(nn.Linear(in_channels, hidden), nn.GELU(),
                                 nn.Linear(hidden, 2 * len(LIMBS) + self.n_measures + int(self.lift_view)))

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.net(features)
        if not self.n_measures and not self.lift_view:  # the graph (and an export's bytes) as before either
            return {"frame_fppa_deg": out[..., :2] * self.fppa_scale_deg, "frame_loaded_logit": out[..., 2:]}
        lifted = {"frame_fppa_deg": out[..., :2] * self.fppa_scale_deg, "frame_loaded_logit": out[..., 2:4]}
        if self.n_measures:
            lifted["frame_measures_3d"] = out[..., 4 : 4 + self.n_measures] * self.measure_scale_deg
        if self.lift_view:
            lifted["frame_view_sin_yaw"] = out[..., -1]
        return lifted


def _local_geometry(in_channels: int, hidden: int, kernel: int, out_channels: int) -> nn.Sequential:
    """Two convolutions of `kernel` frames and a per-frame readout: sees `2 x (kernel - 1) + 1` frames."""
    pad = kernel // 2
    return nn.Sequential(
        nn.Conv1d(in_channels, hidden, kernel, padding=pad), nn.GELU(),
        nn.Conv1d(hidden, hidden, kernel, padding=pad), nn.GELU(),
        nn.Conv1d(hidden, out_channels, 1),
    )


class LocalLifter(nn.Module):
    """A lifter that sees the geometry of a few frames only: the frontal-plane angle from the normalised joint
    streams and normalised frame measures of `2 x (kernel - 1) + 1` frames around each frame, not from the backbone's
    clip-wide features; whether a frame is loaded (which needs the whole rep) still comes from the backbone.

    `FrameLifter` reads features that have seen the whole clip, so it can learn what the generator's valgus
    clips look like (tempo, the mechanism's whole-body pattern) instead of where the knee is; a lifter that sees
    a third of a second of pose can only learn how the camera maps the knee's 3D frontal plane into the image.
    """

    reads_streams = True

    def __init__(self, in_channels: int, node_channels: int, n_joints: int, n_measures: int,
                 x_channels: tuple[int, ...] = (), hidden: int = 128, kernel: int = 5, fppa_scale_deg: float = 10.0):
        super().__init__()
        self.fppa_scale_deg = float(fppa_scale_deg)
        self.geometry = _local_geometry(node_channels * n_joints + n_measures, hidden, kernel, len(LIMBS))
        self.loaded = nn.Linear(in_channels, len(LIMBS))

    def forward(self, features: torch.Tensor, nodes: torch.Tensor, measures: torch.Tensor) -> dict[str, torch.Tensor]:
        """`features (B, T, C)` from the backbone, `nodes (B, C', T, J)` and `measures (B, F, T)` the streams."""
        b, c, t, j = nodes.shape
        frames = torch.cat([nodes.permute(0, 1, 3, 2).reshape(b, c * j, t), measures], dim=1)
        fppa = self.geometry(frames).transpose(1, 2) * self.fppa_scale_deg
        return {"frame_fppa_deg": fppa, "frame_loaded_logit": self.loaded(features)}


# What a limb's own lifter reads: its hip, knee and foot, the other hip (the pelvis), and the frame measures of
# that limb plus the bilateral ones that say how the body and camera are turned.
_LIMB_JOINTS = ("hip", "knee", "ankle", "heel", "big_toe", "small_toe")
_LIMB_VIEW_MEASURES = ("camera_yaw_deg", "pelvic_obliquity_deg", "trunk_lean_frontal_deg", "trunk_lean_sagittal_deg")


def _limb_indices() -> tuple[list[list[int]], list[list[int]], list[float]]:
    """Per limb: its joints (own side, then the other hip) and its measure columns; and, for the left limb's
    columns, the sign each takes under a left/right mirror (`FRAME_MEASURE_MIRROR`: 1 for a limb's own
    measures, the bilateral ones' own sign)."""
    from valgusml.features import FRAME_MEASURE_INDEX, FRAME_MEASURE_MIRROR
    from valgusml.features.frame import PER_LIMB_MEASURES
    from valgusml.skeleton import canonical_index

    joints, measures = [], []
    for side, other in (("left", "right"), ("right", "left")):
        joints.append([canonical_index(f"{side}_{j}") for j in _LIMB_JOINTS] + [canonical_index(f"{other}_hip")])
        measures.append([FRAME_MEASURE_INDEX[f"{side}_{m}"] for m in PER_LIMB_MEASURES]
                        + [FRAME_MEASURE_INDEX[name] for name in _LIMB_VIEW_MEASURES])
    return joints, measures, [FRAME_MEASURE_MIRROR[column][1] for column in measures[0]]


class LimbLifter(nn.Module):
    """One lifter for both knees, each reading only its own leg: the frontal-plane angle of a limb from that
    limb's hip, knee and foot (and the other hip) over `2 x (kernel - 1) + 1` frames, its own frame measures, and
    the measures that say how the pelvis, trunk and camera are turned. The left limb is mirrored into the right
    limb's frame (image x and the bilateral measures change sign), so the same weights read both knees.

    A lifter that sees both legs can learn that the generator's knees usually move together and read a
    unilateral collapse as half of one on each side; the rule it stands in for is per limb. Whether a frame is
    loaded still comes from the backbone's clip-wide features.
    """

    reads_streams = True

    def __init__(self, in_channels: int, node_channels: int, n_joints: int, n_measures: int,
                 x_channels: tuple[int, ...] = (0,), hidden: int = 64, kernel: int = 5, fppa_scale_deg: float = 10.0):
        super().__init__()
        self.fppa_scale_deg = float(fppa_scale_deg)
        joints, measures, mirror_signs = _limb_indices()
        if n_measures and max(max(m) for m in measures) >= n_measures:
            raise ValueError(f"LimbLifter reads frame measures up to column {max(max(m) for m in measures)}; "
                             f"the streams give {n_measures}")
        self.register_buffer("joint_index", torch.tensor(joints), persistent=False)  # (2, 7)
        self.register_buffer("measure_index", torch.tensor(measures if n_measures else [[], []], dtype=torch.long),
                             persistent=False)
        x_sign = torch.ones(node_channels)
        x_sign[list(x_channels)] = -1.0
        measure_sign = torch.tensor(mirror_signs if n_measures else [])
        # Row 0 mirrors the left limb; row 1 leaves the right one as it is.
        self.register_buffer("node_mirror", torch.stack([x_sign, torch.ones(node_channels)])[:, :, None, None],
                             persistent=False)
        self.register_buffer("measure_mirror", torch.stack([measure_sign, torch.ones_like(measure_sign)])[:, :, None],
                             persistent=False)
        width = node_channels * len(joints[0]) + (len(measures[0]) if n_measures else 0)
        self.geometry = _local_geometry(width, hidden, kernel, 1)
        self.loaded = nn.Linear(in_channels, len(LIMBS))

    def forward(self, features: torch.Tensor, nodes: torch.Tensor, measures: torch.Tensor) -> dict[str, torch.Tensor]:
        b, c, t, _ = nodes.shape
        limbs = []
        for k in range(len(LIMBS)):
            own = nodes.index_select(3, self.joint_index[k]) * self.node_mirror[k]  # (B, C, T, 7)
            limb_measures = measures.index_select(1, self.measure_index[k]) * self.measure_mirror[k]
            limbs.append(torch.cat([own.permute(0, 1, 3, 2).reshape(b, -1, t), limb_measures], dim=1))
        stacked = torch.cat(limbs, dim=0)  # (2B, W, T): both limbs through the same weights in one call
        fppa = self.geometry(stacked).reshape(len(LIMBS), b, t).permute(1, 2, 0) * self.fppa_scale_deg
        return {"frame_fppa_deg": fppa, "frame_loaded_logit": self.loaded(features)}


class GuidedLifter(nn.Module):
    """`FrameLifter` leaning on the measured 2D angle where the view shows it: per frame and limb,

        lifted = gate x (2D FPPA - its standing value) + (1 - gate) x FrameLifter's reading,

    where the gate is the probability that the 2D reading is within `tolerance_deg` of the 3D answer, from three
    cues only: the inferred camera yaw (`camera_yaw_deg`), the knee flexion and the size of the 2D reading. From
    the front or behind the 2D frontal-plane angle is the 3D one up to perspective and noise (a real drop jump
    reads within 2 deg of its 3D angle from the front), but a few degrees of yaw move a flexed knee's 2D angle by
    tens of degrees; there the network's reading has to carry it.

    The gate is trained as that probability (`frame_fppa_gate_logit`, against whether the 2D reading was right
    on the generator's frames), not by the lifted angle's error, and enters the mix detached: trained on the
    angle's error it learns to prefer whichever fits the generator better, which is the network, whose reading
    shrinks towards the training mean on motion the generator did not write (a real 28-deg collapse read as 10).
    """

    reads_measures = True

    def __init__(self, in_channels: int, hidden: int = 128, fppa_scale_deg: float = 10.0, gate_hidden: int = 16,
                 standing_margin_deg: float = 10.0, tolerance_deg: float = 3.0):
        super().__init__()
        self.network = FrameLifter(in_channels, hidden=hidden, fppa_scale_deg=fppa_scale_deg)
        self.standing_margin_deg = float(standing_margin_deg)
        self.tolerance_deg = float(tolerance_deg)
        self.register_buffer("fppa_index", torch.tensor(_measure_index("fppa_deg")), persistent=False)
        self.register_buffer("flexion_index", torch.tensor(_measure_index("knee_flexion_deg")), persistent=False)
        self.register_buffer("yaw_index", torch.tensor(_bilateral_index("camera_yaw_deg")), persistent=False)
        self.gate = nn.Sequential(nn.Linear(3, gate_hidden), nn.GELU(), nn.Linear(gate_hidden, 1))

    def measured(self, measures: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Each frame's 2D FPPA less the limb's standing value in the window (its least flexed frames)
        `(B, T, 2)`."""
        fppa = measures.index_select(2, self.fppa_index)
        flexion = measures.index_select(2, self.flexion_index)
        real = (mask > 0)[..., None].expand_as(flexion)
        stand = _standing_fppa(fppa, flexion, real, _least_flexion(flexion, real), self.standing_margin_deg)
        return fppa - stand[:, None]

    def forward(self, features: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.network(features)
        measured = self.measured(measures, mask)
        flexion = measures.index_select(2, self.flexion_index)
        yaw = measures.index_select(2, self.yaw_index).abs().expand_as(flexion)
        cues = torch.stack([yaw / 30.0, flexion / 90.0, measured.abs() / 30.0], dim=-1)  # (B, T, 2, 3)
        gate_logit = self.gate(cues).squeeze(-1)
        gate = torch.sigmoid(gate_logit).detach()
        out["frame_fppa_deg"] = gate * measured + (1.0 - gate) * out["frame_fppa_deg"]
        out["frame_fppa_gate_logit"] = gate_logit
        out["frame_measured_fppa_deg"] = measured
        return out


class LiftedAnchor(_Anchor):
    """The presence logit anchored on the LIFTED frontal plane: the rule applied to `FrameLifter`'s output,

        evidence = max over the frames the lifter calls loaded of the lifted dynamic FPPA,
        logit = gain x (evidence - offset) + cap x tanh(backbone_logit / cap),

    so the call reads as "the knee's 3D frontal-plane angle reaches `evidence` degrees under load", and the
    learned features move it by at most `cap` logits (task, sex). With `detach` the presence loss does not
    train the lifter: it stays a measurement, fitted to the 3D geometry only. A window the lifter finds no load
    in rests on the backbone alone."""

    def __init__(self, gain: float = 0.3, offset_deg: float = 9.0, cap: float = 2.0, detach: bool = True):
        super().__init__(gain, offset_deg, cap)
        self.detach = bool(detach)

    def evidence(self, fppa: torch.Tensor, loaded_logit: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(peak lifted dynamic FPPA (B, 2), has_load (B, 2))` over the loaded real frames."""
        if self.detach:
            fppa, loaded_logit = fppa.detach(), loaded_logit.detach()
        loaded = (loaded_logit > 0) & (mask > 0)[..., None]
        peak = torch.where(loaded, fppa, torch.full_like(fppa, -_BIG)).amax(1)
        has_load = loaded.any(1).to(fppa.dtype)
        return peak * has_load, has_load
