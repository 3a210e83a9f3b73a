"""`valgusml generate`'s command line: every documented override form reaches the generator, and a key or
value it cannot use is one line naming it (exit status 2) before any work."""

from __future__ import annotations

import pytest

from valgusml.errors import ConfigError
from valgusml.synth.app import generate_overrides, main
from valgusml.synth.config import GeneratorConfig


def test_a_generator_section_may_be_named_without_preset():
    assert generate_overrides(["observation.duration_s=[2,8]", "+camera.views.front=0.5"]) == [
        "++preset.observation.duration_s=[2,8]", "+preset.camera.views.front=0.5"]


def test_the_presets_size_and_seed_are_the_top_level_keys():
    # the preset's own n_athletes and seed are not read: set there, they were ignored without a word
    assert generate_overrides(["preset.n_athletes=3", "preset.seed=4"]) == ["n_athletes=3", "seed=4"]


@pytest.mark.parametrize("override, key", [("n_athlete=3", "'n_athlete'"), ("+foo=1", "'foo'"),
                                           ("preset=nope", "'preset'")])
def test_a_key_the_app_does_not_read_is_refused(override, key):
    with pytest.raises(ConfigError, match=key):
        generate_overrides([override])


@pytest.mark.parametrize("override, message", [
    ("preset.noise.jiter_mm=3", "unknown config key 'noise.jiter_mm'"),
    ("workers=abc", "config key 'workers' must be an integer"),
    ("shard_size=2.5", "config key 'shard_size' must be an integer"),
    ("report=maybe", "config key 'report' must be true or false"),
    ("out=null", "config key 'out' must be a folder path"),
])
def test_a_bad_key_or_value_is_one_line_before_any_work(override, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["n_athletes=1", "progress=false", f"out={tmp_path / 'ds'}", override])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and message in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even ./None


def test_a_probability_sum_names_the_merged_mapping():
    data = GeneratorConfig().to_dict()
    data["camera"]["views"] = {"front": 0.5, "rear": 0.6}  # what `camera.views.front=0.5` leaves of a merge
    with pytest.raises(ConfigError, match=r"sum to 1.1 in \{'front': 0.5, 'rear': 0.6\}"):
        GeneratorConfig.from_dict(data)


def test_running_the_app_in_process_leaves_other_loggers_on(tmp_path, capsys):
    """Its quiet logging config was Hydra's `disabled`, whose disable_existing_loggers switched off every
    valgusml logger of the process: a notebook's (or a test's) later warnings went nowhere."""
    import logging

    from valgusml.synth.app import main

    made_before = logging.getLogger("valgusml.evaluate")
    with pytest.raises(SystemExit):
        main(["n_athletes=1", "progress=false", f"out={tmp_path / 'ds'}", "workers=abc"])
    main(["n_athletes=1", "progress=false", "workers=1", "shard_size=8", f"out={tmp_path / 'ds'}"])
    assert not made_before.disabled
    assert "wrote 8 sequences of 1 athletes" in capsys.readouterr().out
