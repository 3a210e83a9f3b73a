"""PNG figures of an evaluation (matplotlib, Agg backend: no display needed). Each function writes one file
and returns its path; the report embeds them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve  # noqa: E402

from valgusml.labels import MECHANISM_SHORT_NAMES, MECHANISMS  # noqa: E402
from valgusml.scoring.calibration import ECE_BINS, ece_bin_index, expected_calibration_error  # noqa: E402
from valgusml.viz.plots import save_figure  # noqa: E402  (one writer for the report and `predict --plot`)

# Past this many athletes the per-athlete figure drops their ids (unreadable) and keeps a fixed width.
MAX_LABELLED_ATHLETES = 40


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path)


def _mark_operating_points(ax, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], colours: Mapping[str, str],
                           thresholds: Mapping[str, float], point) -> None:
    """Each scorer's call at its decision threshold on its curve (`point(truth, called) -> (x, y)`), in its
    line's colour: where on the curve the figures at the threshold are read."""
    label = "call at the threshold"
    for name, (truth, prob) in curves.items():
        if name in thresholds and name in colours:
            x, y = point(np.asarray(truth), np.asarray(prob) >= thresholds[name])
            ax.plot([x], [y], marker="o", ms=6, mfc="white", mec=colours[name], mew=1.5, ls="none", label=label)
            label = None


def _roc_point(truth: np.ndarray, called: np.ndarray) -> tuple[float, float]:
    return float(called[truth == 0].mean()), float(called[truth == 1].mean())


def _pr_point(truth: np.ndarray, called: np.ndarray) -> tuple[float, float]:
    return float(called[truth == 1].mean()), float(truth[called].mean()) if called.any() else 1.0


def confusion_matrix_plot(confusion: np.ndarray, title: str, path: Path) -> Path:
    """Limbs counted in each cell (rows: true class, with its total; columns: the call), coloured by the row's
    share (the diagonal is each class's recall)."""
    counts = np.asarray(confusion, dtype=np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    labels = [MECHANISM_SHORT_NAMES[m] for m in MECHANISMS]
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), [f"{label} (n={int(n)})" for label, n in zip(labels, counts.sum(axis=1),
                                                                                    strict=True)])
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("called (limbs)")
    ax.set_ylabel("true class")
    ax.set_title(f"{title} ({int(counts.sum())} limbs)", fontsize=10)
    # an inset colour bar: one made with `ax=` is skipped by tight_layout, which then clips the row names
    fig.colorbar(image, cax=ax.inset_axes([1.05, 0.0, 0.05, 1.0]), label="share of the true class's limbs")
    return _save(fig, path)


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path,
             thresholds: Mapping[str, float] | None = None) -> Path:
    """ROC of valgus presence (limbs pooled), one line per scorer with its AUROC; `curves` maps name →
    (truth, prob); `thresholds` (name → decision threshold) marks each scorer's call."""
    fig, ax = plt.subplots(figsize=(5, 4.4))
    colours: dict[str, str] = {}
    for name, (truth, prob) in curves.items():
        if len(np.unique(truth)) < 2:
            continue
        fpr, tpr, _ = roc_curve(truth, prob)
        line, = ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(truth, prob):.3f})")
        colours[name] = line.get_color()
    _mark_operating_points(ax, curves, colours, thresholds or {}, _roc_point)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="chance")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("ROC: valgus presence (both limbs)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def pr_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path,
            thresholds: Mapping[str, float] | None = None) -> Path:
    """Precision-recall of valgus presence (limbs pooled), one line per scorer with its average precision, the
    prevalence (a scorer that knows nothing) beneath; `thresholds` marks each scorer's call."""
    fig, ax = plt.subplots(figsize=(5, 5.2))
    prevalence, colours = None, {}
    for name, (truth, prob) in curves.items():
        if not np.any(truth):
            continue
        precision, recall, _ = precision_recall_curve(truth, prob)
        line, = ax.step(recall, precision, where="post",
                        label=f"{name} (AP {average_precision_score(truth, prob):.3f})")
        colours[name] = line.get_color()
        prevalence = float(np.mean(truth))
    _mark_operating_points(ax, curves, colours, thresholds or {}, _pr_point)
    if prevalence is not None:
        ax.axhline(prevalence, color="grey", lw=0.8, ls="--", label=f"prevalence {prevalence:.3f}")
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall: valgus presence", fontsize=10)
    # beneath the axes: inside, the lower left holds the prevalence line and a rule's curve at recall 0
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return _save(fig, path)


def reliability_bins(truth: np.ndarray, prob: np.ndarray, n_bins: int = ECE_BINS) -> pd.DataFrame:
    """The ECE's equal-width bins that hold limbs: `bin_lo`, `bin_hi`, `count`, `mean_prob`, `observed_rate`."""
    truth, prob = np.asarray(truth, dtype=float).ravel(), np.asarray(prob, dtype=float).ravel()
    bins = ece_bin_index(prob, n_bins)
    count = np.bincount(bins, minlength=n_bins)
    seen = np.flatnonzero(count)
    return pd.DataFrame({
        "bin_lo": seen / n_bins,
        "bin_hi": (seen + 1) / n_bins,
        "count": count[seen],
        "mean_prob": np.bincount(bins, weights=prob, minlength=n_bins)[seen] / count[seen],
        "observed_rate": np.bincount(bins, weights=truth, minlength=n_bins)[seen] / count[seen],
    })


