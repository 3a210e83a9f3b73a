"""Video in: `read_video("clip.mp4") -> KeypointSequence` with MediaPipe Pose (BlazePose, offline).

    seq = valgusml.io.read_video("clip.mp4")            # mediapipe33, pixels, confidence = visibility
    seq = valgusml.io.read_video("clip.mp4", person=1)  # the next person, with the first one painted over
    valgusml keypoints clip.mp4 --out clip.csv           # the same, saved as a MediaPipe CSV

MediaPipe runs in this process when it imports (an environment made with `pip install "valgusml[video]"`), and
otherwise in the video environment that `make video` builds (`.venv-video`, or the Python named by
`VALGUSML_VIDEO_PYTHON`) through `valgusml.io.video_worker`, which streams its results to a temporary folder.
MediaPipe pins protobuf < 5, which the train extras refuse: docs/video.md has the measurements.

Who is read: MediaPipe's legacy Pose follows ONE person per pass. Its detector picks whom to follow (in
practice the most prominent person) and re-detects when it loses them, possibly on someone else. Pass 0 is
split where the followed box jumps; the pieces are grouped by box continuity and the largest and most
persistent group is kept (as the other importers rank tracks). `person=K` runs K+1 passes, each with the people
found by the passes before painted over, and keeps the person found by pass K. Warnings say whom (the box in
pixels) and where the tracker jumped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.errors import FormatError, InputError, MissingDependencyError
from valgusml.io import _common, video_worker
from valgusml.io.tracking import MAX_COST, Detection, box, box_cost
from valgusml.leftovers import remove_left_by_dead
from valgusml.sequence import KeypointSequence

SKELETON = "mediapipe33"
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".3gp")
VIDEO_PYTHON_ENV = "VALGUSML_VIDEO_PYTHON"
# Beyond this many frames a progress bar is shown (when stderr is a terminal or progress=True).
PROGRESS_MIN_FRAMES = 300
HIGH_FPS = 120.0
# A keypoint counts towards a person's box when MediaPipe thinks it is at least this visible.
BOX_VISIBILITY = 0.5
_ERRORS = {"FormatError": FormatError, "InputError": InputError}
# A read's temporary folder, `valgusml-video-PID.XXXXXXXX` in the temporary directory: named by its process, so that
# what a killed read left (a SIGKILL runs no clean-up) is known stale once that process is gone, and swept by the
# next read, as `data.format.staging_dir` sweeps a killed writer's `.NAME.partial-PID`.
WORK_PREFIX = "valgusml-video-"


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


# -------------------------------------------------------------------------------------------- backends
def _mediapipe_in_process() -> bool:
    if os.environ.get(VIDEO_PYTHON_ENV) == "subprocess-only":
        return False
    if importlib.util.find_spec("mediapipe") is None or importlib.util.find_spec("cv2") is None:
        return False
    try:
        import cv2  # noqa: F401
        import mediapipe  # noqa: F401
    except Exception:  # a broken install (protobuf too new, ...): the video environment may still work
        return False
    return True


def video_python() -> Path | None:
    """The Python of the video environment: $VALGUSML_VIDEO_PYTHON, else `.venv-video` of this source checkout."""
    named = os.environ.get(VIDEO_PYTHON_ENV)
    if named and named != "subprocess-only":
        return Path(named) if Path(named).exists() else None
    candidate = Path(__file__).resolve().parents[2] / ".venv-video" / "bin" / "python"
    return candidate if candidate.exists() else None


def backend() -> str:
    """'in-process', 'subprocess' or 'none': how video would be read here."""
    if _mediapipe_in_process():
        return "in-process"
    return "subprocess" if video_python() is not None else "none"


def missing_backend_error(path: Path | str) -> MissingDependencyError:
    return MissingDependencyError(
        f"{path}: reading video needs MediaPipe, which is not installed here. Run `make video` in the valgusml "
        f"checkout (it builds .venv-video, used automatically), or set {VIDEO_PYTHON_ENV} to the Python of an "
        'environment with `pip install "valgusml[video]"` (MediaPipe pins protobuf < 5, see docs/video.md)'
    )


def run_in_video_env(module: str, args: list[str], path: Path, label: str,
                     on_progress: Callable[[int, int | None], None] | None = None) -> None:
    """Run `python -m module args` in the video environment, relaying its `progress DONE TOTAL` lines."""
    python = video_python()
    if python is None:
        raise missing_backend_error(path)
    env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as errors, _ctrl_c_held() as release:
        process = subprocess.Popen([str(python), "-m", module, *args], stdout=subprocess.PIPE, stderr=errors,
                                   env=env, text=True)
        assert process.stdout is not None
        try:
            release()
            with process.stdout:
                for line in process.stdout:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == "progress" and on_progress is not None:
                        on_progress(int(parts[1]), int(parts[2]) or None)
        except BaseException:
            # Ctrl-C or an error here: the worker would run on (into the temporary folder being deleted, which it
            # recreates) until its next progress line hits the closed pipe.
            _stop(process)
            raise
        code = process.wait()
        if code != 0:
            errors.seek(0)
            tail = errors.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise InputError(f"{path}: {label} failed in the video environment ({python}, exit {code}): "
                             + " | ".join(tail))


@contextmanager
def _ctrl_c_held() -> Iterator[Callable[[], None]]:
    """Hold a Ctrl-C back while a worker starts; the `release()` it yields lets it through, as a KeyboardInterrupt
    raised there. A Ctrl-C raised inside `Popen`, after the fork, would leave the caller no handle to stop the
    worker with, and the worker would run on. Only where Python's own handler is in place, in the main thread
    (the only one signals reach); elsewhere `release` does nothing."""
    if threading.current_thread() is not threading.main_thread() or (
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield lambda: None
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    restored = False

    def release() -> None:
        nonlocal restored
        if not restored:
            restored = True
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if held:
                raise KeyboardInterrupt

    try:
        yield release
    finally:
        release()  # where the worker never started (Popen failed), a held Ctrl-C goes to what follows


def _stop(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """End a worker and wait for it: SIGTERM, then SIGKILL if it has not exited within `grace_s`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Progress:
    """A rich progress bar on long videos; silent on short ones, when rich is absent or when told so."""

    def __init__(self, path: Path, label: str, show: bool | None) -> None:
        self.path, self.label, self.show, self.bar, self.task = path, label, show, None, None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None and self._wanted(total):
            try:
                from rich.progress import Progress
            except ImportError:
                self.show = False
                return
            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task(f"{self.label} {self.path.name}", total=total)
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def _wanted(self, total: int | None) -> bool:
        if self.show is None:
            return bool(total and total >= PROGRESS_MIN_FRAMES) and sys.stderr.isatty()
        return self.show

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _run_pass(path: Path, model_complexity: int, masks: np.ndarray | None, progress: _Progress,
              work: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    out = work / f"pass{0 if masks is None else len(masks)}"
    if _mediapipe_in_process():
        try:
            info = video_worker.extract(path, out, model_complexity, masks, progress)
        except video_worker.VideoReadError as exc:
            info = {"error": str(exc), "error_type": exc.kind}
    else:
        args = [str(path), str(out), "--model-complexity", str(model_complexity)]
        if masks is not None:
            np.save(work / "masks.npy", masks)
            args += ["--masks", str(work / "masks.npy")]
        run_in_video_env("valgusml.io.video_worker", args, path, "MediaPipe Pose", progress)
        info_path = out / video_worker.INFO_FILE
        if not info_path.exists():
            raise InputError(f"{path}: the video worker ended without a result")
        info = json.loads(info_path.read_text())
    if "error" in info:
        raise _ERRORS.get(info["error_type"], InputError)(info["error"])
    times, landmarks = video_worker.read_landmarks(out)
    return times, landmarks, info


def _work_dir() -> tempfile.TemporaryDirectory:
    """A new temporary folder for one read, named by this process, after sweeping those of killed reads."""
    remove_stale_work_dirs()
    return tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}.")


