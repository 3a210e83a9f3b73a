"""`ValgusNet`: streams → backbone → multi-task head; `ProbabilityWrapper`: what the ONNX export traces."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from valgusml.models.geometry import MEASURE_SCALE_DEG, LiftedAnchor
from valgusml.models.heads import MultiTaskHead
from valgusml.models.streams import Streams

Factory = Callable[..., nn.Module]


class ValgusNet(nn.Module):
    """`forward(joints (B, T, 20, 3), measures (B, T, F), mask (B, T))` →
    `{"valgus_logit": (B, 2), "mechanism_logits": (B, 2, 5), "severity_deg": (B, 2)}` (limbs left, right).

    `backbone` and `head` may be modules or factories (Hydra `_partial_: true` configs): a factory is called
    with the sizes it needs, `backbone(node_channels=, n_joints=, n_measures=)` from the streams and
    `head(in_channels=)` from the backbone's `out_channels`, so a config never repeats a size and
    `model=gru model.backbone.hidden=128` just works. `anchor` (optional, `valgusml.models.geometry`) anchors
    the presence logit on frontal-plane evidence: the raw 2D frame measures (`GeometryAnchor`) or the lifted
    3D angle (`LiftedAnchor`, with `lifter`: a `FrameLifter`, `LocalLifter` or `LimbLifter` whose per-frame
    outputs `frame_fppa_deg` and `frame_loaded_logit (B, T, 2)` join the output dict; a lifter with
    `reads_streams` is built with the streams' sizes and also reads the streams). With
    `head_reads_lifted_measures` the head also reads the summary (`lifted_summary`) of the lifter's 3D mechanism
    measures (`FrameLifter(lift_measures=True)`): the mechanism from the body's lifted 3D signs, not only from
    features shaped by the generator's cameras. `set_presence_calibration` maps the presence logit once training
    has fitted the map on validation (`valgusml.training.calibration`).
    """

    def __init__(
        self,
        backbone: nn.Module | Factory,
        head: nn.Module | Factory | None = None,
        streams: Streams | Factory | None = None,
        anchor: nn.Module | Factory | None = None,
        lifter: nn.Module | Factory | None = None,
        head_reads_lifted_measures: bool = False,
        mirror_average: bool = False,
    ):
        super().__init__()
        self.presence_calibration: dict[str, float] | None = None
        self.mirror_average = bool(mirror_average)
        if self.mirror_average:
            self.mirror = InputMirror()
        if streams is None:
            streams = Streams()
        elif not isinstance(streams, nn.Module):
            streams = streams()
        self.streams = streams
        if not isinstance(backbone, nn.Module):
            backbone = backbone(
                node_channels=streams.node_channels,
                n_joints=streams.n_joints,
                n_measures=streams.out_measures,
            )
        self.backbone = backbone
        self.head_reads_lifted_measures = bool(head_reads_lifted_measures)
        # Built in this order (head, anchor, lifter) so that a seed gives the weights it gave before the head
        # could read the lifter; only a head that reads it needs the lifter first.
        if self.head_reads_lifted_measures:
            lifter = _built_lifter(lifter, backbone, streams)
            n_lifted = int(getattr(lifter, "n_measures", 0))
            if not n_lifted:
                raise ValueError("ValgusNet: head_reads_lifted_measures needs a lifter that lifts the measures "
                                 "(model.lifter.lift_measures=true)")
        if head is None:
            head = MultiTaskHead
        if not isinstance(head, nn.Module):
            extra = {"extra_channels": len(LIFTED_SUMMARY) * n_lifted} if self.head_reads_lifted_measures else {}
            head = head(in_channels=backbone.out_channels, **extra)
        self.head = head
        if anchor is not None and not isinstance(anchor, nn.Module):
            anchor = anchor()
        self.anchor = anchor
        self.lifter = _built_lifter(lifter, backbone, streams)
        if isinstance(anchor, LiftedAnchor) and lifter is None:
            raise ValueError("ValgusNet: a LiftedAnchor needs a lifter (model.lifter) to read the lifted FPPA from")

    def _lift(self, features: torch.Tensor, nodes: torch.Tensor, meas: torch.Tensor, measures: torch.Tensor,
              mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The lifter's per-frame outputs, from what it reads: the backbone's frame features, and the streams
        (`reads_streams`) or the raw frame measures (`reads_measures`)."""
        if features.shape[1] != mask.shape[1]:
            raise ValueError(f"ValgusNet: the lifter needs one feature row per frame; the backbone gives "
                             f"{features.shape[1]} for {mask.shape[1]} frames")
        if getattr(self.lifter, "reads_streams", False):
            return self.lifter(features, nodes, meas)
        if getattr(self.lifter, "reads_measures", False):
            return self.lifter(features, measures, mask)
        return self.lifter(features)

    @property
    def n_measures(self) -> int:
        return self.streams.n_measures

    def forward(self, joints: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        if self.mirror_average and not self.training:
            out = self._mirror_averaged(joints, measures, mask)
        else:
            out = self._forward(joints, measures, mask)
        if self.presence_calibration is not None:
            out["valgus_logit"] = (out["valgus_logit"] * self.presence_calibration["scale"]
                                   + self.presence_calibration["shift"])
        return out

    def set_presence_calibration(self, calibration: Mapping[str, float] | None) -> None:
        """From now on answer `scale * logit + shift` as the presence logit (None: the head's own logit).

        Kept as plain numbers, outside the state dict, so that weights stay the head's own (a start, a blend, a
        resumed fit) and the checkpoint's `presence_calibration` entry says what was fitted; the ONNX export
        traces the map as two constants."""
        if calibration is None:
            self.presence_calibration = None
            return
        scale, shift = float(calibration["scale"]), float(calibration["shift"])
        if not (math.isfinite(scale) and math.isfinite(shift) and scale > 0):
            raise ValueError(f"presence calibration needs a finite scale > 0 and a finite shift, got {scale}, {shift}")
        self.presence_calibration = {"scale": scale, "shift": shift}

    def _mirror_averaged(self, joints: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        """`mirror_average` (evaluation only): each window and its left/right mirror in one batch, the per-limb
        outputs of the mirror swapped back and the two averaged. Training mirrors half the windows at random, so
        the network is nearly mirror-symmetric; what is left of the asymmetry is noise the mean removes. Per-frame
        outputs are the window's own."""
        n = joints.shape[0]
        mirrored_joints, mirrored_measures = self.mirror(joints, measures)
        both = self._forward(torch.cat([joints, mirrored_joints]), torch.cat([measures, mirrored_measures]),
                             torch.cat([mask, mask]))
        out = {key: value[:n] for key, value in both.items()}
        for key in ("valgus_logit", "mechanism_logits", "severity_deg"):
            out[key] = 0.5 * (both[key][:n] + both[key][n:].flip(1))
        if "frontal_has_load" in both:
            own_load, mirror_load = both["frontal_has_load"][:n] > 0, both["frontal_has_load"][n:].flip(1) > 0
            own_fppa, mirror_fppa = both["frontal_fppa_deg"][:n], both["frontal_fppa_deg"][n:].flip(1)
            out["frontal_fppa_deg"] = torch.where(own_load & mirror_load, 0.5 * (own_fppa + mirror_fppa),
                                                  torch.where(own_load, own_fppa, mirror_fppa))
            out["frontal_has_load"] = (own_load | mirror_load).to(both["frontal_has_load"].dtype)
        return out

    def _forward(self, joints: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        nodes, meas = self.streams(joints, measures, mask)
        features, feature_mask = self.backbone(nodes, meas, mask)
        # Head before lifter unless the head reads the lifter: the order in which autograd sums the two
        # branches' gradients into `features` is part of what a seed reproduces, bit for bit.
        if self.head_reads_lifted_measures:
            lifted = self._lift(features, nodes, meas, measures, mask)
            out = self.head(features, feature_mask, lifted_summary(lifted["frame_measures_3d"].detach(), mask))
            out.update(lifted)
        else:
            out = self.head(features, feature_mask)
            if self.lifter is not None:
                out.update(self._lift(features, nodes, meas, measures, mask))
        evidence = None
        if isinstance(self.anchor, LiftedAnchor):
            evidence = self.anchor.evidence(out["frame_fppa_deg"], out["frame_loaded_logit"], mask)
        elif self.anchor is not None:
            evidence = self.anchor.evidence(measures, mask)
        if evidence is not None:  # the anchor's own forward, with its evidence kept for `frontal_fppa_deg`
            out["valgus_logit"] = self.anchor.logit(out["valgus_logit"], evidence)
            out["frontal_fppa_deg"], out["frontal_has_load"] = evidence
        return out


class InputMirror(nn.Module):
    """`(joints (B, T, 20, 3), measures (B, T, F))` of the left/right mirrored subject: x negated (the streams
    centre on the pelvis, so no offset is needed), joints swapped by `CANONICAL.flip_index`, measures permuted
    and signed by `measure_mirror` (`FRAME_MEASURE_MIRROR`: column k goes to column index[k] with sign[k]). An
    involution. The training augmentation (`training.augment.Mirror`) gathers with the same buffers."""

    def __init__(self, measure_mirror: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__()
        from valgusml.skeleton import CANONICAL

        if measure_mirror is None:
            from valgusml.features import FRAME_MEASURE_MIRROR

            measure_mirror = FRAME_MEASURE_MIRROR
        index = torch.tensor([int(k) for k, _ in measure_mirror], dtype=torch.long)
        sign = torch.tensor([float(s) for _, s in measure_mirror])
        source = torch.empty_like(index)  # column k of the input goes to index[k]: gather from `source`
        source[index] = torch.arange(len(index))
        self.register_buffer("measure_source", source, persistent=False)
        self.register_buffer("measure_sign", sign[source], persistent=False)
        self.register_buffer("joint_source", torch.as_tensor(CANONICAL.flip_index, dtype=torch.long),
                             persistent=False)
        self.register_buffer("x_sign", torch.tensor([-1.0, 1.0, 1.0]), persistent=False)

    def forward(self, joints: torch.Tensor, measures: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mirrored = joints.index_select(2, self.joint_source) * self.x_sign.to(joints.dtype)
        if measures.shape[-1] != len(self.measure_source):
            return mirrored, measures
        return mirrored, measures.index_select(2, self.measure_source) * self.measure_sign.to(measures.dtype)


LIFTED_SUMMARY = ("mean", "max", "min")  # what the head reads of each lifted measure over the real frames


def lifted_summary(measures: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(B, T, M)` lifted 3D measures → `(B, 3M)`: each one's mean, max and min over the real frames, in units of
    `MEASURE_SCALE_DEG`. Detached by the caller: the head reads them as measurements, the mechanism loss does not
    bend them."""
    real = (mask > 0)[..., None]
    n = real.sum(1).clamp_min(1)
    mean = torch.where(real, measures, torch.zeros_like(measures)).sum(1) / n
    peak = torch.where(real, measures, torch.full_like(measures, -1e4)).amax(1)
    low = torch.where(real, measures, torch.full_like(measures, 1e4)).amin(1)
    has = real.any(1)
    summary = torch.cat([mean, torch.where(has, peak, mean), torch.where(has, low, mean)], dim=-1)
    return summary / MEASURE_SCALE_DEG


def frontal_angle(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """`(B, 2)` the dynamic frontal-plane angle an anchored presence call rests on: the anchor's evidence where
    the window shows load, NaN where it does not or the network has no anchor (nothing geometric to report)."""
    nan = torch.full_like(out["valgus_logit"], float("nan"))
    if "frontal_fppa_deg" not in out:
        return nan
    return torch.where(out["frontal_has_load"] > 0, out["frontal_fppa_deg"].to(nan.dtype), nan)


def _built_lifter(lifter: nn.Module | Factory | None, backbone: nn.Module, streams: Streams) -> nn.Module | None:
    """A lifter module from a module or a factory, given the sizes it needs."""
    if lifter is None or isinstance(lifter, nn.Module):
        return lifter
    sizes = {"in_channels": backbone.out_channels}
    if _reads_streams(lifter):
        sizes.update(node_channels=streams.node_channels, n_joints=streams.n_joints,
                     n_measures=streams.out_measures, x_channels=streams.x_channels)
    return lifter(**sizes)


def _reads_streams(factory: Factory) -> bool:
    """Whether a lifter factory (a class or Hydra's `functools.partial` of one) builds a lifter that reads the
    per-frame streams (`reads_streams`), which needs their sizes as well as the backbone's width."""
    target = getattr(factory, "func", factory)
    return isinstance(target, type) and bool(getattr(target, "reads_streams", False))


class ProbabilityWrapper(nn.Module):
    """`(joints, measures, mask)` → `(valgus_probability (B, 2), mechanism_probabilities (B, 2, 5),
    severity_deg (B, 2), frontal_fppa_deg (B, 2))`: sigmoid and softmax on top of `ValgusNet`, and the angle its
    presence call rests on (NaN without an anchor or load); the graph that ONNX export traces."""

    def __init__(self, net: ValgusNet):
        super().__init__()
        self.net = net

    def forward(
        self, joints: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(joints, measures, mask)
        return (
            torch.sigmoid(out["valgus_logit"]),
            torch.softmax(out["mechanism_logits"], dim=-1),
            out["severity_deg"],
            frontal_angle(out),
        )
