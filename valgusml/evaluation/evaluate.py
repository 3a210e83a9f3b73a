"""`valgusml evaluate`: a trained model and the baselines on held-out athletes → metrics with CIs, report, MLflow.

    valgusml evaluate model=exports/default
    valgusml evaluate ckpt_path=path/to/best.ckpt robustness.enabled=true
    valgusml evaluate run_id=<training run> baselines=[fppa_rule]
    valgusml evaluate model=exports/default data_dir=data/external split=all baselines=[]

The split comes from the training run (`splits.json`: the checkpoint's own copy, a file beside it, or the
run's MLflow artifact), so the model is scored on exactly the athletes it never saw; baselines are fitted on
that run's training athletes, and every threshold is chosen on its validation athletes. The evaluation is
logged as a child run of the training run (or as its own run when there is none), with the report.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from valgusml.errors import ConfigError, InputError, ModelFileError
from valgusml.paths import configs_dir

log = logging.getLogger("valgusml.evaluate")
CONFIG_DIR = str(configs_dir())


def translate_overrides(overrides: list[str]) -> list[str]:
    """Command-line shorthands. `model=DIR` → `predictor=DIR`: `configs/model/` is the training app's network
    group, so Hydra would read `model=...` as a choice of that group. `robustness=true|false` →
    `robustness.enabled=...` (robustness is a section)."""
    out = []
    for o in overrides:
        if o.startswith("model="):
            o = "predictor=" + o.split("=", 1)[1]
        elif o.startswith("robustness=") and o.split("=", 1)[1].lower() in ("true", "false"):
            o = "robustness.enabled=" + o.split("=", 1)[1].lower()
        out.append(o)
    return out


def compose_eval_config(overrides: list[str] | None = None) -> DictConfig:
    """The config `valgusml evaluate OVERRIDES` would run with (for `make run` and tests)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="eval", overrides=translate_overrides(list(overrides or [])))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad evaluation config ({' '.join(overrides or [])}): {exc}") from None
    finally:
        GlobalHydra.instance().clear()
    return cfg


# -- what to evaluate --------------------------------------------------------------------------------------


def _mlflow_client(cfg: DictConfig):
    from mlflow.tracking import MlflowClient

    return MlflowClient(str(cfg.mlflow.tracking_uri))


def load_model(cfg: DictConfig) -> tuple[Any, dict[str, Any]]:
    """The trained model as a scorer, and what is known about its training run (run id, split, dataset).

    `model=DIR` or `ckpt_path=FILE` name the model; `run_id` then only names its training run (the parent of
    the evaluation run, and where its dataset and split are recorded). With `run_id` alone, the run's best
    checkpoint (or its logged predictor) is the model.
    """
    from valgusml.evaluation.scorers import CheckpointModel, ExportedModel

    if cfg.get("predictor") and cfg.get("ckpt_path"):
        raise ConfigError("give one model: model=DIR (exported predictor) or ckpt_path=FILE, not both")
    if not (cfg.get("predictor") or cfg.get("ckpt_path") or cfg.get("run_id")):
        raise ConfigError("nothing to evaluate: give exactly one of model=DIR, ckpt_path=FILE or run_id=ID")
    if cfg.get("predictor"):
        scorer = ExportedModel(cfg.predictor, name="model")
        meta = scorer.info
        origin = {"source": f"predictor {Path(cfg.predictor).resolve()}",
                  "training_run_id": cfg.get("run_id") or meta.get("training_run_id"),
                  "dataset_fingerprint": meta.get("dataset_fingerprint"), "checkpoint": meta.get("checkpoint")}
        return scorer, origin
    if cfg.get("ckpt_path"):
        scorer = CheckpointModel(cfg.ckpt_path, name="model")
        return scorer, {"source": f"checkpoint {Path(cfg.ckpt_path).resolve()}",
                        "training_run_id": cfg.get("run_id") or scorer.info.get("mlflow_run_id"),
                        "dataset_fingerprint": scorer.info.get("dataset_fingerprint"),
                        "split": scorer.info.get("split"), "checkpoint": str(cfg.ckpt_path)}
    client = _mlflow_client(cfg)
    try:
        run = client.get_run(str(cfg.run_id))
    except Exception as exc:  # MLflow raises its own exception types for unknown ids
        raise ConfigError(f"run_id={cfg.run_id}: no such MLflow run at {cfg.mlflow.tracking_uri} ({exc})") from None
    best = run.data.tags.get("best_checkpoint")
    if best and Path(best).is_file():
        scorer = CheckpointModel(best, name="model")
        origin = {"source": f"run {cfg.run_id} checkpoint {best}", "split": scorer.info.get("split"),
                  "dataset_fingerprint": scorer.info.get("dataset_fingerprint"), "checkpoint": best}
    else:
        try:
            folder = client.download_artifacts(str(cfg.run_id), "predictor", tempfile.mkdtemp(prefix="valgusml-eval-"))
        except Exception as exc:
            raise ModelFileError(f"run {cfg.run_id} has neither a local best checkpoint nor a logged predictor ({exc})") from None
        scorer = ExportedModel(folder, name="model")
        origin = {"source": f"run {cfg.run_id} predictor", "dataset_fingerprint": scorer.info.get("dataset_fingerprint")}
    origin["training_run_id"] = str(cfg.run_id)
    return scorer, origin


