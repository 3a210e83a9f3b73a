"""Video fixtures: the real videos of ../shared/realdata/video and the video environment (`make video`); tests
that need either skip when it is absent. Keypoints read from the real videos are cached for the session (one
MediaPipe pass over a Pose2Sim clip costs ~8 s on one core)."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import pytest

from valgusml.io import video

VIDEO_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "video"
# Who the balancing man is, per Pose2Sim camera: in cam01, cam02 and cam04 MediaPipe follows the walking woman
# first (person 0); painted over, the man is found next. In cam03 (from behind) it follows him first.
MAN = {1: 1, 2: 1, 3: 0, 4: 1}

needs_video_env = pytest.mark.skipif(video.backend() == "none", reason="no video environment (run `make video`)")
needs_videos = pytest.mark.skipif(not VIDEO_DIR.is_dir(), reason="../shared/realdata/video absent")


def cam(k: int) -> Path:
    return VIDEO_DIR / f"pose2sim_multiperson_cam{k:02d}.mp4"


_CACHE: dict = {}


def read_cached(path: Path, person: int | None = None):
    key = (str(path), person)
    if key not in _CACHE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _CACHE[key] = video.read_video(path, person=person)
    return _CACHE[key]


def run_cv2(code: str, **names: object) -> None:
    """Run OpenCV code in the video environment (this one has no cv2): makes test videos."""
    python = video.video_python()
    if python is None:
        pytest.skip("no video environment (run `make video`)")
    header = "".join(f"{k} = {v!r}\n" for k, v in names.items())
    subprocess.run([str(python), "-c", "import cv2, numpy as np\n" + header + code], check=True, timeout=120)


def frame_count_and_size(path: Path) -> tuple[int, int, int]:
    """(decoded frames, width, height), counted by decoding in the video environment."""
    python = video.video_python()
    out = subprocess.run(
        [str(python), "-c", "import cv2, sys\nc = cv2.VideoCapture(sys.argv[1]); n = 0; size = (0, 0)\n"
         "while True:\n ok, f = c.read()\n if not ok: break\n n += 1; size = (f.shape[1], f.shape[0])\n"
         "print(n, *size)", str(path)],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


@pytest.fixture(scope="session")
def tiny_predictor_dir(tmp_path_factory) -> Path:
    """An untrained tiny exported predictor (as tests/export builds): pictures, not calls, are tested here."""
    from tests.export.conftest import parity_sequences, tiny_source
    from valgusml.export import export_predictor

    return export_predictor(tiny_source(), tmp_path_factory.mktemp("export") / "predictor", parity_sequences())
