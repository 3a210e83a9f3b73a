"""Cross-validation over athletes: GroupKFold folds as one Hydra multirun, summarised in a parent MLflow run.

    python -m valgusml.evaluation.cv --folds 5 -- experiment=cv_fold
    python -m valgusml.evaluation.cv --folds 3 -- experiment=smoke hydra/launcher=joblib
    python -m valgusml.evaluation.cv --aggregate-only --group cv-20261127-0450    # (re)summarise finished folds

Each fold is an ordinary training run (`valgusml train -m data.split.method=group_kfold data.split.n_folds=K
data.split.fold=0,...,K-1 ++tags.cv_group=GROUP`): fold k's athletes are its test set, a validation fraction of
the others picks its checkpoint and threshold. When the folds are done, a parent run `cv-GROUP` holds every
test metric as mean and sd over folds (`cv/<metric>_mean`, `cv/<metric>_sd`), the per-fold table as
`cv.csv`, and every fold run is re-parented under it (MLflow `mlflow.parentRunId`) so the UI nests them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from valgusml.errors import ConfigError, InputError, ValgusMLError
from valgusml.runs import tracking

log = logging.getLogger("valgusml.cv")
TEST_PREFIX = "test/"
SUMMARY_TASK = "cv_summary"  # task_name tag of the parent run (fold runs carry their training task's name)


def fold_overrides(n_folds: int, group: str, extra: Sequence[str] = ()) -> list[str]:
    """The Hydra multirun command line of the training app for `n_folds` athlete folds."""
    if n_folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {n_folds}")
    return [
        "-m",
        "data.split.method=group_kfold",
        f"data.split.n_folds={n_folds}",
        "data.split.fold=" + ",".join(str(k) for k in range(n_folds)),
        f"++tags.cv_group={group}",
        *extra,
    ]


def _override(overrides: Sequence[str], key: str) -> str | None:
    """The value `overrides` give `key` (`key=V`, `+key=V` or `++key=V`), the last one winning; None if none."""
    from valgusml.hydra_app import split_override

    values = [rest[1:] for prefix, name, rest in map(split_override, overrides)
              if name == key and rest.startswith("=") and "~" not in prefix]
    return values[-1] if values else None


def fold_root(overrides: Sequence[str], cwd: str | Path | None = None) -> str:
    """Where the folds write: their `paths.root_dir` override, else $VALGUSML_ROOT, else `cwd` (the training
    config's own rule)."""
    return (_override(overrides, "paths.root_dir") or os.environ.get("VALGUSML_ROOT")
            or str(Path(cwd or Path.cwd()).resolve()))


def fold_tracking_uri(overrides: Sequence[str], cwd: str | Path | None = None) -> str:
    """The MLflow store the folds log to, as the training config resolves it: a `logger.mlflow.tracking_uri`
    override, $MLFLOW_TRACKING_URI with `logger=mlflow_server`, else the SQLite file under `fold_root`."""
    given = _override(overrides, "logger.mlflow.tracking_uri")
    if given:
        return given
    if _override(overrides, "logger") == "mlflow_server" and os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{fold_root(overrides, cwd)}/mlflow.db"


def launch_folds(n_folds: int, group: str, extra: Sequence[str] = (), cwd: str | Path | None = None) -> None:
    """Run the folds (a subprocess: Hydra owns the process while it sweeps)."""
    extra = list(extra)
    # Pin the training config's paths.root_dir (else ${hydra:runtime.cwd}: the subprocess's cwd) to the root the
    # fold runs are looked up under, unless the caller did.
    if _override(extra, "paths.root_dir") is None:
        extra.append(f"paths.root_dir={fold_root(extra, cwd)}")
    command = [sys.executable, "-m", "valgusml.cli", "train", *fold_overrides(n_folds, group, extra)]
    log.info("launching %s", " ".join(command))
    done = subprocess.run(command, cwd=cwd)
    if done.returncode != 0:  # the training app said why, one line per failed fold
        raise InputError(f"the folds' training exited with status {done.returncode} (above); no summary made")


def fold_table(runs: Sequence[object]) -> pd.DataFrame:
    """One row per fold run: its fold index, run id and every `test/` metric."""
    rows = []
    for run in runs:
        params = run.data.params
        fold = params.get("data.split.fold", run.data.tags.get("fold", "?"))
        row = {"fold": str(fold), "run_id": run.info.run_id}
        row.update({k[len(TEST_PREFIX):]: v for k, v in run.data.metrics.items() if k.startswith(TEST_PREFIX)})
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values("fold", key=lambda s: pd.to_numeric(s, errors="coerce")).reset_index(drop=True)


def _refuse_repeated_folds(table: pd.DataFrame, group: str) -> None:
    """One run per fold: a sweep started again under the same group (`--group` after a failed fold) leaves two
    runs of the folds it repeated, which would count twice in the mean and narrow the sd."""
    repeated = table[table["fold"].duplicated(keep=False)]
    if len(repeated):
        runs = repeated.groupby("fold")["run_id"].apply(list).to_dict()
        raise InputError(f"cv group {group!r} has several runs of one fold: {runs}; delete or re-tag the extra "
                         "runs (tags.cv_group) before summarising")


def _refuse_incomplete_folds(runs: Sequence[object], group: str) -> None:
    """Every fold finished with its test metrics, and none missing: a failed fold's NaN metrics would drop out of
    the mean while it still counted among the folds, and a missing fold's athletes were never tested."""
    unfinished = [f"fold {run.data.params.get('data.split.fold', '?')} (run {run.info.run_id}, {run.info.status})"
                  for run in runs
                  if run.info.status != "FINISHED" or f"{TEST_PREFIX}valgus_auroc" not in run.data.metrics]
    if unfinished:
        raise InputError(f"cv group {group!r}: {', '.join(unfinished)} has no test metrics; rerun it under the same "
                         "group (and delete the failed run) before summarising")
    n_folds = {run.data.params.get("data.split.n_folds") for run in runs} - {None}
    if len(n_folds) == 1:
        expected = int(n_folds.pop())
        seen = {str(run.data.params.get("data.split.fold")) for run in runs}
        missing = [k for k in range(expected) if str(k) not in seen]
        if missing:
            raise InputError(f"cv group {group!r}: folds {missing} of {expected} have no run; run them before "
                             "summarising")


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd (ddof=1) over folds of every metric column, as two extra rows."""
    metrics = [c for c in table.columns if c not in ("fold", "run_id")]
    values = table[metrics].astype(float)
    mean = {"fold": "mean", "run_id": "", **values.mean(axis=0).to_dict()}
    sd = {"fold": "sd", "run_id": "", **values.std(axis=0, ddof=1).to_dict()}
    return pd.concat([table, pd.DataFrame([mean, sd])], ignore_index=True)


def aggregate_cv(group: str, tracking_uri: str, experiment_name: str = "valgusml") -> tuple[str, pd.DataFrame]:
    """Create the parent run of fold runs tagged `cv_group=group`; returns (parent run id, table with mean/sd)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise InputError(f"no MLflow experiment {experiment_name!r} at {tracking_uri}")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.cv_group = '{group}'")
    runs = [r for r in runs if r.data.tags.get("task_name") != SUMMARY_TASK]
    if not runs:
        raise InputError(f"no runs tagged cv_group={group!r} in experiment {experiment_name!r}")
    table = fold_table(runs)
    _refuse_repeated_folds(table, group)
    _refuse_incomplete_folds(runs, group)
    summary = summarise(table)
    parent = client.create_run(
        experiment.experiment_id,
        tags={"mlflow.runName": f"cv-{group}", "cv_group": group, "task_name": SUMMARY_TASK,
              "n_folds": str(len(runs))},
    )
    parent_id = parent.info.run_id
    mean_row, sd_row = summary.iloc[-2], summary.iloc[-1]
    tracking.log_metrics(client, parent_id, {
        f"cv/{name}{suffix}": value
        for name in table.columns if name not in ("fold", "run_id")
        for suffix, value in (("_mean", mean_row[name]), ("_sd", sd_row[name]))})
    client.log_param(parent_id, "n_folds", len(runs))
    client.log_param(parent_id, "fold_runs", ",".join(table["run_id"])[:500])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cv.csv"
        summary.to_csv(path, index=False)
        client.log_artifact(parent_id, str(path))
    for run_id in table["run_id"]:
        client.set_tag(run_id, "mlflow.parentRunId", parent_id)
    client.set_terminated(parent_id, "FINISHED")
    return parent_id, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valgusml.evaluation.cv", description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5, help="number of GroupKFold folds over athletes")
    parser.add_argument("--group", default=None, help="name tying the folds together (default: cv-<time>)")
    parser.add_argument("--tracking-uri", help="MLflow store of the fold runs (default: the one the folds log "
                        "to, from the overrides as training resolves it)")
    parser.add_argument("--experiment", default="valgusml", help="MLflow experiment of the fold runs (default: valgusml)")
    parser.add_argument("--aggregate-only", action="store_true", help="only summarise finished fold runs")
    parser.add_argument("overrides", nargs="*", help="training overrides after --, e.g. experiment=smoke")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    group = args.group or dt.datetime.now().strftime("cv-%Y%m%d-%H%M%S")
    try:
        if not args.aggregate_only:
            launch_folds(args.folds, group, args.overrides)
        parent, summary = aggregate_cv(group, args.tracking_uri or fold_tracking_uri(args.overrides), args.experiment)
    except ValgusMLError as exc:
        print(f"{parser.prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(summary.to_string(index=False))
    print(f"parent MLflow run: {parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
