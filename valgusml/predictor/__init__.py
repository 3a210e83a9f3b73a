"""The exported predictor, run with numpy + onnxruntime only (no torch, no pickle).

- `format`: the exported folder (`model.onnx` + `model.json`): its keys and constants, reading and checking
  it, writing `model.json` (what `valgusml.export` uses);
- `results`: `Prediction` / `LimbPrediction` and the rule that turns the network's heads into them;
- `predictor`: `Predictor` (load, predict, predict_batch);
- `cli`: `valgusml predict`.
"""

from valgusml.predictor.predictor import Predictor
from valgusml.predictor.results import LimbPrediction, Prediction, combine_mechanisms

__all__ = ["LimbPrediction", "Prediction", "Predictor", "combine_mechanisms"]
