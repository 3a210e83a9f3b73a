"""Write data/samples/: one small file per supported input format, made by the project's own writers.

    python scripts/make_samples.py [--out data/samples]

The motion is `valgusml.io.samples` (a squat whose right knee collapses; labels.csv takes its presence and
severity from the rule). The OpenPose and COCO samples carry a second, smaller person walking behind, so they
exercise the multi-person tracking.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path
from typing import Any

from valgusml.features.rule import apply_rule
from valgusml.io import coco, mediapipe, npz, openpose, samples, trc

# file, athlete_id, task, then the mechanism of the right knee (the left one has none). Presence and severity
# are not written by hand: they are the rule's reading of the motion (`sample_labels`).
LABELS = [
    ("squat_mediapipe.json", "A01", "bilateral_squat", "hip_weakness"),
    ("squat_mediapipe.csv", "A01", "bilateral_squat", "hip_weakness"),
    ("squat_openpose", "A02", "bilateral_squat", "pronation"),
    ("squat_halpe26.json", "A02", "bilateral_squat", "pronation"),
    ("squat_coco17.json", "A03", "bilateral_squat", None),  # unlabelled
    ("squat.trc", "A03", "bilateral_squat", "limited_dorsiflexion"),
    ("squat.npz", "A04", "bilateral_squat", "adductor_tfl_overactivity"),
]
COLUMNS = ["file", "athlete_id", "task", "left_valgus", "left_mechanism", "left_severity_deg", "right_valgus",
           "right_mechanism", "right_severity_deg"]


def sample_labels(rule: dict[str, Any], right_mechanism: str) -> dict[str, dict[str, Any]]:
    """Per-limb labels of the sample motion from `apply_rule` on its 3D joint centres: valgus and severity (peak
    FPPA, 0.1 deg) by the presence rule, the label's own definition (both sexes' thresholds agree on it); the
    mechanism given."""
    labels = {}
    for limb, mechanism in (("left", "none"), ("right", right_mechanism)):
        valgus = rule[limb]["valgus"]
        if len(set(valgus.values())) != 1:
            raise RuntimeError(f"the sample's {limb} knee is valgus for one sex only: {rule[limb]}")
        is_valgus = valgus["female"]
        labels[limb] = {"valgus": is_valgus, "mechanism": mechanism if is_valgus else "none",
                        "severity_deg": round(float(rule[limb]["peak_fppa_deg"]), 1)}
    return labels


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
    rule = apply_rule(squat.keypoints, squat.fps, squat.task)
    written.append(trc.write(squat, out / "squat.trc", units="mm", up_axis="y"))
    written.append(npz.write(squat.replace(labels=sample_labels(rule, "adductor_tfl_overactivity")), out / "squat.npz"))
    with open(out / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for name, athlete, task, mechanism in LABELS:
            row: list[Any] = [name, athlete, task]
            if mechanism is None:
                row += [""] * 6
            else:
                labels = sample_labels(rule, mechanism)
                for limb in ("left", "right"):
                    row += [str(labels[limb]["valgus"]).lower(), labels[limb]["mechanism"], labels[limb]["severity_deg"]]
            writer.writerow(row)
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
