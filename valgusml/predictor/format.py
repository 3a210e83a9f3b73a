"""The exported predictor folder: what `valgusml export` writes and `Predictor.load` reads (no torch here).

A folder holds two files:
- `model.onnx` (`MODEL_FILE`): the network with its normalisation and input streams; inputs `INPUT_NAMES`
  (`joints (batch, window, 20, 3)`, `measures (batch, window, F)`, `mask (batch, window)`), outputs
  `OUTPUT_NAMES` (`valgus_probability (batch, 2)`, `mechanism_probabilities (batch, 2, 5)`,
  `severity_deg (batch, 2)`) and, optionally (`OPTIONAL_OUTPUT_NAMES`; folders exported before it lack it and
  keep loading), `frontal_fppa_deg (batch, 2)` (the dynamic frontal-plane angle an anchored presence call rests
  on, NaN where there is none), dynamic batch of fixed-length windows;
- `model.json` (`META_FILE`): everything needed to feed it. Format version 1 keys, in the order written:
  `format_version`, `valgusml_version`, `created_utc`, `mechanisms`, `limbs`, `skeleton` ("canonical"),
  `canonical_joints`, `accepted_skeletons`, `fps`, `window`, `window_s`, `stride`, `preprocess`
  (`PreprocessConfig.to_dict()`), `measure_names` (the frame measures the model was trained on), `inputs`,
  `outputs` (shapes), `decision_threshold`, `mechanism_offsets` (`{deficit: log-odds offset}` of the mechanism
  call, chosen on validation athletes as the threshold is; optional: folders without it call the most probable
  deficit, and a reader that ignores it calls as they do), `presence_undecided` (what the graph answers where
  its presence head is undecided: 0.5, or sigmoid(shift) of a presence calibration; unreadable views are pulled
  there before any threshold; optional, 0.5 where absent), the provenance keys (`PROVENANCE_KEYS`: training run, dataset
  fingerprint, generator_seed: the seed whose athletes it trained on, null unless generated, generator_seeds:
  those and the seeds its `init_from` weights learnt from (members' for an ensemble), other_training_data: every
  other dataset it learnt from (`data.extra_train_dirs` folders, its start's, members'; fingerprint and hashed
  athlete ids, `other_training_data`), metrics,
  architecture, checkpoint (relative to the checkout when it lies inside it), epoch, init_from: the weights
  the training started from, path and sha256, or null, presence_calibration: the map of the presence logit
  fitted on validation after training, already inside the graph, `scale`, `shift`, the recordings it was fitted
  on and their ECE before and after, or null), `model` (`file`, `sha256`, `bytes` and the versions
  of the tools that wrote and checked it) and `parity` (the export's torch-vs-onnxruntime check).

A reader needs only `format_version`, `REQUIRED_KEYS` and, when present, `measure_names`; every other key is
information. Older folders of a supported version keep loading: nothing here may start requiring a new key.

Trust: everything read is inside the folder and hashed. `model.file` must name a file inside the folder; the ONNX
graph may refer to external data files only when `model.external_data` lists each (name → sha256): they are
read from the folder, checked and handed to ONNX Runtime from a private directory, so nothing is ever read
from the working directory or unhashed. Every value the predictor uses is checked at load (`read_metadata`:
types and ranges, `preprocess` as a `PreprocessConfig`), so a bad folder fails with `ModelFileError` at load,
not at predict time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from valgusml.errors import InputError, ModelFileError
from valgusml.json_safe import to_jsonable
from valgusml.labels import LIMBS, MECHANISMS
from valgusml.predictor.results import offsets_array

if TYPE_CHECKING:
    from valgusml.preprocess import PreprocessConfig

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
MODEL_FILE = "model.onnx"
META_FILE = "model.json"
INPUT_NAMES = ("joints", "measures", "mask")
OUTPUT_NAMES = ("valgus_probability", "mechanism_probabilities", "severity_deg")
# Outputs a graph may add (older exports lack them): the angle an anchored call rests on, NaN without one.
OPTIONAL_OUTPUT_NAMES = ("frontal_fppa_deg",)
REQUIRED_KEYS = ("mechanisms", "preprocess", "decision_threshold", "model")
PROVENANCE_KEYS = ("training_run_id", "dataset_fingerprint", "generator_seed", "generator_seeds",
                   "other_training_data", "metrics", "architecture", "checkpoint", "epoch", "init_from",
                   "presence_calibration")


def seeds_learnt_from(source: dict) -> list[int]:
    """The generator seeds whose athletes weights learnt from: their own training's and, for weights that
    started from others (`init_from`), every seed those learnt from (`generator_seeds`); older files and
    exported folders name their own `generator_seed` only."""
    if source.get("generator_seeds") is not None:
        return sorted(int(seed) for seed in source["generator_seeds"])
    return [] if source.get("generator_seed") is None else [int(source["generator_seed"])]


def athlete_digests(athletes: Iterable[str]) -> list[str]:
    """Athlete ids as provenance records them: 16 hex digits of each id's sha256, so that a shipped model.json
    names nobody, while an evaluation can still tell an athlete it scores from one the model learnt from."""
    return sorted({hashlib.sha256(str(athlete).encode()).hexdigest()[:16] for athlete in athletes})


def other_training_data(*sources: Mapping[str, Any] | None, own: bool = False) -> list[dict[str, Any]]:
    """Every dataset beyond its own `dataset_fingerprint` that weights learnt from, from the `sources` that
    record them (`other_training_data`: `[{"dataset_fingerprint", "athletes_sha256"}]`): folders a run added with
    `data.extra_train_dirs`, its `init_from` weights' data, an ensemble's members'. With `own`, each source's own
    `dataset_fingerprint` too (a start's or a member's, whose athletes it does not record). Merged by fingerprint."""
    merged: dict[str, set[str]] = {}
    for source in sources:
        source = source or {}
        entries = list(source.get("other_training_data") or [])
        if own and source.get("dataset_fingerprint"):
            entries.append({"dataset_fingerprint": source["dataset_fingerprint"]})
        for entry in entries:
            merged.setdefault(str(entry["dataset_fingerprint"]), set()).update(entry.get("athletes_sha256") or [])
    return [{"dataset_fingerprint": fingerprint, "athletes_sha256": sorted(digests)}
            for fingerprint, digests in sorted(merged.items())]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- reading ------------------------------------------------------------------------------------------------
def read_metadata(folder: str | Path) -> dict[str, Any]:
    """Parse and check `model.json` of an exported folder (no model loading)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: not a predictor folder (written by `valgusml export`)")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ModelFileError(f"{folder}: missing {META_FILE}; is this a folder written by `valgusml export`?")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{meta_path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{meta_path}: expected a JSON object")
    version = meta.get("format_version")
    if isinstance(version, bool) or version not in SUPPORTED_FORMAT_VERSIONS:
        raise ModelFileError(
            f"{meta_path}: unknown format_version {version!r}; this valgusml reads {SUPPORTED_FORMAT_VERSIONS}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelFileError(f"{meta_path}: missing keys {missing}")
    if not isinstance(meta["mechanisms"], list) or tuple(meta["mechanisms"]) != MECHANISMS:
        raise ModelFileError(f"{meta_path}: mechanisms {meta['mechanisms']} differ from this valgusml's {MECHANISMS}")
    model = meta["model"]
    if not isinstance(model, dict) or not _is_sha256(model.get("sha256")):
        raise ModelFileError(f"{meta_path}: 'model' must hold the file's sha256 (64 hex digits)")
    external = model.get("external_data", {})
    if not isinstance(external, dict) or not all(_is_sha256(v) for v in external.values()):
        raise ModelFileError(f"{meta_path}: model.external_data must map file names to sha256 values")
    threshold = meta["decision_threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise ModelFileError(f"{meta_path}: decision_threshold must be a number in [0, 1], got {threshold!r}")
    undecided = meta.get("presence_undecided", 0.5)
    if isinstance(undecided, bool) or not isinstance(undecided, (int, float)) or not 0.0 < float(undecided) < 1.0:
        raise ModelFileError(f"{meta_path}: presence_undecided must be a number in (0, 1), got {undecided!r}")
    offsets = meta.get("mechanism_offsets")
    if offsets is not None:
        if not isinstance(offsets, dict):  # an array would pass `offsets_array`, but the file names each deficit
            raise ModelFileError(f"{meta_path}: mechanism_offsets must map deficits to numbers, got {offsets!r:.80}")
        try:
            offsets_array(offsets)
        except InputError as exc:
            raise ModelFileError(f"{meta_path}: {exc}") from None
    names = meta.get("measure_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise ModelFileError(f"{meta_path}: measure_names must be a list of names, got {names!r:.60}")
    preprocess_config(meta["preprocess"], meta_path)
    return meta


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) is not None


def preprocess_config(value: Any, where: Any) -> PreprocessConfig:
    """`model.json`'s `preprocess` as a `PreprocessConfig`, or `ModelFileError` saying what is wrong."""
    from valgusml.errors import ConfigError
    from valgusml.preprocess import PreprocessConfig

    if not isinstance(value, dict):
        raise ModelFileError(f"{where}: preprocess must be an object, got {value!r:.60}")
    try:
        return PreprocessConfig.from_dict(value)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: preprocess: {exc}") from None


def model_file_path(folder: str | Path, meta: Mapping[str, Any], name: Any = None) -> Path:
    """The path of a file the folder's `model.json` names (`model.file` by default), refused unless it is a
    plain file name inside the folder."""
    folder = Path(folder)
    name = meta["model"].get("file", MODEL_FILE) if name is None else name
    inside = isinstance(name, str) and name and not Path(name).is_absolute()
    path = folder / name if inside else folder
    if not inside or folder.resolve() not in path.resolve().parents:
        raise ModelFileError(f"{folder / META_FILE}: model.file {name!r} must name a file inside the folder")
    return path


def read_model_bytes(folder: str | Path, meta: Mapping[str, Any]) -> bytes:
    """The bytes of the folder's ONNX file, refused unless they hash to `model.json`'s sha256."""
    model_path = model_file_path(folder, meta)
    try:
        data = model_path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{model_path}: cannot read the model ({exc.strerror or exc})") from None
    digest = sha256_bytes(data)
    if digest != meta["model"]["sha256"]:
        raise ModelFileError(
            f"{model_path}: sha256 {digest[:12]}… does not match model.json's {meta['model']['sha256'][:12]}…; "
            "the file is corrupt or was replaced"
        )
    return data


def read_external_data(folder: str | Path, meta: Mapping[str, Any]) -> dict[str, bytes]:
    """The external data files `model.external_data` lists (name → sha256), read from the folder and checked."""
    out = {}
    for name, expected in meta["model"].get("external_data", {}).items():
        path = model_file_path(folder, meta, name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot read the model's external data ({exc.strerror or exc})") from None
        if sha256_bytes(data) != expected:
            raise ModelFileError(f"{path}: sha256 {sha256_bytes(data)[:12]}… does not match model.json's {expected[:12]}…")
        out[name] = data
    return out


@contextmanager
def external_session_folder(files: Mapping[str, bytes]) -> Iterator[str]:
    """A private directory holding exactly the verified external data files: ONNX Runtime reads external data
    from it (`session.model_external_initializers_file_folder_path`) instead of the working directory."""
    with tempfile.TemporaryDirectory(prefix="valgusml-model-") as tmp:
        for name, data in files.items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        yield tmp


def check_model_io(inputs: Sequence[str], outputs: Sequence[str], where: Any) -> None:
    """The ONNX graph's input and output names are the format's."""
    if set(inputs) != set(INPUT_NAMES) or set(outputs) - set(OPTIONAL_OUTPUT_NAMES) != set(OUTPUT_NAMES):
        raise ModelFileError(
            f"{where}: model inputs {tuple(inputs)} / outputs {tuple(outputs)}; expected {INPUT_NAMES} / "
            f"{OUTPUT_NAMES} (and optionally {OPTIONAL_OUTPUT_NAMES})"
        )


def check_model_shapes(inputs: Mapping[str, Sequence[Any]], cfg: PreprocessConfig, n_measures: int, where: Any) -> None:
    """The graph's fixed input sizes agree with `preprocess` (a window the graph cannot take would otherwise
    surface as an ONNX Runtime shape error at predict time). Symbolic sizes (strings, None) are not checked."""
    from valgusml.skeleton import CANONICAL_JOINTS

    expected = {
        "joints": (None, cfg.window, len(CANONICAL_JOINTS), 3),
        "measures": (None, cfg.window, n_measures),
        "mask": (None, cfg.window),
    }
    for name, want in expected.items():
        shape = tuple(inputs.get(name, ()))
        if len(shape) != len(want):
            raise ModelFileError(f"{where}: model input {name} has rank {len(shape)}, expected {len(want)}")
        for axis, (got, need) in enumerate(zip(shape, want, strict=True)):
            if need is not None and isinstance(got, int) and got != need:
                what = f"preprocess window {cfg.window}" if axis == 1 else f"size {need}"
                raise ModelFileError(
                    f"{where}: {what} does not fit the model's input {name} {list(shape)} (axis {axis} is {got})"
                )


def check_measure_names(meta: Mapping[str, Any], where: Any) -> None:
    """The frame measures the model was exported with are the ones this valgusml computes, in order."""
    from valgusml.features import FRAME_MEASURES

    stored = meta.get("measure_names")
    if stored is not None and tuple(stored) != tuple(FRAME_MEASURES):
        added = [m for m in FRAME_MEASURES if m not in stored]
        dropped = [m for m in stored if m not in FRAME_MEASURES]
        raise ModelFileError(
            f"{where}: the model was exported with {len(stored)} frame measures, this valgusml computes "
            f"{len(FRAME_MEASURES)} (new: {added}, gone: {dropped}, else reordered); re-export it with this version"
        )


# -- writing ------------------------------------------------------------------------------------------------
def build_metadata(
    cfg: PreprocessConfig,
    decision_threshold: float,
    model_bytes: bytes,
    *,
    provenance: Mapping[str, Any],
    tool_versions: Mapping[str, str],
    parity: Mapping[str, Any],
    presence_undecided: float = 0.5,
) -> dict[str, Any]:
    """`model.json`'s content for a model file and its preprocessing, JSON-safe (NaN → None).

    `provenance` may hold the `PROVENANCE_KEYS` (absent ones are written as null); `tool_versions` (e.g.
    `{"torch_version": ...}`) go into `model` beside the onnxruntime version that checked it. The mechanism
    offsets are chosen on the folder's own answers, so they join later (`with_mechanism_offsets`).
    `presence_undecided`: what the graph answers where its presence head is undecided
    (`valgusml.features.view.undecided_probability`; 0.5 without a presence calibration).
    """
    import onnxruntime

    import valgusml
    from valgusml.features import FRAME_MEASURES
    from valgusml.skeleton import CANONICAL_JOINTS, SKELETONS

    window = int(cfg.window)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "valgusml_version": valgusml.__version__,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mechanisms": list(MECHANISMS),
        "limbs": list(LIMBS),
        "skeleton": "canonical",
        "canonical_joints": list(CANONICAL_JOINTS),
        "accepted_skeletons": sorted(SKELETONS),
        "fps": float(cfg.fps),
        "window": window,
        "window_s": window / float(cfg.fps),
        "stride": int(cfg.stride),
        "preprocess": cfg.to_dict(),
        "measure_names": list(FRAME_MEASURES),
        "inputs": {
            "joints": ["batch", window, len(CANONICAL_JOINTS), 3],
            "measures": ["batch", window, len(FRAME_MEASURES)],
            "mask": ["batch", window],
        },
        "outputs": {
            "valgus_probability": ["batch", len(LIMBS)],
            "mechanism_probabilities": ["batch", len(LIMBS), len(MECHANISMS)],
            "severity_deg": ["batch", len(LIMBS)],
            "frontal_fppa_deg": ["batch", len(LIMBS)],
        },
        "decision_threshold": float(decision_threshold),
        "presence_undecided": float(presence_undecided),
        **{key: provenance.get(key) for key in PROVENANCE_KEYS},
        "model": {
            "file": MODEL_FILE,
            "sha256": sha256_bytes(model_bytes),
            "bytes": len(model_bytes),
            **tool_versions,
            "onnxruntime_version": onnxruntime.__version__,
        },
        "parity": parity,
    }
    return to_jsonable(meta)


def with_mechanism_offsets(
    meta: Mapping[str, Any], offsets: Mapping[str, float], source: Mapping[str, Any]
) -> dict[str, Any]:
    """`meta` with `mechanism_offsets` (checked) beside `decision_threshold`, where a reader finds the call's
    other setting, and where they came from in `metrics.mechanism_offsets_from`."""
    offsets_array(dict(offsets))
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key != "mechanism_offsets":
            out[key] = value
        if key == "decision_threshold":
            out["mechanism_offsets"] = dict(offsets)
    out["metrics"] = {**(meta.get("metrics") or {}), "mechanism_offsets_from": dict(source)}
    return out


def write_metadata(folder: str | Path, meta: Mapping[str, Any]) -> Path:
    """Write `model.json` into `folder` (strict JSON: a NaN left in `meta` is an error, not a token)."""
    path = Path(folder) / META_FILE
    path.write_text(json.dumps(to_jsonable(meta), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
