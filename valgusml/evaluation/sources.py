"""What an evaluation scores and on which athletes: the model (exported folder, checkpoint or MLflow run), its
training run's athlete split and its dataset folder, each from the first place that has it."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from valgusml.errors import ConfigError, InputError, ModelFileError
from valgusml.paths import find_in_checkout

log = logging.getLogger("valgusml.evaluate")


def mlflow_client(cfg: DictConfig):
    from mlflow.tracking import MlflowClient

    return MlflowClient(str(cfg.mlflow.tracking_uri))


def learnt_from(info: dict[str, Any]) -> dict[str, Any]:
    """What a model's `model.json` or checkpoint info says it learnt from: `dataset_fingerprint`,
    `generator_seeds`, `other_training_data` (`evaluate.not_trained_on` refuses or cautions by them)."""
    from valgusml.predictor.format import other_training_data, seeds_learnt_from

    return {"dataset_fingerprint": info.get("dataset_fingerprint"), "generator_seeds": seeds_learnt_from(info),
            "other_training_data": other_training_data(info)}


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
        return scorer, {"source": f"predictor {Path(cfg.predictor).resolve()}",
                        "training_run_id": cfg.get("run_id") or meta.get("training_run_id"),
                        "checkpoint": meta.get("checkpoint"), **learnt_from(meta)}
    if cfg.get("ckpt_path"):
        scorer = CheckpointModel(cfg.ckpt_path, name="model")
        return scorer, {"source": f"checkpoint {Path(cfg.ckpt_path).resolve()}",
                        "training_run_id": cfg.get("run_id") or scorer.info.get("mlflow_run_id"),
                        "split": scorer.info.get("split"), "checkpoint": str(cfg.ckpt_path),
                        **learnt_from(scorer.info)}
    client = mlflow_client(cfg)
    try:
        run = client.get_run(str(cfg.run_id))
    except Exception as exc:  # MLflow raises its own exception types for unknown ids
        raise ConfigError(f"run_id={cfg.run_id}: no such MLflow run at {cfg.mlflow.tracking_uri} ({exc})") from None
    best = run.data.tags.get("best_checkpoint")
    if best and Path(best).is_file():
        scorer = CheckpointModel(best, name="model")
        origin = {"source": f"run {cfg.run_id} checkpoint {best}", "split": scorer.info.get("split"), "checkpoint": best}
    else:
        try:
            folder = client.download_artifacts(str(cfg.run_id), "predictor", tempfile.mkdtemp(prefix="valgusml-eval-"))
        except Exception as exc:
            raise ModelFileError(f"run {cfg.run_id} has neither a local best checkpoint nor a logged predictor ({exc})") from None
        scorer = ExportedModel(folder, name="model")
        origin = {"source": f"run {cfg.run_id} predictor"}
    return scorer, {**origin, "training_run_id": str(cfg.run_id), **learnt_from(scorer.info)}


def _run_tag(cfg: DictConfig, run_id: str | None, tag: str) -> str | None:
    if not run_id:
        return None
    try:
        return mlflow_client(cfg).get_run(run_id).data.tags.get(tag)
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
    # An exported folder names its checkpoint relative to the checkout (`paths.relative_to_checkout`).
    if checkpoint and (split_file := find_in_checkout(Path(checkpoint).parent / "splits.json")) is not None:
        return load_split(split_file)
    if cfg.get("predictor") and (Path(cfg.predictor) / "splits.json").is_file():
        return load_split(Path(cfg.predictor) / "splits.json")
    run_id = origin.get("training_run_id")
    if run_id:
        try:
            path = mlflow_client(cfg).download_artifacts(run_id, "splits.json", tempfile.mkdtemp(prefix="valgusml-split-"))
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
