"""`valgusml predict DIR FILE... [--skeleton S] [--fps F] [--task T] [--sex S] [--format F|table] [--person K]
[--output results.jsonl|.json|.csv]`.

Reads each file with `valgusml.io.read` (any importer format), predicts with the predictor folder DIR and prints
one JSON object per file: `{"file": ..., **Prediction.to_dict()}`. With `--output`, the results go to a JSON
Lines, JSON (one array) or CSV file instead. A file that cannot be read or predicted gets one line on stderr
(`valgusml predict: FILE: reason`) and the others are still done; the exit status is then 1. A flag's value that
no file could use (`--fps -1`, `--skeleton foo`, ...) is refused before any file is read (exit status 2).
`--format table` prints a human-readable summary per file instead of JSON (the other `--format` values name the
input reader, as `--input-format` does). Video files are read like pose files (`valgusml.io.read_video`); the
`valgusml predict` command adds `--overlay`/`--plot` pictures through `valgusml.viz.cli`, which calls `main` here
with `on_prediction`.
Torch-free: only numpy, scipy and onnxruntime are imported.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from valgusml import limits
from valgusml.errors import InputError, ModelFileError, ValgusMLError
from valgusml.features.rule import SEXES
from valgusml.io import FORMATS
from valgusml.io.video import is_video
from valgusml.labels import LIMBS, MECHANISMS, check_task
from valgusml.skeleton import SKELETONS

OUTPUT_FORMATS = ("table", "jsonl")
OUTPUT_SUFFIXES = (".jsonl", ".json", ".csv")
CSV_COLUMNS = (
    "file",
    "valgus_probability",
    "valgus",
    "mechanism",
    "severity_deg",
    "limb",
    *(f"p_{m}" for m in MECHANISMS),
    *(f"{limb}_{f}" for limb in LIMBS for f in ("valgus_probability", "valgus", "mechanism", "severity_deg")),
    "warnings",
    "error",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="valgusml predict", description="Predict knee valgus and its mechanism from pose files."
    )
    parser.add_argument("model", metavar="DIR", help="predictor folder written by `valgusml export`")
    parser.add_argument("files", metavar="FILE", nargs="+", help="pose files (any supported format)")
    parser.add_argument("--skeleton", type=known_skeleton,
                        help="skeleton of the keypoints when the file does not say: "
                             f"{', '.join(sorted(SKELETONS))}")
    parser.add_argument("--fps", type=frame_rate, help="frame rate of the recording (overrides the file's)")
    parser.add_argument("--task", type=known_task,
                        help="the movement every file records (e.g. single_leg_squat_left, drop_vertical_jump): "
                             "which knee is loaded, which phase is scored and, for 3D input, the rule's threshold; "
                             "default: the file's own, else read from the motion")
    parser.add_argument("--sex", choices=SEXES,
                        help="3D input: whose threshold the measured angle is held to (default: both averaged)")
    parser.add_argument("--format", type=output_or_input_format,
                        help="`table` for a human-readable summary on stdout; otherwise the input format, as "
                        "--input-format")
    parser.add_argument("--input-format", type=input_format,
                        help=f"input format: {', '.join(FORMATS)} (default: detected from the file)")
    parser.add_argument("--person", type=person_index, help="which person of a multi-person file (0 = most prominent)")
    parser.add_argument("--output", help="write results to a .jsonl, .json (one array) or .csv file instead of stdout")
    parser.add_argument("--threads", type=positive_int, default=1, help="ONNX Runtime threads (default 1)")
    parser.add_argument("--network-on-3d", action="store_true",
                        help="3D input: the network's valgus estimate instead of the measured frontal-plane angle")
    return parser


def known_task(text: str) -> str:
    """argparse type: a task the rule and the predictor score (`labels.check_task`)."""
    try:
        return check_task(text.strip())
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def frame_rate(text: str) -> float:
    """argparse type: a frame rate a recording can have (finite, > 0, within `valgusml.limits`): refused as the
    flag's error, not once per file."""
    try:
        return limits.current().check_fps(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def known_skeleton(text: str) -> str:
    """argparse type: a skeleton name `valgusml.SKELETONS` knows."""
    if text not in SKELETONS:
        raise argparse.ArgumentTypeError(f"unknown skeleton {text!r}; supported: {', '.join(sorted(SKELETONS))}")
    return text


def input_format(text: str) -> str:
    """argparse type: a reader `valgusml.io.read` has."""
    if text not in FORMATS:
        raise argparse.ArgumentTypeError(f"unknown format {text!r}; supported: {', '.join(FORMATS)}")
    return text


def output_or_input_format(text: str) -> str:
    """argparse type of `--format`: an output format (`table`, `jsonl`) or, as `--input-format`, a reader."""
    return text if text in OUTPUT_FORMATS else input_format(text)


def integer_at_least(minimum: int, noun: str = "integer") -> Callable[[str], int]:
    """argparse type: an integer >= `minimum`, refused as the flag's error (named `noun` in it)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an {noun} >= {minimum}, got {text!r}")
        return value

    return parse


positive_int = integer_at_least(1)  # 0 threads or workers would mean nothing runs
person_index = integer_at_least(0, "index")  # 0: the most prominent person


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"file": record["file"], "error": record.get("error", "")}
    if "error" in record:
        return row
    for key in ("valgus_probability", "valgus", "mechanism", "severity_deg", "limb"):
        row[key] = record[key]
    for m in MECHANISMS:
        row[f"p_{m}"] = record["mechanism_probabilities"][m]
    for limb in LIMBS:
        for f in ("valgus_probability", "valgus", "mechanism", "severity_deg"):
            row[f"{limb}_{f}"] = record["limbs"][limb][f]
    row["warnings"] = "; ".join(record["warnings"])
    return row


def read_sequence(path: str, args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The file's sequence (with --fps / --skeleton applied) and the reader's warnings (assumed fps, ...)."""
    from valgusml import io
    from valgusml.io import FPS_ASSUMED, fps_assumed, without_assumed_fps

    # `--fps` goes to the pose readers (a format without a frame rate then assumes none and says nothing); a video's
    # rate is its container's, which `read_video` takes no option for: replaced below like any file's.
    video = is_video(path) or _input_format(args) == "video"
    options = {"fps": args.fps} if args.fps is not None and not video else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seq = io.read(path, format=_input_format(args), person=args.person, **options)
    notes = [_strip_path(str(w.message), path) for w in caught]
    changes: dict[str, Any] = {}
    if args.fps is not None and seq.fps != args.fps:
        changes["fps"] = args.fps
    if args.fps is not None and fps_assumed(seq.meta or {}):  # a video without a rate: --fps is not a guess
        notes = [note for note in notes if note != seq.meta[FPS_ASSUMED].get("warning")]
        changes["meta"] = without_assumed_fps(seq.meta)
    if args.skeleton is not None and args.skeleton != seq.skeleton:
        changes["skeleton"] = args.skeleton
    if args.task and args.task != seq.task:
        changes["task"] = args.task
    if args.sex:
        changes["meta"] = {**changes.get("meta", seq.meta or {}), "sex": args.sex}
    return (seq.replace(**changes) if changes else seq), notes


def _input_format(args: argparse.Namespace) -> str | None:
    return args.input_format or (None if args.format in OUTPUT_FORMATS else args.format)


def table(record: dict[str, Any]) -> str:
    """A few lines a person reads: the call per limb, the worst segments, the warnings."""
    if "error" in record:
        return f"{record['file']}: ERROR {record['error']}"
    lines = [f"{record['file']}: valgus probability {record['valgus_probability']:.2f} "
             f"({record['limb']} limb), mechanism {record['mechanism']}"]
    for limb in LIMBS:
        lp = record["limbs"][limb]
        call = "VALGUS" if lp["valgus"] else "no valgus"
        lines.append(f"  {limb:<5}  {call:<9}  p {lp['valgus_probability']:.2f}  {lp['mechanism']:<26}"
                     f"  severity {lp['severity_deg'] if lp['severity_deg'] is None else round(lp['severity_deg'], 1)} deg")
    timeline = record.get("timeline") or []
    if timeline:
        def highest(segment: dict[str, Any]) -> float:  # a limb unseen in a segment has no probability (None)
            return max((p for p in segment["valgus_probability"].values() if p is not None), default=-1.0)

        worst = max(timeline, key=highest)
        lines.append(f"  {len(timeline)} segment(s); worst {worst['start_s']:.2f}-{worst['end_s']:.2f} s: "
                     + ", ".join(f"{limb} {_probability(worst['valgus_probability'][limb])}" for limb in LIMBS))
    lines += [f"  ! {w}" for w in record.get("warnings", [])]
    return "\n".join(lines)


def _probability(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.2f}"


def _strip_path(message: str, path: str) -> str:
    """Messages from the importers start with the path; the record already names the file."""
    message = " ".join(message.split())
    while message.startswith(f"{path}: "):
        message = message[len(path) + 2 :]
    return message


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None,
         on_prediction: Callable[[str, Any, Any, argparse.Namespace], list[str]] | None = None) -> int:
    """`on_prediction(path, sequence, prediction, args)` runs after each prediction (pictures); the lines it
    returns join the record's warnings."""
    args = (parser or build_parser()).parse_args(argv)
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in OUTPUT_SUFFIXES:
        print(f"valgusml predict: --output must end in {', '.join(OUTPUT_SUFFIXES)}, got {output.name!r}",
              file=sys.stderr)
        return 2
    from valgusml.predictor import Predictor

    try:
        predictor = Predictor.load(args.model, threads=args.threads, measure_3d=not args.network_on_3d)
    except ModelFileError as exc:
        print(f"valgusml predict: {exc}", file=sys.stderr)
        return 2

    records: list[dict[str, Any]] = []
    failures = 0
    for path in args.files:
        try:
            seq, notes = read_sequence(path, args)
            prediction = predictor.predict(seq)
            record = {"file": path, **prediction.to_dict()}
            record["warnings"] = notes + record["warnings"]
            if on_prediction is not None:
                record["warnings"] += on_prediction(path, seq, prediction, args)
        except (ValgusMLError, OSError, MemoryError) as exc:
            # MemoryError: a backstop only (valgusml.limits refuses what would need it); one file's failure
            # must not cost the others their results.
            failures += 1
            message = _strip_path(str(exc) or type(exc).__name__, path)  # one line, whatever the reader said
            print(f"valgusml predict: {path}: {message}", file=sys.stderr)
            record = {"file": path, "error": message}
        records.append(record)
        if output is None and args.format == "table":
            print(table(record), flush=True)
        elif output is None and "error" not in record:
            print(json.dumps(record), flush=True)

    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix.lower() == ".csv":
            with output.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
                writer.writeheader()
                writer.writerows(csv_row(r) for r in records)
        elif output.suffix.lower() == ".json":  # one JSON document, as the name promises (JSON Lines is not one)
            with output.open("w", encoding="utf-8") as fh:
                json.dump(records, fh)
                fh.write("\n")
        else:
            with output.open("w", encoding="utf-8") as fh:
                for r in records:
                    fh.write(json.dumps(r) + "\n")
        print(f"valgusml predict: {len(records) - failures} of {len(records)} file(s) -> {output}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
