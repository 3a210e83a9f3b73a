"""`valgusml predict`'s flags: a value no file could use is the flag's error (exit 2, naming the flag) before any
file is read, not one error per file; `--output x.json` is one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valgusml.predictor.cli import main as predict_main

SAMPLE = str(Path(__file__).resolve().parents[2] / "data" / "samples" / "squat.npz")


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--fps", "-1", "fps must be finite and > 0"),
    ("--fps", "0", "fps must be finite and > 0"),
    ("--fps", "nan", "fps must be finite and > 0"),
    ("--fps", "1e9", "is outside"),
    ("--skeleton", "foo", "unknown skeleton 'foo'"),
    ("--person", "-1", "must be an index >= 0"),
    ("--input-format", "foo", "unknown format 'foo'"),
    ("--format", "foo", "unknown format 'foo'"),
])
def test_a_bad_flag_value_is_refused_as_the_flags_error(flag, value, says, tmp_path, capsys):
    # The model folder is never opened: the flag is refused first (tmp_path is no predictor folder).
    with pytest.raises(SystemExit) as exit_:
        predict_main([str(tmp_path), SAMPLE, f"{flag}={value}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and says in err
    assert SAMPLE not in err  # not reported against the file


def test_good_flag_values_still_reach_the_file(exported, capsys):
    assert predict_main([str(exported), SAMPLE, "--fps", "50", "--skeleton", "canonical", "--person", "0",
                         "--format", "table", "--input-format", "npz"]) == 0
    assert "resampled from 50 fps" in capsys.readouterr().out


def test_output_json_is_one_json_document(exported, tmp_path):
    out = tmp_path / "results.json"
    assert predict_main([str(exported), SAMPLE, SAMPLE, "--output", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [r["file"] for r in records] == [SAMPLE, SAMPLE] and "limbs" in records[0]


def test_fps_on_a_video_overrides_the_containers_rate(exported, tmp_path, monkeypatch, capsys):
    """`read_video` takes no `fps` (the container has one): `--fps` replaces it after reading, as for any file,
    instead of failing every video with "reader 'video' does not accept ... 'fps'"."""
    import inspect

    import valgusml.io
    from valgusml.io.samples import squat_2d

    def read_video(path, person=None, model_complexity=1, progress=None):  # read_video's own parameters
        return squat_2d("halpe26", n_frames=90, fps=30.0)[0]

    assert list(inspect.signature(read_video).parameters) == list(
        inspect.signature(valgusml.io.READERS["video"]).parameters)
    monkeypatch.setitem(valgusml.io.READERS, "video", read_video)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"stub")
    assert predict_main([str(exported), str(clip), "--fps", "60"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert any("resampled from 60 fps" in w for w in record["warnings"])
