"""One small exported predictor folder per test session: an untrained tiny ValgusNet (TCN) is enough to test the
export, the ONNX parity and the predictor machinery; training quality is not what these tests are about."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from valgusml.export.example import example_keypoints
from valgusml.sequence import KeypointSequence

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
WINDOW = 32


def tiny_source(seed: int = 0):
    import torch

    from valgusml.models import TCN, MultiTaskHead, ValgusNet
    from valgusml.preprocess import PreprocessConfig

    torch.manual_seed(seed)
    net = ValgusNet(
        backbone=functools.partial(TCN, channels=16, n_blocks=2, dropout=0.0),
        head=functools.partial(MultiTaskHead, hidden=16, dropout=0.0),
    ).eval()
    cfg = PreprocessConfig(fps=30.0, window=WINDOW, stride=16, min_valid_frames=8)
    info = {
        "decision_threshold": 0.42,
        "dataset_fingerprint": "test-fingerprint",
        "mlflow_run_id": None,
        "val_metrics": {"valgus_auroc": 0.5},
        "test_metrics": {"valgus_auroc": 0.5},
    }
    return net, cfg, info


def parity_sequences() -> list[KeypointSequence]:
    return [
        KeypointSequence(example_keypoints("halpe26", seconds=s, fps=fps, valgus=v, seed=i), "halpe26", fps)
        for i, (s, fps, v) in enumerate([(1.0, 30.0, 0.0), (3.0, 60.0, 1.0), (0.6, 25.0, 0.5)])
    ]


def labelled_sequences(n: int = 12) -> list[KeypointSequence]:
    """Recordings with presence labels, one athlete each: valgus squats and straight ones, alternating."""
    out = []
    for i in range(n):
        valgus = i % 2 == 1
        keypoints = example_keypoints("halpe26", seconds=2.0, fps=30.0, valgus=1.0 if valgus else 0.0, seed=i)
        labels = {limb: {"valgus": valgus, "mechanism": "hip_weakness" if valgus else "none", "severity_deg": 10.0 * valgus}
                  for limb in ("left", "right")}
        out.append(KeypointSequence(keypoints, "halpe26", 30.0, id=f"s{i}", athlete_id=f"a{i}", labels=labels))
    return out


def mixed_deficit_sequences(n: int = 16) -> list[KeypointSequence]:
    """`labelled_sequences(n)` with the valgus recordings' deficits cycling through all four (left and right
    differ), so that mechanism offsets have deficits to weigh against each other."""
    from valgusml.labels import DEFICITS

    out = labelled_sequences(n)
    for i, seq in enumerate(out):
        if seq.labels["left"]["valgus"]:
            for limb in ("left", "right"):
                seq.labels[limb]["mechanism"] = DEFICITS[(i // 2 + (limb == "right")) % len(DEFICITS)]
    return out


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    from valgusml.export import export_predictor

    out = tmp_path_factory.mktemp("export") / "predictor"
    return export_predictor(tiny_source(), out, parity_sequences())


@pytest.fixture(scope="session")
def predictor(exported):
    import valgusml

    return valgusml.Predictor.load(exported)


@pytest.fixture
def squat() -> np.ndarray:
    return example_keypoints("halpe26", seconds=3.0, fps=60.0, valgus=1.0)
