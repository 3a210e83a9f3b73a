"""The same real motion through a real pose estimator from four cameras: does the call depend on the view?

A benchmark, not a test (a MediaPipe pass per camera: tens of seconds). The Pose2Sim multi-person demo
(`../shared/realdata/video`) films one man balancing on his left leg with four synchronised cameras, two mostly
in front of him (cam01, cam02) and two mostly behind (cam03, cam04). Nothing here was written by the generator:
the keypoints are MediaPipe's on real frames. There is no 3D ground truth for this take, so what is measured is
agreement between views: each camera's inferred view, each knee's probability and the frontal angle the call
rests on, and the spread of each knee's probability over the four cameras.

The cameras' calibration (`pose2sim_multiperson_calib.qca.txt`) does give where each camera stands around the
man (the cameras aim at the walkway's origin, where he balances), though not which way he faces. So the inferred
yaws are checked against it up to one unknown angle: his facing is fitted (the circular mean of camera azimuth
less inferred yaw over the cameras) and each camera's calibrated yaw (azimuth less that facing) is printed
beside the inferred one.

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
CALIBRATION = "pose2sim_multiperson_calib.qca.txt"


def camera_azimuths_deg(path: Path) -> dict[str, float]:
    """Each camera's azimuth around the world origin (degrees, counter-clockwise from +x, z up) from a Qualisys
    calibration file: the `transform` element's x and y (mm) are the camera's position."""
    import math
    import xml.etree.ElementTree as ET

    out = {}
    for camera in ET.parse(path).getroot().iter("camera"):
        transform = camera.find("transform")
        out[camera.get("serial")] = math.degrees(math.atan2(float(transform.get("y")), float(transform.get("x"))))
    return out


def fit_facing(azimuths: dict[str, float], yaws: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The subject's facing azimuth that best explains the inferred camera yaws (a camera's yaw is its azimuth
    less the facing, + towards the subject's left), and each camera's yaw by the calibration under it."""
    import numpy as np

    diffs = np.radians([azimuths[c] - yaws[c] for c in yaws])
    facing = float(np.degrees(np.arctan2(np.sin(diffs).mean(), np.cos(diffs).mean())))
    return facing, {c: (azimuths[c] - facing + 180.0) % 360.0 - 180.0 for c in yaws}


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
    _check_views(clips, args.videos / CALIBRATION)

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


def _check_views(clips, calibration: Path) -> None:
    """Print each camera's inferred view beside its calibrated yaw (`fit_facing`)."""
    from valgusml.features.view import read_view

    if not calibration.is_file():
        print(f"no calibration file {calibration}: views not checked")
        return
    views = {f"cam{k:02d}": read_view(seq.to_canonical().seen_keypoints()) for k, seq in clips.items()}
    facing, calibrated = fit_facing(camera_azimuths_deg(calibration), {c: v.yaw_deg for c, v in views.items()})
    print(f"inferred views against the calibration (fitted facing azimuth {facing:.1f} deg):")
    print("| camera | inferred view | inferred yaw | calibrated yaw | difference |\n|---|---|---|---|---|")
    for camera, view in views.items():
        difference = (view.yaw_deg - calibrated[camera] + 180.0) % 360.0 - 180.0
        print(f"| {camera} | {view.facing} | {view.yaw_deg:.1f} | {calibrated[camera]:.1f} | {difference:.1f} |")


def _frames(seq, start: int, stop: int):
    """`seq` cut to frames `start:stop` (a KeypointSequence with the same meta)."""
    from dataclasses import replace

    return replace(seq, keypoints=seq.keypoints[start:stop], confidence=seq.confidence[start:stop])


if __name__ == "__main__":
    main()
