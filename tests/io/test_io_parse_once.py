"""`valgusml.io.read` parses a JSON pose file once: the document parsed to sniff the format goes to the reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from valgusml import io
from valgusml.errors import InputError
from valgusml.io import _common

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
JSON_SAMPLES = [
    ("squat_coco17.json", "coco"),
    ("squat_halpe26.json", "coco"),
    ("squat_mediapipe.json", "mediapipe"),
]


@pytest.mark.parametrize(("name", "fmt"), JSON_SAMPLES, ids=[str(n) for n, _ in JSON_SAMPLES])
def test_detected_json_is_parsed_once_and_reads_as_named(monkeypatch, name, fmt):
    parsed: list[Path] = []
    load_json = _common.load_json

    def counting(path):
        parsed.append(Path(path))
        return load_json(path)

    monkeypatch.setattr(_common, "load_json", counting)
    path = SAMPLES / name
    detected = io.read(path, person=0)
    assert parsed == [path]
    named = io.read(path, format=fmt, person=0)
    assert detected.skeleton == named.skeleton and detected.fps == named.fps
    np.testing.assert_array_equal(detected.keypoints, named.keypoints)
    np.testing.assert_array_equal(detected.confidence, named.confidence)


def test_single_openpose_file_is_parsed_once(monkeypatch):
    parsed: list[Path] = []
    load_json = _common.load_json
    monkeypatch.setattr(_common, "load_json", lambda path: parsed.append(Path(path)) or load_json(path))
    path = next((SAMPLES / "squat_openpose").glob("*_keypoints.json"))
    assert io.detect_format(path) == "openpose"
    parsed.clear()
    with pytest.raises(InputError, match="only 1 frame"):  # one file is one frame: read, then refused
        io.read(path)
    assert parsed == [path]
