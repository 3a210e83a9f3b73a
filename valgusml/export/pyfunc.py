"""The exported predictor as an MLflow pyfunc model, and the helper that logs and registers it.

MLflow's "models from code": the model is the file `pyfunc_model.py` (it calls `mlflow.models.set_model`), not a
pickled object, so neither pickle nor cloudpickle is involved anywhere; `load_context` opens the predictor
folder (an MLflow artifact) with `valgusml.Predictor.load`, which checks its sha256.

Request format (one row per recording), e.g. for `mlflow models serve`:
    {"dataframe_records": [{"keypoints": [[[x, y], ...], ...], "skeleton": "halpe26", "fps": 60.0}]}
`keypoints` is the `(T, J, 2|3)` nested list (null for a missing point), `skeleton` and `fps` are optional
(defaults halpe26 and 60), `confidence` an optional `(T, J)` nested list; `task` (e.g. `single_leg_squat_left`:
which knee is loaded, which phase is scored) and `sex` (`female` / `male`: the measured 3D rule's threshold) are
optional too, as `valgusml predict --task / --sex` gives them. Long recordings may use the compact form
instead: `keypoints_npy` (and `confidence_npy`), a base64 string of the array saved by `numpy.save`
(`encode_array`): less JSON to send and parse. A request valgusml refuses (bad keypoints, fps out of range, ...)
gets HTTP 400 with valgusml's own message. The signature types `keypoints`, `confidence` and `fps` as MLflow's
`AnyType`, so that valgusml checks them (naming the row) instead of MLflow's schema check, which refused what JSON
clients often send (a whole number where a double is typed: `"fps": 30`, JavaScript's `30.0`, or keypoints in
whole pixels; a nested-list column that some rows of a request have and others lack) and took 18.7 s over a
10-minute recording's nested list (AnyType: 1 ms). The answer has one row per recording:
the top-level fields of `Prediction`, per-limb columns (`left_valgus_probability`, ...), one `p_<mechanism>`
column per mechanism, `warnings` joined by "; ", and `prediction_json` holding the full `Prediction.to_dict()`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from valgusml.labels import LIMBS, MECHANISMS
from valgusml.paths import REPO_ROOT

log = logging.getLogger(__name__)

REGISTERED_MODEL_NAME = "valgus-classifier"
ARTIFACT_KEY = "predictor"
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
DEFAULT_SKELETON = "halpe26"
DEFAULT_FPS = 60.0


def _column(row: Any, name: str, default: Any) -> Any:
    value = row.get(name, default) if hasattr(row, "get") else default
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return default
    return value


def _nested(value: Any) -> np.ndarray:
    """Nested lists / object arrays (what JSON and pandas give) → float array, None → NaN."""
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.astype(np.float32)

    def convert(v: Any) -> Any:
        if isinstance(v, (list, tuple, np.ndarray)):
            return [convert(x) for x in v]
        return np.nan if v is None else v

    return np.asarray(convert(value), dtype=np.float32)


def flatten_prediction(prediction: Any) -> dict[str, Any]:
    """One flat row (scalars and strings only) from a `Prediction`."""
    row: dict[str, Any] = {
        "valgus_probability": prediction.valgus_probability,
        "valgus": prediction.valgus,
        "mechanism": prediction.mechanism,
        "severity_deg": prediction.severity_deg,
        "limb": prediction.limb,
    }
    for name in MECHANISMS:
        row[f"p_{name}"] = prediction.mechanism_probabilities[name]
    for limb in LIMBS:
        lp = prediction.limbs[limb]
        row[f"{limb}_valgus_probability"] = lp.valgus_probability
        row[f"{limb}_valgus"] = lp.valgus
        row[f"{limb}_mechanism"] = lp.mechanism
        row[f"{limb}_severity_deg"] = lp.severity_deg
        row[f"{limb}_frontal_fppa_deg"] = lp.frontal_fppa_deg if lp.frontal_fppa_deg is not None else float("nan")
    row["warnings"] = "; ".join(prediction.warnings)
    row["prediction_json"] = json.dumps(prediction.to_dict())
    return row


def encode_array(array: np.ndarray) -> str:
    """An array as the compact request form (`keypoints_npy`, `confidence_npy`): base64 of `numpy.save`."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_array(text: Any, name: str) -> np.ndarray:
    """The compact form back to an array: the `.npy` header is checked against `valgusml.limits` first."""
    from valgusml import limits
    from valgusml.errors import InputError
    from valgusml.io.npz import npy_header

    try:
        raw = base64.b64decode(str(text), validate=True)
        buffer = io.BytesIO(raw)
        shape, fortran, dtype = npy_header(buffer)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InputError(f"{name}: not a base64 .npy array ({exc})") from None
    if dtype.kind not in "fiu" or fortran:
        raise InputError(f"{name}: expected a C-ordered numeric array, got {dtype} (fortran_order={fortran})")
    n_bytes = math.prod(shape) * dtype.itemsize
    limits.current().check_bytes(n_bytes, f"{name}: ", f"array of shape {shape}")
    if n_bytes != len(raw) - buffer.tell():
        raise InputError(f"{name}: the header declares shape {shape} {dtype} but {len(raw) - buffer.tell()} bytes follow")
    return np.frombuffer(raw, dtype=dtype, offset=buffer.tell()).reshape(shape).astype(np.float32)


