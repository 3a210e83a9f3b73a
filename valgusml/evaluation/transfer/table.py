"""The transfer table at the top of the report: in-distribution | other data | each shift | real motion, per scorer.

- in-distribution: presence AUROC and mechanism macro-F1 on the held-out athletes (with their CIs elsewhere), and
  presence AUROC over the limbs whose rule angle stands clear of its threshold;
- other data: the same with their CIs on each labelled data set no scorer trained on, the ECE, and the task and
  the mechanism class it reads worst (`other_data`);
- shifts: for each robustness factor, the worst level's AUROC and its gap to in-distribution (test sets
  regenerated from the held-out athletes with one acquisition factor moved: rear and side views, another
  estimator family, frame rates, clip structure, …; `valgusml.evaluation.robustness`);
- real motion: the real-motion suite (`real_motion`): agreement of the presence call with the rule on 3D, on
  front and rear views within ±20° of straight on (with its 95% CI over people and their recordings, and for
  every other scorer its paired difference from the first scorer's, the model's), and on side views, the median
  view spread and the median |p(3D) - p(front)|.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from valgusml.errors import InputError
from valgusml.evaluation.bootstrap import Estimate, format_estimate
from valgusml.evaluation.transfer.real_motion import (
    RenderedView,
    agreement_estimate,
    score_views,
    summarise,
    worst_estimator,
)

log = logging.getLogger("valgusml.evaluate")


def real_motion_rows(
    views: Sequence[RenderedView], scorers: Mapping[str, Any], thresholds: Mapping[str, float]
) -> pd.DataFrame:
    """Every scorer on every rendered view: one long table (column `scorer`)."""
    frames = []
    for name, scorer in scorers.items():
        try:
            rows = score_views(views, scorer, thresholds[name])
        except InputError as exc:  # a scorer that cannot read some input says so; the others go on
            log.warning("real-motion suite: %s failed: %s", name, exc)
            continue
        frames.append(pd.DataFrame(rows).assign(scorer=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def transfer_table(
    in_distribution: Mapping[str, Mapping[str, float]],
    robustness: pd.DataFrame | None = None,
    real_motion: pd.DataFrame | None = None,
    other_data: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per scorer. `in_distribution`: scorer → {"valgus_auroc", "mechanism_macro_f1"};
    `robustness`: the long table of `robustness_table`; `real_motion`: `real_motion_rows`; `other_data`:
    `other_data_rows`."""
    rows = []
    first = next(iter(in_distribution), None)  # the model: the other scorers' real-motion agreement is paired to it
    reference = (real_motion[real_motion["scorer"] == first].drop(columns="scorer").to_dict("records")
                 if real_motion is not None and len(real_motion) else [])
    for name, metrics in in_distribution.items():
        row: dict[str, Any] = {
            "scorer": name,
            "in-dist AUROC": metrics.get("valgus_auroc"),
            "in-dist macro-F1": metrics.get("mechanism_macro_f1"),
        }
        if pd.notna(metrics.get("valgus_auroc_clear", float("nan"))):
            row["in-dist AUROC, limbs clear of the threshold"] = metrics["valgus_auroc_clear"]
        if other_data is not None and len(other_data):
            for record in other_data[other_data["scorer"] == name].to_dict("records"):
                dataset = record["dataset"]
                for metric, label in (("valgus_auroc", "AUROC"), ("mechanism_macro_f1", "macro-F1"), ("valgus_ece", "ECE"),
                                      ("valgus_auroc_clear", "AUROC, limbs clear of the threshold")):
                    # rows scored before a metric was added (a saved other_data.csv), or a set without the rule's
                    # angle (no clear limbs to rank)
                    if pd.isna(record.get(metric)):
                        continue
                    row[f"{dataset}: {label}"] = record[metric]
                    row[f"{dataset}: {label} CI low"] = record[f"{metric}_lo"]
                    row[f"{dataset}: {label} CI high"] = record[f"{metric}_hi"]
                    paired = Estimate.from_columns(record, f"{metric}_minus_paired")
                    if name != first and pd.notna(paired.value):
                        row[f"{dataset}: {label} - {first}'s [paired CI]"] = format_estimate(paired, signed=True)
                row[f"{dataset}: worst task AUROC"] = record["worst_task"]
                row[f"{dataset}: worst mechanism F1"] = record["worst_mechanism"]
        if robustness is not None and len(robustness):
            mine = robustness[robustness["scorer"] == name]
            for factor in dict.fromkeys(mine["factor"]):
                part = mine[mine["factor"] == factor].dropna(subset=["valgus_auroc"])
                if len(part):
                    worst = part.loc[part["valgus_auroc"].idxmin()]
                    row[f"{factor}: worst AUROC"] = f"{worst['valgus_auroc']:.3f} ({worst['level']})"
                    in_distribution_auroc = metrics.get("valgus_auroc")
                    if in_distribution_auroc is not None:
                        row[f"{factor}: gap"] = f"{worst['valgus_auroc'] - in_distribution_auroc:+.3f}"
        if real_motion is not None and len(real_motion):
            mine = real_motion[real_motion["scorer"] == name]
            if len(mine):
                records = mine.drop(columns="scorer").to_dict("records")
                summary = summarise(records)
                row["real 3D agree"] = summary.get("3d", {}).get("agreement_female")
                row["real front/rear ±20° agree"] = summary["all"]["agreement_front_rear_20_female"]
                # 95% CI over people, then their recordings: 3 people and 16 recordings make it wide
                row["real front/rear ±20° agree CI low"] = summary["all"]["agreement_front_rear_20_female_lo"]
                row["real front/rear ±20° agree CI high"] = summary["all"]["agreement_front_rear_20_female_hi"]
                row["real front/rear ±20° agree (clear limbs)"] = summary["all"]["agreement_front_rear_20_clear"]
                if (worst := worst_estimator(summary)) is not None:  # filmed through several estimators
                    row["real ±20° agree, worst estimator"] = worst
                row["real side agree"] = summary.get("side", {}).get("agreement_female")
                # the probabilities as probabilities of the rule's call, every 2D limb-view
                row["real 2D Brier"] = summary["all"]["brier_female_2d"]
                row["real 2D ECE"] = summary["all"]["ece_female_2d"]
                row["real view spread (median)"] = summary["all"]["view_spread_median"]
                row["real |p3D - p front| (median)"] = summary["all"]["p3d_vs_front_median"]
                # the geometry apart from the call: how far the angle the call rests on lies from the rule's
                for family in ("3d", "front", "rear", "side"):
                    if "angle_error_median_deg" in summary.get(family, {}):
                        row[f"real {family} angle error (median deg)"] = summary[family]["angle_error_median_deg"]
                if name != first and reference:
                    difference = agreement_estimate(records, baseline=reference)
                    row[f"real ±20° agree - {first}'s [paired CI]"] = format_estimate(difference, signed=True)
        rows.append(row)
    return pd.DataFrame(rows)
