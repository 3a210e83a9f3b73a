r"""Transfer table of exported predictors, side by side in one run (a benchmark, not a test: minutes).

    python scripts/transfer_table.py exports/default /path/to/old/export \
        --data data/synthetic-XXXX --split logs/default/runs/.../checkpoints/splits.json \
        --other /path/to/another/generators/dataset --real ../shared/realdata --shift-athletes 20 \
        --baselines features_hgb ensemble

`--baselines` names scorers of configs/eval/scorers/default.yaml: each is fitted on the split's training athletes
and its threshold chosen on its validation athletes, as `valgusml evaluate` does; `model` in an ensemble's
members is the first predictor given.

Columns: held-out athletes of `--data` (the split's test athletes), every sequence of each `--other` dataset
(data another generator wrote), the shift suites (held-out athletes regenerated with one acquisition factor
moved, worst level), each set's worst task, and the real-motion suite (agreement with the presence rule on 3D,
front/rear ±20°, side; view spread; |p3D - p front|). Presence AUROC and mechanism macro-F1 with 95%
athlete-bootstrap CIs, and each later model's difference from the first model's on the same sequences (paired:
the same athletes drawn for both); the front/rear agreement with a 95% CI over people and their recordings, and
each later model's difference from the first model's on the same limb-views (paired, people and recordings
resampled).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

warnings.simplefilter("ignore")


def _baselines(names: list[str], model, ds, split: dict) -> list[tuple[str, object, float]]:
    """`(name, scorer, threshold)` of each named baseline, fitted on the split's training athletes, its
    threshold and mechanism offsets chosen on the validation athletes; an ensemble's `model` member is `model`."""
    from valgusml.evaluation.evaluate import build_scorers, compose_eval_config
    from valgusml.evaluation.runner import resolve_mechanism_offsets, resolve_threshold
    from valgusml.scoring.arrays import LabelArrays

    train, val = (ds.sequences_of(split[part]) for part in ("train", "val"))
    scorers = build_scorers(model, compose_eval_config([f"baselines=[{','.join(names)}]"]))
    out = []
    for name in names:
        scorer = scorers[name]
        scorer.fit(train)
        val_scores, val_labels = scorer.predict(val), LabelArrays.from_sequences(val)
        threshold, _ = resolve_threshold(scorer, val_scores, val_labels, "f1")
        scorer, _, _ = resolve_mechanism_offsets(scorer, val_scores, val_labels, threshold)
        out.append((name, scorer, threshold))
    return out


