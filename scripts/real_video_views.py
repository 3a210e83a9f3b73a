"""The same real motion through a real pose estimator from four cameras: does the call depend on the view?

A benchmark, not a test (a MediaPipe pass per camera: tens of seconds). The Pose2Sim multi-person demo
(`../shared/realdata/video`) films one man balancing on his left leg with four synchronised cameras, two mostly
in front of him (cam01, cam02) and two mostly behind (cam03, cam04). Nothing here was written by the generator:
the keypoints are MediaPipe's on real frames. There is no 3D ground truth for this take, so what is measured is
agreement between views: each camera's inferred view, each knee's probability and the frontal angle the call
rests on, and the spread of each knee's probability over the four cameras.

    python scripts/real_video_views.py exports/default [MORE_EXPORTS ...] [--frames 0 60]

Needs the video environment (`make video`); the man is `person=1` in cam01, cam02 and cam04 (MediaPipe follows
the walking woman first) and `person=0` in cam03, where it drifts to the woman after about one second, so by
default only the first 60 frames (1 s at 60 fps) are read.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

VIDEO_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "video"
MAN = {1: 1, 2: 1, 3: 0, 4: 1}  # MediaPipe's person index of the balancing man, per camera


def main() -> None:
    import numpy as np

    from valgusml import Predictor
    from valgusml.io import video

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--videos", type=Path, default=VIDEO_DIR)
    parser.add_argument("--frames", type=int, nargs=2, default=(0, 60), help="first and last frame read (end excluded)")
    args = parser.parse_args()
    if video.backend() == "none":
        raise SystemExit("no video environment: run `make video` (or set VALGUSML_VIDEO_PYTHON)")

    clips = {}
    for k, person in MAN.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seq = video.read_video(args.videos / f"pose2sim_multiperson_cam{k:02d}.mp4", person=person)
        clips[k] = _frames(seq, *args.frames)

    for model in args.models:
        predictor = Predictor.load(model)
        rows = []
        for k, seq in clips.items():
            p = predictor.predict(seq)
            rows.append({
                "camera": f"cam{k:02d}",
                "view": p.view.get("facing") if p.view else None,
                "yaw_deg": None if not p.view or p.view.get("yaw_deg") is None else round(float(p.view["yaw_deg"]), 1),
                **{f"p_{limb}": round(p.limbs[limb].valgus_probability, 3) for limb in ("left", "right")},
                **{f"fppa_{limb}_deg": (None if p.limbs[limb].frontal_fppa_deg is None
                                        else round(p.limbs[limb].frontal_fppa_deg, 1)) for limb in ("left", "right")},
                "warnings": len(p.warnings),
            })
        spread = {limb: round(float(np.ptp([r[f"p_{limb}"] for r in rows])), 3) for limb in ("left", "right")}
        print(json.dumps({"model": model, "threshold": round(predictor.decision_threshold, 3), "views": rows,
                          "probability_spread": spread}, ensure_ascii=False))
        print("| camera | view (yaw) | p left | p right | lifted left / right (deg) |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['camera']} | {r['view']} ({r['yaw_deg']}) | {r['p_left']:.2f} | {r['p_right']:.2f} | "
                  f"{r['fppa_left_deg']} / {r['fppa_right_deg']} |")


def _frames(seq, start: int, stop: int):
    """`seq` cut to frames `start:stop` (a KeypointSequence with the same meta)."""
    from dataclasses import replace

    return replace(seq, keypoints=seq.keypoints[start:stop], confidence=seq.confidence[start:stop])


if __name__ == "__main__":
    main()
