"""Speed and memory of `valgusml.io.read_video` against MediaPipe's own loop (run with the video environment):

    .venv-video/bin/python scripts/bench_video.py [--source VIDEO] [--cores 1 2] [--memory-minutes 5]

Test clips are the source rescaled to 1080p and 720p with OpenCV into a temporary folder (never into the repo).
Each measurement runs in a fresh process pinned to N cores (sched_setaffinity); the plain loop
(VideoCapture.read → cvtColor → Pose.process) and read_video alternate on the same clip, best of --repeats. The
memory check loops the clip into an N-minute 1080p video and reports the peak RSS of a process reading it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "video" / "sports2d_demo.mp4"
SIZES = {"1080p": (1920, 1080), "720p": (1280, 720)}


def make_clip(source: Path, out: Path, size: tuple[int, int], n_frames: int | None = None) -> Path:
    """The source rescaled to `size`, played again from the start until `n_frames` when given (streamed: one
    frame held at a time, so the reading processes do not inherit a large parent)."""
    import cv2

    writer = None
    written = 0
    while writer is None or (n_frames and written < n_frames):
        capture = cv2.VideoCapture(str(source))
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), capture.get(cv2.CAP_PROP_FPS) or 30.0,
                                     size)
        while not n_frames or written < n_frames:
            ok, frame = capture.read()
            if not ok:
                break
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
            written += 1
        capture.release()
        if not n_frames:
            break
    writer.release()
    return out


def peak_rss_mb() -> float:
    """VmHWM: this process's own peak (ru_maxrss would include the forked parent's pages before exec)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def plain_loop(path: str) -> int:
    """MediaPipe's documented loop, nothing else."""
    import cv2
    import mediapipe as mp

    capture = cv2.VideoCapture(path)
    n = 0
    with mp.solutions.pose.Pose(model_complexity=1) as pose:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            n += 1
    return n


def ours(path: str) -> int:
    import warnings

    from valgusml.io.video import read_video

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_video(path, person=0, progress=False).n_frames


def child(kind: str, path: str, cores: int) -> None:
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    start = time.perf_counter()
    n = (plain_loop if kind == "plain" else ours)(path)
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    print(json.dumps({"frames": n, "seconds": seconds, "fps": n / seconds, "peak_rss_mb": peak_mb}))


def measure(kind: str, path: Path, cores: int) -> dict:
    env = {**os.environ, "GLOG_minloglevel": "2", "OMP_NUM_THREADS": str(cores)}
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(cores)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-minutes", type=float, nargs="*", default=[5.0])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-video-") as work:
        for name, size in SIZES.items():
            clip = make_clip(args.source, Path(work) / f"{name}.mp4", size)
            for cores in args.cores:
                best: dict[str, float] = {}
                for _ in range(args.repeats):
                    for kind in ("plain", "ours"):
                        best[kind] = max(best.get(kind, 0.0), measure(kind, clip, cores)["fps"])
                print(f"{name} {cores} core(s): MediaPipe loop {best['plain']:.1f} fps, read_video {best['ours']:.1f} "
                      f"fps, ratio {best['ours'] / best['plain']:.2f}", flush=True)
        for minutes in args.memory_minutes:
            fps = 30.0
            clip = make_clip(args.source, Path(work) / f"long{minutes:g}.mp4", SIZES["1080p"], round(minutes * 60 * fps))
            result = measure("ours", clip, 2)
            print(f"{minutes:g} min 1080p ({result['frames']} frames): read_video peak RSS {result['peak_rss_mb']:.0f} MB "
                  f"in the reading process, {result['fps']:.1f} fps", flush=True)
            clip.unlink()


if __name__ == "__main__":
    main()
