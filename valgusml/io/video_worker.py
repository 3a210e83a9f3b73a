"""The MediaPipe loop behind `valgusml.io.read_video`: decode with OpenCV, run BlazePose, stream landmarks to disk.

It runs in-process where `mediapipe` imports, and otherwise in the video environment (`make video`) as

    .venv-video/bin/python -m valgusml.io.video_worker VIDEO OUT_DIR [--model-complexity 1] [--masks boxes.npy]

OUT_DIR receives `landmarks.f64`, appended frame by frame (one row per decoded frame: time in ms, then 33 ×
(x px, y px, visibility); NaN where nobody was found), and, last, `video.json` (fps, frame size, rotation, frames
announced and decoded, and `error`/`error_type` when the video could not be read). Progress goes to stdout as
`progress DONE TOTAL` lines. Only numpy, OpenCV and MediaPipe are imported: frames are never all held.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

N_LANDMARKS = 33
ROW = 1 + 3 * N_LANDMARKS
LANDMARKS_FILE = "landmarks.f64"
INFO_FILE = "video.json"
# MediaPipe runs its landmark model on a 256 px crop: larger frames only cost decoding and resizing time.
MAX_SIDE = 1920
# Masked people are painted over with a margin around their keypoint box (as a share of its size).
MASK_MARGIN = 0.15


class VideoReadError(Exception):
    """The video cannot be opened or decoded; `kind` names the valgusml error class the caller raises."""

    def __init__(self, message: str, kind: str = "FormatError") -> None:
        super().__init__(message)
        self.kind = kind


def open_video(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """An OpenCV capture (frames upright: the container's rotation applied) and what the container says."""
    import cv2

    path = Path(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoReadError(f"{path}: not a readable video (OpenCV/FFmpeg cannot open it: not a video, or a "
                             "file cut before its index)")
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    fps = capture.get(cv2.CAP_PROP_FPS)
    announced = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    info = {
        "fps": float(fps) if math.isfinite(fps) and fps > 0 else None,
        "frames_announced": int(announced) if math.isfinite(announced) and announced > 0 else None,
        "rotation_deg": int(capture.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360,
        "codec": _fourcc(capture.get(cv2.CAP_PROP_FOURCC)),
    }
    return capture, info


def _fourcc(value: float) -> str:
    code = int(value) if math.isfinite(value) else 0
    return "".join(chr((code >> (8 * k)) & 0xFF) for k in range(4)).strip("\x00 ") or "?"


def frames(capture: Any) -> Iterator[tuple[float, np.ndarray]]:
    """(time in ms, BGR frame) until the stream ends or stops decoding."""
    import cv2

    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        yield float(capture.get(cv2.CAP_PROP_POS_MSEC)), frame


def _paint_masks(frame: np.ndarray, boxes: np.ndarray) -> None:
    """Grey out earlier-found people (boxes (P, 4) in pixels, NaN rows skipped) so the detector looks elsewhere."""
    height, width = frame.shape[:2]
    for x0, y0, x1, y1 in boxes:
        if not np.isfinite([x0, y0, x1, y1]).all():
            continue
        mx, my = MASK_MARGIN * (x1 - x0), MASK_MARGIN * (y1 - y0)
        a, b = max(int(x0 - mx), 0), max(int(y0 - my), 0)
        c, d = min(int(x1 + mx) + 1, width), min(int(y1 + my) + 1, height)
        if c > a and d > b:
            frame[b:d, a:c] = 127


def extract(
    video: str | Path,
    out_dir: str | Path,
    model_complexity: int = 1,
    masks: np.ndarray | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Run MediaPipe Pose over every frame of `video`, appending landmarks to `out_dir`; returns the info dict.

    `masks` (P, T, 4): boxes of people found by earlier passes, painted over frame by frame.
    """
    import cv2
    import mediapipe as mp

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    capture, info = open_video(video)
    total = info["frames_announced"]
    row = np.empty(ROW, dtype=np.float64)
    decoded = 0
    size = None
    try:
        with open(out_dir / LANDMARKS_FILE, "wb") as sink, mp.solutions.pose.Pose(
            static_image_mode=False, model_complexity=model_complexity, smooth_landmarks=True,
            enable_segmentation=False,
        ) as pose:
            for time_ms, frame in frames(capture):
                if size is None:
                    size = (frame.shape[1], frame.shape[0])
                if masks is not None and decoded < masks.shape[1]:
                    _paint_masks(frame, masks[:, decoded])
                image = frame
                if max(size) > MAX_SIDE:
                    scale = MAX_SIDE / max(size)
                    image = cv2.resize(frame, (round(size[0] * scale), round(size[1] * scale)),
                                       interpolation=cv2.INTER_AREA)
                result = pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                row[0] = time_ms
                landmarks = result.pose_landmarks
                if landmarks is None:
                    row[1:] = np.nan
                else:
                    # Normalised coordinates are fractions of the frame's width and height: back to pixels.
                    row[1:] = [v for lm in landmarks.landmark for v in (lm.x * size[0], lm.y * size[1], lm.visibility)]
                sink.write(row.tobytes())
                decoded += 1
                if on_progress is not None and (decoded % 10 == 0 or decoded == total):
                    on_progress(decoded, total)
    finally:
        capture.release()
    if size is None:
        raise VideoReadError(f"{video}: frame 0 cannot be decoded: no picture in this file (not a video, or "
                             "corrupt)")
    info.update(frames_decoded=decoded, width=size[0], height=size[1], scaled_to_max_side=max(size) > MAX_SIDE,
                model=f"mediapipe {mp.__version__} pose (legacy solution), model_complexity={model_complexity}")
    return info


def read_landmarks(out_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(times in ms (T,), landmarks (T, 33, 3) = x px, y px, visibility) from a worker's output folder."""
    data = np.fromfile(Path(out_dir) / LANDMARKS_FILE, dtype=np.float64)
    data = data[: len(data) // ROW * ROW].reshape(-1, ROW)
    return data[:, 0], data[:, 1:].reshape(-1, N_LANDMARKS, 3)


def _write_info(out_dir: Path, info: dict[str, Any]) -> None:
    tmp = out_dir / f".{INFO_FILE}.tmp"
    tmp.write_text(json.dumps(info))
    tmp.replace(out_dir / INFO_FILE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valgusml.io.video_worker")
    parser.add_argument("video")
    parser.add_argument("out_dir")
    parser.add_argument("--model-complexity", type=int, default=1)
    parser.add_argument("--masks", help=".npy of (P, T, 4) boxes to paint over")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    masks = np.load(args.masks) if args.masks else None

    def report(done: int, total: int | None) -> None:
        print(f"progress {done} {total or 0}", flush=True)

    try:
        info = extract(args.video, out_dir, args.model_complexity, masks, report)
    except VideoReadError as exc:
        info = {"error": str(exc), "error_type": exc.kind}
    _write_info(out_dir, info)
    return 0


if __name__ == "__main__":
    # MediaPipe's C++ logging (TFLite delegate lines) is noise for users; the caller keeps stderr for errors.
    os.environ.setdefault("GLOG_minloglevel", "2")
    sys.exit(main())
