"""Temporal models (torch): input streams, backbones (one file each), the shared multi-task head.

`ValgusNet(backbone, head, streams)` is what Hydra's `configs/model/*.yaml` instantiate; `ProbabilityWrapper`
is what the ONNX export traces.
"""

from valgusml.models.gru import BiGRU
from valgusml.models.heads import MultiTaskHead, masked_mean_max
from valgusml.models.net import ProbabilityWrapper, ValgusNet
from valgusml.models.stgcn import STGCN
from valgusml.models.streams import Streams
from valgusml.models.tcn import TCN
from valgusml.models.transformer import TransformerEncoder

__all__ = [
    "STGCN",
    "TCN",
    "BiGRU",
    "MultiTaskHead",
    "ProbabilityWrapper",
    "Streams",
    "TransformerEncoder",
    "ValgusNet",
    "masked_mean_max",
]