def _run_tag(cfg: DictConfig, run_id: str | None, tag: str) -> str | None:
    if not run_id:
        return None
    try:
        return _mlflow_client(cfg).get_run(run_id).data.tags.get(tag)
    except Exception:  # no tracking store or run: the caller asks for the value explicitly
        return None


def resolve_split(cfg: DictConfig, origin: dict[str, Any]):
    """The training run's athlete split, from the first place that has it."""
    from valgusml.data.splits import Split, load_split

    if cfg.get("split_file"):
        return load_split(cfg.split_file)
    if origin.get("split"):
        return Split.from_dict(dict(origin["split"]))
    checkpoint = origin.get("checkpoint")
    if checkpoint and (Path(checkpoint).parent / "splits.json").is_file():
        return load_split(Path(checkpoint).parent / "splits.json")
    if cfg.get("predictor") and (Path(cfg.predictor) / "splits.json").is_file():
        return load_split(Path(cfg.predictor) / "splits.json")
    run_id = origin.get("training_run_id")
    if run_id:
        try:
            path = _mlflow_client(cfg).download_artifacts(run_id, "splits.json", tempfile.mkdtemp(prefix="valgusml-split-"))
            return load_split(path)
        except Exception as exc:  # artifact missing or store unreachable: explained below
            log.warning("could not fetch splits.json of run %s: %s", run_id, exc)
    raise ConfigError(
        "cannot find the training split (splits.json) of this model: pass split_file=PATH, or split=all to score "
        "every sequence of data_dir"
    )


def resolve_data_dir(cfg: DictConfig, origin: dict[str, Any]) -> Path:
    if cfg.get("data_dir"):
        path = Path(cfg.data_dir)
    else:
        tagged = _run_tag(cfg, origin.get("training_run_id"), "dataset")
        if not tagged:
            raise ConfigError("data_dir is not set and the training run does not name its dataset; pass data_dir=DIR")
        path = Path(tagged)
    if not path.is_dir():
        raise InputError(f"dataset folder {path} does not exist")
    return path


def _sequences(ds: Any, athletes: list[str], max_athletes: int | None) -> list:
    athletes = sorted(athletes)[: int(max_athletes)] if max_athletes else sorted(athletes)
    return [ds[int(i)] for i in ds.indices_of(athletes)]


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


# -- the evaluation ----------------------------------------------------------------------------------------


