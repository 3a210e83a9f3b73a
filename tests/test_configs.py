"""Every training config composes (as lightning-hydra-template's tests do), and bad overrides fail clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from valgusml.errors import ConfigError
from valgusml.training.config import apply_leave_out, check_config
from valgusml.training.train import CONFIG_DIR, compose_config

CONFIGS = Path(CONFIG_DIR)
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
# configs/model/ belongs to the model zoo (its own tests); every model is trained in tests/training.
GROUPS = {g: sorted(p.stem for p in (CONFIGS / g).glob("*.yaml")) for g in ("trainer", "logger", "data")}
GROUPS["callbacks"] = ["default", "none"]
LEAVE_OUTS = sorted(p.stem for p in (CONFIGS / "leave_out").glob("*.yaml"))


def _resolved(overrides: list[str], tmp_path: Path):
    from hydra.utils import instantiate

    cfg = compose_config([f"paths.root_dir={tmp_path}", *overrides])
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "out")
    HydraConfig().set_config(cfg)
    for key in ("data", "model", "trainer", "module", "paths", "callbacks", "logger"):
        cfg[key] if cfg.get(key) is None else list(cfg[key].items())  # resolves every interpolation
    return cfg, instantiate


def test_there_are_recipes():
    assert {"smoke", "default"} <= set(EXPERIMENTS) and len(EXPERIMENTS) >= 3


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(experiment, tmp_path):
    cfg, instantiate = _resolved([f"experiment={experiment}"], tmp_path)
    assert cfg.task_name and cfg.data._target_.endswith("ValgusDataModule")
    check_config(cfg)  # the checks `valgusml train` runs before any work: a recipe as shipped passes them
    net = instantiate(cfg.model)
    assert sum(p.numel() for p in net.parameters()) > 0
    for name, node in (cfg.callbacks or {}).items():
        if node is not None:
            extra = {"dirpath": str(tmp_path)} if name == "model_checkpoint" else {}
            instantiate(node, **extra)


def test_every_distilling_recipe_bounds_its_teacher():
    # The shipped teacher learnt two generator shortcuts (narrow gait steps, a weak hip's pelvis); unbounded it
    # overrules the labels that took them out (docs/experiments.md: narrow steps and a dropping pelvis).
    distilling = [e for e in EXPERIMENTS if compose_config([f"experiment={e}"]).data.get("teacher")]
    assert {"default", "student_cpu", "student_gpu"} <= set(distilling)
    for experiment in distilling:
        assert compose_config([f"experiment={experiment}"]).data.teacher_bounded is True, experiment


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes(group, option, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    overrides = [f"{group}={option}"]
    if option == "folder":
        overrides.append(f"data.dataset_dir={tmp_path}")
    cfg, _ = _resolved(overrides, tmp_path)
    if group == "trainer":
        assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if group == "logger" and option.startswith("mlflow"):
        assert cfg.logger.mlflow.tracking_uri.startswith("sqlite:///" if option == "mlflow" else "http://")


def test_defaults_match_the_design(tmp_path):
    cfg, _ = _resolved([], tmp_path)
    assert cfg.logger.mlflow.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert cfg.logger.mlflow.artifact_location == f"{tmp_path}/mlartifacts"
    assert cfg.hydra.job.chdir is False
    assert cfg.hydra.run.dir.startswith(f"{tmp_path}/logs/train/runs/")
    assert cfg.data.split.method == "fractions" and cfg.data.generator.preset == "realistic"
    assert cfg.module.optimizer._target_ == "torch.optim.AdamW" and cfg.module.scheduler.name == "cosine"
    gpu, _ = _resolved(["trainer=gpu"], tmp_path)
    assert gpu.trainer.precision == "bf16-mixed"
    ddp_cpu, _ = _resolved(["trainer=ddp_cpu"], tmp_path)
    assert ddp_cpu.trainer.devices == 2 and ddp_cpu.trainer.strategy.process_group_backend == "gloo"


def test_sweep_and_launcher_configs_compose(tmp_path):
    cfg, _ = _resolved(["hparams_search=optuna", "hydra/launcher=joblib"], tmp_path)
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.optimized_metric == "val/mechanism_macro_f1"
    assert cfg.hydra.sweeper.storage is None
    assert "joblib" in cfg.hydra.launcher._target_.lower()
    slurm, _ = _resolved(["hydra/launcher=slurm"], tmp_path)
    assert "submitit" in slurm.hydra.launcher._target_.lower()


def test_an_accelerator_this_machine_lacks_is_named_before_any_work(monkeypatch):
    """A GPU recipe is a valid config anywhere; training it where there is no GPU stops at once, in one line."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    from valgusml.training.config import check_accelerator_available

    for kind in ("cuda", "mps"):
        monkeypatch.setattr(AcceleratorRegistry[kind]["accelerator"], "is_available", staticmethod(lambda: False))
    cfg = compose_config(["experiment=tcn_gpu"])
    check_config(cfg)
    with pytest.raises(ConfigError, match=r"trainer.accelerator=gpu: this machine has none \(usable here: \['cpu'"):
        check_accelerator_available(cfg.trainer)
    check_accelerator_available(compose_config(["experiment=smoke"]).trainer)


@pytest.mark.parametrize(
    "override,message",
    [
        ("model=resnet", "model/resnet"),
        ("trainer=tpu", "trainer/tpu"),
        ("experiment=nope", "experiment/nope"),
        ("trainer.max_epoch=3", "max_epoch"),
        ("no_such_key=1", "no_such_key"),
    ],
)
def test_unknown_groups_and_keys_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        compose_config([override])


