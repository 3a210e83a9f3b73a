"""Generator configs: presets load, overrides apply, and every bad value fails early naming its key."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml import ConfigError
from valgusml.synth import GeneratorConfig, generate_dataset, load_preset, preset_names


def test_presets_load_and_round_trip():
    assert {"clean", "realistic", "hard"} <= set(preset_names())
    realistic = load_preset("realistic")
    assert realistic.observation.dims == 2 and realistic.observation.skeleton == "halpe26"
    assert realistic.camera.yaw_deg == (0.0, 180.0)  # views all round: front, oblique, side, rear
    assert set(realistic.camera.views) == {"front", "oblique", "side", "rear"}
    assert set(realistic.noise.families) == {"mediapipe", "rtmpose", "openpose", "mocap"}  # mocap: clean 2D
    assert load_preset("clean").noise.enabled is False
    assert load_preset("hard").noise.jitter_mm > realistic.noise.jitter_mm
    assert GeneratorConfig.from_dict(realistic.to_dict()) == realistic


def test_overrides_by_leaf_dotted_and_dunder_paths():
    cfg = load_preset("realistic", n_athletes=7, skeleton="coco17", yaw_deg=[0, 10],
                      **{"noise.dropout_fraction": 0.1}, tasks__trials_per_athlete=3)
    assert cfg.n_athletes == 7
    assert cfg.observation.skeleton == "coco17"
    assert cfg.camera.yaw_deg == (0.0, 10.0)
    assert cfg.noise.dropout_fraction == 0.1
    assert cfg.tasks.trials_per_athlete == 3


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        ({"athletes.height_male_m": [1.9, 1.6]}, "athletes.height_male_m", "inverted"),
        ({"noise.ankle_offset_mm": [-1.0, 5.0]}, "noise.ankle_offset_mm", "negative"),
        ({"tasks.probabilities": {"jumping": 1.0}}, "tasks.probabilities", "jumping"),
        ({"mechanisms.probabilities": {"none": 0.5, "knee_weakness": 0.5}}, "mechanisms.probabilities", "knee_weakness"),
        ({"mechanisms.probabilities": {"none": 0.5, "pronation": 0.2}}, "mechanisms.probabilities", "sum to 1"),
        ({"mechanisms.side_probabilities": {"left": 0.7, "right": 0.7}}, "mechanisms.side_probabilities", "sum to 1"),
        ({"tasks.probabilities": {"walking": -0.5, "running": 1.5}}, "tasks.probabilities.walking", ">= 0"),
        ({"observation.skeleton": "kinect"}, "observation.skeleton", "kinect"),
        ({"observation.dims": 4}, "observation.dims", "2 or 3"),
        ({"labels.threshold_deg": {"jumping": {"female": 1.0, "male": 1.0}}}, "labels.threshold_deg", "jumping"),
        ({"n_athletes": 0}, "n_athletes", ">= 1"),
        ({"noise.jitter_mm": -2.0}, "noise.jitter_mm", ">= 0"),
        ({"noise.dropout_fraction": 1.5}, "noise.dropout_fraction", "[0, 1]"),
        ({"camera.fill_fraction": "wide"}, "camera.fill_fraction", "pair"),
        ({"noise.nonsense": 1}, "noise.nonsense", "unknown"),
    ],
)
def test_invalid_configs_name_the_key(overrides, key, words):
    with pytest.raises(ConfigError) as info:
        load_preset("realistic", **overrides)
    message = str(info.value)
    assert key in message and words in message


def test_unknown_and_ambiguous_names():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_preset("nope")
    with pytest.raises(ConfigError, match="ambiguous"):
        load_preset("realistic", probabilities={"none": 1.0})


def test_bad_config_fails_before_any_work(tmp_path):
    cfg = load_preset("clean", n_athletes=2)
    cfg.tasks.probabilities = {"walking": 0.5, "running": 0.2}
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match="tasks.probabilities"):
        generate_dataset(cfg, out, workers=1, progress=False)
    assert not out.exists()


def test_presets_inherit_the_realistic_base():
    import yaml

    from valgusml.paths import configs_dir

    realistic = load_preset("realistic").to_dict()
    for name in ("clean", "hard"):
        own = yaml.safe_load((configs_dir() / "preset" / f"{name}.yaml").read_text())
        assert own.pop("defaults") == ["realistic", "_self_"]
        merged = load_preset(name).to_dict()
        # every key the file does not list is realistic's; every key it lists differs from realistic
        for section, value in merged.items():
            listed = own.get(section, {})
            if isinstance(value, dict):
                for key, leaf in value.items():
                    assert (leaf != realistic[section][key]) == (key in listed), (name, section, key)
    assert load_preset("hard").camera.height_m == load_preset("realistic").camera.height_m


def test_one_path_from_preset_name_or_mapping():
    from valgusml.synth import generator_config

    hard = load_preset("hard", n_athletes=3)
    assert generator_config(hard.to_dict()) == hard
    assert generator_config("hard", n_athletes=3) == hard
    cfg = generator_config(hard.to_dict(), camera={"yaw_deg": [0, 10]}, **{"mechanisms.probabilities.none": 0.3})
    assert cfg.camera.yaw_deg == (0.0, 10.0) and cfg.camera.pitch_deg == hard.camera.pitch_deg
    # a mapping-valued leaf is replaced whole, not merged
    only = generator_config("realistic", **{"tasks.probabilities": {"walking": 1.0}})
    assert only.tasks.probabilities == {"walking": 1.0}


def test_configs_dir_outside_a_checkout(tmp_path, monkeypatch):
    from valgusml import paths

    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    with pytest.raises(ConfigError, match="no configs/ folder"):
        paths.configs_dir()


def test_foot_progression_may_toe_in():
    """Foot progression is signed (negative: toe-in), as measured feet are; its athletes turn their toes in."""
    from valgusml.synth.athletes import sample_athlete

    cfg = load_preset("realistic", foot_progression_deg=[-8.0, -4.0], seed=3, **{"hard_negatives.toe_out": 0.0})
    assert cfg.athletes.foot_progression_deg == (-8.0, -4.0)
    # Limited dorsiflexion still turns the feet out (by 5-12 deg at full activation), the others keep the range.
    progression = np.array([sample_athlete(cfg, i).foot_progression_deg.mean() for i in range(40)])
    assert np.mean(progression < 0.0) > 0.8 and np.median(progression) < -4.0
