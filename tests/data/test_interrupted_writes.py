"""`valgusml convert` and `valgusml film` interrupted (Ctrl-C) part-way through their inputs: one line saying that
nothing was written, exit status 130, no folder or hidden partial folder left, and a rerun gives the dataset an
uninterrupted run gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from valgusml.cli import EXIT_INTERRUPTED
from valgusml.cli import main as cli_main
from valgusml.data import convert, open_dataset, write_dataset

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def ctrl_c_on_call(module, name: str, n: int, monkeypatch) -> None:
    """`module.name` raises KeyboardInterrupt on its n-th call (as Ctrl-C arriving while it runs)."""
    original, calls = getattr(module, name), []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ctrl_c_during_convert(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out" / "ds"
    args = ["convert", str(SAMPLES), "--labels", str(SAMPLES / "labels.csv"), "--dims", "2", "--shard-size", "1"]
    ctrl_c_on_call(convert, "read", 4, monkeypatch)  # three shards written in the hidden folder by then
    assert cli_main([*args, "--out", str(out)]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.strip() == ("valgusml convert: interrupted (Ctrl-C); nothing was written (the dataset is written "
                           "whole at the end); run the command again")
    assert list(out.parent.iterdir()) == []

    monkeypatch.undo()
    assert cli_main([*args, "--out", str(out)]) == 0
    assert cli_main([*args, "--out", str(tmp_path / "uninterrupted")]) == 0
    assert open_dataset(out).fingerprint == open_dataset(tmp_path / "uninterrupted").fingerprint


def test_ctrl_c_during_film(tmp_path, monkeypatch, capsys):
    from valgusml.evaluation.transfer import film
    from valgusml.synth import generate_sequences, generator_config

    cfg = generator_config("realistic", n_athletes=2, **{"observation.dims": 3, "tasks.trials_per_athlete": 2,
                                                         "tasks.probabilities": {"bilateral_squat": 1.0}})
    source = write_dataset(tmp_path / "mocap", generate_sequences(cfg, [0, 1]))
    out = tmp_path / "out" / "filmed"
    ctrl_c_on_call(film, "film", 3, monkeypatch)
    assert cli_main(["film", str(source.root), str(out)]) == EXIT_INTERRUPTED
    assert "valgusml film: interrupted (Ctrl-C); nothing was written" in capsys.readouterr().err
    assert list(out.parent.iterdir()) == []
