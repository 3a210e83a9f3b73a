"""What happens after training, through the export stage's public functions.

`export` writes the predictor with `valgusml.export.export_predictor`, checking ONNX against torch on a few
validation recordings and choosing its decision threshold on all of them; `after_training` hands the finished
run to `valgusml.export.log_predictor_to_mlflow` (which logs and registers the pyfunc model).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("valgusml.train")
N_PARITY_SEQUENCES = 8


def export(ckpt_path: Path, export_dir: Path, dm: Any) -> Path:
    from valgusml.export import export_predictor

    validation = dm.dataset.sequences_of(dm.split.val)
    return Path(export_predictor(ckpt_path, export_dir, validation[:N_PARITY_SEQUENCES], validation))


def after_training(run_id: str, ckpt_path: Path | None, export_dir: Path | None, tracking_uri: str | None = None) -> None:
    """Hand the finished run to the exporter, which logs the predictor as an MLflow pyfunc model and registers it."""
    if export_dir is None:
        return
    import mlflow

    from valgusml.export import log_predictor_to_mlflow

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    info = log_predictor_to_mlflow(export_dir, run_id=run_id)
    log.info("predictor logged to MLflow as %s", getattr(info, "model_uri", info))
