"""Where does a model break? Metrics against one recording condition at a time.

For each factor (camera yaw, noise, fps, sequence length, skeleton layout, dropped frames) and each of its
levels, the held-out athletes are generated again from the generator config of the dataset (their athlete
indices are their seeds) with that one condition overridden, and every already-fitted scorer is scored at the
threshold it was given on validation. Nothing is refitted: this measures how a fixed model degrades.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from valgusml.errors import ConfigError, InputError
from valgusml.evaluation.bootstrap import athlete_bootstrap
from valgusml.hydra_app import to_plain
from valgusml.scoring.arrays import LabelArrays
from valgusml.sequence import KeypointSequence

log = logging.getLogger("valgusml.evaluate")

ROBUSTNESS_METRICS = ("valgus_auroc", "mechanism_macro_f1", "valgus_f1", "severity_mae_deg")

# factor → [(level label, generator overrides)]; nested mappings are generator config sections. Weight mappings
# (views, estimator families) list every key, since an override merges into the preset's mapping. These are
# also the transfer table's shift suites: each level moves one acquisition factor of the held-out athletes.
def _only(names: Iterable[str], chosen: str) -> dict[str, float]:
    return {name: 1.0 if name == chosen else 0.0 for name in names}


def _default_factors() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    from valgusml.synth.config import TASKS, VIEW_BANDS
    from valgusml.synth.estimators import FAMILIES

    return {
        "camera_view": [(v, {"camera": {"views": _only(VIEW_BANDS, v)}}) for v in VIEW_BANDS],
        "estimator_family": [(f, {"noise": {"families": _only(FAMILIES, f)}}) for f in FAMILIES if f != "mocap"],
        "noise_jitter_mm": [(str(j), {"noise": {"jitter_mm": float(j)}}) for j in (0, 6, 12, 24)],
        "fps": [(str(f), {"observation": {"fps_choices": [float(f)]}}) for f in (25, 30, 60, 120)],
        # 1.2-1.6 s: one stride or one landing, as a gait lab's capture volume records them (the real walks of
        # ../shared/realdata are 1.3-1.4 s); training's walks and runs last 3 s or more.
        "clip_s": [
            (f"{lo:g}-{hi:g}", {"observation": {"duration_s": [lo, hi]}})
            for lo, hi in ((1.2, 1.6), (2.0, 4.0), (6.0, 10.0), (14.0, 20.0))
        ],
        # Where the camera stands: the realistic preset's cameras (make run's data) stand 0.4-2.2 m high, aimed at
        # the athlete; a phone on the floor looks up, a gym's wall or ceiling mount (2.6-3.2 m) looks down by up to
        # 40 deg (the start's seed-14 stage drew cameras up to 3.2 m: docs/experiments.md, Wall-mount cameras).
        "camera_height_m": [("floor", {"camera": {"height_m": [0.2, 0.35]}}),
                            ("overhead", {"camera": {"height_m": [2.6, 3.2]}})],
        "body_height_m": [
            ("short", {"athletes": {"height_female_m": [1.50, 1.58], "height_male_m": [1.60, 1.68]}}),
            ("tall", {"athletes": {"height_female_m": [1.76, 1.85], "height_male_m": [1.88, 1.98]}}),
        ],
        "skeleton": [(s, {"observation": {"skeleton": s}}) for s in ("halpe26", "mediapipe33", "body25", "coco17")],
        "dropped_frames": [(str(d), {"noise": {"dropout_fraction": float(d)}}) for d in (0.0, 0.05, 0.15, 0.3)],
        # Not acquisition but the population: how far a deficit's knee collapses, held to the literature's
        # valgus FPPA sizes (single-leg squat 16.8 +- 5.4 deg, step landing 21.7 +- 3.6) at any depth.
        "valgus_ceiling_deg": [
            (f"{lo:g}-{hi:g}", {"mechanisms": {"valgus_ceiling_deg": [lo, hi]}}) for lo, hi in ((15.0, 20.0), (20.0, 30.0))
        ],
        # The population again: everyone walking or running, with their drawn step widths, all on narrow steps
        # (about the midline, as the narrowest healthy runners and severe adductor overactivity step) or all
        # wide. Narrow steps were a valgus cue the generator once gave only to deficits (docs/experiments.md:
        # narrow steps and a dropping pelvis); a model that reads the knee keeps its AUROC on every level.
        "gait_step_width": [
            (level, {"tasks": {"probabilities": {t: 0.5 * (t in ("walking", "running")) for t in TASKS}},
                     **({"athletes": {"gait_step_width_ratio": width}} if width else {})})
            for level, width in (("drawn", None), ("narrow", [0.05, 0.25]), ("wide", [0.9, 1.1]))
        ],
        # ... and every athlete with a weak hip's pelvic drop and trunk lean (the pelvic-drop hard negative; "0":
        # no one, "1": everyone), which the generator once gave only to hip weakness.
        "pelvic_drop_share": [(f"{share:g}", {"hard_negatives": {"pelvic_drop": share}}) for share in (0.0, 1.0)],
        # The same athletes as 3D input (each estimator family's error in world metres: a markerless or
        # monocular 3D estimate): the path a motion-capture user takes, read by the rule and the network.
        "observation_dims": [(f"{d}d", {"observation": {"dims": d}}) for d in (2, 3)],
    }


DEFAULT_FACTORS: dict[str, list[tuple[str, dict[str, Any]]]] = _default_factors()


def athlete_index(athlete_id: str) -> int:
    """Generator index of a synthetic athlete id (`a000042` → 42)."""
    digits = str(athlete_id).lstrip("a")
    if not digits.isdigit():
        raise InputError(
            f"athlete {athlete_id!r} is not a synthetic athlete id (a<index>); robustness needs a generated dataset"
        )
    return int(digits)


def generator_config_of(dataset_dir: str | Path) -> dict[str, Any]:
    """The generator config a dataset folder was made with (`generator.json`, written by `valgusml generate`)."""
    from valgusml.synth.dataset import generator_record_of

    record = generator_record_of(dataset_dir)
    if record is None or not isinstance(record.get("config"), dict):
        raise InputError(
            f"{dataset_dir} has no readable generator.json: robustness tests regenerate the held-out athletes and "
            "need a dataset made by `valgusml generate`; evaluate this one with robustness.enabled=false and no leave_out"
        )
    return dict(record["config"])


def synthetic_condition_sets(
    base_config: Mapping[str, Any],
    athlete_ids: Sequence[str],
    factors: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]],
    trials_per_athlete: int | None = None,
) -> Iterable[tuple[str, str, list[KeypointSequence]]]:
    """Yield `(factor, level, sequences)`: the athletes regenerated with each condition."""
    from valgusml.synth import generate_sequences, generator_config

    indices = sorted({athlete_index(a) for a in athlete_ids})
    fixed: dict[str, Any] = {"n_athletes": max(int(base_config.get("n_athletes", 1)), max(indices) + 1)}
    if trials_per_athlete is not None:
        fixed["tasks.trials_per_athlete"] = int(trials_per_athlete)
    for factor, levels in factors.items():
        for level, overrides in levels:
            try:
                cfg = generator_config(base_config, **{**fixed, **to_plain(overrides)})
                yield factor, str(level), list(generate_sequences(cfg, indices))
            except ConfigError as exc:
                raise ConfigError(f"robustness factor {factor!r} level {level!r}: {exc}") from None


def robustness_table(
    scorers: Mapping[str, Any],
    thresholds: Mapping[str, float],
    condition_sets: Iterable[tuple[str, str, Sequence[KeypointSequence]]],
    n_boot: int = 300,
    seed: int = 0,
    metrics: Sequence[str] = ROBUSTNESS_METRICS,
    on_condition: Callable[[str, str], None] | None = None,
    ci_level: float = 0.95,
) -> pd.DataFrame:
    """Long table: one row per (factor, level, scorer) with each metric and its athlete-bootstrap CI at
    `ci_level`."""
    rows = []
    for factor, level, sequences in condition_sets:
        if on_condition is not None:
            on_condition(factor, level)
        labels = LabelArrays.from_sequences(sequences)
        for name, scorer in scorers.items():
            try:
                scores = scorer.predict(sequences)
            except InputError as exc:  # e.g. a layout the scorer cannot read at all: say so, keep going
                log.warning("robustness %s=%s: %s failed: %s", factor, level, name, exc)
                continue
            estimates = athlete_bootstrap(labels, scores, thresholds[name], n_boot=n_boot, seed=seed,
                                          level=ci_level, metrics=tuple(metrics))
            row: dict[str, Any] = {
                "factor": factor,
                "level": level,
                "scorer": name,
                "n_sequences": len(sequences),
                "n_athletes": int(len(np.unique(labels.athlete_id))),
            }
            for metric in metrics:
                row.update(estimates[metric].columns(metric))
            rows.append(row)
    return pd.DataFrame(rows)


def leave_out_factor(left_out: Mapping[str, Any], base_config: Mapping[str, Any]) -> dict[str, list]:
    """The one factor of a leave-one-factor-out run (`configs/leave_out/NAME.yaml`): its left-out level, as
    `{"leave_out_NAME": [(level, test overrides)]}`. Warns when the dataset's generator config (`base_config`)
    was not made with the factor left out: the model may then have seen the level it is tested on."""
    from valgusml.synth import generator_config

    plain = to_plain(left_out)
    name = str(plain["name"])
    trained = generator_config(base_config).to_dict()
    if generator_config(base_config, **to_plain(plain["train"])).to_dict() != trained:
        log.warning("leave_out=%s: the model's training data were not generated with this factor left out "
                    "(train with `valgusml train ... leave_out=%s`); its level may have been seen", name, name)
    return {f"leave_out_{name}": [(str(plain["level"]), to_plain(plain["test"]))]}


def factors_from_config(factors: Mapping[str, Any] | None, names: Sequence[str] | None = None) -> dict[str, list]:
    """Factors from `configs/eval.yaml` (`{factor: [{level, overrides}, ...]}`), or the defaults; `names`
    keeps only some."""
    if factors:
        out = {
            str(f): [(str(item["level"]), to_plain(item["overrides"])) for item in to_plain(levels)]
            for f, levels in to_plain(factors).items()
        }
    else:
        out = dict(DEFAULT_FACTORS)
    if names:
        unknown = set(names) - set(out)
        if unknown:
            raise ConfigError(f"robustness.only: unknown factor(s) {sorted(unknown)}; known: {sorted(out)}")
        out = {k: v for k, v in out.items() if k in set(names)}
    return out
