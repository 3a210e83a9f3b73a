"""Average exported predictors into one predictor folder (no torch):

    valgusml ensemble OUT MEMBER MEMBER... [--data DATASET --split splits.json]

Networks trained from different seeds of one recipe disagree where the data say little; their mean ranks and
calibrates better than any one of them (docs/experiments.md: five GPU trainings averaged). The mean is one
`model.onnx`: each member's graph under its own name prefix, all reading the same three inputs, and one `Mean`
node per output. `Predictor` loads it like any export, so integrators need nothing new. The members' outputs
are probabilities, so the mean is soft voting; where a member's frontal angle is NaN (no anchored call), so is
the mean's.

Members must be fed alike: the same preprocessing, frame measures, window and ONNX opset. The decision threshold
is chosen for the mean, by F1 on the validation athletes of `--data` named by `--split` (the members' own
split, so that no test athlete decides it); without them it is the median of the members' thresholds, and
`model.json` says which. The mechanism call's offsets are chosen on the same athletes
(`valgusml.export.folder.add_mechanism_offsets`); without them the mean calls its most probable deficit.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.data.format import staging
from valgusml.errors import ValgusMLError
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
from valgusml.predictor import Predictor
from valgusml.predictor.format import (
    MODEL_FILE,
    OUTPUT_NAMES,
    build_metadata,
    other_training_data,
    preprocess_config,
    read_metadata,
    read_model_bytes,
    seeds_learnt_from,
    write_metadata,
)
from valgusml.sequence import KeypointSequence

log = logging.getLogger(__name__)

# model.json keys that say how a member is fed: they must be equal for the members to share one input.
FEEDING_KEYS = ("preprocess", "measure_names", "fps", "window", "stride", "inputs", "mechanisms", "limbs",
                "canonical_joints")
MEMBER_PREFIX = "member{}_"


def read_members(folders: Sequence[str | Path]) -> list[tuple[Path, dict[str, Any], Any]]:
    """`(folder, model.json, onnx.ModelProto)` of each member, each file hash-checked; `ExportError` names the
    member and the key when two members are fed differently."""
    import onnx

    folders = [Path(f) for f in folders]
    if len({f.resolve() for f in folders}) < 2:
        raise ExportError(f"an ensemble needs two or more different predictor folders, got {[str(f) for f in folders]}")
    members = []
    for folder in folders:
        meta = read_metadata(folder)
        members.append((folder, meta, onnx.load_from_string(read_model_bytes(folder, meta))))
    first_folder, first_meta, first_model = members[0]
    opset = sorted((o.domain, o.version) for o in first_model.opset_import)
    for folder, meta, model in members[1:]:
        for key in FEEDING_KEYS:
            if meta.get(key) != first_meta.get(key):
                raise ExportError(f"{folder}: model.json's {key!r} differs from {first_folder}'s; the members of an "
                                  f"ensemble must be fed alike ({meta.get(key)!r:.80} vs {first_meta.get(key)!r:.80})")
        if sorted((o.domain, o.version) for o in model.opset_import) != opset:
            raise ExportError(f"{folder}: ONNX opsets {list(model.opset_import)} differ from {first_folder}'s {opset}")
    return members


def merge_graphs(models: Sequence[Any]) -> Any:
    """One ONNX model whose outputs are the element-wise means of `models`' outputs (those all of them have,
    in the first model's order), every model reading the same graph inputs."""
    import onnx
    from onnx import compose, helper

    common = set.intersection(*({o.name for o in m.graph.output} for m in models))
    outputs = [o for o in models[0].graph.output if o.name in common]
    missing = [name for name in OUTPUT_NAMES if name not in common]
    if missing:
        raise ExportError(f"the members' graphs do not all give {missing}")
    prefixed = [compose.add_prefix(m, MEMBER_PREFIX.format(k), rename_inputs=False) for k, m in enumerate(models)]
    nodes = [node for m in prefixed for node in m.graph.node]
    for out in outputs:
        nodes.append(helper.make_node("Mean", [MEMBER_PREFIX.format(k) + out.name for k in range(len(models))],
                                      [out.name], name=f"mean_{out.name}"))
    graph = helper.make_graph(
        nodes,
        "valgusml_ensemble",
        inputs=list(models[0].graph.input),
        outputs=outputs,
        initializer=[init for m in prefixed for init in m.graph.initializer],
        value_info=[v for m in prefixed for v in (*m.graph.value_info, *m.graph.output)],
    )
    merged = helper.make_model(graph, opset_imports=list(models[0].opset_import), producer_name="valgusml ensemble",
                               ir_version=models[0].ir_version)
    merged.functions.extend(f for m in prefixed for f in m.functions)
    onnx.checker.check_model(merged)
    return merged


