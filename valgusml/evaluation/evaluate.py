"""`valgusml evaluate`: a trained model and the baselines on held-out athletes → metrics with CIs, report, MLflow.

    valgusml evaluate model=exports/default
    valgusml evaluate ckpt_path=path/to/checkpoints/best-epochNNN.ckpt robustness.enabled=true
    valgusml evaluate run_id=<training run> baselines=[fppa_rule]
    valgusml evaluate model=exports/default data_dir=data/external split=all baselines=[]

The split comes from the training run (`splits.json`: the checkpoint's own copy, a file beside it, or the
run's MLflow artifact), so the model is scored on exactly the athletes it never saw; baselines are fitted on
that run's training athletes, and every threshold is chosen on its validation athletes. The evaluation is
logged as a child run of the training run (or as its own run when there is none), with the report.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from valgusml.errors import ConfigError, InputError
from valgusml.evaluation.config import CONFIG_DIR, check_eval_config, compose_eval_config, translate_overrides
from valgusml.evaluation.sources import load_model, resolve_data_dir, resolve_split
from valgusml.hydra_app import hydra_entry

log = logging.getLogger("valgusml.evaluate")
# Below this many scored athletes an athlete-bootstrap interval resamples too few units to be a 95% CI (two
# athletes give four distinct replicates): the figures are still computed, and said to be descriptive.
MIN_ATHLETES_FOR_CI = 10
__all__ = ["build_baselines", "build_scorers", "compose_eval_config", "main", "run_evaluation", "translate_overrides"]


def build_baselines(cfg: DictConfig) -> dict[str, Any]:
    names = list(cfg.get("baselines") or [])
    unknown = [n for n in names if n not in cfg.scorers]
    if unknown:
        raise ConfigError(f"baselines: unknown {unknown}; available: {sorted(cfg.scorers)}")
    out = {}
    for name in names:
        try:
            out[name] = hydra.utils.instantiate(cfg.scorers[name])
        except Exception as exc:
            raise ConfigError(f"scorers.{name}: {exc}") from None
        out[name].name = name
    return out


def build_scorers(model: Any | None, cfg: DictConfig) -> dict[str, Any]:
    """`{"model": model, **build_baselines(cfg)}` (no `model` entry for None), with every ensemble handed its
    members (`Ensemble.bind`)."""
    scorers = {**({"model": model} if model is not None else {}), **build_baselines(cfg)}
    for scorer in scorers.values():
        if hasattr(scorer, "bind"):
            scorer.bind(scorers)
    return scorers


# -- the evaluation ----------------------------------------------------------------------------------------


def _example_recordings(model: Any, sequences: list) -> list[tuple[str, Any, Any]]:
    """The held-out recording with the most severe labelled valgus and one without valgus, predicted by the
    exported model (the report draws them as `valgusml predict --plot` does); none for a checkpoint."""
    predictor = getattr(model, "predictor", None)
    labelled = [s for s in sequences if s.labels]
    if predictor is None or not labelled:
        return []

    def severity(seq: Any) -> float:
        return max(float(seq.labels[limb]["severity_deg"]) if seq.labels[limb]["valgus"] else -1.0
                   for limb in ("left", "right"))

    worst = max(labelled, key=severity)
    picks = [("most severe labelled valgus", worst)]
    clean = next((s for s in labelled if severity(s) < 0), None)
    if clean is not None:
        picks.append(("no labelled valgus", clean))
    return [(f"{caption}: {seq.id} ({seq.task})", seq, predictor.predict(seq)) for caption, seq in picks]


def run_evaluation(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate as configured. Returns `{"result", "report", "robustness", "real_motion_files", "mlflow_run_id"}`."""
    from valgusml.data import open_dataset
    from valgusml.evaluation.report import write_report
    from valgusml.evaluation.runner import evaluate_scorers
    from valgusml.evaluation.transfer.other_data import other_data_folders, sequences_of_first

    if cfg.split not in ("test", "all"):
        raise ConfigError(f"split must be 'test' or 'all', got {cfg.split!r}")
    check_eval_config(cfg)
    model, origin = load_model(cfg)
    data_dir = resolve_data_dir(cfg, origin)
    ds = open_dataset(data_dir)
    info: dict[str, Any] = {"model": origin["source"], "training_run_id": origin.get("training_run_id"),
                            "dataset": str(data_dir.resolve()), "dataset_fingerprint": ds.fingerprint}
    # Told before any sequence is read: a wrong path, or a set the model or the baselines trained on. With
    # split=test the baselines were fitted on this dataset's training athletes: scored whole, it holds them.
    other_folders = other_data_folders((cfg.get("transfer") or {}).get("other_data") or [])
    fitted_on = ds.fingerprint if cfg.split == "test" else None
    other_sets = {name: open_dataset(folder) for name, folder in other_folders.items()}
    held_out_notes = [note for name, other in other_sets.items()
                      for note in not_trained_on(f"other data {name}", other.root, other.fingerprint, origin,
                                                 fitted_on, other.athletes)]
    if cfg.split == "all":
        held_out_notes = not_trained_on("the scored athletes", data_dir, ds.fingerprint, origin,
                                        athletes=ds.athletes) + held_out_notes
        train, val, test = [], [], sequences_of_first(ds, ds.athletes, cfg.get("max_athletes"))
        info["split"] = "all sequences of the dataset (external evaluation)"
    else:
        split = resolve_split(cfg, origin)
        if split.dataset_fingerprint and split.dataset_fingerprint != ds.fingerprint:
            raise ConfigError(
                f"{data_dir} (fingerprint {ds.fingerprint[:12]}) is not the dataset the model was split on "
                f"({split.dataset_fingerprint[:12]}); pass the training dataset as data_dir, or split=all"
            )
        missing = sorted(set(split.test) - set(ds.athletes))
        if missing:
            raise InputError(f"{len(missing)} held-out athletes of the split are not in {data_dir}: {missing[:5]}")
        max_athletes = cfg.get("max_athletes")
        train = sequences_of_first(ds, split.train, max_athletes) if cfg.get("baselines") else []
        val = sequences_of_first(ds, split.val, max_athletes)
        test = sequences_of_first(ds, split.test, max_athletes)
        info["split"] = f"{split.method} {split.params}".strip()
    other_data = {name: sequences_of_first(other, other.athletes, cfg.get("max_athletes"))
                  for name, other in other_sets.items()}
    notes = held_out_notes + cautions("the scored athletes", test) + [
        note for name, seqs in (other_data or {}).items() for note in cautions(f"other data {name}", seqs)]
    if notes:
        info["caution"] = notes
        for note in notes:
            log.warning(note)
    scorers = build_scorers(model, cfg)
    info["timings"] = (
        "feature baselines share one feature extraction (timed in the first of them)"
        if cfg.get("share_features", False)
        else "each scorer timed on its own, feature extraction included"
    )
    result = evaluate_scorers(
        scorers, train, val, test, threshold_rule=cfg.threshold_rule, n_boot=int(cfg.bootstrap.n_boot),
        seed=int(cfg.bootstrap.seed), level=float(cfg.bootstrap.level), info=info,
        share_features=bool(cfg.get("share_features", False)),
    )
    robustness = None
    if cfg.robustness.enabled or cfg.get("leave_out"):
        robustness = run_robustness(cfg, result, data_dir, test)
    real_motion_files = run_transfer(cfg, result, robustness, other_data)
    report = write_report(result, cfg.report_dir, robustness=robustness, title=cfg.get("title") or _title(origin),
                          examples=_example_recordings(model, test), real_motion_files=real_motion_files)
    mlflow_run_id = None
    if cfg.mlflow.enabled:
        from valgusml.evaluation.mlflow_log import log_evaluation

        mlflow_run_id = log_evaluation(cfg, result, Path(cfg.report_dir), origin)
    _print_summary(result, report)
    return {"result": result, "report": report, "robustness": robustness, "real_motion_files": real_motion_files,
            "mlflow_run_id": mlflow_run_id}


