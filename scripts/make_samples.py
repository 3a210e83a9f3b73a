"""Write data/samples/: one small file per supported input format, made by the project's own writers.

    python scripts/make_samples.py [--out data/samples]

The motion is `valgusml.io.samples` (a squat with a mild right-knee valgus). The OpenPose and COCO samples
carry a second, smaller person walking behind, so they exercise the multi-person tracking.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

from valgusml.io import coco, mediapipe, npz, openpose, samples, trc

LABELS = [
    # file, athlete_id, task, then left/right valgus, mechanism, severity
    ("squat_mediapipe.json", "A01", "bilateral_squat", False, "none", 2.0, True, "hip_weakness", 14.5),
    ("squat_mediapipe.csv", "A01", "bilateral_squat", False, "none", 2.0, True, "hip_weakness", 14.5),
    ("squat_openpose", "A02", "bilateral_squat", False, "none", 1.0, True, "pronation", 12.0),
    ("squat_halpe26.json", "A02", "bilateral_squat", False, "none", 1.0, True, "pronation", 12.0),
    ("squat_coco17.json", "A03", "bilateral_squat", None, None, None, None, None, None),  # unlabelled
    ("squat.trc", "A03", "bilateral_squat", False, "none", 0.0, True, "limited_dorsiflexion", 11.0),
    ("squat.npz", "A04", "bilateral_squat", False, "none", 0.0, True, "adductor_tfl_overactivity", 13.0),
]
COLUMNS = ["file", "athlete_id", "task", "left_valgus", "left_mechanism", "left_severity_deg", "right_valgus",
           "right_mechanism", "right_severity_deg"]


def make_samples(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    (mp_norm,) = samples.squat_2d("mediapipe33", normalized=True)
    written.append(mediapipe.write_json(mp_norm.replace(id="squat_mediapipe"), out / "squat_mediapipe.json"))
    (mp_px,) = samples.squat_2d("mediapipe33")
    written.append(mediapipe.write_csv(mp_px, out / "squat_mediapipe.csv"))
    folder = out / "squat_openpose"
    if folder.exists():
        shutil.rmtree(folder)
    written.append(openpose.write(samples.squat_2d("body25", bystander=True), folder, stem="squat"))
    written.append(coco.write(samples.squat_2d("halpe26", bystander=True), out / "squat_halpe26.json"))
    written.append(coco.write(samples.squat_2d("coco17", bystander=True), out / "squat_coco17.json",
                              image_names=False, track_ids=False))
    squat = samples.squat_3d(fps=60.0)
    written.append(trc.write(squat, out / "squat.trc", units="mm", up_axis="y"))
    labelled = squat.replace(labels={
        "left": {"valgus": False, "mechanism": "none", "severity_deg": 0.0},
        "right": {"valgus": True, "mechanism": "adductor_tfl_overactivity", "severity_deg": 13.0},
    })
    written.append(npz.write(labelled, out / "squat.npz"))
    with open(out / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in LABELS:
            writer.writerow(["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in row])
    written.append(out / "labels.csv")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "samples")
    args = parser.parse_args(argv)
    for path in make_samples(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
