"""Benchmark the baselines (and optionally a trained model) on held-out athletes of a synthetic or given dataset.

    .venv/bin/python scripts/bench_baselines.py --n-athletes 120               # generate realistic, split, score
    .venv/bin/python scripts/bench_baselines.py --data data/NAME --baselines fppa_rule features_hgb
    .venv/bin/python scripts/bench_baselines.py --data data/NAME --model exports/default --split-file .../splits.json

Prints the comparison table (value [95% athlete-bootstrap CI], fit time, predict time per sequence) and, with
--report DIR, writes the HTML report there.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from valgusml.data import open_dataset
from valgusml.data.splits import load_split, split_athletes
from valgusml.evaluation.evaluate import build_scorers, compose_eval_config
from valgusml.evaluation.runner import evaluate_scorers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="dataset folder (default: generate one under --out)")
    parser.add_argument("--preset", default="realistic")
    parser.add_argument("--n-athletes", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="data/bench-baselines", help="where a generated dataset goes")
    parser.add_argument("--baselines", nargs="*", default=["fppa_rule", "features_hgb", "features_logreg", "minirocket"])
    parser.add_argument("--model", help="an exported predictor folder to score beside the baselines")
    parser.add_argument("--split-file", help="splits.json (default: a fresh 65/15/20 split by athlete)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--report", help="write the HTML report into this folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    started = time.perf_counter()
    if args.data:
        ds = open_dataset(args.data)
    else:
        from valgusml.synth import generate_dataset, load_preset

        folder = Path(args.out) / f"{args.preset}-{args.n_athletes}-{args.seed}"
        ds = generate_dataset(load_preset(args.preset, n_athletes=args.n_athletes, seed=args.seed), folder,
                              progress=False)
    split = load_split(args.split_file) if args.split_file else split_athletes(
        ds.athlete_ids, "fractions", val_fraction=0.15, test_fraction=0.2, seed=args.seed,
        dataset_fingerprint=ds.fingerprint)

    train, val, test = (ds.sequences_of(athletes) for athletes in (split.train, split.val, split.test))
    print(f"{ds!r}: train {len(train)} / val {len(val)} / test {len(test)} sequences "
          f"(loaded in {time.perf_counter() - started:.1f} s)")
    cfg = compose_eval_config([f"baselines=[{','.join(args.baselines)}]"])
    model = None
    if args.model:
        from valgusml.evaluation.scorers import ExportedModel

        model = ExportedModel(args.model)
    scorers = build_scorers(model, cfg)
    result = evaluate_scorers(scorers, train, val, test, n_boot=args.n_boot, seed=args.seed,
                              info={"dataset": str(ds.root), "dataset_fingerprint": ds.fingerprint})
    table = result.comparison_table()
    columns = ["scorer", "valgus_auroc", "valgus_f1", "mechanism_macro_f1", "mechanism_balanced_accuracy",
               "severity_mae_deg", "threshold", "fit_s", "predict_ms_per_sequence"]
    print(table[columns].to_markdown(index=False) if _has_tabulate() else table[columns].to_string(index=False))
    if args.report:
        from valgusml.evaluation.report import write_report

        print("report:", write_report(result, args.report, title=f"baselines on {ds.root.name}"))
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
