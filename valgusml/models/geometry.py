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

import torch
from torch import nn

from valgusml.labels import LIMBS

_BIG = 1e4


def _measure_index(name: str) -> list[int]:
    from valgusml.features import FRAME_MEASURE_INDEX

    return [FRAME_MEASURE_INDEX[f"{side}_{name}"] for side in LIMBS]


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
        low = torch.where(real, flexion, torch.full_like(flexion, _BIG)).amin(1)  # (B, 2)
        high = torch.where(real, flexion, torch.full_like(flexion, -_BIG)).amax(1)
        loaded = real & (flexion >= (low + self.loaded_fraction * (high - low))[:, None])
        peak = torch.where(loaded, fppa, torch.full_like(fppa, -_BIG)).amax(1)
        standing = (real & (flexion <= (low + self.standing_margin_deg)[:, None])).to(fppa.dtype)
        stand = (fppa * standing).sum(1) / standing.sum(1).clamp_min(1.0)
        has_load = ((high - low) >= self.min_range_deg).to(fppa.dtype)
        return (peak - stand) * has_load, has_load


class GeometryAnchor(nn.Module):
    """Presence logit anchored on `FrontalEvidence` (see the module docstring); `gain` and `offset` are learned,
    starting at a logistic slope of `gain` per degree around `offset` degrees."""

    def __init__(self, gain: float = 0.4, offset_deg: float = 9.0, cap: float = 3.0, evidence: FrontalEvidence | None = None):
        super().__init__()
        self.evidence = evidence if evidence is not None else FrontalEvidence()
        self.gain = nn.Parameter(torch.tensor(float(gain)))
        self.offset = nn.Parameter(torch.tensor(float(offset_deg)))
        self.cap = float(cap)

    def forward(self, backbone_logit: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        dynamic, has_load = self.evidence(measures, mask)
        residual = self.cap * torch.tanh(backbone_logit / self.cap)
        return residual + has_load * self.gain * (dynamic - self.offset)
