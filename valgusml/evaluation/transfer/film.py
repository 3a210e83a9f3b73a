"""A labelled 3D data set filmed as 2D: every sequence through the project's camera at a yaw drawn in a band,
with the generic estimator error or one of the generator's pose-estimator families, its labels kept.

Another generator's 3D output (`scripts/other_generator_data.sh OUT preset.observation.dims=3`) or a lab's
motion capture labelled by the presence rule (`valgusml convert --label-by-rule`) becomes a 2D evaluation set at
views and estimators its source never had (from behind, through OpenPose), for `valgusml evaluate
transfer.other_data=[...]`, or many views of each trial to train on (`data.extra_train_dirs`):

    valgusml film data/v2-3d data/v2-rear --yaw 135 180 --estimator mediapipe
    valgusml film data/mocap data/mocap-2d --yaw 0 45 --yaw 135 180 --estimator mediapipe rtmpose openpose \
        generic --copies 5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from valgusml.errors import ConfigError, InputError, ValgusMLError
from valgusml.evaluation.transfer.render import athlete_frame, check_estimators, film
from valgusml.sequence import KeypointSequence


def film_sequences(
    sequences: Iterable[KeypointSequence],
    yaw_deg: tuple[float, float] = (0.0, 45.0),
    estimator: str = "generic",
    seed: int = 0,
    jitter_m: float = 0.004,
) -> Iterator[KeypointSequence]:
    """Each 3D sequence filmed from a camera whose |yaw| is drawn uniformly in `yaw_deg` (either side: 0 in
    front, 180 behind), through `estimator` (`generic`: a joint-centre offset and `jitter_m` of AR(1) jitter;
    or a family of `valgusml.synth.estimators`); canonical 2D pixels with the sequence's id, athlete, task and
    labels, the camera and the estimator in `meta`. Deterministic in `seed` and the sequence order."""
    lo, hi = (float(v) for v in yaw_deg)
    if not 0.0 <= lo <= hi <= 180.0:
        raise ConfigError(f"yaw band {yaw_deg} must satisfy 0 <= low <= high <= 180 (degrees from the front)")
    if not (np.isfinite(jitter_m) and jitter_m >= 0.0):  # NaN would make every filmed point missing
        raise ConfigError(f"jitter must be a finite length >= 0, got {jitter_m!r} m (--jitter-mm in millimetres)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    check_estimators([estimator])
    rng = np.random.default_rng(seed)
    for index, seq in enumerate(sequences):
        canonical = seq.to_canonical()
        if canonical.dims != 3:
            raise InputError(f"sequence {seq.id!r} is {canonical.dims}D: only 3D motion can be filmed from a new view")
        yaw = float(rng.uniform(lo, hi) * rng.choice([-1.0, 1.0]))
        noise_seed = int(rng.integers(2**31))
        try:
            world = athlete_frame(canonical.seen_keypoints().astype(np.float64))
        except ValueError as exc:
            raise InputError(f"sequence {seq.id!r}: {exc}") from None
        [(pixels, confidence, view)] = film(world, canonical.fps, [yaw], estimator, noise_seed, jitter_m)
        meta = {**(seq.meta or {}), "units": "pixels", "camera": view.camera(), "estimator": estimator,
                "filmed_from": {"source": seq.source, "sequence": index}}
        yield KeypointSequence(
            keypoints=pixels, skeleton="canonical", fps=canonical.fps, confidence=confidence, id=seq.id,
            athlete_id=seq.athlete_id, task=seq.task, source=f"filmed:{seq.source}" if seq.source else "filmed",
            labels=seq.labels, meta=meta,
        )


def film_views(
    sequences: Sequence[KeypointSequence] | Iterable[KeypointSequence],
    yaw_bands: Sequence[tuple[float, float]] = ((0.0, 45.0),),
    estimators: Sequence[str] = ("generic",),
    copies: int = 1,
    seed: int = 0,
    jitter_m: float = 0.004,
) -> Iterator[KeypointSequence]:
    """`film_sequences` once per yaw band x estimator x copy: a few motion-capture trials as the many 2D views a
    model trains on (`data.extra_train_dirs`) or is scored on. `sequences` is read once per filming, so give a
    list or a data set, not a one-pass iterator. One filming keeps the ids and `seed` as `film_sequences` does;
    several suffix each id with `@LOW-HIGH/ESTIMATOR/COPY` (ids stay unique) and film the k-th with seed + k."""
    if copies < 1:
        raise ConfigError(f"copies must be >= 1, got {copies}")
    check_estimators(estimators)
    filmings = [(band, estimator, copy) for band in yaw_bands for estimator in estimators for copy in range(copies)]
    if not filmings:
        raise ConfigError("film at least one yaw band with at least one estimator")
    for k, ((lo, hi), estimator, copy) in enumerate(filmings):
        for seq in film_sequences(sequences, (lo, hi), estimator, seed + k, jitter_m):
            yield seq if len(filmings) == 1 else seq.replace(id=f"{seq.id}@{lo:g}-{hi:g}/{estimator}/{copy}")


def main(argv: list[str] | None = None) -> int:
    """`valgusml film SOURCE OUT [--yaw LOW HIGH]... [--estimator E ...] [--copies N] [--seed S] [--jitter-mm J]
    [--overwrite]`: all or nothing (`write_dataset_whole`)."""
    from valgusml.data import open_dataset
    from valgusml.data.format import write_dataset_whole

    parser = argparse.ArgumentParser(
        prog="valgusml film", description="Film a labelled 3D data set as 2D views through the project's camera and "
        "pose-estimator error models (labels, athletes and tasks kept).")
    parser.add_argument("source", type=Path, help="a labelled 3D data set folder")
    parser.add_argument("out", type=Path, help="the 2D data set folder to write")
    parser.add_argument("--yaw", nargs=2, type=float, action="append", metavar=("LOW", "HIGH"),
                        help="band of |yaw| in degrees (0 in front, 180 behind; default 0 45); repeat for more bands")
    parser.add_argument("--estimator", nargs="+", default=["generic"],
                        help="one or more of generic | mediapipe | rtmpose | openpose | mocap")
    parser.add_argument("--copies", type=int, default=1, help="filmings per band and estimator (other cameras, noise)")
    parser.add_argument("--seed", type=int, default=0, help="cameras and estimator noise (the same seed films alike)")
    parser.add_argument("--jitter-mm", type=float, default=4.0, help="the generic estimator's jitter")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    bands = [tuple(band) for band in (args.yaw or [[0.0, 45.0]])]
    try:
        source = open_dataset(args.source)
        filmed = film_views(source, bands, args.estimator, args.copies, args.seed, jitter_m=args.jitter_mm / 1000.0)
        header = write_dataset_whole(
            args.out, filmed, meta={"filmed_from": str(args.source.resolve()), "yaw_deg": bands,
                                    "estimator": args.estimator, "copies": args.copies, "seed": args.seed},
            overwrite=args.overwrite)
    except ValgusMLError as exc:
        print(f"valgusml film: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {header['n_sequences']} sequences to {args.out} (fingerprint {header['fingerprint'][:16]})")
    return 0