def _array(row: dict[str, Any], name: str) -> np.ndarray | None:
    from valgusml.errors import InputError

    if _column(row, f"{name}_npy", None) is not None:
        return decode_array(row[f"{name}_npy"], f"{name}_npy")
    if _column(row, name, None) is not None:
        try:  # the signature leaves these to valgusml (AnyType): anything a client sent arrives here
            return _nested(row[name])
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} must be a nested list of numbers (null for a missing point): {exc}") from None
    return None


def _recording(row: dict[str, Any], i: int, skeleton: str, fps: float) -> Any:
    """The row's keypoints as the predictor takes them: the array itself, or a `KeypointSequence` carrying the
    row's task and sex when it names them."""
    from valgusml.errors import InputError
    from valgusml.features.rule import SEXES
    from valgusml.labels import check_task
    from valgusml.sequence import KeypointSequence

    try:
        keypoints, confidence = _array(row, "keypoints"), _array(row, "confidence")
    except InputError as exc:
        raise InputError(f"row {i}: {exc}") from None
    task, sex = str(_column(row, "task", "") or ""), _column(row, "sex", None)
    if not task and sex is None:
        return keypoints, confidence
    if sex is not None and sex not in SEXES:
        raise InputError(f"row {i}: sex must be {' or '.join(map(repr, SEXES))}, got {sex!r:.40}")
    try:
        return KeypointSequence(keypoints, skeleton, fps, confidence=confidence, task=check_task(task) or None,
                                meta={"sex": sex} if sex else {}), None
    except InputError as exc:
        raise InputError(f"row {i}: {exc}") from None