@pytest.mark.parametrize(
    "overrides,message",
    [
        # each was a traceback from inside Python, torch or Lightning, or a run on a value nobody meant
        (["seed=x"], "seed must be an integer >= 0, got 'x'"),
        (["torch_threads=-1"], "torch_threads must be an integer >= 1"),
        (["data.n_athletes=abc"], "data.n_athletes must be an integer >= 1, got 'abc'"),
        (["data.n_athletes=2.5"], "data.n_athletes must be an integer >= 1, got 2.5"),  # was 2 athletes
        (["data.batch_size=1.5"], "data.batch_size must be an integer >= 1"),  # was batches of 1
        (["data.eval_batch_size=0"], "data.eval_batch_size must be an integer >= 1"),
        (["module.optimizer.lr=-0.1"], "module.optimizer.lr must be >= 0"),
        (["module.optimizer.lr=fast"], "module.optimizer.lr must be a finite number"),
        (["module.scheduler.name=step"], "module.scheduler.name must be one of"),
        (["data.split.method=random"], "data.split.method must be one of"),
        (["data.split.val_fraction=0.5", "data.split.test_fraction=0.6"],
         r"data.split.val_fraction \+ data.split.test_fraction must be < 1"),
        (["data.split.method=group_kfold", "data.split.n_folds=three"], "data.split.n_folds must be an integer >= 2"),
        (["data.split.method=group_kfold", "data.split.n_folds=3", "data.split.fold=3"],
         r"data.split.fold must be in \[0, 2\]"),
        (["data.extra_train_dirs=[{tmp}/nope]"], "data.extra_train_dirs: .*nope is not a dataset folder"),
        (["ckpt_path={tmp}/junk.ckpt"], "ckpt_path: .*not a readable torch checkpoint"),
        # the generator's own message named 'nonsense' from its root, once the data module was built
        (["+data.generator.nonsense=1"], r"data.generator: unknown config key 'nonsense'"),
        (["data.generator.observation.duration_s=[3.0,2.0]"],
         r"data.generator: config key 'observation.duration_s' is inverted"),
        # these were Lightning's several-line messages, once the data was generated and prepared
        (["trainer.accelerator=quantum"], r"trainer.accelerator must be one of \['auto', 'gpu', 'cpu'"),
        (["trainer.devices=0"], "trainer.devices must be an integer >= 1, got 0"),
        (["trainer.devices=[]"], "trainer.devices as a list names device indices"),
    ],
)
def test_bad_training_values_are_config_errors_before_any_work(overrides, message, tmp_path):
    (tmp_path / "junk.ckpt").write_text("not a checkpoint")
    cfg, _ = _resolved([o.format(tmp=tmp_path) for o in ["experiment=smoke", *overrides]], tmp_path)
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)


def _readme_train_commands() -> list[list[str]]:
    """The overrides of every single-run `valgusml train ...` command README.md gives, as a user copies them:
    tokens up to the first that is not `key=value`; commands with placeholders (`...`, `<...>`, `$VAR`, RUN)
    and multiruns (`-m`, comma sweeps) are left out."""
    text = (CONFIGS.parent / "README.md").read_text()
    commands = []
    for match in re.finditer(r"valgusml train ([^`\n#(]*)", text):
        words = match.group(1).split()
        n = next((i for i, word in enumerate(words) if "=" not in word), len(words))
        tokens = words[:n]
        if not tokens or "-m" in words or any(re.search(r"\.\.\.|<|\$|RUN|,", w) for w in words[: n + 1]):
            continue
        if tokens not in commands:
            commands.append(tokens)
    return commands


README_TRAIN_COMMANDS = _readme_train_commands()


def test_readme_gives_train_commands():
    assert ["experiment=default_scratch", "leave_out=rear_views"] in README_TRAIN_COMMANDS
    assert len(README_TRAIN_COMMANDS) >= 6


@pytest.mark.parametrize("overrides", README_TRAIN_COMMANDS, ids=" ".join)
def test_every_readme_train_command_passes_the_training_checks(overrides, tmp_path):
    """What README tells a user to run gets past the checks `valgusml train` makes before any work (a recipe
    that broke one of them, e.g. a weight blend without its start, stops every run that uses it)."""
    cfg, _ = _resolved(overrides, tmp_path)
    apply_leave_out(cfg)
    check_config(cfg)


@pytest.mark.parametrize("name", LEAVE_OUTS)
def test_the_documented_leave_out_command_passes_the_training_checks(name, tmp_path):
    """`valgusml train experiment=default_scratch leave_out=NAME`, as each leave-out config's header gives it, gets
    past the checks run before any data are generated (the default's weight blend needs the start this recipe
    drops)."""
    cfg, _ = _resolved(["experiment=default_scratch", f"leave_out={name}"], tmp_path)
    apply_leave_out(cfg)
    check_config(cfg)
    assert cfg.init_from is None and cfg.init_blend is None


def test_the_evaluate_help_names_its_own_options_and_no_training_group():
    """Hydra's default help lists every group of configs/, the training app's among them; evaluate's says what
    evaluate takes, and its list of leave-out suites is the folder's."""
    import yaml

    template = yaml.safe_load((CONFIGS / "eval.yaml").read_text())["hydra"]["help"]["template"]
    for option in ("model=DIR", "ckpt_path", "run_id", "data_dir", "baselines", "suite=default|transfer",
                   "transfer.other_data", "robustness.only", "report_dir", "mlflow.tracking_uri"):
        assert option in template, option
    assert "$APP_CONFIG_GROUPS" not in template and "callbacks" not in template
    listed = template.split("left-out level only:")[1].split("report_dir")[0]
    assert sorted(re.findall(r"[a-z_]+", listed)) == LEAVE_OUTS
