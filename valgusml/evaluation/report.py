"""The evaluation report: PNG plots, CSV/JSON tables and ONE self-contained `report.html` (images embedded as
base64) in a report folder (`write_report`). `valgusml.evaluation.mlflow_log` logs the folder to MLflow.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from valgusml.data.format import staging, swap_in
from valgusml.evaluation import plots
from valgusml.evaluation.bootstrap import (
    Estimate,
    athlete_bootstrap,
    format_estimate,
    percentile_estimate,
    weighted_presence,
)
from valgusml.evaluation.runner import EvaluationResult
from valgusml.labels import FPPA_SEM_DEG, LIMBS, MECHANISM_UNKNOWN
from valgusml.scoring.arrays import athlete_weights

log = logging.getLogger("valgusml.evaluate")
REPORT_FILE = "report.html"
# The per-task figures given with their CIs in the HTML (the README quotes them per task).
PER_TASK_CI_METRICS = ("valgus_auroc", "valgus_auroc_clear", "mechanism_macro_f1")
COMPARISON_METRICS = ["valgus_auroc", "mechanism_macro_f1", "valgus_f1", "severity_mae_deg"]
# The presence figures of each limb, given with their CIs in a scorer's section.
PER_LIMB_METRICS = ("auroc", "f1", "sensitivity", "specificity")

_THRESHOLD_SOURCES = {"validation": "chosen on the validation athletes", "model": "the model's own (no validation "
                      "athletes with both classes)", "default": "0.5 (no validation athletes, none of its own)"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em} h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em} th,td{border:1px solid #ddd;padding:.25em .55em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top} figcaption{font-size:.85em;color:#555}
img{max-width:100%} .note{color:#555;font-size:.9em} .caution{color:#8a3b00;font-weight:bold} .best{font-weight:bold}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return "n/a" if not math.isfinite(float(value)) else f"{float(value):.3f}"
    return _esc(value)


def _offsets_note(result: Any) -> str:
    """The mechanism call's offsets of one scorer, for its section's note ("" without them)."""
    if not result.mechanism_offsets:
        return ""
    values = ", ".join(f"{name} {value:+.2f}" for name, value in result.mechanism_offsets.items())
    return f"mechanism offsets {_esc(values)} ({_esc(result.mechanism_offsets_source)}); "


def table_html(frame: pd.DataFrame, highlight: dict[str, str] | None = None) -> str:
    """A plain HTML table (escaped); `highlight` maps column → the row's first-cell value to bold."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        first = row.iloc[0]
        cells = []
        for col in frame.columns:
            css = ' class="best"' if highlight and highlight.get(col) == first else ""
            cells.append(f"<td{css}>{_cell(row[col])}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def figure_html(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<figure id="{_esc(Path(path).stem)}"><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_esc(caption)} ({_esc(Path(path).name)})</figcaption></figure>"
    )


def _comparison_note(result: EvaluationResult) -> str:
    """What the held-out figures are computed over and how each scorer calls, read off the result (a threshold
    is not always chosen on validation athletes: without them it is the model's own, or 0.5)."""
    labels = result.labels
    n_sequences, n_athletes = len(labels), len(np.unique(labels.athlete_id))
    known = int(np.sum(labels.mechanism != MECHANISM_UNKNOWN))
    graded = int(np.sum(np.isfinite(labels.severity_deg)))
    sources = {r.threshold_source for r in result.results.values()}
    where = ("each chosen on the validation athletes" if sources == {"validation"} else
             "; ".join(f"{n}: {_THRESHOLD_SOURCES.get(r.threshold_source, r.threshold_source)}"
                       for n, r in result.results.items()))
    rule = result.info.get("threshold_rule")
    offsets = any(r.mechanism_offsets for r in result.results.values())
    return (
        f"Each figure is computed over the limbs of {n_sequences} held-out sequences of {n_athletes} athletes: "
        f"presence over both limbs of every sequence ({2 * n_sequences} limbs), mechanism over the {known} limbs "
        f"with a known mechanism, severity MAE (degrees) over the {graded} limbs with a labelled severity. Its "
        f"{_ci_level(result)} bootstrap CI resamples athletes (all trials of a drawn athlete together). Decision thresholds (column "
        f"threshold{f', rule {rule}' if rule else ''}): {where}. The mechanism call is 'none' below the threshold, "
        "else the most probable deficit"
        + (" after the scorer's mechanism offsets (in its section)" if offsets else "")
        + ". Best point value in bold. Each later scorer's difference from the first's comes with a paired CI: the "
        "same athletes drawn for both, so it says whether one is ahead where their own CIs overlap."
    )


