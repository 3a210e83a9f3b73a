"""Export a trained network as a predictor folder: `model.onnx` + `model.json`, checked for parity.

What goes into the ONNX graph: `ProbabilityWrapper(net)`, i.e. the pelvis-centring, body-size scaling and the
joint/bone/motion/confidence streams (`valgusml.models.streams`), the backbone, the heads and the sigmoid /
softmax. What stays in numpy (`valgusml.preprocess`, shared with training): skeleton mapping, the 3D front
view, resampling, gap filling, windowing and the frame measures; ONNX has no operator for a per-recording
resampling or a median-based frontal axis, and keeping them in one numpy implementation means training and the
predictor cannot drift apart. The exported graph ships through `valgusml.export.graph.tidy_graph` (no source
metadata; fixed selections as matrix products, the same output bits).

The folder is written to a temporary sibling and renamed into place, so a reader never sees half an export.
Parity: the written folder is loaded with `valgusml.Predictor` (the very path users take) and its window
outputs are compared with PyTorch eager on validation windows; a gap above `PARITY_TOLERANCE` aborts the export.

Threshold: given the validation athletes' recordings (`threshold_sequences`), the decision threshold is chosen
again on them through that loaded predictor, by the checkpoint's rule, so the threshold a user's calls rest on
is set where their probabilities come from. Training chooses it by the same rule on the same recordings (up
to ONNX's rounding); checkpoints of earlier versions combined windows without the predictor's view
admission, segments and free-leg rule, and read 0.651 where their folder's answers call 0.578 best. Without
them the checkpoint's threshold stands. `model.json` says which (`metrics.decision_threshold_from`). The
mechanism call's offsets are chosen on the same recordings at that threshold (`add_mechanism_offsets`);
without them the checkpoint's stand (chosen with its threshold on its validation windows), and a checkpoint
without any leaves the folder calling the most probable deficit.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from valgusml.data.format import staging
from valgusml.errors import ModelFileError
from valgusml.export.folder import (
    N_RANDOM_PARITY_WINDOWS,
    PARITY_TOLERANCE,
    SEVERITY_TOLERANCE_DEG,
    ExportError,
    add_mechanism_offsets,
    max_abs_diff,
    random_windows,
    replace_dir,
    validation_threshold,
)
from valgusml.export.graph import tidy_graph
from valgusml.json_safe import to_jsonable
from valgusml.paths import relative_to_checkout
from valgusml.predictor import Predictor
from valgusml.predictor.format import (
    INPUT_NAMES,
    MODEL_FILE,
    OPTIONAL_OUTPUT_NAMES,
    OUTPUT_NAMES,
    build_metadata,
    write_metadata,
)
from valgusml.sequence import KeypointSequence

log = logging.getLogger(__name__)



# -- sources ------------------------------------------------------------------------------------------------
def load_source(source: Any) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """`(net, PreprocessConfig, info)` from a checkpoint path or such a tuple."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such checkpoint file")
        from valgusml.runs.checkpoint import load_for_export

        net, cfg, info = load_for_export(path)
        info = dict(info or {})
        info.setdefault("checkpoint", str(path))
        return net, cfg, info
    if isinstance(source, tuple) and len(source) == 3:
        net, cfg, info = source
        return net, cfg, dict(info or {})
    raise ExportError(f"export needs a checkpoint path or (net, PreprocessConfig, info); got {type(source).__name__}")


# -- parity inputs ------------------------------------------------------------------------------------------
def parity_windows(
    sequences: Sequence[KeypointSequence] | None, cfg: Any, n_measures: int
) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
    from valgusml.preprocess import prepare_many

    parts, described = [], {}
    if sequences:
        mi = prepare_many(list(sequences), cfg)
        parts.append((mi.joints, mi.measures, mi.mask))
        described = {"validation_sequences": len(sequences), "validation_windows": int(len(mi.joints))}
    else:
        log.warning("export: no validation sequences given; parity is checked on random windows only")
    parts.append(random_windows(N_RANDOM_PARITY_WINDOWS, int(cfg.window), n_measures))
    stacked = tuple(np.concatenate([p[k] for p in parts], axis=0).astype(np.float32) for k in range(3))
    described["random_windows"] = N_RANDOM_PARITY_WINDOWS
    return stacked, described


# -- ONNX ---------------------------------------------------------------------------------------------------
def _wrapper(net: torch.nn.Module) -> torch.nn.Module:
    from valgusml.models import ProbabilityWrapper

    return ProbabilityWrapper(net.float().eval()).eval()


