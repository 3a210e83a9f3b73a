"""Film a labelled 3D data set as 2D at views and estimators its source never had (a tool, not a test).

    python scripts/film_dataset.py data/v2-3d data/v2-rear --yaw 135 180 --estimator mediapipe
    valgusml evaluate model=exports/default transfer.other_data=[data/v2-rear]

    # motion capture labelled by the rule, as 40 views of each trial to train beside synthetic data
    python scripts/film_dataset.py data/mocap data/mocap-2d --yaw 0 45 --yaw 135 180 \
        --estimator mediapipe rtmpose openpose generic --copies 5
    valgusml train experiment=default "data.extra_train_dirs=[data/mocap-2d,data/mocap]" data.extra_train_repeat=10

Every sequence is filmed by the project's camera at a |yaw| drawn in the band (0 in front, 180 behind), through
the generic estimator error or one of the generator's pose-estimator families, once per band x estimator x copy
(`valgusml.evaluation.transfer.film.film_views`); labels, athletes and tasks are kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    from valgusml.data import open_dataset, write_dataset
    from valgusml.evaluation.transfer.film import film_views

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a labelled 3D data set folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--yaw", nargs=2, type=float, action="append", metavar=("LOW", "HIGH"),
                        help="band of |yaw| in degrees (0 in front, 180 behind; default 0 45); repeat for more bands")
    parser.add_argument("--estimator", nargs="+", default=["generic"],
                        help="one or more of generic | mediapipe | rtmpose | openpose | mocap")
    parser.add_argument("--copies", type=int, default=1, help="filmings per band and estimator (other cameras, noise)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jitter-mm", type=float, default=4.0, help="the generic estimator's jitter")
    args = parser.parse_args()

    source = open_dataset(args.source)
    bands = [tuple(band) for band in (args.yaw or [[0.0, 45.0]])]
    filmed = film_views(source, bands, args.estimator, args.copies, args.seed, jitter_m=args.jitter_mm / 1000.0)
    ds = write_dataset(args.out, filmed, meta={"filmed_from": str(args.source.resolve()), "yaw_deg": bands,
                                               "estimator": args.estimator, "copies": args.copies, "seed": args.seed})
    print(f"wrote {len(ds)} sequences to {args.out} (fingerprint {ds.fingerprint[:16]})")


if __name__ == "__main__":
    main()