def _per_class_table(result: Any) -> pd.DataFrame:
    """Precision, recall and F1 of each mechanism class with the limbs behind them, from the confusion matrix
    the figure draws (a class's F1 on 15 limbs is not one on 1,800)."""
    confusion = np.asarray(result.confusion, dtype=float)
    true, called, hit = confusion.sum(axis=1), confusion.sum(axis=0), np.diag(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "mechanism": plots.MECHANISMS,
            "true limbs": true.astype(int),
            "called limbs": called.astype(int),
            "precision": [result.metrics[f"mechanism_precision_{m}"] for m in plots.MECHANISMS],
            "recall": [result.metrics[f"mechanism_recall_{m}"] for m in plots.MECHANISMS],
            "F1": np.where(true + called > 0, 2 * hit / (true + called), np.nan),
        })


def _ci_level(result: EvaluationResult) -> str:
    return f"{float(result.info.get('ci_level') or 0.95):.0%}"


def _grouped_display(result: EvaluationResult, scorer: Any, table: pd.DataFrame, column: str,
                     by: np.ndarray) -> pd.DataFrame:
    """Rows of a grouped table (per task, per camera view) with presence AUROC (over all limbs and over those
    clear of the threshold) and mechanism macro-F1 beside their athlete-bootstrap CIs (the evaluation's
    replicates, seed and level): a group read on a hundred athletes is not one read on the whole set (the CSV
    keeps the bare values). `by` is each sequence's group, as `table[column]` names them."""
    labels = result.labels
    n_boot, seed, level = _bootstrap_settings(result)

    def estimates(group: str) -> dict[str, Any]:
        index = np.flatnonzero(by == group)
        return athlete_bootstrap(labels.take(index), scorer.scores.take(index), scorer.threshold, n_boot=n_boot,
                                 seed=seed, level=level, metrics=PER_TASK_CI_METRICS)

    per_group = [estimates(group) for group in table[column]]
    return table.assign(**{metric: [format_estimate(e[metric]) for e in per_group] for metric in PER_TASK_CI_METRICS})


def _bootstrap_settings(result: EvaluationResult) -> tuple[int, int, float]:
    """`(n_boot, seed, level)` of the evaluation's own intervals (`info`): every interval the report adds draws
    with them, so that its athletes are drawn as the headline's are."""
    info = result.info
    return int(info.get("n_boot") or 1000), int(info.get("bootstrap_seed") or 0), float(info.get("ci_level") or 0.95)


def limb_presence_estimates(result: EvaluationResult, scorer: Any) -> dict[str, dict[str, Estimate]]:
    """limb → `PER_LIMB_METRICS` → `Estimate`: each limb's presence figures (the point values of
    `scorer.metrics`) with the CI of the evaluation's athlete-bootstrap replicates (its seed, so the same
    athletes are drawn as for the headline; one athlete's limbs share a body, so limbs are not resampled)."""
    labels = result.labels
    n_boot, seed, level = _bootstrap_settings(result)
    weights = athlete_weights(labels.athlete_id, n_boot, seed)
    out: dict[str, dict[str, Estimate]] = {}
    for k, limb in enumerate(LIMBS):
        replicates = weighted_presence(weights, labels.valgus[:, k], scorer.scores.valgus_probability[:, k],
                                       scorer.threshold)
        out[limb] = {metric: percentile_estimate(scorer.metrics[f"valgus_{limb}_{metric}"], replicates[metric], level)
                     for metric in PER_LIMB_METRICS}
    return out


def _limb_presence_display(result: EvaluationResult, scorer: Any) -> pd.DataFrame:
    """One row per limb: each presence figure as `value [lo, hi]` (`limb_presence_estimates`)."""
    estimates = limb_presence_estimates(result, scorer)
    return pd.DataFrame([{"limb": limb, **{m: format_estimate(e) for m, e in estimates[limb].items()}}
                         for limb in LIMBS])


