"""`ResumableMLFlowLogger`: Lightning's MLflow logger made safe to resume and to run beside parallel jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from valgusml.runs.tracking import artifact_uri, with_retry


class ResumableMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger, safe to resume and to run beside parallel jobs.

    - every call to the store is retried while SQLite is locked by another job;
    - a metric is logged only at a step beyond the last one the run already holds for that key, so a run
      resumed from its last checkpoint never writes the same (key, step) twice;
    - `artifact_location` may be a plain folder (made absolute).
    """

    def __init__(self, *args: Any, artifact_location: str | None = None, **kwargs: Any):
        super().__init__(*args, artifact_location=artifact_uri(artifact_location), **kwargs)
        self._last_step: dict[str, int] | None = None

    def _known_steps(self) -> dict[str, int]:
        if self._last_step is None:
            self._last_step = {}
            if self._run_id is not None:
                client = self.experiment
                run = with_retry(client.get_run, self._run_id)
                for key in run.data.metrics:
                    history = with_retry(client.get_metric_history, self._run_id, key)
                    self._last_step[key] = max((m.step for m in history), default=-1)
        return self._last_step

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        step = int(step or 0)
        known = self._known_steps()
        fresh = {k: v for k, v in metrics.items() if step > known.get(k, -1)}
        if fresh:
            with_retry(super().log_metrics, fresh, step)
            for key in fresh:
                known[key] = step

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        # The training app logs the resolved config itself (params + artifact), once per run.
        return None
