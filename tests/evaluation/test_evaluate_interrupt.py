"""`valgusml evaluate` interrupted: no MLflow run left RUNNING (Ctrl-C marks it KILLED, a SIGKILLed one is marked
by the next evaluation), no report folder without its report.html, one line for the user, and a rerun that
writes the whole report."""

from __future__ import annotations

import os
import socket

import pytest

from valgusml.cli import main as cli_main
from valgusml.evaluation import mlflow_log, report

from .test_evaluate import write_checkpoint


@pytest.fixture(scope="module")
def checkpoint_setup(tmp_path_factory, tiny_sequences):
    from valgusml.data import write_dataset
    from valgusml.data.splits import Split

    root = tmp_path_factory.mktemp("evaluate_interrupt")
    ds = write_dataset(root / "data", tiny_sequences, shard_size=64)
    athletes = ds.athletes
    split = Split(train=athletes[:6], val=athletes[6:8], test=athletes[8:], method="fractions",
                  dataset_fingerprint=ds.fingerprint)
    checkpoint = write_checkpoint(root / "best.ckpt", None, split)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return {"root": root, "args": [f"ckpt_path={checkpoint}", f"data_dir={root / 'data'}", "baselines=[]",
                                   "bootstrap.n_boot=20", "transfer.real_motion.enabled=false",
                                   f"mlflow.tracking_uri={uri}", f"root_dir={root}"], "uri": uri}


def _evaluation_runs(uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, "tags.task_name = 'evaluate'") if experiments else []
    return {run.info.run_id: run.info.status for run in runs}


def _ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_while_logging_marks_the_run_killed_and_a_rerun_finishes(checkpoint_setup, monkeypatch, capsys):
    reports = checkpoint_setup["root"] / "reports_logging"
    before = _evaluation_runs(checkpoint_setup["uri"])
    monkeypatch.setattr(mlflow_log, "log_report_to_mlflow", _ctrl_c)
    assert cli_main(["evaluate", *checkpoint_setup["args"], f"report_dir={reports / 'first'}"]) == 130
    err = capsys.readouterr().err
    assert "valgusml evaluate: interrupted (Ctrl-C)" in err and "Traceback" not in err
    killed = {k: v for k, v in _evaluation_runs(checkpoint_setup["uri"]).items() if k not in before}
    assert list(killed.values()) == ["KILLED"]

    monkeypatch.undo()
    assert cli_main(["evaluate", *checkpoint_setup["args"], f"report_dir={reports / 'again'}"]) == 0
    after = {k: v for k, v in _evaluation_runs(checkpoint_setup["uri"]).items() if k not in before}
    assert sorted(after.values()) == ["FINISHED", "KILLED"]
    assert (reports / "again" / report.REPORT_FILE).is_file()


def test_ctrl_c_while_writing_the_report_leaves_no_folder(checkpoint_setup, monkeypatch, capsys, dead_pid):
    """...and a report SIGKILLed while being written, which left its hidden `.NAME.partial-PID` folder (report
    folders are named per run), is removed by the next written beside it."""
    reports = checkpoint_setup["root"] / "reports_writing"
    (reports / f".evaluate-2026-01-01_00-00-00.partial-{dead_pid}" / "plots").mkdir(parents=True)
    calls = []

    def plots_then_ctrl_c(result, out_dir, *args, **kwargs):
        (out_dir / "plots").mkdir(parents=True)
        (out_dir / "plots" / "roc.png").write_bytes(b"half")
        calls.append(out_dir)
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "make_plots", plots_then_ctrl_c)
    assert cli_main(["evaluate", *checkpoint_setup["args"], f"report_dir={reports / 'first'}"]) == 130
    assert calls and list(reports.iterdir()) == []  # neither the folder nor a hidden partial one
    err = capsys.readouterr().err
    assert "interrupted (Ctrl-C); a new report folder appears only when complete" in err


def test_a_killed_evaluation_is_marked_killed_by_the_next(checkpoint_setup, dead_pid):
    """SIGKILL cannot be caught: the run it leaves RUNNING carries the dead pid, and the next evaluation logged
    to the same experiment marks it KILLED (a live process's run is left alone)."""
    from mlflow.tracking import MlflowClient

    from valgusml.runs.tracking import ensure_experiment

    uri = checkpoint_setup["uri"]
    client = MlflowClient(uri)
    experiment = ensure_experiment(uri, "valgusml")
    host = socket.gethostname()
    killed, live = (client.create_run(experiment, tags={"task_name": "evaluate", "pid": str(pid),
                                                        "host": host}).info.run_id
                    for pid in (dead_pid, os.getppid()))
    assert cli_main(["evaluate", *checkpoint_setup["args"],
                     f"report_dir={checkpoint_setup['root'] / 'reports_killed' / 'next'}"]) == 0
    statuses = _evaluation_runs(uri)
    assert statuses[killed] == "KILLED" and statuses[live] == "RUNNING"
    client.set_terminated(live, "FINISHED")