def not_trained_on(name: str, folder: Path, fingerprint: str, origin: dict[str, Any],
                   fitted_on: str | None = None, athletes: Iterable[str] = ()) -> list[str]:
    """A data set scored whole (`split=all`, `transfer.other_data`) is held out only where no scorer trained on
    its athletes. The model's own training dataset (or `fitted_on`, the one whose training athletes the baselines
    were fitted on) is refused: every athlete it trained on would be scored; so is any other dataset the model
    learnt from (`origin["other_training_data"]`: `data.extra_train_dirs` folders, its start's, an ensemble
    member's). A set holding `athletes` the model learnt from under another fingerprint (a filmed copy of an added
    folder), or generated with a seed the model learnt from (`origin["generator_seeds"]`: athlete `index` of a
    seed is the same person at every dataset size, `synth.dataset.generator_seed_of`), holds its training
    athletes too: a caution, as training warns of such a start or teacher (ids may name others by chance, and
    the generator may have changed between versions)."""
    from valgusml.predictor.format import athlete_digests
    from valgusml.synth.dataset import generator_seed_of

    if fingerprint in {origin.get("dataset_fingerprint"), fitted_on} - {None}:
        raise ConfigError(
            f"{name}: {folder} (fingerprint {fingerprint[:12]}) is the dataset the model or the baselines trained on; "
            "scored whole it would score training athletes: score its held-out athletes with split=test"
        )
    other = origin.get("other_training_data") or []
    if fingerprint in {entry["dataset_fingerprint"] for entry in other}:
        raise ConfigError(
            f"{name}: {folder} (fingerprint {fingerprint[:12]}) is a dataset the model learnt from beside its own "
            "(data.extra_train_dirs, the weights it started from, or an ensemble member's): its figures would not "
            "be held out; score it with a model that did not train on it"
        )
    notes = []
    learnt = {digest for entry in other for digest in entry.get("athletes_sha256") or []}
    shared = set(athlete_digests(athletes)) & learnt
    if shared:
        notes.append(f"{name}: {len(shared)} of its athletes have the ids of athletes the model learnt from in "
                     "another dataset (data.extra_train_dirs; a filmed copy of such a folder keeps them), so its "
                     "figures are not those of held-out athletes")
    seed = generator_seed_of(folder)
    if seed is not None and seed in (origin.get("generator_seeds") or []):
        notes.append(f"{name}: generated with seed {seed}, whose athletes the model learnt from (the same index is "
                     "the same person at every dataset size), so its figures are not those of held-out athletes")
    return notes


