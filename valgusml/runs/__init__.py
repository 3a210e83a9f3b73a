"""Runs: MLflow tracking (`tracking`, `mlflow_run`) and training checkpoints (`checkpoint`).

The layer training, evaluation and export share; it imports none of them. `tracking` and `mlflow_run` import
no torch; `checkpoint` does (it reads torch checkpoint files).
"""
