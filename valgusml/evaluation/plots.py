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
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from valgusml.evaluation.metrics import ECE_BINS, ece_bin_index  # noqa: E402
from valgusml.labels import MECHANISM_SHORT_NAMES, MECHANISMS  # noqa: E402
from valgusml.viz.plots import save_figure  # noqa: E402  (one writer for the report and `predict --plot`)


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path)


def confusion_matrix_plot(confusion: np.ndarray, title: str, path: Path) -> Path:
    """Rows normalised to recall, with raw counts in each cell."""
    counts = np.asarray(confusion, dtype=np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    labels = [MECHANISM_SHORT_NAMES[m] for m in MECHANISMS]
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, label="row share")
    return _save(fig, path)


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """ROC of valgus presence (limbs pooled), one line per scorer; `curves` maps name → (truth, prob)."""
    fig, ax = plt.subplots(figsize=(5, 4.4))
    for name, (truth, prob) in curves.items():
        if len(np.unique(truth)) < 2:
            continue
        fpr, tpr, _ = roc_curve(truth, prob)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("ROC: valgus presence (both limbs)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def pr_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.4))
    prevalence = None
    for name, (truth, prob) in curves.items():
        if not np.any(truth):
            continue
        precision, recall, _ = precision_recall_curve(truth, prob)
        ax.step(recall, precision, where="post", label=name)
        prevalence = float(np.mean(truth))
    if prevalence is not None:
        ax.axhline(prevalence, color="grey", lw=0.8, ls="--", label="prevalence")
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall: valgus presence", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    return _save(fig, path)


def reliability_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Observed valgus rate against mean predicted probability in the ECE bins."""
    fig, ax = plt.subplots(figsize=(5, 4.4))
    for name, (truth, prob) in curves.items():
        bins = ece_bin_index(prob, ECE_BINS)
        count = np.bincount(bins, minlength=ECE_BINS)
        seen = count > 0
        mean_prob = np.bincount(bins, weights=prob, minlength=ECE_BINS)[seen] / count[seen]
        rate = np.bincount(bins, weights=truth.astype(float), minlength=ECE_BINS)[seen] / count[seen]
        ax.plot(mean_prob, rate, marker="o", ms=3, label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    ax.set_xlabel("mean predicted P(valgus)")
    ax.set_ylabel("observed valgus rate")
    ax.set_title(f"Reliability diagram ({ECE_BINS} bins)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def per_athlete_plot(table: pd.DataFrame, title: str, path: Path) -> Path:
    """Per held-out athlete: presence accuracy and mechanism accuracy (over both limbs of their trials)."""
    table = table.sort_values("mechanism_accuracy")
    fig, ax = plt.subplots(figsize=(max(5, 0.28 * len(table) + 2), 3.8))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["valgus_accuracy"], width=0.4, label="valgus call accuracy")
    ax.bar(x + 0.2, table["mechanism_accuracy"], width=0.4, label="mechanism accuracy")
    ax.set_xticks(x, table["athlete_id"], rotation=90, fontsize=7)
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


def robustness_plot(table: pd.DataFrame, factor: str, metric: str, path: Path) -> Path:
    """`metric` (with CI band) against the levels of one robustness factor, one line per scorer."""
    part = table[table["factor"] == factor]
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    levels = list(dict.fromkeys(part["level"]))
    x = np.arange(len(levels))
    for scorer, rows in part.groupby("scorer", sort=False):
        rows = rows.set_index("level").reindex(levels)
        ax.plot(x, rows[metric], marker="o", label=scorer)
        ax.fill_between(x, rows[f"{metric}_lo"], rows[f"{metric}_hi"], alpha=0.15)
    ax.set_xticks(x, levels, rotation=20, fontsize=8)
    ax.set_xlabel(factor)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {factor}", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)
