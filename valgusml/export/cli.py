"""`valgusml export RUN_OR_CHECKPOINT --out DIR`: a checkpoint file or an MLflow run id → predictor folder.

An MLflow run id is resolved to the run's best checkpoint artifact (a `.ckpt` whose path says `best`, else the
most recent one); the tracking URI comes from `--tracking-uri`, `MLFLOW_TRACKING_URI` or the project's
`sqlite:///<repo>/mlflow.db`. Parity is checked on validation recordings: those of the checkpoint's validation
athletes in `--data` (or in the data set the checkpoint names), else on random windows, with a warning.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from valgusml.errors import ValgusMLError

log = logging.getLogger("valgusml.export")

MAX_PARITY_SEQUENCES = 32


def find_checkpoint(run_id: str, tracking_uri: str | None, dst: Path) -> Path:
    """Download the best `.ckpt` artifact of MLflow run `run_id` into `dst`."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from valgusml.export.folder import ExportError
    from valgusml.export.pyfunc import default_tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri or default_tracking_uri())
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ExportError(
            f"{run_id!r} is neither a checkpoint file nor a run in {client.tracking_uri} ({exc.message})"
        ) from None

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    # The run's own artifacts only: `client.list_artifacts` also lists the models the run logged (training logs
    # its predictor), and MLflow looks those up in the global tracking store, not the client's, so a run in
    # any other store (`--tracking-uri`, or a cwd without the project's mlflow.db) was "not found".
    try:
        repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=client.tracking_uri)
    except TypeError:  # early MLflow 3 releases take the artifact URI alone
        repo = get_artifact_repository(run.info.artifact_uri)
    found: list[Any] = []

    def walk(path: str | None) -> None:
        for item in repo.list_artifacts(path):
            if item.is_dir:
                walk(item.path)
            elif item.path.endswith(".ckpt"):
                found.append(item)

    walk(None)
    if not found:
        raise ExportError(f"run {run_id} has no .ckpt artifact")
    # Training tags the run with its best checkpoint's local path; its file name finds the artifact.
    tagged = Path(run.data.tags.get("best_checkpoint", "")).name
    best = [f for f in found if Path(f.path).name == tagged] or [f for f in found if "best" in f.path.lower()]
    chosen = sorted(best or found, key=lambda f: f.path)[-1]
    local = repo.download_artifacts(chosen.path, dst_path=str(dst))
    log.info("run %s: using checkpoint artifact %s", run_id, chosen.path)
    return Path(local)


def dataset_dir_of_run(checkpoint: Path) -> str | None:
    """`data.dataset_dir` of the Hydra run that wrote `checkpoint` (`<run>/checkpoints/x.ckpt`, `<run>/.hydra/`)."""
    for folder in (checkpoint.parent, checkpoint.parent.parent):
        config = folder / ".hydra" / "config.yaml"
        if config.is_file():
            try:
                from omegaconf import OmegaConf

                value = OmegaConf.select(OmegaConf.load(config), "data.dataset_dir", default=None)
            except Exception as exc:  # an unreadable or interpolating config only costs the validation data
                log.warning("%s: cannot read data.dataset_dir (%s)", config, exc)
                return None
            return str(value) if value else None
    return None


def validation_sequences(info: dict[str, Any], data: str | None) -> list[Any]:
    """The recordings of the checkpoint's validation athletes (every recording when the split is unknown: then
    only the first MAX_PARITY_SEQUENCES, for parity)."""
    path = data or info.get("dataset_dir") or info.get("dataset_path")
    if not path and info.get("checkpoint"):
        path = dataset_dir_of_run(Path(info["checkpoint"]))
    if not path or not Path(path).is_dir():
        if path:
            log.warning("data set %s not found: parity is checked on random windows only", path)
        return []
    from valgusml.data import open_dataset

    ds = open_dataset(path)
    fingerprint = info.get("dataset_fingerprint")
    if fingerprint and ds.fingerprint != fingerprint:
        log.warning("data set %s has fingerprint %s, the checkpoint was trained on %s", path, ds.fingerprint, fingerprint)
    val = list((info.get("split") or {}).get("val") or [])
    return ds.sequences_of(val) if val else [ds[i] for i in range(min(len(ds), MAX_PARITY_SEQUENCES))]


def log_to_mlflow(folder: Path, tracking_uri: str | None, run_id: str | None = None) -> None:
    """Log a predictor folder as a registered pyfunc model (into `run_id`, else a new run) and print its URI."""
    import mlflow

    from valgusml.export.pyfunc import log_predictor_to_mlflow

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    model_info = log_predictor_to_mlflow(folder, run_id=run_id)
    print(json.dumps({"model_uri": model_info.model_uri, "version": model_info.registered_model_version}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="valgusml export", description="Export a trained model as a predictor folder (model.onnx + model.json)."
    )
    parser.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="a .ckpt file or an MLflow run id")
    parser.add_argument("--out", required=True, help="predictor folder to write (replaced atomically)")
    parser.add_argument("--data", help="data set folder whose validation athletes choose the threshold and mechanism offsets and feed the parity check")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument(
        "--log-mlflow", action="store_true", help="also log the folder as a pyfunc model and register it"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("valgusml").setLevel(logging.INFO)
    try:
        from valgusml.export.onnx import export_predictor, load_source
        from valgusml.predictor.format import read_metadata

        with tempfile.TemporaryDirectory(prefix="valgusml-export-") as tmp:
            source = Path(args.source)
            run_id = None
            if not source.is_file():
                if source.suffix == ".ckpt" or "/" in args.source:
                    raise ValgusMLError(f"{args.source}: no such checkpoint file")
                run_id = args.source
                source = find_checkpoint(run_id, args.tracking_uri, Path(tmp))
            net, cfg, info = load_source(source)
            if run_id and not info.get("mlflow_run_id"):
                info["mlflow_run_id"] = run_id
            sequences = validation_sequences(info, args.data)
            # The threshold is chosen on validation athletes only: none when the split is unknown.
            has_split = bool((info.get("split") or {}).get("val"))
            if not (has_split and sequences):
                log.warning("no validation athletes' recordings found (--data DATASET names them): the "
                            "checkpoint's decision threshold is kept")
            out = export_predictor((net, cfg, info), args.out, sequences[:MAX_PARITY_SEQUENCES],
                                   sequences if has_split else None)
        meta = read_metadata(out)
        print(
            json.dumps(
                {
                    "out": str(out),
                    "sha256": meta["model"]["sha256"],
                    "parity_max_abs_diff": meta["parity"]["max_abs_diff_probability"],
                    "decision_threshold": meta["decision_threshold"],
                    "mechanism_offsets": meta.get("mechanism_offsets"),
                }
            )
        )
        if args.log_mlflow:
            log_to_mlflow(out, args.tracking_uri, run_id=meta.get("training_run_id") or run_id)
    except (ValgusMLError, OSError) as exc:
        print(f"valgusml export: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