def check_mean_parity(ensemble: Predictor, members: Sequence[Predictor], windows: tuple[np.ndarray, ...]) -> dict:
    """Max |ensemble − mean of the members| per output over `windows` (onnxruntime both ways)."""
    got = ensemble.run_windows(*windows)
    each = [member.run_windows(*windows) for member in members]
    diff = {name: max_abs_diff(np.mean([e[k] for e in each], axis=0), got[k])
            for k, name in enumerate(ensemble.output_names)}
    probability = max(diff["valgus_probability"], diff["mechanism_probabilities"])
    degrees = max((v for k, v in diff.items() if k.endswith("_deg")), default=0.0)
    result = {"max_abs_diff_probability": probability, "max_abs_diff_deg": degrees,
              "reference": "mean of the members' onnxruntime outputs", "tolerance": PARITY_TOLERANCE,
              "severity_tolerance_deg": SEVERITY_TOLERANCE_DEG, "windows": int(len(windows[0])),
              "passed": bool(probability <= PARITY_TOLERANCE and degrees <= SEVERITY_TOLERANCE_DEG)}
    if not result["passed"]:
        raise ExportError(f"ensemble parity failed: max |ensemble - members' mean| = {probability:.3g} on "
                          f"probabilities, {degrees:.3g} deg on angles")
    return result