def export_onnx(wrapper: torch.nn.Module, example: tuple[np.ndarray, ...], path: Path) -> None:
    """Trace `wrapper` with torch.export (dynamo) into one self-contained ONNX file with a dynamic batch."""
    # Two windows in the example: a batch of 1 lets the exporter specialise the batch dimension to 1.
    args = tuple(torch.from_numpy(np.ascontiguousarray(a[:2])) for a in example)
    batch = torch.export.Dim("batch")
    captured = io.StringIO()
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and other chatter at every export
    try:
        with torch.no_grad(), contextlib.redirect_stdout(captured), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter deprecation chatter, not about this model
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                dynamo=True,
                external_data=False,  # weights inside model.onnx: one file to hash and ship
                dynamic_shapes=({0: batch}, {0: batch}, {0: batch}),
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES + OPTIONAL_OUTPUT_NAMES),
            )
    except Exception as exc:
        detail = captured.getvalue().strip().splitlines()[-3:]
        raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}\n" + "\n".join(detail)) from exc
    finally:
        exporter_log.setLevel(level)
    if not path.is_file():
        raise ExportError(f"torch.onnx.export wrote no {path.name}")
    stray = [p.name for p in path.parent.iterdir() if p.name != path.name and p.name.startswith(path.stem)]
    if stray:
        raise ExportError(f"the exporter wrote external data files {stray}; model.onnx must be self-contained")
    tidy_graph(path)


def _torch_outputs(wrapper: torch.nn.Module, windows: tuple[np.ndarray, ...], chunk: int = 64) -> list[np.ndarray]:
    outs: list[list[np.ndarray]] = [[] for _ in OUTPUT_NAMES + OPTIONAL_OUTPUT_NAMES]
    with torch.no_grad():
        for start in range(0, len(windows[0]), chunk):
            args = tuple(torch.from_numpy(np.ascontiguousarray(a[start : start + chunk])) for a in windows)
            for k, value in enumerate(wrapper(*args)):
                outs[k].append(value.detach().cpu().numpy())
    return [np.concatenate(o) for o in outs]


def check_parity(wrapper: torch.nn.Module, predictor: Predictor, windows: tuple[np.ndarray, ...]) -> dict[str, Any]:
    """Max |torch − onnxruntime| over the parity windows, in one batch and one window at a time."""
    expected = _torch_outputs(wrapper, windows)
    batched = predictor.run_windows(*windows)
    single = [predictor.run_windows(*(a[i : i + 1] for a in windows)) for i in range(min(4, len(windows[0])))]
    single_out = [np.concatenate([s[k] for s in single]) for k in range(len(batched))]
    for name, got in zip(OUTPUT_NAMES, batched, strict=False):
        if not np.isfinite(got).all():
            raise ExportError(f"parity: onnxruntime output {name!r} is not finite")
    diff = [max_abs_diff(e, b) for e, b in zip(expected, batched, strict=True)]
    diff_single = [max_abs_diff(e[: len(s)], s) for e, s in zip(expected, single_out, strict=True)]
    prob = max(diff[0], diff[1], diff_single[0], diff_single[1])
    severity = max(diff[2], diff_single[2])
    frontal = max(diff[3:] + diff_single[3:], default=0.0)
    result = {
        "max_abs_diff_probability": prob,
        "max_abs_diff_valgus_probability": max(diff[0], diff_single[0]),
        "max_abs_diff_mechanism_probabilities": max(diff[1], diff_single[1]),
        "max_abs_diff_severity_deg": severity,
        "max_abs_diff_frontal_fppa_deg": frontal,
        "tolerance": PARITY_TOLERANCE,
        "severity_tolerance_deg": SEVERITY_TOLERANCE_DEG,
        "windows": int(len(windows[0])),
        "passed": bool(prob <= PARITY_TOLERANCE and max(severity, frontal) <= SEVERITY_TOLERANCE_DEG),
    }
    if not result["passed"]:
        raise ExportError(
            f"parity check failed: max |torch - onnxruntime| = {prob:.3g} on probabilities "
            f"(tolerance {PARITY_TOLERANCE:g}), {severity:.3g}° on severity and {frontal:.3g}° on the frontal angle "
            f"(tolerance {SEVERITY_TOLERANCE_DEG:g}°)"
        )
    return result


# -- metadata -----------------------------------------------------------------------------------------------
def describe_net(net: torch.nn.Module, info: dict[str, Any]) -> dict[str, Any]:
    """Backbone name, parameter count and (when the checkpoint has it) the network's Hydra config."""
    backbone = getattr(net, "backbone", None)
    out: dict[str, Any] = {
        "net": type(net).__name__,
        "backbone": type(backbone).__name__ if backbone is not None else None,
        "parameters": int(sum(p.numel() for p in net.parameters())),
    }
    config = info.get("net_config", info.get("net"))
    if config is not None:
        out["config"] = to_jsonable(config)
    return out


