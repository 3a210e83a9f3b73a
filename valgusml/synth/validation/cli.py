"""`python -m valgusml.synth.validation`: generate (or open) a dataset and write its validation report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from valgusml.synth.validation.report import write_report


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m valgusml.synth.validation", description="Validation report of a generated dataset: do the emitted keypoints look like the literature says?"
    )
    parser.add_argument("--preset", default="realistic")
    parser.add_argument("--n-athletes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="an existing generated dataset folder (instead of generating)")
    parser.add_argument("--out", default="reports/synth_validation")
    args = parser.parse_args(argv)
    if args.dataset:
        source: Any = args.dataset
    else:
        from valgusml.synth import generate_with_analysis, load_preset

        cfg = load_preset(args.preset, n_athletes=args.n_athletes, seed=args.seed)
        source = generate_with_analysis(cfg, range(args.n_athletes))
    title = f"Synthetic data validation: preset {args.preset}, {args.n_athletes} athletes, seed {args.seed}"
    path = write_report(
        source, args.out, title=title if not args.dataset else f"Validation of {args.dataset}"
    )
    print(path)
    return path
