"""Start a training's network from pretrained weights (`init_from`): a transfer-learning start, not a resume.

The default recipe starts from a network pretrained on a GPU, because 2 CPU cores in 10 minutes cannot train one
as well as the GPU can. Only the network's weights are taken: the optimiser, the learning-rate schedule and the
epoch count start afresh (to continue a run, use `resume` / `ckpt_path`).

Weights come from a valgusml training checkpoint (`.ckpt`) or from the smaller file `save_weights` writes from
one: `{"format", "net" (state dict), "model" (network config), "preprocess", "source" (where they came from)}`,
plain containers that `torch.load(..., weights_only=True)` reads. They load only into a network of the same
config, trained on windows prepared the same way; anything else is a `ConfigError` naming what differs.

`init_blend` (`blend_with_initial`) ends such a fine-tuning in weight space: the shipped network is a weighted
mean of the fine-tuned weights and the starting ones (WiSE-FT: Wortsman et al., "Robust fine-tuning of
zero-shot models", CVPR 2022). A start that learnt from many more athletes than the fine-tuning sees keeps most
of what it knew; a short fine-tuning on a small or narrow data set (a few hundred athletes, a user's own
rule-labelled mocap) otherwise pulls the network towards that set's particulars.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from valgusml.errors import ConfigError, ValgusMLError
from valgusml.json_safe import to_jsonable
from valgusml.paths import resolve_in_checkout
from valgusml.predictor.format import seeds_learnt_from
from valgusml.runs.checkpoint import net_state_dict, read_checkpoint

WEIGHTS_FORMAT = "valgusml-weights-1"
SOURCE_KEYS = ("dataset_fingerprint", "generator_seed", "generator_seeds", "split", "val_metrics", "test_metrics",
               "decision_threshold", "mlflow_run_id")
SHOWN = 5  # differing keys named in a message; the rest are counted
# A checkpoint whose validation AUROC is this far under its run's best is named in a warning by `save_weights`.
BELOW_BEST_AUROC = 0.02

log = logging.getLogger("valgusml.train")


def save_weights(ckpt_path: str | Path, out_path: str | Path) -> Path:
    """Write the network weights, model config and preprocessing of training checkpoint `ckpt_path` to
    `out_path` (`torch.save` of plain containers, format `valgusml-weights-1`). Returns `out_path`."""
    checkpoint = read_checkpoint(ckpt_path)
    hparams = checkpoint["hyper_parameters"]
    weights = {
        "format": WEIGHTS_FORMAT,
        "net": {k: v.detach().to("cpu", copy=True) for k, v in net_state_dict(checkpoint["state_dict"]).items()},
        "model": to_jsonable(hparams["net"]),
        "preprocess": to_jsonable(hparams.get("preprocess") or {}),
        "source": to_jsonable(checkpoint_source(checkpoint, Path(ckpt_path).name)),
    }
    warn_if_below_best(Path(ckpt_path), weights["source"])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.partial")
    torch.save(weights, partial)
    partial.replace(out_path)  # an interrupted save leaves the previous file whole
    return out_path


def warn_if_below_best(ckpt_path: Path, source: dict[str, Any]) -> None:
    """Name checkpoint `ckpt_path` in a warning when its validation AUROC (`source["val_metrics"]`) is
    `BELOW_BEST_AUROC` or more under its run's best (the `metrics.json` training writes beside it). A network can
    break between two validations: a CPU stage of the start went from 0.941 to 0.868 in its last two epochs (an
    input BatchNorm's running variance x60; docs/experiments.md, A walk that straightens), and the stage recipes
    keep the last epoch."""
    own = (source.get("val_metrics") or {}).get("valgus_auroc")
    try:
        best = json.loads(ckpt_path.with_name("metrics.json").read_text()).get("val/valgus_auroc")
    except (OSError, ValueError):
        return
    if isinstance(own, float) and isinstance(best, float) and own < best - BELOW_BEST_AUROC:
        log.warning("%s: validation AUROC %.3f, against %.3f for its run's best checkpoint (%s): the network may "
                    "have broken after it; compare before starting from these weights", ckpt_path, own, best,
                    ckpt_path.with_name("metrics.json"))


def load_initial_weights(module: Any, path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Load the network weights of `path` (a weights file or a training checkpoint; relative paths are tried
    against the working directory, then the checkout) into `module.net`. `ConfigError` when the file is missing
    or unreadable, or its preprocessing, model config or state dict differ from the module's. Returns the path
    used and the weights' `source`."""
    resolved = resolve_in_checkout(path, "init_from", noun="weights file or checkpoint")
    state, model, preprocess, source = read_weights(resolved)
    hparams = module.hparams
    _check_same(f"init_from={path}: the preprocessing", hparams.get("preprocess") or {}, preprocess)
    if hparams.get("net") is not None:  # a module given a built network keeps no config to compare
        _check_same(f"init_from={path}: the model config", weights_config(hparams["net"]), weights_config(model))
    net = module.bare_net
    _check_state(f"init_from={path}", net.state_dict(), state)
    net.load_state_dict(state, strict=True)
    warn_of_shared_athletes(f"init_from={path}", source, getattr(module, "run_info", {}))
    log.info("init_from: network weights from %s%s (fresh optimiser, schedule and epochs: not a resume)",
             resolved, _describe(source))
    return resolved, source


def blend_state(trained: dict[str, torch.Tensor], initial: dict[str, torch.Tensor],
                kept: float) -> dict[str, torch.Tensor]:
    """`kept * trained + (1 - kept) * initial` for every floating-point entry (weights and normalisation
    statistics alike); integer entries (batch-norm batch counts) stay the trained network's."""
    return {key: (kept * value + (1.0 - kept) * initial[key].to(value.dtype)) if value.is_floating_point() else value
            for key, value in trained.items()}


def check_blend_share(share: Any) -> float:
    """`init_blend` as a float, or `ConfigError` unless it is a number in (0, 1] (the share of the fine-tuned
    weights kept)."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 < share <= 1.0:
        raise ConfigError(f"init_blend must be a number in (0, 1] (the share of the fine-tuned weights kept), "
                          f"got {share!r}")
    return float(share)


def blend_with_initial(module: Any, trained: dict[str, torch.Tensor], path: str | Path, kept: float) -> None:
    """Load `blend_state(trained, init weights of path, kept)` into `module.net`: `ConfigError` when `kept` is
    not a share (`check_blend_share`) or the weights do not fit (as `load_initial_weights`)."""
    kept = check_blend_share(kept)
    initial = read_weights(resolve_in_checkout(path, "init_from", noun="weights file or checkpoint"))[0]
    _check_state(f"init_from={path}", trained, initial)
    net = module.bare_net
    net.load_state_dict(blend_state(trained, initial, kept), strict=True)


# -- reading ------------------------------------------------------------------------------------------------


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict, dict, dict]:
    """`(net state dict, model config, preprocess, source)` of a weights file or a training checkpoint."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"init_from={path}: not a readable torch file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict):
        payload = {}
    if payload.get("format") == WEIGHTS_FORMAT:
        return payload["net"], payload["model"], payload.get("preprocess") or {}, payload.get("source") or {}
    hparams = payload.get("hyper_parameters") or {}
    if "state_dict" in payload and "net" in hparams:
        source = checkpoint_source(payload, path.name)
        return net_state_dict(payload["state_dict"]), hparams["net"], hparams.get("preprocess") or {}, source
    raise ConfigError(
        f"init_from={path}: neither a valgusml training checkpoint nor a weights file ({WEIGHTS_FORMAT})"
    )


