"""Leave one factor out of training and test on it only (`configs/leave_out/`): the training data never show the
left-out level, the test athletes show nothing else, and the evaluation scores that level."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from valgusml.errors import ConfigError
from valgusml.evaluation.robustness import leave_out_factor
from valgusml.hydra_app import to_plain
from valgusml.paths import configs_dir
from valgusml.synth import generate_sequences, generator_config
from valgusml.training.config import apply_leave_out, compose_config

LEAVE_OUTS = sorted(p.stem for p in (Path(configs_dir()) / "leave_out").glob("*.yaml"))


def _configs(name: str) -> tuple[dict, dict]:
    """(training generator config, test generator config) of `leave_out=name` on the default recipe trained from
    scratch (its pretrained start saw every level)."""
    cfg = compose_config(["experiment=default_scratch", f"leave_out={name}"])
    apply_leave_out(cfg)
    trained = to_plain(cfg.data.generator)
    return trained, to_plain(cfg.leave_out.test)


WEIGHT_MAPPINGS = ("views", "families", "probabilities")  # one leaf each: a mapping replaced whole


def _leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key not in WEIGHT_MAPPINGS:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_factor_of_the_issue_can_be_left_out():
    assert set(LEAVE_OUTS) == {"body_size", "clip_structure", "estimator_family", "frame_rate", "rear_views", "task",
                               "time_profile", "yaw_beyond"}


@pytest.mark.parametrize("name", LEAVE_OUTS)
def test_the_training_config_differs_from_the_test_level_in_every_key_the_level_sets(name):
    trained, test = _configs(name)
    training = generator_config(trained).to_dict()
    tested = generator_config(trained, **test).to_dict()
    for key in _leaves(test):
        section, leaf = key.rsplit(".", 1)
        node_train, node_test = training, tested
        for part in section.split("."):
            node_train, node_test = node_train[part], node_test[part]
        assert node_train[leaf] != node_test[leaf], (name, key)
    assert generator_config(trained) == generator_config(trained, **to_plain(_left_out(name)["train"]))


def _left_out(name: str) -> dict:
    return to_plain(compose_config(["experiment=default", f"leave_out={name}"]).leave_out)


def _level_of(name: str, seq) -> bool:
    """Whether a generated sequence is at the left-out level of factor `name`."""
    yaw = abs(seq.meta["camera"]["yaw_deg"])
    return {
        "rear_views": yaw > 115.0,
        "yaw_beyond": 35.0 <= yaw <= 60.0,
        "estimator_family": seq.meta["estimator"] == "openpose",
        "frame_rate": seq.fps in (25.0, 30.0),
        "task": seq.task == "drop_vertical_jump",
        "body_size": seq.meta["athlete"]["height_m"] < (1.58 if seq.meta["athlete"]["sex"] == "female" else 1.68),
        "clip_structure": seq.n_frames / seq.fps >= 14.0,
    }[name]


@pytest.mark.parametrize("name", ["rear_views", "yaw_beyond", "estimator_family", "frame_rate", "task", "body_size",
                                  "clip_structure"])
def test_training_data_never_show_the_left_out_level_and_the_test_athletes_show_only_it(name):
    trained, test = _configs(name)
    small = {"n_athletes": 12, "tasks.trials_per_athlete": 4}
    training = list(generate_sequences(generator_config(trained, **small), range(12)))
    tested = list(generate_sequences(generator_config(trained, **test, **small), range(3)))
    assert not any(_level_of(name, s) for s in training)
    assert all(_level_of(name, s) for s in tested)


def test_the_evaluation_scores_the_left_out_level_and_warns_when_the_model_saw_it(caplog):
    trained, _ = _configs("rear_views")
    left_out = _left_out("rear_views")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="valgusml.evaluate"):
        factor = leave_out_factor(left_out, trained)
    assert factor == {"leave_out_rear_views": [("rear", left_out["test"])]}
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="valgusml.evaluate"):
        leave_out_factor(left_out, to_plain(compose_config(["experiment=default"]).data.generator))
    assert "were not generated with this factor left out" in caplog.text


def test_a_dataset_folder_has_no_factor_to_leave_out(tmp_path):
    cfg = compose_config(["data=folder", f"data.dataset_dir={tmp_path}", "leave_out=task"])
    with pytest.raises(ConfigError, match="leave_out=task needs synthetic training data"):
        apply_leave_out(cfg)


def test_a_leave_out_run_drops_the_teacher_which_saw_every_level(caplog):
    """The default recipe distils from a teacher trained on every level: through its targets the left-out
    level would reach the network, so `leave_out=` trains without it, and says so."""
    assert compose_config(["experiment=default_scratch"]).data.teacher  # the default has one
    cfg = compose_config(["experiment=default_scratch", "leave_out=task"])
    with caplog.at_level(logging.WARNING, logger="valgusml.training.config"):
        apply_leave_out(cfg)
    assert cfg.data.teacher is None
    assert "training without data.teacher" in caplog.text


def test_a_leave_out_run_refuses_a_pretrained_start_which_saw_every_level():
    """The default recipe fine-tunes weights pretrained on every level: `leave_out=` on it is refused, naming
    the recipe that trains from scratch, before any data are generated."""
    cfg = compose_config(["experiment=default", "leave_out=rear_views"])
    with pytest.raises(ConfigError, match="experiment=default_scratch leave_out=rear_views"):
        apply_leave_out(cfg)
    scratch = compose_config(["experiment=default_scratch", "leave_out=rear_views"])
    assert scratch.init_from is None and scratch.trainer.max_epochs == 20
    apply_leave_out(scratch)


def test_a_leave_out_run_refuses_extra_training_data_which_may_hold_the_left_out_level(tmp_path):
    """Real or filmed data beside the generator's (data.extra_train_dirs) are not drawn from the generator config
    the factor is removed from: rear views filmed from real mocap would teach `leave_out=rear_views` its test."""
    cfg = compose_config(["experiment=default_scratch", "leave_out=rear_views",
                          f"data.extra_train_dirs=[{tmp_path}]"])
    with pytest.raises(ConfigError, match=r"leave_out=rear_views: data.extra_train_dirs=.* may hold the left-out"):
        apply_leave_out(cfg)
