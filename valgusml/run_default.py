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
    "valgus_left_auroc": 0.97,
    "valgus_right_auroc": 0.97,
    "mechanism_macro_f1": 0.85,
}
# The clinician's rule and the strongest tabular model; logistic regression and MiniRocket (another ~2.5 min)
# run in `valgusml evaluate`, outside make run's 10-minute budget.
MAKE_RUN_BASELINES = ("fppa_rule", "features_hgb")
# The summary reads the exported predictor's answers on the held-out athletes (the report's `model` row: the
# folder's own threshold, each limb's worst rep, side views admitted, with CIs), the numbers a user of the
# folder gets. The training loop's test metrics (MLflow's test/*, the same answers without CIs) stand in only
# when nothing was exported.
SHOWN = (
    ("valgus_left_auroc", "presence AUROC, left"),
    ("valgus_right_auroc", "presence AUROC, right"),
    ("valgus_auroc", "presence AUROC"),
    ("valgus_auroc_clear", "presence AUROC, limbs clear of the threshold"),
    ("valgus_f1", "presence F1 (the folder's threshold)"),
    ("mechanism_macro_f1", "mechanism macro-F1"),
    ("mechanism_accuracy", "mechanism accuracy"),
    ("severity_mae_deg", "severity MAE (deg)"),
)
TRAINING_KEYS = {  # the training loop's names for the same measures
    "valgus_left_auroc": "test/valgus_auroc_left",
    "valgus_right_auroc": "test/valgus_auroc_right",
    "valgus_auroc": "test/valgus_auroc_pooled",  # the report pools the limbs; test/valgus_auroc is their mean
    "valgus_f1": "test/valgus_f1",
    "mechanism_macro_f1": "test/mechanism_macro_f1",
    "mechanism_accuracy": "test/mechanism_accuracy",
    "severity_mae_deg": "test/severity_mae_deg",
}


def write_default_report(**overrides: Any) -> Path:
    """`make run`'s last step: evaluate `exports/default` (with the baselines) on its held-out athletes and write
    `reports/default/report.html`. Keyword overrides are `configs/eval.yaml` keys, e.g.
    `write_default_report(model="exports/default", data_dir="data/x", run_id="abc")`."""
    return evaluate_default(**overrides)["report"]


def evaluate_default(**overrides: Any) -> dict[str, Any]:
    """`write_default_report`'s evaluation, whole: `valgusml.evaluation.evaluate.run_evaluation`'s dict."""
    from valgusml.evaluation.evaluate import compose_eval_config, run_evaluation

    defaults = {"model": "exports/default", "report_dir": "reports/default"}
    defaults.update(overrides)
    cfg = compose_eval_config([f"{k}={_override_value(v)}" for k, v in defaults.items()])
    return run_evaluation(cfg)


def _override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    return str(value)


def _evaluate(export_dir: Path, root: Path, cfg: Any, run_id: str | None) -> dict[str, Any]:
    ckpt_dir = Path(cfg.paths.output_dir) / "checkpoints"
    return evaluate_default(
        model=str(export_dir),
        report_dir=str(root / "reports" / "default"),
        split_file=str(ckpt_dir / "splits.json"),
        run_id=run_id,
        share_features=True,  # the 10-minute budget: one feature extraction for the three feature baselines
        # ... and MiniRocket (~1.7 min on v3 data, numba compilation included) is left to `valgusml evaluate
        # model=exports/default`, which runs all four baselines.
        baselines=list(MAKE_RUN_BASELINES),
    )


def held_out_figures(evaluation: dict[str, Any] | None, training_metrics: dict[str, float]) -> tuple[dict, str]:
    """`({metric: (value, CI text)}, where they come from)`: the exported predictor's, from its evaluation,
    or the training loop's test metrics when there is none."""
    model = evaluation["result"].results.get("model") if evaluation else None
    if model is None:
        figures = {key: (training_metrics[name], "") for key, name in TRAINING_KEYS.items() if name in training_metrics}
        return figures, "the training loop's test windows"
    figures = {}
    for key, _ in SHOWN:
        if key in model.metrics:
            estimate = model.estimates.get(key)
            ci = f" [{estimate.lo:.3f}, {estimate.hi:.3f}]" if estimate is not None else ""
            figures[key] = (float(model.metrics[key]), ci)
    return figures, f"the exported predictor, threshold {model.threshold:.3f}"


def summary_table(figures: dict[str, tuple[float, str]], source: str, extra: dict[str, str]) -> Any:
    from rich.table import Table

    table = Table(title=f"valgusml default experiment: held-out athletes ({source})", show_lines=False)
    table.add_column("metric")
    table.add_column("value [95% athlete-bootstrap CI]", justify="right")
    table.add_column("target", justify="right")
    for key, label in SHOWN:
        if key not in figures:
            continue
        value, ci = figures[key]
        target = TARGETS.get(key)
        mark = "" if target is None else ("  [green]met[/green]" if value >= target else "  [red]missed[/red]")
        table.add_row(label, f"{value:.3f}{ci}", "" if target is None else f">= {target:.2f}{mark}")
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
    evaluation = _evaluate(export_dir, root, cfg, run_id) if (export_dir / "model.json").is_file() else None
    report = evaluation["report"] if evaluation else None
    wall = time.perf_counter() - started
    extra = {
        "wall time": f"{wall / 60:.1f} min (training + test {trained / 60:.1f} min)",
        "MLflow run": f"{run_id} in {root / 'mlflow.db'}" if run_id else "none",
        "predictor": str(export_dir) if export_dir.is_dir() else "not exported",
        "report": str(report) if report else "not written",
    }
    figures, source = held_out_figures(evaluation, metrics)
    console.print(summary_table(figures, source, extra))
    missed = [k for k, t in TARGETS.items() if figures.get(k, (0.0, ""))[0] < t]
    if missed:
        console.print(f"[yellow]targets missed: {', '.join(missed)}[/yellow]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
