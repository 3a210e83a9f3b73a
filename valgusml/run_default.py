"""`make run`: the default experiment end to end on CPU.

Generates the realistic synthetic set if missing (cached in data/), trains the default model
(`experiment=default`), tests it on held-out athletes, exports the predictor to `exports/default/`, writes
the evaluation report to `reports/default/report.html` and prints a summary. Everything is tracked in
`mlflow.db` (browse with `mlflow ui --backend-store-uri sqlite:///mlflow.db`).

Extra Hydra overrides pass through: `python -m valgusml.run_default trainer.max_epochs=5`.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

TARGETS = {
    "test/valgus_auroc_left": 0.97,
    "test/valgus_auroc_right": 0.97,
    "test/mechanism_macro_f1": 0.85,
}
# The clinician's rule and the strongest tabular model; logistic regression and MiniRocket (another ~2.5 min)
# run in `valgusml evaluate`, outside make run's 10-minute budget.
MAKE_RUN_BASELINES = ("fppa_rule", "features_hgb")
SHOWN = (
    ("test/valgus_auroc_left", "presence AUROC, left"),
    ("test/valgus_auroc_right", "presence AUROC, right"),
    ("test/valgus_f1", "presence F1 (val threshold)"),
    ("test/mechanism_macro_f1", "mechanism macro-F1"),
    ("test/mechanism_accuracy", "mechanism accuracy"),
    ("test/severity_mae_deg", "severity MAE (deg)"),
)


def write_default_report(**overrides: Any) -> Path:
    """`make run`'s last step: evaluate `exports/default` (with the baselines) on its held-out athletes and write
    `reports/default/report.html`. Keyword overrides are `configs/eval.yaml` keys, e.g.
    `write_default_report(model="exports/default", data_dir="data/x", run_id="abc")`."""
    from valgusml.evaluation.evaluate import compose_eval_config, run_evaluation

    defaults = {"model": "exports/default", "report_dir": "reports/default"}
    defaults.update(overrides)
    cfg = compose_eval_config([f"{k}={_override_value(v)}" for k, v in defaults.items()])
    return run_evaluation(cfg)["report"]


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    return str(value)


def _report(export_dir: Path, root: Path, cfg: Any, run_id: str | None) -> Path:
    ckpt_dir = Path(cfg.paths.output_dir) / "checkpoints"
    return write_default_report(
        model=str(export_dir),
        report_dir=str(root / "reports" / "default"),
        split_file=str(ckpt_dir / "splits.json"),
        run_id=run_id,
        share_features=True,  # the 10-minute budget: one feature extraction for the three feature baselines
        # ... and MiniRocket (~1.7 min on v3 data, numba compilation included) is left to `valgusml evaluate
        # model=exports/default`, which runs all four baselines.
        baselines=list(MAKE_RUN_BASELINES),
    )


def summary_table(metrics: dict[str, float], extra: dict[str, str]) -> Any:
    from rich.table import Table

    table = Table(title="valgusml default experiment: held-out athletes", show_lines=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for key, label in SHOWN:
        if key not in metrics:
            continue
        target = TARGETS.get(key)
        mark = "" if target is None else ("  [green]met[/green]" if metrics[key] >= target else "  [red]missed[/red]")
        table.add_row(label, f"{metrics[key]:.3f}", "" if target is None else f">= {target:.2f}{mark}")
    for key, value in extra.items():
        table.add_row(key, value, "")
    return table


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("valgusml").setLevel(logging.INFO)  # our progress lines, not every library's INFO
    console = Console(width=max(110, Console().width))
    started = time.perf_counter()
    from valgusml.training.train import run

    root = Path.cwd()
    overrides = [
        "experiment=default",
        f"paths.root_dir={root}",
        f"export_dir={root / 'exports' / 'default'}",
        "run_name=default",
        *(sys.argv[1:] if argv is None else argv),
    ]
    metrics, cfg = run(overrides)
    trained = time.perf_counter() - started
    ckpt_dir = Path(cfg.paths.output_dir) / "checkpoints"
    run_file = ckpt_dir / "mlflow_run.json"
    run_id = None
    if run_file.is_file():
        import json

        run_id = json.loads(run_file.read_text())["run_id"]
    export_dir = Path(cfg.export_dir)
    report = None
    if (export_dir / "model.json").is_file():
        report = _report(export_dir, root, cfg, run_id)
    wall = time.perf_counter() - started
    extra = {
        "wall time": f"{wall / 60:.1f} min (training + test {trained / 60:.1f} min)",
        "MLflow run": f"{run_id} in {root / 'mlflow.db'}" if run_id else "none",
        "predictor": str(export_dir) if export_dir.is_dir() else "not exported",
        "report": str(report) if report else "not written",
    }
    console.print(summary_table(metrics, extra))
    missed = [k for k, t in TARGETS.items() if metrics.get(k, 0.0) < t]
    if missed:
        console.print(f"[yellow]targets missed: {', '.join(missed)}[/yellow]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