def decision_threshold(info: dict[str, Any]) -> float:
    """The checkpoint's decision threshold (0.5, with a warning, when it holds none)."""
    threshold = info.get("decision_threshold")
    if threshold is None:
        log.warning("export: the checkpoint holds no decision_threshold; using 0.5")
        threshold = 0.5
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ExportError(f"decision_threshold must be in [0, 1], got {threshold}")
    return threshold


def metadata(
    cfg: Any,
    info: dict[str, Any],
    model_bytes: bytes,
    parity: dict[str, Any],
    architecture: dict[str, Any] | None = None,
    threshold_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`model.json` for this export: the format's keys (`valgusml.predictor.format`) and the checkpoint's provenance."""
    metrics = {"val": info.get("val_metrics") or {}, "test": info.get("test_metrics") or {}}
    if threshold_from is not None:
        metrics["decision_threshold_from"] = threshold_from
    provenance = {
        "training_run_id": info.get("mlflow_run_id"),
        "dataset_fingerprint": info.get("dataset_fingerprint"),
        "generator_seed": info.get("generator_seed"),
        "generator_seeds": info.get("generator_seeds"),
        "other_training_data": info.get("other_training_data") or [],
        "metrics": metrics,
        "architecture": architecture,
        "checkpoint": relative_to_checkout(info.get("checkpoint")),
        "epoch": info.get("epoch"),
        "init_from": info.get("init_from"),
        "presence_calibration": info.get("presence_calibration"),
    }
    from valgusml.features.view import undecided_probability

    return build_metadata(
        cfg,
        decision_threshold(info),
        model_bytes,
        provenance=provenance,
        tool_versions={"torch_version": torch.__version__},
        parity=parity,
        presence_undecided=undecided_probability(info.get("presence_calibration")),
    )


# -- the export ---------------------------------------------------------------------------------------------
def export_predictor(
    source: Any,
    out_dir: str | os.PathLike,
    parity_sequences: Sequence[KeypointSequence] | None = None,
    threshold_sequences: Sequence[KeypointSequence] | None = None,
) -> Path:
    """Write the predictor folder `out_dir` (model.onnx + model.json) from a checkpoint or (net, cfg, info).

    `parity_sequences`: validation recordings whose windows are run through torch and onnxruntime; the export
    fails with ExportError when their probabilities differ by more than `PARITY_TOLERANCE`.
    `threshold_sequences`: labelled recordings of the validation athletes (all of them, ideally); the decision
    threshold is chosen on them as the exported predictor answers (module docstring). Without them, or when
    they hold one class only, the checkpoint's threshold stands.
    Returns `out_dir`. An existing folder is replaced only once the new one passed every check.
    """
    from valgusml.features import FRAME_MEASURES

    net, cfg, info = load_source(source)
    out_dir = Path(out_dir)
    wrapper = _wrapper(net)
    windows, described = parity_windows(parity_sequences, cfg, len(FRAME_MEASURES))
    with staging(out_dir) as tmp:
        model_path = tmp / MODEL_FILE
        export_onnx(wrapper, windows, model_path)
        model_bytes = model_path.read_bytes()
        # Provisional metadata so the Predictor can load the folder for the parity run; rewritten below.
        write_metadata(tmp, metadata(cfg, info, model_bytes, {"passed": None}))
        written = Predictor.load(tmp)
        parity = check_parity(wrapper, written, windows)
        parity.update(described)
        info, threshold_from = _threshold_on_validation(written, info, threshold_sequences)
        write_metadata(tmp, metadata(cfg, info, model_bytes, parity, describe_net(net, info), threshold_from))
        add_mechanism_offsets(tmp, threshold_sequences, info.get("mechanism_offsets"))
        replace_dir(tmp, out_dir)
    log.info("exported predictor to %s (parity %.2g, threshold %.3f)", out_dir, parity["max_abs_diff_probability"],
             info["decision_threshold"])
    return out_dir


def _threshold_on_validation(
    predictor: Predictor, info: dict[str, Any], sequences: Sequence[KeypointSequence] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(info with the threshold the folder gets, where it came from)`."""
    stored = decision_threshold(info)
    rule = str(info.get("threshold_rule") or "f1")
    chosen = validation_threshold(predictor, sequences, rule=rule) if sequences else None
    if chosen is None:
        if sequences:
            log.warning("export: the validation recordings do not hold both classes; keeping the checkpoint's "
                        "threshold %.3f", stored)
        return {**info, "decision_threshold": stored}, {"rule": "the checkpoint's (its validation windows)"}
    return {**info, "decision_threshold": chosen}, {"rule": f"{rule} on validation athletes",
                                                    "sequences": len(sequences), "checkpoint_threshold": stored}