def remove_stale_work_dirs(root: str | Path | None = None) -> list[Path]:
    """Delete the read folders in `root` (default: the temporary directory) whose process no longer runs; returns
    them. A running process's stay, this one's too (another thread of it may be reading)."""
    return remove_left_by_dead(Path(root or tempfile.gettempdir()).glob(f"{WORK_PREFIX}*.*"),
                               lambda name: name[len(WORK_PREFIX):].partition(".")[0], keep_own=True)


# ------------------------------------------------------------------------------------------ who is read
def _boxes(landmarks: np.ndarray) -> np.ndarray:
    """(T, 4) box of each frame's confidently seen keypoints (all keypoints if none is); NaN where nobody."""
    out = np.full((len(landmarks), 4), np.nan)
    for t, frame in enumerate(landmarks):
        if not np.isfinite(frame[:, :2]).all():
            continue
        seen = frame[:, 2] >= BOX_VISIBILITY
        b = box(Detection(frame[:, :2], seen.astype(float) if seen.any() else np.ones(len(frame))))
        if b is not None:
            out[t] = b
    return out


def _groups(boxes: np.ndarray) -> list[np.ndarray]:
    """Frames of one pass grouped into people: split where the box jumps, pieces joined by box continuity.

    Returns frame-index arrays, best first (size × persistence: the sum of box diagonals, as `tracking.link`).
    """
    frames = np.flatnonzero(np.isfinite(boxes).all(axis=1))
    pieces: list[list[int]] = []
    for t in frames:
        if pieces and box_cost(boxes[pieces[-1][-1]], boxes[t]) <= MAX_COST:
            pieces[-1].append(int(t))
        else:
            pieces.append([int(t)])
    groups: list[list[int]] = []
    for piece in pieces:
        costs = [box_cost(boxes[g[-1]], boxes[piece[0]]) for g in groups]
        best = int(np.argmin(costs)) if costs else -1
        if best >= 0 and costs[best] <= MAX_COST:
            groups[best].extend(piece)
        else:
            groups.append(piece)
    diag = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    ranked = sorted(groups, key=lambda g: -float(np.sum(diag[g])))
    return [np.asarray(g) for g in ranked]


