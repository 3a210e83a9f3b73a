"""Film a labelled 3D data set as 2D at views and estimators its source never had (a tool, not a test).

    python scripts/film_dataset.py data/v2-3d data/v2-rear --yaw 135 180 --estimator mediapipe
    valgusml evaluate model=exports/default transfer.other_data=[data/v2-rear]

Every sequence is filmed by the project's camera at a |yaw| drawn in the band (0 in front, 180 behind), through
the generic estimator error or one of the generator's pose-estimator families
(`valgusml.evaluation.transfer.film.film_sequences`); labels, athletes and tasks are kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    from valgusml.data import open_dataset, write_dataset
    from valgusml.evaluation.transfer.film import film_sequences

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a labelled 3D data set folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--yaw", nargs=2, type=float, default=[0.0, 45.0], metavar=("LOW", "HIGH"),
                        help="band of |yaw| in degrees (0 in front, 180 behind)")
    parser.add_argument("--estimator", default="generic", help="generic | mediapipe | rtmpose | openpose | mocap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jitter-mm", type=float, default=4.0, help="the generic estimator's jitter")
    args = parser.parse_args()

    source = open_dataset(args.source)
    filmed = film_sequences((source[i] for i in range(len(source))), tuple(args.yaw), args.estimator, args.seed,
                            jitter_m=args.jitter_mm / 1000.0)
    ds = write_dataset(args.out, filmed, meta={"filmed_from": str(args.source.resolve()), "yaw_deg": args.yaw,
                                               "estimator": args.estimator, "seed": args.seed})
    print(f"wrote {len(ds)} sequences to {args.out} (fingerprint {ds.fingerprint[:16]})")


if __name__ == "__main__":
    main()