def _real_motion_files_html(files: pd.DataFrame) -> list[str]:
    """The real-motion suite's files, read and skipped with the reason, under a line that counts them: the
    real-motion figures rest on the read ones only, and the log alone said which those were."""
    heading = "<h2 id='real-motion-files'>Real motion: the recordings read and skipped</h2>"
    if not len(files):  # the suite ran and found nothing: why the report has no real-motion figures
        nothing = "No recording was found under the suite's paths (transfer.real_motion.paths)."
        return [heading, f"<p class='note'>{_esc(nothing)}</p>"]
    read = files[files["status"] == "read"]
    people = read["person"].nunique()
    note = (f"{len(read)} recording(s) of {people} person(s) read and scored; {len(files) - len(read)} skipped, "
            "each with the reason (real_motion_files.csv). A file's person is its folder: the people the suite's "
            "CI resamples.")
    return [heading, f"<p class='note'>{_esc(note)}</p>", table_html(files[["file", "person", "task", "status", "reason"]])]


def _input_warnings_display(counts: dict[str, int], n_recordings: int | None) -> pd.DataFrame:
    return pd.DataFrame([{"warning": kind, "recordings": n,
                          "share": f"{n / n_recordings:.1%}" if n_recordings else ""} for kind, n in counts.items()])


def _per_athlete_display(table: pd.DataFrame) -> pd.DataFrame:
    """Per-athlete rows worst first (the athletes to look at lead), without `n_athletes` (one on every row) or the
    AUROC over clear limbs (an athlete's few limbs seldom hold both classes)."""
    return table.drop(columns=["n_athletes", "valgus_auroc_clear"]).sort_values(
        ["valgus_accuracy", "mechanism_accuracy", "athlete_id"], kind="stable")


def _transfer_display(result: EvaluationResult) -> pd.DataFrame:
    """The transfer table with every figure beside its CI as `value [lo, hi]`: the held-out ones from the
    comparison, each `<figure> CI low` / `CI high` pair merged into its figure."""
    table = result.transfer.copy()
    for column, metric in (("in-dist AUROC", "valgus_auroc"), ("in-dist macro-F1", "mechanism_macro_f1"),
                           ("in-dist AUROC, limbs clear of the threshold", "valgus_auroc_clear")):
        if column in table:
            table[column] = [format_estimate(result.results[n].estimates[metric]) if n in result.results else v
                             for n, v in zip(table["scorer"], table[column], strict=True)]
    for low in [c for c in table.columns if c.endswith(" CI low")]:
        value = low[: -len(" CI low")]
        high = f"{value} CI high"
        if value not in table or high not in table:
            continue
        table[value] = [format_estimate(Estimate(v, lo, hi, 0)) if isinstance(v, (int, float)) else v
                        for v, lo, hi in zip(table[value], table[low], table[high], strict=True)]
        table = table.drop(columns=[low, high])
    return table


def _transfer_note(result: EvaluationResult) -> str:
    """What the transfer table's columns are, for the parts this evaluation ran."""
    table, level = result.transfer, _ci_level(result)  # held-out and other-data intervals: the evaluation's level
    parts = [f"In-distribution: held-out athletes of the training data, with their {level} athlete-bootstrap CIs."]
    if any(c.endswith("limbs clear of the threshold") for c in table.columns):
        parts.append(f"Limbs clear of the threshold: presence AUROC over the limbs whose rule angle, as the set "
                     f"records it, lies at least {FPPA_SEM_DEG:g} deg from its threshold (the angle's error between "
                     "sessions); nearer, the rule's own call would not repeat.")
    if any(c.endswith(": worst mechanism F1") for c in table.columns):
        parts.append(f"Other data (transfer.other_data): every sequence of a labelled data set no scorer trained "
                     f"on, with {level} CIs that resample its athletes (presence ECE: whether the probabilities keep "
                     "their meaning there), and the task and the mechanism class it reads worst.")
    if any(c.endswith(": worst AUROC") for c in table.columns):
        parts.append("Shifts: the held-out athletes regenerated with one acquisition factor moved (worst level "
                     "shown, and its gap to in-distribution; every level under Robustness).")
    if any(c.startswith("real ") for c in table.columns):
        parts.append(
            "Real motion: real 3D recordings given as 3D and rendered through the camera model at views all round, "
            "their presence call compared with the rule applied to their own 3D joint centres (female thresholds; "
            "sex unknown; the ±20° CI resamples people, then their recordings), the Brier score and ECE of the "
            "2D views' probabilities against the rule's call, the spread of a limb's probability "
            "across front and rear views within ±20°, the gap between the 3D and the straight-on 2D answer, and, "
            "for a model whose call rests on a frontal-plane angle, how far that angle (lifted from 2D, measured on "
            "3D) lies from the rule's, per view family: the geometry apart from the call.")
    parts.append("A model that only works on its own generator shows it here first.")
    return " ".join(parts)