def checkpoint_source(checkpoint: dict[str, Any], name: str) -> dict[str, Any]:
    """What a training checkpoint says of where its weights came from (`SOURCE_KEYS` of its `valgusml` entry,
    the split as counts, its file name, epoch and step): a weights file's `source`."""
    info = checkpoint.get("valgusml") or {}
    source = {key: info[key] for key in SOURCE_KEYS if info.get(key) is not None}
    if isinstance(source.get("split"), dict):
        # Athlete ids name athletes of the weights' own dataset only: their counts say enough.
        split = source["split"]
        source["split"] = {**{k: v for k, v in split.items() if not isinstance(v, list)},
                           **{f"n_{k}": len(v) for k, v in split.items() if isinstance(v, list)}}
    source.update(checkpoint=name, epoch=checkpoint.get("epoch"), global_step=checkpoint.get("global_step"))
    return source


def warn_of_shared_athletes(what: str, source: dict, run_info: dict) -> None:
    """A model trained on this run's dataset, or on any dataset of its generator seed (athlete `index` of a
    seed is the same person at every dataset size), may have learnt from the run's validation and test
    athletes: `what` (`init_from=...`, `data.teacher=...`) is named in a warning. `source` and `run_info` hold
    `dataset_fingerprint` and `generator_seed` (`source` also `generator_seeds`) where known."""
    trained_on, seed = source.get("dataset_fingerprint"), run_info.get("generator_seed")
    if trained_on and trained_on == run_info.get("dataset_fingerprint"):
        shared = f"this very dataset ({trained_on[:12]})"
    elif seed is not None and seed in seeds_learnt_from(source):
        shared = f"athletes of generator seed {seed}, as this run's data are (data.generator_seed)"
    else:
        return
    log.warning("%s: trained on %s: the run's validation and test athletes may be among its own, so its "
                "held-out figures are not held out", what, shared)