def cautions(name: str, sequences: list) -> list[str]:
    """What a set's figures cannot tell: CIs from too few athletes (`MIN_ATHLETES_FOR_CI`), a mechanism score
    with no known deficit to score (rule-labelled data: `valgusml convert --label-by-rule`)."""
    from valgusml.labels import MECHANISM_UNKNOWN
    from valgusml.scoring.arrays import LabelArrays

    notes = []
    n_athletes = len({seq.athlete_id for seq in sequences})
    if n_athletes < MIN_ATHLETES_FOR_CI:
        notes.append(f"{name}: only {n_athletes} athlete(s), too few for the athlete-bootstrap intervals to be 95% "
                     f"CIs (fewer than {MIN_ATHLETES_FOR_CI}); read the figures as descriptive")
    labelled = [seq for seq in sequences if seq.labels]
    if labelled:
        mechanism = LabelArrays.from_sequences(labelled).mechanism
        if not ((mechanism != MECHANISM_UNKNOWN) & (mechanism != 0)).any():
            notes.append(f"{name}: no limb has a known deficit (mechanism unknown or none), so the mechanism figures "
                         "count only false deficit calls on 'none' limbs")
    return notes


def run_robustness(cfg: DictConfig, result: Any, data_dir: Path, test: list) -> Any:
    from valgusml.evaluation.robustness import (
        factors_from_config,
        generator_config_of,
        leave_out_factor,
        robustness_table,
        synthetic_condition_sets,
    )

    athletes = sorted({s.athlete_id for s in test})[: int(cfg.robustness.max_athletes)]
    base = generator_config_of(data_dir)
    if cfg.get("leave_out"):
        factors = leave_out_factor(cfg.leave_out, base)
    else:
        factors = factors_from_config(cfg.robustness.get("factors"), cfg.robustness.get("only"))
    sets = synthetic_condition_sets(base, athletes, factors,
                                    trials_per_athlete=cfg.robustness.get("trials_per_athlete"))
    return robustness_table(
        {n: r.scorer for n, r in result.results.items()},
        {n: r.threshold for n, r in result.results.items()},
        sets,
        n_boot=int(cfg.robustness.n_boot),
        seed=int(cfg.bootstrap.seed),
        on_condition=lambda f, lv: log.info("robustness: %s = %s", f, lv),
        ci_level=float(cfg.bootstrap.level),
    )