def make_plots(result: EvaluationResult, out_dir: Path, robustness: pd.DataFrame | None = None,
               examples: Sequence[tuple[str, Any, Any]] = ()) -> dict[str, Path]:
    """Every figure of the report, written under `out_dir/plots/`; returns caption → path. `examples`
    (caption, sequence, Prediction) are drawn with `valgusml.viz.plots.prediction_plot`, the figure
    `valgusml predict --plot` writes."""
    from valgusml.viz.plots import prediction_plot

    plot_dir = Path(out_dir) / "plots"
    figures: dict[str, Path] = {}
    for k, (caption, seq, prediction) in enumerate(examples):
        figures[f"Example recording: {caption}"] = prediction_plot(seq, prediction, plot_dir / f"recording_{k}.png",
                                                                   title=caption)
    truth = result.labels.valgus.ravel()
    curves = {name: (truth, r.scores.valgus_probability.ravel()) for name, r in result.results.items()}
    if not result.results:
        return figures
    figures["Comparison of scorers with 95% athlete-bootstrap CIs"] = plots.comparison_plot(
        result.comparison_table(formatted=False), COMPARISON_METRICS, plot_dir / "comparison.png"
    )
    thresholds = {name: r.threshold for name, r in result.results.items()}
    pooled = f"valgus presence over {truth.size} limbs (both limbs of every held-out sequence)"
    figures[f"ROC curves: {pooled}; circles: each scorer's call at its threshold"] = plots.roc_plot(
        curves, plot_dir / "roc.png", thresholds)
    figures[f"Precision-recall curves: {pooled}; circles: each scorer's call at its threshold"] = plots.pr_plot(
        curves, plot_dir / "pr.png", thresholds)
    figures[f"Reliability diagram: {pooled}; beneath, the limbs in each bin"] = plots.reliability_plot(
        curves, plot_dir / "reliability.png")
    for name, r in result.results.items():
        figures[f"Confusion matrix: {name}, limbs with a known mechanism; 'none' holds the presence misses"] = (
            plots.confusion_matrix_plot(r.confusion, f"Mechanism confusion: {name}", plot_dir / f"confusion_{name}.png"))
    main = next(iter(result.results.values()))
    figures[f"Per-athlete accuracy: {main.name}"] = plots.per_athlete_plot(
        main.per_athlete, f"Held-out athletes: {main.name}", plot_dir / f"per_athlete_{main.name}.png"
    )
    if robustness is not None and len(robustness):
        for factor in dict.fromkeys(robustness["factor"]):
            for metric in ("valgus_auroc", "mechanism_macro_f1"):
                # drawn at the evaluation's own level (`robustness_table(level=bootstrap.level)`)
                caption = f"Robustness: {metric} vs {factor}; bars: each level's {_ci_level(result)} athlete-bootstrap CI"
                figures[caption] = plots.robustness_plot(
                    robustness, factor, metric, plot_dir / f"robustness_{factor}_{metric}.png", _ci_level(result)
                )
    return figures


def _robustness_display(table: pd.DataFrame) -> pd.DataFrame:
    """Robustness rows with `value [lo, hi]` strings for the HTML."""
    shown = table[["factor", "level", "scorer", "n_sequences", "n_athletes"]].copy()
    for metric in ("valgus_auroc", "mechanism_macro_f1", "valgus_f1", "severity_mae_deg"):
        if metric in table:
            shown[metric] = [
                format_estimate(Estimate(v, lo, hi, 0))
                for v, lo, hi in zip(table[metric], table[f"{metric}_lo"], table[f"{metric}_hi"], strict=True)
            ]
    return shown