def run_evaluation(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate as configured. Returns `{"result", "report", "robustness", "mlflow_run_id"}`."""
    from valgusml.data import open_dataset
    from valgusml.evaluation.report import write_report
    from valgusml.evaluation.runner import evaluate_scorers

    if cfg.split not in ("test", "all"):
        raise ConfigError(f"split must be 'test' or 'all', got {cfg.split!r}")
    model, origin = load_model(cfg)
    data_dir = resolve_data_dir(cfg, origin)
    ds = open_dataset(data_dir)
    info: dict[str, Any] = {"model": origin["source"], "training_run_id": origin.get("training_run_id"),
                            "dataset": str(data_dir.resolve()), "dataset_fingerprint": ds.fingerprint}
    if cfg.split == "all":
        train, val, test = [], [], _sequences(ds, ds.athletes, cfg.get("max_athletes"))
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
        train = _sequences(ds, split.train, max_athletes) if cfg.get("baselines") else []
        val = _sequences(ds, split.val, max_athletes)
        test = _sequences(ds, split.test, max_athletes)
        info["split"] = f"{split.method} {split.params}".strip()
    scorers = {"model": model, **build_baselines(cfg)}
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
    if cfg.robustness.enabled:
        robustness = run_robustness(cfg, result, data_dir, test)
    report = write_report(result, cfg.report_dir, robustness=robustness, title=cfg.get("title") or _title(origin))
    mlflow_run_id = None
    if cfg.mlflow.enabled:
        mlflow_run_id = _log_to_mlflow(cfg, result, Path(cfg.report_dir), origin)
    _print_summary(result, report)
    return {"result": result, "report": report, "robustness": robustness, "mlflow_run_id": mlflow_run_id}


def run_robustness(cfg: DictConfig, result: Any, data_dir: Path, test: list) -> Any:
    from valgusml.evaluation.robustness import (
        factors_from_config,
        generator_config_of,
        robustness_table,
        synthetic_condition_sets,
    )

    athletes = sorted({s.athlete_id for s in test})[: int(cfg.robustness.max_athletes)]
    factors = factors_from_config(cfg.robustness.get("factors"), cfg.robustness.get("only"))
    sets = synthetic_condition_sets(generator_config_of(data_dir), athletes, factors,
                                    trials_per_athlete=cfg.robustness.get("trials_per_athlete"))
    return robustness_table(
        {n: r.scorer for n, r in result.results.items()},
        {n: r.threshold for n, r in result.results.items()},
        sets,
        n_boot=int(cfg.robustness.n_boot),
        seed=int(cfg.bootstrap.seed),
        on_condition=lambda f, lv: log.info("robustness: %s = %s", f, lv),
    )


def _title(origin: dict[str, Any]) -> str:
    return f"valgusml evaluation: {origin['source']}"


def _log_to_mlflow(cfg: DictConfig, result: Any, report_dir: Path, origin: dict[str, Any]) -> str | None:
    """A child run of the training run when it exists in this store, else a run of its own."""
    from valgusml.evaluation.report import log_report_to_mlflow

    try:
        client = _mlflow_client(cfg)
        parent = origin.get("training_run_id")
        experiment_id = None
        if parent:
            try:
                experiment_id = client.get_run(parent).info.experiment_id
            except Exception:
                parent = None
        if experiment_id is None:
            from valgusml.runs.tracking import ensure_experiment

            experiment_id = ensure_experiment(str(cfg.mlflow.tracking_uri), str(cfg.mlflow.experiment_name))
        tags = {"mlflow.runName": cfg.mlflow.get("run_name") or "evaluate", "task_name": "evaluate",
                "dataset_fingerprint": str(result.info.get("dataset_fingerprint"))}
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = client.create_run(experiment_id, tags=tags)
        run_id = run.info.run_id
        for key in ("model", "dataset", "split"):
            client.log_param(run_id, key, str(result.info.get(key))[:500])
        client.log_param(run_id, "baselines", ",".join(n for n in result.results if n != "model"))
        client.log_param(run_id, "threshold_rule", str(cfg.threshold_rule))
        log_report_to_mlflow(result, report_dir, run_id, str(cfg.mlflow.tracking_uri))
        client.set_terminated(run_id, "FINISHED")
        log.info("evaluation logged to MLflow run %s%s", run_id, f" (child of {parent})" if parent else "")
        return run_id
    except Exception as exc:  # tracking is a side channel: never lose the report because of it
        log.warning("MLflow logging failed (%s); the report is still at %s", exc, report_dir)
        return None


def _print_summary(result: Any, report: Path) -> None:
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="held-out athletes: value [95% athlete-bootstrap CI]")
        frame = result.comparison_table()
        columns = ["scorer", "valgus_auroc", "valgus_f1", "mechanism_macro_f1", "severity_mae_deg", "predict_ms_per_sequence"]
        for c in columns:
            table.add_column(c)
        for _, row in frame.iterrows():
            table.add_row(*[str(row[c]) for c in columns])
        console = Console(width=max(Console().width, 150))
        console.print(table)
        console.print(f"report: {report}")
    except ImportError:
        print(result.comparison_table().to_string(index=False))
        print(f"report: {report}")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    run_evaluation(cfg)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.argv = [sys.argv[0] if sys.argv else "valgusml evaluate", *translate_overrides(argv)]
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    _hydra_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
