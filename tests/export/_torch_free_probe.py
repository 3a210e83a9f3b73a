"""Run in a subprocess by test_torch_free.py: torch & co. blocked from import, then load, predict, CLI."""

import importlib.abc
import json
import sys

BLOCKED = {"torch", "lightning", "pytorch_lightning", "torchmetrics", "hydra", "mlflow", "sklearn", "onnx", "pandas"}


ATTEMPTS = []


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            ATTEMPTS.append(name)
            raise ImportError(f"{name} is blocked in this test")
        return None


sys.meta_path.insert(0, Blocker())

import numpy as np  # noqa: E402

import valgusml  # noqa: E402
from valgusml.export.example import example_keypoints  # noqa: E402
from valgusml.predictor.cli import main as predict_main  # noqa: E402

folder, sample = sys.argv[1], sys.argv[2]
predictor = valgusml.Predictor.load(folder)
p = predictor.predict(example_keypoints("halpe26", seconds=3.0, fps=60.0, valgus=1.0), skeleton="halpe26", fps=60.0)
batch = predictor.predict_batch([example_keypoints("coco17", 1.0, 30.0)] * 3, skeleton="coco17", fps=30.0)
assert np.isfinite(p.valgus_probability) and len(batch) == 3
code = predict_main([folder, sample])
loaded = sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)
print(json.dumps({"valgus_probability": p.valgus_probability, "cli": code, "blocked_attempts": ATTEMPTS, "loaded": loaded}))
