"""`valgusml predict DIR FILE... [--overlay out.mp4] [--plot out.png] [...]`: the predictor's command
(`valgusml.predictor.cli`) plus pictures of each prediction.

`--plot` draws each knee's FPPA over time with the timeline's segments and probabilities (`viz.plots`); `--overlay`
draws the skeleton, the knee angles and the calls on the video's frames (`viz.overlay`; video inputs only). With
several input files, each picture's name gets the input's name appended (`out_clip1.png`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from valgusml.errors import InputError
from valgusml.predictor import cli as predictor_cli


def build_parser() -> argparse.ArgumentParser:
    parser = predictor_cli.build_parser()
    parser.add_argument("--overlay", help="write the video with the skeleton, knee angles and calls (.mp4)")
    parser.add_argument("--plot", help="write a PNG of each knee's FPPA over time and the probability timeline")
    return parser


def picture_path(given: str, source: str, n_files: int) -> Path:
    path = Path(given)
    return path if n_files == 1 else path.with_name(f"{path.stem}_{Path(source).stem}{path.suffix}")


def draw_pictures(path: str, seq: Any, prediction: Any, args: argparse.Namespace) -> list[str]:
    """Write the pictures asked for; returns lines for the record (where they went)."""
    from valgusml.io.video import is_video

    notes = []
    if args.plot:
        from valgusml.viz.plots import prediction_plot

        out = prediction_plot(seq, prediction, picture_path(args.plot, path, len(args.files)), title=Path(path).name)
        notes.append(f"plot written to {out}")
    if args.overlay:
        if not is_video(path):
            raise InputError(f"{path}: --overlay draws on a video; this input is a pose file")
        from valgusml.viz.overlay import write_overlay

        out = write_overlay(path, picture_path(args.overlay, path, len(args.files)), seq, prediction)
        notes.append(f"overlay written to {out}")
    return notes


def main(argv: list[str] | None = None) -> int:
    return predictor_cli.main(argv, parser=build_parser(), on_prediction=draw_pictures)