def _describe(source: dict) -> str:
    """` (epoch 39, dataset 1a2b3c4d5e6f)`: what the weights' checkpoint says of itself, where it says it."""
    parts = []
    if source.get("epoch") is not None:
        parts.append(f"epoch {source['epoch']}")
    if source.get("dataset_fingerprint"):
        parts.append(f"dataset {str(source['dataset_fingerprint'])[:12]}")
    seeds = seeds_learnt_from(source)
    if seeds:
        parts.append(f"generator seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
    return f" ({', '.join(parts)})" if parts else ""


# -- compatibility ------------------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as `{"a.b": leaf}`; lists and empty dicts are leaves."""
    if not isinstance(value, dict) or not value:
        return {prefix.removesuffix("."): value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}{key}."))
    return flat


# Model config keys that change what a network computes at evaluation, not its weights.
EVALUATION_ONLY_KEYS = ("mirror_average",)


def weights_config(model: dict) -> dict:
    """A model config without `EVALUATION_ONLY_KEYS`: weights fit any network that differs only there."""
    return {k: v for k, v in to_jsonable(model).items() if k not in EVALUATION_ONLY_KEYS}


def _check_same(what: str, ours: dict, theirs: dict) -> None:
    """`ConfigError` naming the dotted keys where this run's config and the weights' differ."""
    mine, saved = _flatten(to_jsonable(ours)), _flatten(to_jsonable(theirs))
    missing = object()
    differing = sorted(k for k in mine.keys() | saved.keys() if mine.get(k, missing) != saved.get(k, missing))
    if not differing:
        return
    shown = ", ".join(f"{k} (this run {mine.get(k, '<unset>')!r}, weights {saved.get(k, '<unset>')!r})"
                      for k in differing[:SHOWN])
    more = f" and {len(differing) - SHOWN} more" if len(differing) > SHOWN else ""
    raise ConfigError(f"{what} differs from the weights' at {shown}{more}")


def _check_state(what: str, ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    """`ConfigError` naming the first state-dict keys that are missing, unexpected or of another shape."""
    problems = [f"{k} missing from the weights" for k in ours if k not in theirs]
    problems += [f"{k} not in this network" for k in theirs if k not in ours]
    problems += [f"{k} shape {tuple(theirs[k].shape)} in the weights, {tuple(ours[k].shape)} here"
                 for k in ours if k in theirs and tuple(theirs[k].shape) != tuple(ours[k].shape)]
    if problems:
        more = f" and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise ConfigError(f"{what}: the weights do not fit this network: {'; '.join(problems[:SHOWN])}{more}")


def main(argv: list[str] | None = None) -> int:
    """`python -m valgusml.training.init_weights CHECKPOINT OUT`: write a checkpoint's weights file."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m valgusml.training.init_weights",
                                     description="Write a training checkpoint's network weights for init_from.")
    parser.add_argument("checkpoint", help="a valgusml training's .ckpt")
    parser.add_argument("out", help="the weights file to write (e.g. data/pretrained/NAME/weights.pt)")
    args = parser.parse_args(argv)
    try:
        print(save_weights(args.checkpoint, args.out))
    except (ValgusMLError, OSError) as exc:
        print(f"init_weights: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