def export_ensemble(
    members: Sequence[str | Path],
    out_dir: str | Path,
    validation: Sequence[KeypointSequence] | None = None,
    validation_source: str | None = None,
) -> Path:
    """Write the predictor folder `out_dir` whose outputs are the mean of `members`' (predictor folders).

    `validation`: labelled recordings of athletes no member was tested on; the threshold is chosen on them.
    Without them it is the median of the members' thresholds. `out_dir` is replaced only once the new folder
    loads and matches the members' mean on random windows.
    """
    import onnx

    read = read_members(members)
    merged = merge_graphs([model for _, _, model in read])
    metas = [meta for _, meta, _ in read]
    first = metas[0]
    cfg = preprocess_config(first["preprocess"], read[0][0])
    member_predictors = [Predictor.load(folder) for folder, _, _ in read]
    fingerprints = {meta.get("dataset_fingerprint") for meta in metas}
    fingerprint = fingerprints.pop() if len(fingerprints) == 1 else None  # members of one data set
    seeds = {meta.get("generator_seed") for meta in metas}
    generator_seed = seeds.pop() if len(seeds) == 1 else None  # members of one seed's athletes
    learnt_from = sorted({seed for meta in metas for seed in seeds_learnt_from(meta)}) or None
    out_dir = Path(out_dir)

    def write(tmp: Path, threshold: float, parity: dict[str, Any], threshold_from: dict[str, Any]) -> None:
        architecture = {
            "net": "mean of members",
            "members": [{"folder": str(folder), "sha256": meta["model"]["sha256"],
                         "training_run_id": meta.get("training_run_id"), "epoch": meta.get("epoch"),
                         "decision_threshold": meta["decision_threshold"], "architecture": meta.get("architecture")}
                        for folder, meta, _ in read],
        }
        provenance = {"dataset_fingerprint": fingerprint, "generator_seed": generator_seed,
                      "generator_seeds": learnt_from,
                      # every member's dataset but the shared one (all of them where they differ)
                      "other_training_data": [entry for entry in other_training_data(*metas, own=True)
                                              if entry["dataset_fingerprint"] != fingerprint],
                      "metrics": {"decision_threshold_from": threshold_from}, "architecture": architecture}
        # the mean's answer where every member's head is undecided
        undecided = float(np.mean([member.undecided for member in member_predictors]))
        write_metadata(tmp, build_metadata(cfg, threshold, model_bytes, provenance=provenance,
                                           tool_versions={"onnx_version": onnx.__version__}, parity=parity,
                                           presence_undecided=undecided))

    model_bytes = merged.SerializeToString()
    with staging(out_dir) as tmp:
        (tmp / MODEL_FILE).write_bytes(model_bytes)
        median = float(np.median([meta["decision_threshold"] for meta in metas]))
        write(tmp, median, {"passed": None}, {"rule": "median of the members' thresholds"})  # provisional, to load it
        ensemble = Predictor.load(tmp)
        windows = random_windows(N_RANDOM_PARITY_WINDOWS * 4, int(cfg.window), ensemble.metadata["inputs"]["measures"][2])
        parity = check_mean_parity(ensemble, member_predictors, windows)
        threshold = validation_threshold(ensemble, validation) if validation else None
        if threshold is not None:
            threshold_from = {"rule": "f1 on validation athletes", "sequences": len(validation),
                              "source": validation_source}
        else:
            log.warning("ensemble: no validation recordings of both classes; the threshold is the median of the "
                        "members' (%.3f)", median)
            threshold, threshold_from = median, {"rule": "median of the members' thresholds"}
        write(tmp, threshold, parity, threshold_from)
        add_mechanism_offsets(tmp, validation)
        replace_dir(tmp, out_dir)
    log.info("wrote the mean of %d predictors to %s (threshold %.3f)", len(read), out_dir, threshold)
    return out_dir


def validation_recordings(data: str | Path, split: str | Path) -> list[KeypointSequence]:
    """Every recording of the validation athletes `split` (a training run's splits.json) names in `data`."""
    from valgusml.data import open_dataset

    try:
        athletes = json.loads(Path(split).read_text())["val"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{split}: not a splits.json with a 'val' list of athletes ({exc})") from None
    recordings = open_dataset(data).sequences_of(athletes)
    if not recordings:
        raise ExportError(f"{data}: none of the {len(athletes)} validation athletes of {split} is in this data set")
    return recordings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="valgusml ensemble", description=__doc__.split("\n\n")[0].rstrip(":"),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="predictor folder to write (replaced atomically)")
    parser.add_argument("members", nargs="+", help="predictor folders to average (two or more)")
    parser.add_argument("--data", help="data set whose validation athletes choose the threshold")
    parser.add_argument("--split", help="splits.json whose 'val' athletes no member trained or was tested on")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--log-mlflow", action="store_true",
                        help="also log the folder as a pyfunc model (a new run) and register it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("valgusml").setLevel(logging.INFO)
    try:
        if bool(args.data) != bool(args.split):
            raise ExportError("--data and --split go together: the split names which athletes of the data validate")
        validation = validation_recordings(args.data, args.split) if args.data else None
        out = export_ensemble(args.members, args.out, validation, validation_source=args.data)
        meta = read_metadata(out)
        print(json.dumps({"out": str(out), "members": len(args.members), "sha256": meta["model"]["sha256"],
                          "decision_threshold": meta["decision_threshold"],
                          "mechanism_offsets": meta.get("mechanism_offsets"),
                          "parity_max_abs_diff": meta["parity"]["max_abs_diff_probability"]}))
        if args.log_mlflow:
            from valgusml.export.cli import log_to_mlflow

            log_to_mlflow(out, args.tracking_uri)
    except (ValgusMLError, OSError) as exc:
        print(f"valgusml ensemble: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