def reliability_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Observed valgus rate against mean predicted probability in the ECE bins (each scorer's ECE in the
    legend), and beneath it how many limbs each bin holds: a point resting on a handful of limbs says little."""
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(5, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    width = 1.0 / ECE_BINS / (len(curves) + 1)
    for k, (name, (truth, prob)) in enumerate(curves.items()):
        table = reliability_bins(truth, prob)
        line, = ax.plot(table["mean_prob"], table["observed_rate"], marker="o", ms=3,
                        label=f"{name} (ECE {expected_calibration_error(truth, prob):.3f})")
        counts.bar(table["bin_lo"] + (k + 0.5) * width, table["count"], width=width, align="edge",
                   color=line.get_color())
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    ax.set_ylabel("observed valgus rate")
    ax.set_title(f"Reliability diagram ({ECE_BINS} equal-width bins, limbs pooled)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    counts.set_yscale("log")
    counts.set_ylabel("limbs per bin", fontsize=8)
    counts.set_xlabel("mean predicted P(valgus)")
    counts.set_xticks(np.linspace(0, 1, ECE_BINS + 1))
    counts.tick_params(axis="x", labelsize=7)
    return _save(fig, path)


def per_athlete_plot(table: pd.DataFrame, title: str, path: Path) -> Path:
    """Per held-out athlete: presence accuracy and mechanism accuracy (over both limbs of their trials)."""
    table = table.sort_values(["mechanism_accuracy", "valgus_accuracy"], kind="stable")
    labelled = len(table) <= MAX_LABELLED_ATHLETES
    fig, ax = plt.subplots(figsize=(max(5, 0.28 * len(table) + 2) if labelled else 12, 3.8))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["valgus_accuracy"], width=0.4, label="valgus call accuracy")
    ax.bar(x + 0.2, table["mechanism_accuracy"], width=0.4, label="mechanism accuracy")
    if labelled:
        ax.set_xticks(x, table["athlete_id"], rotation=90, fontsize=7)
    else:  # ids of a hundred athletes overlap: their rank, and the table beside the figure names them
        ax.set_xlabel(f"{len(table)} held-out athletes, sorted by mechanism accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of limbs correct")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
    return _save(fig, path)


def comparison_plot(table: pd.DataFrame, metrics: list[str], path: Path) -> Path:
    """Point estimates with 95% CI error bars per scorer; `table` is the unformatted comparison table."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = table[metric].to_numpy(dtype=float)
        lo = values - table[f"{metric}_lo"].to_numpy(dtype=float)
        hi = table[f"{metric}_hi"].to_numpy(dtype=float) - values
        y = np.arange(len(table))
        ax.errorbar(values, y, xerr=np.nan_to_num(np.vstack([lo, hi])), fmt="o", capsize=3)
        ax.set_yticks(y, table["scorer"], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def robustness_plot(table: pd.DataFrame, factor: str, metric: str, path: Path, ci: str = "95%") -> Path:
    """`metric` against the levels of one robustness factor, one line per scorer, each level's point with its
    athlete-bootstrap CI (`ci` names its level) from the table's `_lo` / `_hi` columns as an error bar. Bars,
    not bands: a factor with one level (a leave-out run's) draws no band, and five scorers' bands hide whose
    interval is whose; the scorers sit side by side at each level so that their bars do not cover each other."""
    part = table[table["factor"] == factor]
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    levels = list(dict.fromkeys(part["level"]))
    x = np.arange(len(levels))
    groups = list(part.groupby("scorer", sort=False))
    for k, (scorer, rows) in enumerate(groups):
        rows = rows.set_index("level").reindex(levels)
        _with_interval(ax, x + _dodge(k, len(groups)), rows[metric], rows[f"{metric}_lo"], rows[f"{metric}_hi"],
                       str(scorer))
    ax.set_xticks(x, levels, rotation=20, fontsize=8)
    ax.set_xlabel(factor)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {factor} (bars: {ci} athlete-bootstrap CI)", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _dodge(k: int, n: int, width: float = 0.3) -> float:
    """The x offset of the `k`-th of `n` series at one category, spread over `width` (0 for a single one)."""
    return 0.0 if n < 2 else width * (k / (n - 1) - 0.5)


def _with_interval(ax, x: np.ndarray, value: pd.Series, lo: pd.Series, hi: pd.Series, label: str) -> None:
    """A line through `value` at `x` and, in its colour, a bar from `lo` to `hi` at each point. The bar is drawn
    about the interval's middle, not the value: a percentile interval need not hold its point estimate, and
    an error bar about the value could not then reach its bound. A point whose interval is undefined (no
    replicate held both classes) gets no bar rather than a false one."""
    value, lo, hi = (np.asarray(s, dtype=float) for s in (value, lo, hi))
    line, = ax.plot(x, value, marker="o", ms=4, label=label)
    ax.errorbar(x, (lo + hi) / 2, yerr=(hi - lo) / 2, fmt="none", ecolor=line.get_color(), elinewidth=1, capsize=3)
