"""`valgusml predict VIDEO --overlay --plot --format table`: the pictures and the summary."""

from __future__ import annotations

import numpy as np
import pytest

from tests.viz.conftest import cam, frame_count_and_size, needs_video_env, needs_videos, read_cached
from valgusml.cli import main
from valgusml.viz.plots import recording_plot


@pytest.mark.realdata
@needs_video_env
@needs_videos
def test_overlay_keeps_frame_count_and_size_and_plot_is_drawn(tiny_predictor_dir, tmp_path, capsys):
    read_cached(cam(3), 0)
    overlay, plot = tmp_path / "pics" / "cam03.mp4", tmp_path / "pics" / "cam03.png"
    code = main(["predict", str(tiny_predictor_dir), str(cam(3)), "--overlay", str(overlay), "--plot", str(plot),
                 "--format", "table"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert frame_count_and_size(overlay) == (100, 1088, 1920)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "left " in out and "right " in out and f"overlay written to {overlay}" in out
    assert sorted(p.name for p in overlay.parent.iterdir()) == ["cam03.mp4", "cam03.png"]  # no temporary left


def test_overlay_refuses_pose_files_and_leaves_nothing(tiny_predictor_dir, tmp_path, capsys):
    from valgusml.io import write
    from valgusml.sequence import KeypointSequence

    rng = np.random.default_rng(0)
    seq = KeypointSequence(rng.uniform(100, 400, (40, 33, 2)).astype(np.float32), "mediapipe33", 30.0)
    pose = write(seq, tmp_path / "clip.csv", "mediapipe")
    code = main(["predict", str(tiny_predictor_dir), str(pose), "--overlay", str(tmp_path / "o.mp4")])
    assert code == 1 and "--overlay draws on a video" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_recording_plot_writes_one_png_atomically(tmp_path):
    times = np.arange(90) / 30.0
    fppa = np.stack([10 * np.sin(times), 5 * np.cos(times)], axis=1)
    fppa[5:9, 0] = np.nan
    timeline = [{"start_s": 0.0, "end_s": 2.0, "valgus_probability": {"left": 0.7, "right": None}},
                {"start_s": 1.0, "end_s": 3.0, "valgus_probability": {"left": 0.4, "right": 0.1}}]
    path = recording_plot(times, fppa, timeline, 0.5, tmp_path / "r.png", title="t")
    assert path.read_bytes()[:4] == b"\x89PNG" and [p.name for p in tmp_path.iterdir()] == ["r.png"]


def test_evaluation_report_draws_example_recordings_with_the_predict_plot(tiny_predictor_dir, tmp_path):
    from types import SimpleNamespace

    from valgusml.evaluation.evaluate import _example_recordings
    from valgusml.evaluation.report import make_plots
    from valgusml.export.example import example_keypoints
    from valgusml.predictor import Predictor
    from valgusml.sequence import KeypointSequence

    def labelled(valgus: float, sid: str) -> KeypointSequence:
        limb = {"valgus": bool(valgus), "mechanism": "hip_weakness" if valgus else "none",
                "severity_deg": 15.0 * valgus, "contributions": {}}
        return KeypointSequence(example_keypoints("halpe26", seconds=2.0, fps=30.0, valgus=valgus), "halpe26", 30.0,
                                id=sid, task="bilateral_squat", labels={"left": limb, "right": dict(limb)})

    model = SimpleNamespace(predictor=Predictor.load(tiny_predictor_dir))
    examples = _example_recordings(model, [labelled(0.0, "a"), labelled(1.0, "b")])
    assert [e[1].id for e in examples] == ["b", "a"]
    result = SimpleNamespace(labels=SimpleNamespace(valgus=np.zeros((2, 2))), results={})
    figures = make_plots(result, tmp_path, examples=examples)
    assert [p.name for p in figures.values()] == ["recording_0.png", "recording_1.png"]
