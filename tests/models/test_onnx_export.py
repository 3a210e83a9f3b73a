"""The models export with the dynamo ONNX exporter (dynamic batch and time) and match torch in onnxruntime.

The production exporter lives in `valgusml.export`; this proves the model code itself is exportable. The GRU
also exports (checked by hand: max diff 3e-7) but its export takes over a minute, so it is not in the suite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from valgusml.features import FRAME_MEASURES
from valgusml.models import ProbabilityWrapper
from valgusml.training.config import compose_config

ort = pytest.importorskip("onnxruntime")
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
F = len(FRAME_MEASURES)


def sample(b: int, t: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    joints = torch.randn(b, t, 20, 3, generator=g) * 40 + 200
    joints[..., 2] = torch.rand(b, t, 20, generator=g)
    mask = torch.ones(b, t)
    mask[-1, t // 2 :] = 0
    return joints, torch.randn(b, t, F, generator=g), mask


# The default TCN as shipped; ST-GCN shrunk to two blocks (same ops: graph conv, strided temporal conv, limb
# pooling) because export time grows with the graph and the suite has a time budget.
CASES = {"tcn": [], "stgcn": ["model.backbone.channels=[8,8]", "model.backbone.strides=[1,2]"],
         "tcn_lifted": ["+model.mirror_average=true"]}  # the default's: lifter, anchor and the mirror mean


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", list(CASES))
def test_export_matches_torch(name, tmp_path):
    torch.manual_seed(0)
    cfg = compose_config([f"model={name}", *CASES[name]]).model
    wrapped = ProbabilityWrapper(instantiate(cfg)).eval()
    batch, time = torch.export.Dim("batch", min=1), torch.export.Dim("time", min=8, max=4096)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        wrapped,
        sample(2, 96, 0),
        str(path),
        dynamo=True,
        external_data=False,
        input_names=["joints", "measures", "mask"],
        output_names=["valgus_probability", "mechanism_probabilities", "severity_deg"],
        dynamic_shapes={
            "joints": {0: batch, 1: time},
            "measures": {0: batch, 1: time},
            "mask": {0: batch, 1: time},
        },
        verbose=False,
    )
    assert not list(tmp_path.glob("*.data"))  # weights inside the one file
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t in [(2, 96), (3, 40)]:
        inputs = sample(b, t, b + t)
        with torch.no_grad():
            expected = wrapped(*inputs)
        got = session.run(
            None, dict(zip(["joints", "measures", "mask"], (x.numpy() for x in inputs), strict=True))
        )
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_allclose(g, e.numpy(), atol=1e-4, rtol=1e-4)
