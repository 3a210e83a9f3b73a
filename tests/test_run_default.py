"""`make run`'s summary: the exported predictor's held-out figures with their CIs, the training loop's only when
nothing was exported."""

from __future__ import annotations

from types import SimpleNamespace

from rich.console import Console

from valgusml.evaluation.bootstrap import Estimate
from valgusml.run_default import held_out_figures, summary_table


def _evaluation(threshold: float = 0.578):
    metrics = {"valgus_left_auroc": 0.944, "valgus_right_auroc": 0.950, "valgus_auroc": 0.944, "valgus_f1": 0.779,
               "mechanism_macro_f1": 0.633, "mechanism_accuracy": 0.82, "severity_mae_deg": 3.8}
    estimates = {"valgus_auroc": Estimate(0.944, 0.931, 0.957, 300), "mechanism_macro_f1": Estimate(0.633, 0.587, 0.670, 300)}
    model = SimpleNamespace(metrics=metrics, estimates=estimates, threshold=threshold)
    return {"result": SimpleNamespace(results={"model": model}), "report": "report.html"}


def test_the_summary_shows_the_exported_predictors_answers_with_their_cis():
    training = {"test/valgus_auroc_left": 0.5, "test/mechanism_macro_f1": 0.1}
    figures, source = held_out_figures(_evaluation(), training)
    assert figures["mechanism_macro_f1"] == (0.633, " [0.587, 0.670]")
    assert figures["valgus_left_auroc"] == (0.944, "")  # no CI computed for it: none shown
    assert source == "the exported predictor, threshold 0.578"
    console = Console(width=200, record=True)
    console.print(summary_table(figures, source, {"wall time": "4.3 min"}))
    text = console.export_text()
    assert "0.633 [0.587, 0.670]" in text and "missed" in text and "threshold 0.578" in text and "4.3 min" in text


def test_without_an_export_the_training_loops_test_metrics_stand_in():
    figures, source = held_out_figures(None, {"test/valgus_auroc_left": 0.98, "test/mechanism_macro_f1": 0.6})
    assert figures == {"valgus_left_auroc": (0.98, ""), "mechanism_macro_f1": (0.6, "")}
    assert source == "the training loop's test windows"