def main() -> None:
    from valgusml import Predictor
    from valgusml.data import open_dataset
    from valgusml.evaluation.bootstrap import Estimate, format_estimate
    from valgusml.evaluation.evaluate import not_trained_on
    from valgusml.evaluation.metrics import compute_metrics
    from valgusml.evaluation.robustness import DEFAULT_FACTORS, generator_config_of, synthetic_condition_sets
    from valgusml.evaluation.sources import learnt_from
    from valgusml.evaluation.transfer import (
        FAST_YAWS,
        PredictorScorer,
        other_data_rows,
        render_views,
        score_views,
        summarise,
    )
    from valgusml.evaluation.transfer.real_motion import agreement_estimate, worst_estimator
    from valgusml.scoring.arrays import LabelArrays

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True, help="the dataset the first model was trained on")
    parser.add_argument("--split", required=True, help="splits.json of that training run")
    parser.add_argument("--other", nargs="*", default=[], help="datasets another generator wrote")
    parser.add_argument("--real", nargs="*", default=[], help="folders of real 3D recordings")
    parser.add_argument("--real-estimators", nargs="+", default=["generic"],
                        help="how the real views are filmed: generic, and/or mediapipe rtmpose openpose mocap")
    parser.add_argument("--shift-athletes", type=int, default=20)
    parser.add_argument("--shifts", nargs="*", default=["camera_view", "estimator_family", "clip_s", "body_height_m"])
    parser.add_argument("--baselines", nargs="*", default=[], help="scorers of configs/eval/scorers/default.yaml")
    parser.add_argument("--n-boot", type=int, default=300)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here too")
    args = parser.parse_args()

    ds = open_dataset(args.data)
    split = json.loads(Path(args.split).read_text())
    others = {other: open_dataset(other) for other in args.other}

    scorers = []
    for model in args.models:
        predictor = Predictor.load(model)
        scorers.append((model, PredictorScorer(predictor), predictor.decision_threshold))
        # As `valgusml evaluate` does, before any set is read or filmed: a model's (or the baselines') training
        # dataset is refused as other data, and one of a generator seed the model learnt from is said not to be
        # held out.
        for other, o in others.items():
            for note in not_trained_on(f"{model}: other data {Path(other).name}", Path(other), o.fingerprint,
                                       learnt_from(predictor.metadata), ds.fingerprint if args.baselines else None,
                                       o.athletes):
                print(f"caution: {note}")

    test_athletes = sorted(split["test"])
    test = ds.sequences_of(test_athletes)
    sets = {"held-out": test}
    for other, o in others.items():
        sets[f"other: {Path(other).name}"] = [o[i] for i in range(len(o))]
    shift_sets = list(synthetic_condition_sets(
        generator_config_of(args.data), test_athletes[: args.shift_athletes],
        {k: DEFAULT_FACTORS[k] for k in args.shifts}, trials_per_athlete=4)) if args.shifts else []
    views = render_views(args.real, yaws=FAST_YAWS, seeds=(0, 1), estimators=args.real_estimators) if args.real else []
    if args.baselines:
        scorers += _baselines(args.baselines, scorers[0][1], ds, split)

    # Every later model's figures on each set also as its difference from the first model's, athlete-paired.
    first = scorers[0][0]
    records = other_data_rows(sets, {m: s for m, s, _ in scorers}, {m: t for m, _, t in scorers}, n_boot=args.n_boot,
                              paired_to=first).to_dict("records")
    rows, first_views = [], None
    for model, scorer, threshold in scorers:
        row: dict[str, str] = {"model": model}
        for record in (r for r in records if r["scorer"] == model):
            name = record["dataset"]
            for metric in ("valgus_auroc", "mechanism_macro_f1", "valgus_ece", "valgus_auroc_clear"):
                row[f"{name} {metric}"] = str(Estimate.from_columns(record, metric))
                if model != first:
                    row[f"{name} {metric} - first model's"] = format_estimate(
                        Estimate.from_columns(record, f"{metric}_minus_paired"), signed=True)
            row[f"{name} clear share"] = f"{record['clear_share']:.2f}"
            row[f"{name} worst task AUROC"] = record["worst_task"]
            row[f"{name} worst mechanism F1"] = record["worst_mechanism"]
        worst: dict[str, tuple[float, str]] = {}
        for factor, level, seqs in shift_sets:
            auroc = compute_metrics(LabelArrays.from_sequences(seqs), scorer.predict(seqs), threshold)["valgus_auroc"]
            if factor not in worst or auroc < worst[factor][0]:
                worst[factor] = (auroc, level)
        for factor, (auroc, level) in worst.items():
            row[f"shift {factor} worst AUROC"] = f"{auroc:.3f} ({level})"
        if views:
            scored = score_views(views, scorer, threshold)
            summary = summarise(scored)
            first_views = scored if first_views is None else first_views
            everything = summary["all"]
            row["real 3D agree"] = f"{summary['3d']['agreement_female']:.3f}"
            row["real front/rear ±20 agree"] = str(Estimate.from_columns(everything, "agreement_front_rear_20_female"))
            if scored is not first_views:  # paired over the same limb-views, recordings resampled
                row["real ±20 agree - first model's"] = format_estimate(agreement_estimate(scored, baseline=first_views),
                                                                        signed=True)
            row["real ±20 agree, clear limbs"] = (f"{summary['all']['agreement_front_rear_20_clear']:.3f} "
                                                 f"({summary['all']['clear_share_front_rear_20']:.0%} of limb-views)")
            if (worst := worst_estimator(summary)) is not None:
                row["real ±20 agree, worst estimator"] = worst
            row["real side agree"] = f"{summary.get('side', {}).get('agreement_female', float('nan')):.3f}"
            row["real 2D Brier / ECE"] = (f"{summary['all']['brier_female_2d']:.3f} / "
                                          f"{summary['all']['ece_female_2d']:.3f}")
            row["real view spread"] = f"{summary['all']['view_spread_median']:.3f}"
            row["real |p3D-p front|"] = f"{summary['all']['p3d_vs_front_median']:.3f}"
            angles = {f: summary[f] for f in ("3d", "front", "rear", "side") if "angle_n" in summary.get(f, {})}
            if angles:  # the angle the call rests on against the rule's: median |error| (bias), rank correlation
                row["real angle vs rule, deg (bias) / rank corr."] = ", ".join(
                    f"{f} {a['angle_error_median_deg']:.1f} ({a['angle_bias_median_deg']:+.1f}) / "
                    f"{a['angle_rank_correlation']:.2f}" for f, a in angles.items())
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(r.get(k, "") for k in keys) + " |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    from valgusml.errors import ValgusMLError

    try:
        main()
    except ValgusMLError as exc:
        raise SystemExit(f"transfer_table: {exc}") from None
