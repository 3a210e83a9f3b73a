"""`ValgusNet`: streams → backbone → multi-task head; `ProbabilityWrapper`: what the ONNX export traces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from valgusml.models.geometry import LiftedAnchor
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
    `reads_streams` is built with the streams' sizes and also reads the streams).
    """

    def __init__(
        self,
        backbone: nn.Module | Factory,
        head: nn.Module | Factory | None = None,
        streams: Streams | Factory | None = None,
        anchor: nn.Module | Factory | None = None,
        lifter: nn.Module | Factory | None = None,
    ):
        super().__init__()
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
        if head is None:
            head = MultiTaskHead
        if not isinstance(head, nn.Module):
            head = head(in_channels=backbone.out_channels)
        self.head = head
        if anchor is not None and not isinstance(anchor, nn.Module):
            anchor = anchor()
        self.anchor = anchor
        if lifter is not None and not isinstance(lifter, nn.Module):
            sizes = {"in_channels": backbone.out_channels}
            if _reads_streams(lifter):
                sizes.update(node_channels=streams.node_channels, n_joints=streams.n_joints,
                             n_measures=streams.out_measures, x_channels=streams.x_channels)
            lifter = lifter(**sizes)
        self.lifter = lifter
        if isinstance(anchor, LiftedAnchor) and lifter is None:
            raise ValueError("ValgusNet: a LiftedAnchor needs a lifter (model.lifter) to read the lifted FPPA from")

    @property
    def n_measures(self) -> int:
        return self.streams.n_measures

    def forward(self, joints: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        nodes, meas = self.streams(joints, measures, mask)
        features, feature_mask = self.backbone(nodes, meas, mask)
        out = self.head(features, feature_mask)
        if self.lifter is not None:
            if features.shape[1] != mask.shape[1]:
                raise ValueError(f"ValgusNet: the lifter needs one feature row per frame; the backbone gives "
                                 f"{features.shape[1]} for {mask.shape[1]} frames")
            if getattr(self.lifter, "reads_streams", False):
                out.update(self.lifter(features, nodes, meas))
            elif getattr(self.lifter, "reads_measures", False):
                out.update(self.lifter(features, measures, mask))
            else:
                out.update(self.lifter(features))
        evidence = None
        if isinstance(self.anchor, LiftedAnchor):
            evidence = self.anchor.evidence(out["frame_fppa_deg"], out["frame_loaded_logit"], mask)
        elif self.anchor is not None:
            evidence = self.anchor.evidence(measures, mask)
        if evidence is not None:  # the anchor's own forward, with its evidence kept for `frontal_fppa_deg`
            out["valgus_logit"] = self.anchor.logit(out["valgus_logit"], evidence)
            out["frontal_fppa_deg"], out["frontal_has_load"] = evidence
        return out


def frontal_angle(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """`(B, 2)` the dynamic frontal-plane angle an anchored presence call rests on: the anchor's evidence where
    the window shows load, NaN where it does not or the network has no anchor (nothing geometric to report)."""
    nan = torch.full_like(out["valgus_logit"], float("nan"))
    if "frontal_fppa_deg" not in out:
        return nan
    return torch.where(out["frontal_has_load"] > 0, out["frontal_fppa_deg"].to(nan.dtype), nan)


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
