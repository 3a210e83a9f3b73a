"""Export a trained network as a predictor folder (ONNX + metadata) and ship it to MLflow.

Imports are lazy: `valgusml.export.pyfunc` (loaded by MLflow model serving) must not pull in torch, while
`export_predictor` needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export_predictor": "valgusml.export.onnx",
    "ExportError": "valgusml.export.folder",
    "check_parity": "valgusml.export.onnx",
    "log_predictor_to_mlflow": "valgusml.export.pyfunc",
    "ValgusPyfunc": "valgusml.export.pyfunc",
    "example_keypoints": "valgusml.export.example",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'valgusml.export' has no attribute {name!r}")