def predict_records(predictor: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat answer per request row (see the module docstring); rows that share skeleton and fps go through
    one batched call. Bad rows raise `InputError` naming the row."""
    from valgusml.errors import InputError

    groups: dict[tuple[str, float], list[int]] = {}
    for i, row in enumerate(rows):
        if _column(row, "keypoints", None) is None and _column(row, "keypoints_npy", None) is None:
            raise InputError(f"row {i}: needs 'keypoints' (nested list) or 'keypoints_npy' (base64 .npy); got {sorted(row)}")
        fps = _column(row, "fps", DEFAULT_FPS)
        try:
            if isinstance(fps, (bool, np.bool_)):
                raise TypeError
            fps = float(fps)
        except (TypeError, ValueError):
            raise InputError(f"row {i}: fps must be a number, got {fps!r:.40}") from None
        groups.setdefault((str(_column(row, "skeleton", DEFAULT_SKELETON)), fps), []).append(i)
    out: list[dict[str, Any]] = [{} for _ in rows]
    for (skeleton, fps), idx in groups.items():
        keypoints, confidence = zip(*(_recording(rows[i], i, skeleton, fps) for i in idx), strict=True)
        try:
            predictions = predictor.predict_batch(list(keypoints), skeleton=skeleton, fps=fps,
                                                  confidence=list(confidence))
        except InputError:
            # The batch numbers its recordings within this group of rows: find the request's row to name.
            for i, k, c in zip(idx, keypoints, confidence, strict=True):
                try:
                    predictor.predict_batch([k], skeleton=skeleton, fps=fps, confidence=[c])
                except InputError as exc:
                    raise InputError(f"row {i}: {exc}") from None
            raise
        for i, p in zip(idx, predictions, strict=True):
            out[i] = flatten_prediction(p)
    return out


class ValgusPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc face of `valgusml.Predictor`; see the module docstring for the request/response format."""

    # MLflow's own switch (its ChatModel sets it): `predict` has no type hints on purpose, the explicit signature
    # is the schema, so MLflow neither wraps it nor prints its advice to add hints in every training's output.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        from valgusml.predictor import Predictor

        self.predictor = Predictor.load(context.artifacts[ARTIFACT_KEY])

    # No type hints here: MLflow would read them as a (conflicting) input schema.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import BAD_REQUEST

        from valgusml.errors import InputError

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            return pd.DataFrame(predict_records(self.predictor, [dict(r) for _, r in frame.iterrows()]))
        except InputError as exc:
            # MLflow's server turns an MlflowException into a 4xx carrying its message (any other exception
            # becomes a generic message with the server's stack trace).
            raise MlflowException(f"valgusml: {exc}", error_code=BAD_REQUEST) from None


def signature_and_example(example: np.ndarray | None = None) -> tuple[Any, pd.DataFrame]:
    """Model signature (nested-array keypoints, optional skeleton/fps/confidence) and a one-row input example."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

    from valgusml.export.example import example_keypoints

    if example is None:
        example = example_keypoints(DEFAULT_SKELETON, seconds=1.0, fps=30.0)
    inputs = Schema(
        [
            # (T, J, 2|3) and (T, J) nested lists of numbers (null: a missing point), and a number: see the docstring
            ColSpec(AnyType(), "keypoints", required=False),
            ColSpec(DataType.string, "skeleton", required=False),
            ColSpec(AnyType(), "fps", required=False),
            ColSpec(AnyType(), "confidence", required=False),
            ColSpec(DataType.string, "keypoints_npy", required=False),
            ColSpec(DataType.string, "confidence_npy", required=False),
            ColSpec(DataType.string, "task", required=False),
            ColSpec(DataType.string, "sex", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.double, "valgus_probability"),
            ColSpec(DataType.boolean, "valgus"),
            ColSpec(DataType.string, "mechanism"),
            ColSpec(DataType.double, "severity_deg"),
            ColSpec(DataType.string, "limb"),
            *[ColSpec(DataType.double, f"p_{m}") for m in MECHANISMS],
            *[
                spec
                for limb in LIMBS
                for spec in (
                    ColSpec(DataType.double, f"{limb}_valgus_probability"),
                    ColSpec(DataType.boolean, f"{limb}_valgus"),
                    ColSpec(DataType.string, f"{limb}_mechanism"),
                    ColSpec(DataType.double, f"{limb}_severity_deg"),
                    ColSpec(DataType.double, f"{limb}_frontal_fppa_deg"),
                )
            ],
            ColSpec(DataType.string, "warnings"),
            ColSpec(DataType.string, "prediction_json"),
        ]
    )
    frame = pd.DataFrame(
        [{"keypoints": np.round(example.astype(np.float64), 2).tolist(), "skeleton": DEFAULT_SKELETON, "fps": 30.0}]
    )
    return ModelSignature(inputs=inputs, outputs=outputs), frame


def default_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the project's `sqlite:///<repo>/mlflow.db` (cwd when not in a repo)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    repo = REPO_ROOT
    root = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    return f"sqlite:///{root / 'mlflow.db'}"


def _requirements() -> list[str]:
    import onnxruntime
    import scipy

    from valgusml import __version__

    return [
        f"valgusml=={__version__}",
        f"numpy=={np.__version__}",
        f"scipy=={scipy.__version__}",
        f"onnxruntime=={onnxruntime.__version__}",
        f"pandas=={pd.__version__}",
        f"mlflow=={mlflow.__version__}",
    ]


def log_predictor_to_mlflow(
    export_dir: str | os.PathLike,
    run_id: str | None = None,
    register: bool = True,
    name: str = "predictor",
    registered_model_name: str = REGISTERED_MODEL_NAME,
) -> Any:
    """Log the predictor folder as a pyfunc model (models from code, no pickle) and register it.

    Logs into run `run_id` if given, else into the active run, else into a new run. Returns MLflow's
    `ModelInfo` (`.model_uri`, `.registered_model_version`). The folder is checked with `Predictor.load` first,
    so a corrupt export never reaches the registry.
    """
    from valgusml.predictor import Predictor

    export_dir = Path(export_dir)
    predictor = Predictor.load(export_dir)
    signature, example = signature_and_example()
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    if not is_tracking_uri_set():
        mlflow.set_tracking_uri(default_tracking_uri())
    active = mlflow.active_run()
    if run_id is not None and (active is None or active.info.run_id != run_id):
        context = mlflow.start_run(run_id=run_id, nested=active is not None)
    elif active is not None:
        context = contextlib.nullcontext(active)
    else:
        from valgusml.runs.tracking import ensure_experiment

        experiment_id = ensure_experiment(mlflow.get_tracking_uri(), "valgusml")
        context = mlflow.start_run(run_name="valgusml-export", experiment_id=experiment_id)
    with context:
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={ARTIFACT_KEY: str(export_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            registered_model_name=registered_model_name if register else None,
            metadata={
                "valgusml_format_version": predictor.metadata["format_version"],
                "model_sha256": predictor.metadata["model"]["sha256"],
                "decision_threshold": predictor.decision_threshold,
                "presence_undecided": predictor.undecided,
                "mechanism_offsets": predictor.metadata.get("mechanism_offsets"),
                "dataset_fingerprint": predictor.metadata.get("dataset_fingerprint"),
            },
        )
    return info
