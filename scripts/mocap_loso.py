"""Does fine-tuning on the motion capture of other people help a new person? Leave one person out (a benchmark).

    python scripts/mocap_loso.py ../shared/realdata               # reports/mocap_loso; ~2.5 min a person, 2 cores
    python scripts/mocap_loso.py MY_MOCAP --repeat 10 --baseline exports/default -- trainer.max_epochs=6

Each folder under ROOT that holds 3D recordings is one person (as OpenCap and Pose2Sim lay them out). For each
person in turn, everyone else's recordings are
- labelled by the presence rule (`valgusml convert --label-by-rule --athlete-from folder`),
- filmed as 2D views (`valgusml film`: |yaw| 0-45 and 135-180 deg, four estimators, `--copies` each),
- and added to make run's fine-tuning of the shipped start (`valgusml train experiment=default
  data.extra_train_dirs=[...] data.extra_train_repeat=N`; overrides after `--` are passed on).
The held-out person's recordings are then scored by the real-motion suite (3D and rendered views, labelled by
the rule on their own joint centres) with the fold's export and with `--baseline`. A fold whose export exists is
not trained again, so an interrupted run goes on where it stopped. One row per held-out person:
limb-views within ±20 deg of square on (front and rear) that agree with the rule, and the valgus ones called.
docs/experiments.md (Real motion capture beside synthetic data) has the figures of ../shared/realdata.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

YAW_BANDS = ((0.0, 45.0), (135.0, 180.0))
ESTIMATORS = ("mediapipe", "rtmpose", "openpose", "generic")


def people(root: Path) -> list[Path]:
    """The folders under `root` holding recordings the real-motion suite reads (videos left out)."""
    from valgusml.evaluation.transfer.real_motion import find_recordings

    return sorted({path.parent for path in find_recordings([root])})


def square_on_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Limb-views within ±20 deg of square on: how many, how many agree with the (female) rule, how many the
    rule calls valgus and how many of those are called."""
    from valgusml.evaluation.transfer.real_motion import near_square_on

    near = near_square_on(rows)
    return {"limb_views": len(near), "agree": sum(r["call"] == r["rule_female"] for r in near),
            "valgus": sum(r["rule_female"] for r in near), "valgus_called": sum(r["call"] and r["rule_female"] for r in near),
            "false_calls": sum(r["call"] and not r["rule_female"] for r in near)}


def fine_tune(others: list[Path], work: Path, args: argparse.Namespace) -> Path:
    """Label, film and train on `others`; the fold's export folder."""
    from valgusml.data import open_dataset
    from valgusml.data.convert import convert
    from valgusml.data.format import write_dataset_whole
    from valgusml.evaluation.transfer.film import film_views

    mocap_3d, mocap_2d, export = work / "mocap_3d", work / "mocap_2d", work / "export"
    if (export / "model.json").is_file():  # an interrupted run goes on from the folds it finished
        return export
    # Both data sets are written whole or not at all, so a resumed run redoes only what it lacks.
    if not mocap_3d.exists():
        convert(others, mocap_3d, label_by_rule=True, athlete_from="folder")
    if not mocap_2d.exists():
        write_dataset_whole(mocap_2d, film_views(open_dataset(mocap_3d), YAW_BANDS, ESTIMATORS, args.copies, args.seed))
    command = [sys.executable, "-m", "valgusml.cli", "train", "experiment=default",
               f"data.extra_train_dirs=[{mocap_2d},{mocap_3d}]", f"data.extra_train_repeat={args.repeat}",
               f"task_name=mocap_loso_{work.name}", f"export_dir={export}", *args.overrides]
    with open(work / "train.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    return export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a folder of people's folders of 3D recordings")
    parser.add_argument("--out", type=Path, default=Path("reports/mocap_loso"))
    parser.add_argument("--baseline", type=Path, default=Path("exports/default"), help="the predictor to compare to")
    parser.add_argument("--repeat", type=int, default=10, help="data.extra_train_repeat")
    parser.add_argument("--copies", type=int, default=5, help="filmings per yaw band and estimator")
    parser.add_argument("--seed", type=int, default=0)
    parser.epilog = "Hydra overrides for the fine-tuning go after --, e.g. -- init_blend=null trainer.max_epochs=6"
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.overrides = argv[cut + 1:]

    from valgusml import Predictor
    from valgusml.evaluation.transfer.real_motion import run_suite

    folders = people(args.root)
    if len(folders) < 2:
        parser.error(f"{args.root}: leaving one person out needs at least two people's folders, found {len(folders)}")
    # Each fold's model is scored on its held-out person's folder alone: the suite films a recording alike
    # whatever is rendered beside it, so these are the full suite's views of that person.
    baseline = Predictor.load(args.baseline)
    results = []
    for held_out in folders:
        work = args.out / held_out.name
        work.mkdir(parents=True, exist_ok=True)
        export = fine_tune([f for f in folders if f != held_out], work, args)
        row = {"held_out": held_out.name, "baseline": square_on_counts(run_suite(baseline, [held_out])),
               "fine_tuned": square_on_counts(run_suite(Predictor.load(export), [held_out]))}
        results.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))

    def cell(counts: dict[str, int]) -> str:
        return (f"{counts['agree'] / counts['limb_views']:.3f} ({counts['valgus_called']} of {counts['valgus']} "
                f"valgus called, {counts['false_calls']} false)")

    print(f"\n| held out | {args.baseline} | fine-tuned on the others (x{args.repeat}) |\n|---|---|---|")
    for row in results:
        print(f"| {row['held_out']} | {cell(row['baseline'])} | {cell(row['fine_tuned'])} |")
    pooled = {k: {key: sum(r[k][key] for r in results) for key in results[0][k]} for k in ("baseline", "fine_tuned")}
    print(f"| pooled | {cell(pooled['baseline'])} | {cell(pooled['fine_tuned'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
