"""Read training checkpoints for export and evaluation, without Lightning's trainer.

A checkpoint holds `hyper_parameters.net` (the Hydra config of the network) and `hyper_parameters.preprocess`,
so the network is rebuilt from the file alone; `valgusml` holds the decision threshold, dataset fingerprint,
MLflow run id, split and metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from valgusml.errors import ModelFileError

NET_PREFIX = "net."


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint {path} does not exist")
    try:
        # Plain containers only (hyper-parameters are dicts), so the safe loader reads every valgusml checkpoint.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hparams or "net" not in hparams or "state_dict" not in checkpoint:
        raise ModelFileError(f"{path}: not a valgusml training checkpoint (no hyper_parameters.net / state_dict)")
    return checkpoint


def net_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The network's entries of a LightningModule state dict, keyed as the bare network's. torch.compile wraps
    the module as `_orig_mod`; that is stripped too, so compiled and plain runs read alike."""
    return {k[len(NET_PREFIX):].replace("_orig_mod.", ""): v for k, v in state_dict.items() if k.startswith(NET_PREFIX)}


def load_for_export(path: str | Path) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """`(net.eval() in float32, PreprocessConfig, info)`; info = the checkpoint's `valgusml` entry plus
    `net_config`, `threshold_rule` (how training chose its threshold), `epoch` and `global_step`."""
    from hydra.utils import instantiate

    from valgusml.preprocess import PreprocessConfig

    checkpoint = read_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    try:
        net = instantiate(hparams["net"])
    except Exception as exc:
        raise ModelFileError(f"{path}: cannot rebuild the network from its config ({exc})") from None
    state = net_state_dict(checkpoint["state_dict"])
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not match the network config ({exc})") from None
    info = dict(checkpoint.get("valgusml") or {})
    net.set_presence_calibration(info.get("presence_calibration"))  # fitted after training, outside the weights
    net = net.float().eval()
    preprocess = PreprocessConfig.from_dict(hparams.get("preprocess") or {})
    info.update(
        net_config=hparams["net"],
        threshold_rule=hparams.get("threshold_rule", "f1"),
        epoch=checkpoint.get("epoch"),
        global_step=checkpoint.get("global_step"),
    )
    return net, preprocess, info


def update_info(path: str | Path, **changes: Any) -> None:
    """Rewrite the checkpoint's `valgusml` entry (e.g. with test metrics once the test has run)."""
    checkpoint = read_checkpoint(path)
    checkpoint.setdefault("valgusml", {}).update(changes)
    tmp = Path(path).with_suffix(".ckpt.tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(path)
