"""The exported graph's rewrite: fixed selections as matrix products give the same bits, and only where they may."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from valgusml.export.graph import selections_as_matmuls


def _graph(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"{name}_{k}" for k in range(rank)])
         for name, rank in outputs],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def _ops(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph.node)


PARENT = np.array([0, 0, 1, 2, 1, 0], dtype=np.int64)  # a selection, not a permutation: repeats allowed
MIRROR = np.array([1, 0, 3, 2, 4, 5], dtype=np.int64)


def test_selections_along_the_last_axes_become_matmuls_with_the_same_bits():
    """Three selections as the network has them: each bone's parent along the last axis, a mirror of joints
    along the axis before a static last one with a sign per coordinate (folded), and a mirror of measures with a
    sign per column (folded); a batch axis of any size."""
    model = _graph(
        [
            helper.make_node("Gather", ["nodes", "parent"], ["parents"], axis=3),
            helper.make_node("Sub", ["nodes", "parents"], ["bones"]),
            helper.make_node("Gather", ["joints", "mirror"], ["swapped"], axis=2),
            helper.make_node("Mul", ["swapped", "x_sign"], ["mirrored"]),
            helper.make_node("Gather", ["measures", "measure_source"], ["measures_swapped"], axis=-1),
            helper.make_node("Mul", ["measure_sign", "measures_swapped"], ["measures_mirrored"]),
        ],
        [("nodes", ["batch", 2, 7, 6]), ("joints", ["batch", 7, 6, 3]), ("measures", ["batch", 7, 5])],
        [("bones", 4), ("mirrored", 4), ("measures_mirrored", 3)],
        {"parent": PARENT, "mirror": MIRROR, "x_sign": np.array([-1.0, 1.0, 1.0], np.float32),
         "measure_source": np.array([1, 0, 2, 4, 3], np.int64),
         "measure_sign": np.array([1.0, 1.0, -1.0, 1.0, 1.0], np.float32)},
    )
    rng = np.random.default_rng(0)
    for batch in (1, 4):
        feed = {"nodes": rng.normal(size=(batch, 2, 7, 6)).astype(np.float32),
                "joints": rng.normal(size=(batch, 7, 6, 3)).astype(np.float32),
                "measures": (rng.normal(size=(batch, 7, 5)) * 100).astype(np.float32)}
        before = _run(model, feed)
        rewritten = onnx.ModelProto.FromString(model.SerializeToString())
        assert selections_as_matmuls(rewritten) == 3
        onnx.checker.check_model(rewritten)
        assert _ops(rewritten)["Gather"] == 0 and _ops(rewritten)["Mul"] == 0  # both signs folded in
        after = _run(rewritten, feed)
        for b, a in zip(before, after, strict=True):
            assert a.shape == b.shape and np.array_equal(a, b)
    # What the numbers are, not only that both graphs agree: a parent's coordinates, a swapped joint's negated x.
    np.testing.assert_array_equal(after[0], feed["nodes"] - feed["nodes"][..., PARENT])
    np.testing.assert_array_equal(after[1][..., 0], -feed["joints"][:, :, MIRROR, 0])


@pytest.mark.parametrize("case", ["computed indices", "inner axis not static", "middle axis", "shared output",
                                  "integer data"])
def test_selections_that_cannot_be_rewritten_stay_gathers(case):
    """Indices computed at run time, an inner axis of unknown size, an axis further in than the one before the
    last, an output another node also reads (the sign cannot fold: the Mul is kept), integer data: left as
    they were (the shared one's gather is rewritten, its Mul kept)."""
    inputs, initializers = [("x", ["batch", 4, 6])], {"index": MIRROR}
    nodes = [helper.make_node("Gather", ["x", "index"], ["y"], axis=2)]
    outputs, expected = [("y", 3)], 0
    if case == "computed indices":
        inputs.append(("index_f", [6]))
        nodes = [helper.make_node("Cast", ["index_f"], ["index_i"], to=TensorProto.INT64),
                 helper.make_node("Gather", ["x", "index_i"], ["y"], axis=2)]
        initializers = {}
    elif case == "inner axis not static":
        inputs = [("x", ["batch", 6, "w"])]
        nodes = [helper.make_node("Gather", ["x", "index"], ["y"], axis=1)]
    elif case == "middle axis":
        inputs = [("x", ["batch", 6, 4, 3])]
        nodes = [helper.make_node("Gather", ["x", "index"], ["y"], axis=1)]
        outputs = [("y", 4)]
    elif case == "shared output":
        initializers["sign"] = np.ones(6, np.float32)
        nodes += [helper.make_node("Mul", ["y", "sign"], ["z"]), helper.make_node("Neg", ["y"], ["w"])]
        outputs, expected = [("z", 3), ("w", 3)], 1
    model = _graph(nodes, inputs, outputs, initializers)
    if case == "integer data":
        model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT32
    ops = _ops(model)
    assert selections_as_matmuls(model) == expected
    onnx.checker.check_model(model)
    if expected:
        assert _ops(model)["Gather"] == 0 and _ops(model)["Mul"] == ops["Mul"]
    else:
        assert _ops(model) == ops
