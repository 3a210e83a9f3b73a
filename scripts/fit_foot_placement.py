"""Refit the foot placement of `valgusml.preprocess` (`_FOOT_FROM_LEG`) on a dataset's 2D keypoints.

A layout with no foot point (coco17) gets each heel and toe placed at ankle + a x shank (ankle - knee) + b x
outward hip line (own hip - other hip) + c x the face's sideways offset (nose - neck along x). This script
fits a, b, c by least squares over every frame that shows the leg, both hips, the face and the real foot
point, for each side apart (their agreement is the check: the shipped constants are their mean), and the
fit without the face for frames that do not show it. It prints the coefficients and the RMS distance to
the real point, against that of the ankle itself.

    .venv/bin/python scripts/fit_foot_placement.py data/synthetic-ce636e96b66e --sequences 1200
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from valgusml.labels import LIMBS
from valgusml.preprocess import foot_placement_basis
from valgusml.skeleton import canonical_index

FOOT_POINTS = ("heel", "big_toe", "small_toe")


def leg_vectors(keypoints: np.ndarray, confidence: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """`(vectors (n, 3, 2): shank, hip line, face x, as the placement reads them (`foot_placement_basis`);
    offsets (n, 3, 2) of the real foot points from the ankle)` over the frames of one canonical 2D sequence that
    show the leg, both hips, the face and every foot point."""
    other = next(limb for limb in LIMBS if limb != side)
    index = [canonical_index(name) for name in
             [f"{side}_{j}" for j in ("hip", "knee", "ankle", *FOOT_POINTS)] + [f"{other}_hip", "nose", "neck"]]
    seen = (confidence[:, index] > 0).all(axis=1) & np.isfinite(keypoints[:, index]).all(axis=(1, 2))
    k = keypoints[seen].astype(np.float64)
    ankle, vectors, _ = foot_placement_basis(k, confidence[seen], side)
    offsets = np.stack([k[:, canonical_index(f"{side}_{j}"), :2] - ankle for j in FOOT_POINTS], axis=1)
    return vectors, offsets


def fit(vectors: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, float]:
    """Scalar coefficients of `offset (n, 2) ~ sum_i c_i vectors[:, i]` (both coordinates share them) and the
    RMS distance left."""
    design = np.concatenate([vectors[..., 0], vectors[..., 1]])
    target = np.concatenate([offset[:, 0], offset[:, 1]])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = (target - design @ coef).reshape(2, -1)
    return coef, float(np.sqrt(np.mean((residual ** 2).sum(axis=0))))


def main() -> None:
    from valgusml.data import open_dataset

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a dataset folder of 2D recordings with feet (e.g. make run's)")
    parser.add_argument("--sequences", type=int, default=1200, help="recordings drawn from it (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ds = open_dataset(args.dataset)
    chosen = np.random.default_rng(args.seed).choice(len(ds), min(args.sequences, len(ds)), replace=False)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {side: [] for side in LIMBS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in chosen:
            seq = ds[int(i)].to_canonical()
            if seq.dims == 2:
                for side in LIMBS:
                    parts[side].append(leg_vectors(seq.keypoints, seq.confidence, side))
    for side in LIMBS:
        vectors = np.concatenate([v for v, _ in parts[side]])
        offsets = np.concatenate([o for _, o in parts[side]])
        print(f"{side}: {len(vectors):,} frames")
        for j, name in enumerate(FOOT_POINTS):
            coef, rms = fit(vectors, offsets[:, j])
            coef_no_face, rms_no_face = fit(vectors[:, :2], offsets[:, j])
            at_ankle = float(np.sqrt(np.mean((offsets[:, j] ** 2).sum(axis=1))))
            print(f"  {name}: shank / hip line / face x {np.round(coef, 3)}, RMS {rms:.1f} (at the ankle "
                  f"{at_ankle:.1f}); without the face {np.round(coef_no_face, 3)}, RMS {rms_no_face:.1f}")


if __name__ == "__main__":
    main()
