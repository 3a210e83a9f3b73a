"""valgusml: dynamic knee valgus and its mechanism from pose keypoint sequences.

Importing the package is light (numpy only): the predictor pulls in onnxruntime on first use, and nothing
here imports torch.
"""

from __future__ import annotations

from typing import Any

from valgusml.errors import ConfigError, FormatError, InputError, ModelFileError, ValgusMLError
from valgusml.labels import MECHANISMS
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import SKELETONS

__version__ = "0.1.0"

__all__ = [
    "MECHANISMS",
    "SKELETONS",
    "ConfigError",
    "FormatError",
    "InputError",
    "KeypointSequence",
    "ModelFileError",
    "Prediction",
    "Predictor",
    "ValgusMLError",
    "__version__",
]

_LAZY = {"Predictor": "valgusml.predictor", "Prediction": "valgusml.predictor"}
_SUBMODULES = {"io", "data", "features", "synth", "skeleton", "labels"}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"valgusml.{name}")
    raise AttributeError(f"module 'valgusml' has no attribute {name!r}")