def run_transfer(cfg: DictConfig, result: Any, robustness: Any, other_data: dict[str, list] | None = None) -> Any:
    """The other data sets (`transfer.other_data`'s sequences by name) and the real-motion suite (when its files exist) for every
    scorer, and the transfer table, into `result`. Returns the real-motion suite's files, one row each (`file`,
    `person`, `task`, `status` read or skipped, `reason`), for the report; None where the suite did not run."""
    from valgusml.evaluation.transfer import (
        DEFAULT_YAWS,
        FAST_YAWS,
        other_data_rows,
        real_motion_rows,
        render_views,
        transfer_table,
    )
    from valgusml.evaluation.transfer.real_motion import recording_files_table

    section = cfg.get("transfer") or {}
    scorers = {n: r.scorer for n, r in result.results.items()}
    thresholds = {n: r.threshold for n, r in result.results.items()}
    other = None
    if other_data:
        log.info("other data: %s", ", ".join(f"{name} ({len(seqs)} sequences)" for name, seqs in other_data.items()))
        # Every baseline's figures also as its difference from the model's (the first scorer), athlete-paired.
        other = other_data_rows(other_data, scorers, thresholds, n_boot=int(cfg.robustness.n_boot),
                                seed=int(cfg.bootstrap.seed), paired_to=next(iter(scorers), None),
                                ci_level=float(cfg.bootstrap.level))
    real = section.get("real_motion") or {}
    rows = files = None
    if real.get("enabled", False):
        paths = [str(p) for p in (real.get("paths") or [])]
        yaws = real.get("yaws", "fast")
        yaws = {"fast": FAST_YAWS, "full": DEFAULT_YAWS}.get(yaws, yaws) if isinstance(yaws, str) else list(yaws)
        # render_views reads `~`, and names each path that does not exist and each file it skips, in the log and
        # in `listed` (the report's list: which recordings the real-motion figures rest on, and which not, why)
        listed: list = []
        views = render_views(paths, yaws=[float(y) for y in yaws], seeds=[int(s) for s in real.get("seeds", [0])],
                             jitter_m=float(real.get("jitter_m", 0.004)),
                             estimators=list(real.get("estimators", ["generic"])), files=listed)
        files = recording_files_table(listed)
        if views:
            log.info("real-motion suite: %d views of %d recordings", len(views), len({v.file for v in views}))
            rows = real_motion_rows(views, scorers, thresholds)
        else:
            log.info("real-motion suite skipped: no 3D recording to score under %s", paths)
    in_distribution = {name: {m: r.estimates[m].value for m in ("valgus_auroc", "mechanism_macro_f1",
                                                                 "valgus_auroc_clear")}
                       for name, r in result.results.items()}
    result.real_motion, result.other_data = rows, other
    result.transfer = transfer_table(in_distribution, robustness, rows, other)
    return files


def _title(origin: dict[str, Any]) -> str:
    return f"valgusml evaluation: {origin['source']}"


def _print_summary(result: Any, report: Path) -> None:
    import pandas as pd

    from valgusml.evaluation.bootstrap import Estimate

    comparison = result.comparison_table()
    columns = ["scorer", "valgus_auroc", "valgus_auroc_clear", "valgus_f1", "mechanism_macro_f1", "severity_mae_deg",
               "predict_ms_per_sequence"]
    columns += [c for c in comparison.columns if c.startswith(("valgus_auroc - ", "mechanism_macro_f1 - "))]
    tables = [("held-out athletes: value [95% athlete-bootstrap CI]", comparison[columns])]
    if result.other_data is not None and len(result.other_data):
        other = result.other_data

        def ci(metric: str) -> list[str]:
            return [str(Estimate.from_columns(row, metric)) for row in other.to_dict("records")]

        tables.append(("other data, every sequence: value [95% athlete-bootstrap CI]", pd.DataFrame({
            "dataset": other["dataset"], "scorer": other["scorer"], "valgus_auroc": ci("valgus_auroc"),
            "valgus_auroc_clear": ci("valgus_auroc_clear"),
            "mechanism_macro_f1": ci("mechanism_macro_f1"), "worst task (AUROC)": other["worst_task"],
            "worst mechanism (F1)": other["worst_mechanism"],
        })))
    try:
        from rich.console import Console
        from rich.table import Table

        console = Console(width=max(Console().width, 150))
        for title, frame in tables:
            table = Table(title=title)
            for c in frame.columns:
                table.add_column(str(c))
            for _, row in frame.iterrows():
                table.add_row(*[str(v) for v in row])
            console.print(table)
        for caution in result.info.get("caution") or []:
            console.print(f"caution: {caution}")
        console.print(f"report: {report}")
    except ImportError:
        for title, frame in tables:
            print(title)
            print(frame.to_string(index=False))
        for caution in result.info.get("caution") or []:
            print(f"caution: {caution}")
        print(f"report: {report}")


def _evaluate_app(cfg: DictConfig) -> None:
    run_evaluation(cfg)


main = hydra_entry(_evaluate_app, CONFIG_DIR, "eval", translate=translate_overrides)


if __name__ == "__main__":
    sys.exit(main())