def _others(group: np.ndarray, groups: list[np.ndarray]) -> str:
    """Where the tracker followed someone else: frame ranges of the other groups (at most 5)."""
    spans = sorted((int(g[0]), int(g[-1])) for g in groups if g is not group)
    return ", ".join(f"{a}-{b}" for a, b in spans[:5])


def _box_text(boxes: np.ndarray, frames: np.ndarray) -> str:
    x0, y0, x1, y1 = np.median(boxes[frames], axis=0)
    return f"box x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px (median over its frames)"


# ----------------------------------------------------------------------------------------------- reader
def read_video(path: str | Path, person: int | None = None, model_complexity: int = 1,
               progress: bool | None = None) -> KeypointSequence:
    """Pose keypoints of one person in a video: `mediapipe33`, pixel coordinates of the upright frames,
    confidence = MediaPipe's visibility, fps and rotation from the container (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise FormatError(f"{path}: file is empty")
    if model_complexity not in (0, 1, 2):
        raise InputError(f"{path}: model_complexity must be 0, 1 or 2, got {model_complexity!r}")
    if person is not None and (isinstance(person, bool) or not isinstance(person, (int, np.integer)) or person < 0):
        raise InputError(f"{path}: person must be an index >= 0, got {person!r}")
    if backend() == "none":
        raise missing_backend_error(path)
    wanted = int(person or 0)
    found: list[tuple[np.ndarray, np.ndarray]] = []  # (frames, boxes) per person found, in pass order
    progress_bar = _Progress(path, "MediaPipe Pose", progress)
    notes: list[str] = []
    try:
        with _work_dir() as work:
            for k in range(wanted + 1):
                masks = None
                if found:
                    masks = np.stack([np.where(np.isin(np.arange(len(b)), f)[:, None], b, np.nan) for f, b in found])
                times, landmarks, info = _run_pass(path, model_complexity, masks, progress_bar, Path(work))
                boxes = _boxes(landmarks)
                groups = _groups(boxes)
                if not groups:
                    break
                found.append((groups[0], boxes))
                if k == wanted:
                    chosen_landmarks, chosen_groups = landmarks, groups
    finally:
        progress_bar.close()
    n_frames = info["frames_decoded"]
    if not found:
        raise InputError(f"{path}: MediaPipe Pose found no person in any of its {n_frames} frames")
    if len(found) <= wanted:
        raise InputError(f"{path}: person={wanted} asked for but only {len(found)} person(s) found (pass k paints "
                         "over the people of passes 0..k-1; 0 = the one MediaPipe follows first)")
    frames, boxes = found[wanted]
    keep = np.zeros(n_frames, dtype=bool)
    keep[frames] = True
    keypoints = np.where(keep[:, None, None], chosen_landmarks[:, :, :2], np.nan)
    confidence = np.where(keep[:, None], _common.as_confidence(chosen_landmarks[:, :, 2]), 0.0)
    confidence[~np.isfinite(keypoints).all(axis=-1)] = 0.0

    how = "the person MediaPipe follows first" if wanted == 0 else f"person={wanted}: found with {wanted} painted over"
    notes.append(f"MediaPipe Pose follows one person per pass; kept {how}, present in {len(frames)}/{n_frames} "
                 f"frames, {_box_text(boxes, frames)}. Pass person=K (CLI --person K) for another one")
    if len(chosen_groups) > 1:
        notes.append(f"the tracker jumped to {len(chosen_groups) - 1} other people (frames "
                     f"{_others(frames, chosen_groups)}); those frames are left out")
    meta: dict[str, Any] = {
        "coordinates": "pixel",
        "image_width": info["width"],
        "image_height": info["height"],
        "rotation_deg": info["rotation_deg"],
        "frames_decoded": n_frames,
        "frames_announced": info["frames_announced"],
        "codec": info["codec"],
        "pose_model": info["model"],
        "person": wanted,
        "n_people": len(found),
        "person_box_px": [round(float(v), 1) for v in np.median(boxes[frames], axis=0)],
    }
    fps = info["fps"] or _common.fps_from_times(times / 1000.0)
    if fps is None:
        fps = _common.assume_default_fps(meta, notes, f"the container gives no frame rate; assumed "
                                         f"{_common.DEFAULT_FPS:g} fps")
    notes += _container_notes(info)
    return _common.finish(path, keypoints, confidence, SKELETON, _common.checked_fps(path, fps), "video", meta, notes)


def _container_notes(info: dict[str, Any]) -> list[str]:
    notes = []
    announced, decoded = info["frames_announced"], info["frames_decoded"]
    if announced and decoded < announced - 1:  # containers often announce one frame more than they hold
        notes.append(f"decoding stopped at frame {decoded} of {announced} announced by the container: the file "
                     f"looks truncated or corrupt; kept frames 0-{decoded - 1}")
    if info["rotation_deg"]:
        notes.append(f"the container says rotate {info['rotation_deg']} degrees; frames were read upright "
                     f"({info['width']}x{info['height']}) and keypoints are in those pixels")
    if info["scaled_to_max_side"]:
        notes.append(f"frames are {info['width']}x{info['height']}: scaled to {video_worker.MAX_SIDE} px on the long "
                     "side for MediaPipe (its landmark model sees 256 px); keypoints are in the original pixels")
    if info["fps"] and info["fps"] > HIGH_FPS:
        notes.append(f"high-speed clip ({info['fps']:g} fps, {decoded} frames): MediaPipe ran on every frame; the "
                     "predictor resamples to its own rate")
    return notes


# ------------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """`valgusml keypoints VIDEO --out FILE.csv|.json [--person K] [--model-complexity 0|1|2]`."""
    from valgusml.errors import ValgusMLError
    from valgusml.io import mediapipe

    parser = argparse.ArgumentParser(prog="valgusml keypoints",
                                     description="Pose keypoints from a video (MediaPipe Pose, offline).")
    parser.add_argument("video")
    parser.add_argument("--out", required=True, help="MediaPipe CSV (.csv) or JSON (.json) to write")
    parser.add_argument("--person", type=int, help="which person (0 = the one MediaPipe follows first)")
    parser.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2),
                        help="MediaPipe Pose model: 0 lite, 1 full (default), 2 heavy (slowest, most accurate)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".json"):
        print(f"valgusml keypoints: --out must end in .csv or .json, got {out.name!r}", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seq = read_video(args.video, person=args.person, model_complexity=args.model_complexity)
        for w in caught:
            print(f"valgusml keypoints: {w.message}", file=sys.stderr)
        mediapipe.write(seq, out)
    except ValgusMLError as exc:
        print(f"valgusml keypoints: {exc}", file=sys.stderr)
        return 1
    seen = int(np.isfinite(seq.keypoints).all(axis=-1).any(axis=-1).sum())
    print(f"valgusml keypoints: {seq.n_frames} frames at {seq.fps:g} fps ({seen} with a person) -> {out}",
          file=sys.stderr)
    return 0


__all__ = ["VIDEO_SUFFIXES", "backend", "is_video", "read_video", "run_in_video_env", "video_python"]