def write_report(
    result: EvaluationResult,
    out_dir: str | Path,
    robustness: pd.DataFrame | None = None,
    cv: pd.DataFrame | None = None,
    title: str = "valgusml evaluation",
    examples: Sequence[tuple[str, Any, Any]] = (),
    real_motion_files: pd.DataFrame | None = None,
) -> Path:
    """Write plots, tables (CSV/JSON) and `report.html` into `out_dir`; returns the HTML path.
    `real_motion_files`: the real-motion suite's files, read and skipped (`evaluate.run_transfer`'s answer), listed
    in the report and written as `real_motion_files.csv`.

    A new `out_dir` is written whole: built in a hidden sibling and renamed when complete, so an interrupted
    report leaves no folder of plots without its `report.html` (what a killed one left, the next report written
    beside it removes). An existing `out_dir` is written into, as it may hold more than an earlier report."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        _write_report_files(result, out_dir, robustness, cv, title, examples, real_motion_files)
    else:
        with staging(out_dir, every_name=True) as partial:  # report folders are named per run
            _write_report_files(result, partial, robustness, cv, title, examples, real_motion_files)
            swap_in(partial, out_dir)
    path = out_dir / REPORT_FILE
    log.info("report written to %s", path)
    return path


def _write_report_files(result: EvaluationResult, out_dir: Path, robustness: pd.DataFrame | None,
                        cv: pd.DataFrame | None, title: str, examples: Sequence[tuple[str, Any, Any]],
                        real_motion_files: pd.DataFrame | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = make_plots(result, out_dir, robustness, examples)
    comparison = result.comparison_table()
    comparison.to_csv(out_dir / "comparison.csv", index=False)
    result.comparison_table(formatted=False).to_csv(out_dir / "comparison_values.csv", index=False)
    summary = {
        "info": result.info,
        "scorers": {
            name: {
                "threshold": r.threshold,
                "threshold_source": r.threshold_source,
                "mechanism_offsets": r.mechanism_offsets,
                "mechanism_offsets_source": r.mechanism_offsets_source,
                "fit_seconds": r.fit_seconds,
                "predict_seconds_per_sequence": r.predict_seconds_per_sequence,
                "headline": {k: v.to_dict() for k, v in r.estimates.items()},
                "minus_first": {k: v.to_dict() for k, v in (r.minus_first or {}).items()},
                "metrics": r.metrics,
                "confusion": r.confusion.tolist(),
                "input_warnings": r.input_warnings,
            }
            for name, r in result.results.items()
        },
    }
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=1, default=_json_default, allow_nan=True))
    for name, r in result.results.items():
        r.per_task.to_csv(out_dir / f"per_task_{name}.csv", index=False)
        if r.per_view is not None:
            r.per_view.to_csv(out_dir / f"per_view_{name}.csv", index=False)
        r.per_athlete.to_csv(out_dir / f"per_athlete_{name}.csv", index=False)
    if robustness is not None:
        robustness.to_csv(out_dir / "robustness.csv", index=False)
    if result.transfer is not None:
        result.transfer.to_csv(out_dir / "transfer.csv", index=False)
    if result.real_motion is not None:
        result.real_motion.to_csv(out_dir / "real_motion.csv", index=False)
    if real_motion_files is not None:
        real_motion_files.to_csv(out_dir / "real_motion_files.csv", index=False)
    if result.other_data is not None:
        result.other_data.to_csv(out_dir / "other_data.csv", index=False)
    if cv is not None:
        cv.to_csv(out_dir / "cv.csv", index=False)

    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{_esc(title)}</h1>"]
    # read before any figure (`evaluate.cautions`)
    parts += [f"<p class='caution'>Caution: {_esc(note)}.</p>" for note in result.info.get("caution") or []]
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = pd.DataFrame([{"key": k, "value": "; ".join(map(str, v)) if isinstance(v, list) else v}
                         for k, v in {"created (UTC)": created, **result.info}.items()])
    if result.transfer is not None and len(result.transfer):
        parts += [
            "<h2 id='transfer'>Transfer: in-distribution, other data, shifts, real motion</h2>",
            f"<p class='note'>{_esc(_transfer_note(result))}</p>",
            table_html(_transfer_display(result)),
        ]
    if real_motion_files is not None:
        parts += _real_motion_files_html(real_motion_files)
    parts += ["<h2 id='provenance'>Run and dataset</h2>", table_html(info)]
    parts += [
        "<h2 id='comparison'>Comparison on held-out athletes</h2>",
        f"<p class='note'>{_esc(_comparison_note(result))}</p>",
        table_html(comparison, highlight=result.winners()),
    ]
    parts += [figure_html(path, caption) for caption, path in figures.items() if caption.startswith("Comparison")]
    parts.append("<h2 id='curves'>Presence: ROC, precision-recall, calibration</h2>")
    for key in ("ROC curves", "Precision-recall curves", "Reliability diagram"):
        parts += [figure_html(p, c) for c, p in figures.items() if c.startswith(key)]
    parts.append("<h2 id='mechanism'>Mechanism: confusion matrices</h2>")
    parts += [figure_html(p, c) for c, p in figures.items() if c.startswith("Confusion matrix")]
    for name, r in result.results.items():
        parts.append(f"<h2 id='scorer-{_esc(name)}'>{_esc(name)}</h2>")
        # A replicate that draws one class only leaves AUROC (and others) undefined and out of the CI: say how
        # many of the drawn replicates each interval rests on, as metrics.json does.
        n_boot = result.info.get("n_boot")
        headline = pd.DataFrame(
            [{"metric": k, "value [95% CI]": format_estimate(v),
              "bootstrap replicates kept": f"{v.n_valid}/{n_boot}" if n_boot else v.n_valid}
             for k, v in r.estimates.items()]
        )
        parts += [
            f"<p class='note'>threshold {r.threshold:.3f} ({_esc(r.threshold_source)}); {_offsets_note(r)}"
            f"fit {r.fit_seconds:.2f} s; predict {1000 * r.predict_seconds_per_sequence:.2f} ms per sequence</p>",
            "<h3>Headline metrics</h3>", table_html(headline),
            f"<h3>Presence per limb (with {_ci_level(result)} athlete-bootstrap CIs)</h3>",
            table_html(_limb_presence_display(result, r)),
            "<h3>Mechanism per class</h3>", table_html(_per_class_table(r)),
            f"<h3>Per task (AUROC and macro-F1 with {_ci_level(result)} athlete-bootstrap CIs)</h3>",
            table_html(_grouped_display(result, r, r.per_task, "task", result.labels.task)),
            "<h3>Per athlete (worst first)</h3>", table_html(_per_athlete_display(r.per_athlete)),
        ]
        if r.per_view is not None:  # before the per-athlete figure, beside the per-task table it mirrors
            parts[-2:-2] = [
                f"<h3>Per camera view (AUROC and macro-F1 with {_ci_level(result)} athlete-bootstrap CIs)</h3>",
                "<p class='note'>A side view hides the frontal plane: a trained model pulls its probabilities "
                "towards its undecided answer (0.5, or where a presence calibration maps it), under its "
                "threshold, so that it is never called valgus for being unreadable (the predictor warns of it); "
                "the baselines read it as any view.</p>",
                table_html(_grouped_display(result, r, r.per_view, "camera_view", result.camera_view)),
            ]
        if r.input_warnings:
            parts += [
                "<h3>What the predictor said about these recordings</h3>",
                "<p class='note'>Each kind of warning once per recording (numbers in it as #): inputs read with a "
                "correction (a rolled camera levelled, an axis turned) or read less well (a leg hardly seen, no "
                "upper body, a side view) weigh on the figures above.</p>",
                table_html(_input_warnings_display(r.input_warnings, result.info.get("n_test_sequences"))),
            ]
        parts += [figure_html(p, c) for c, p in figures.items() if c == f"Per-athlete accuracy: {name}"]
    examples = [figure_html(p, c) for c, p in figures.items() if c.startswith("Example recording")]
    if examples:  # what a user of the predictor sees for one recording (`valgusml predict --plot`)
        parts += ["<h2 id='examples'>Example recordings</h2>", *examples]
    if robustness is not None and len(robustness):
        parts += [
            "<h2 id='robustness'>Robustness</h2>",
            "<p class='note'>Test sets regenerated from the held-out athletes' generator seeds with one factor "
            "changed at a time; thresholds as above.</p>",
            table_html(_robustness_display(robustness)),
        ]
        parts += [figure_html(p, c) for c, p in figures.items() if c.startswith("Robustness")]
    if cv is not None and len(cv):
        parts += ["<h2 id='cv'>Cross-validation over athletes</h2>", table_html(cv)]
    parts.append("</body></html>")
    (out_dir / REPORT_FILE).write_text("\n".join(parts), encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)
