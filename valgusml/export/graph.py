"""What the exported ONNX graph goes through before it ships: the exporter's source metadata dropped, and fixed
selections rewritten as matrix products.

Why the rewrite: the network selects along short axes with constant indices (each bone's parent joint, the
left/right mirror of joints and measures). ONNX Runtime's `Gather` copies one element at a time when the
selected axis is the innermost, and a 3-s recording's call spent ~15% of its time in three such gathers. A
product with a one-hot matrix `S` (`S[index[j], j] = 1`, or the sign a following `Mul` applied) selects the
same values in one GEMM: each output is one input times ±1 plus exact zeros, so the numbers are the same bits
for finite inputs. The windows the predictor builds are finite (a point never seen, or lost in a long gap, is 0
with confidence 0), and a non-finite coordinate would already make every output non-finite through the pelvis
centre, which the predictor refuses.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def tidy_graph(path: Any) -> None:
    """The exported file as it ships: without the exporter's source metadata, its fixed selections run as
    matrix products."""
    import onnx

    model = onnx.load(str(path))
    strip_source_metadata(model)
    selections_as_matmuls(model)
    onnx.save(model, str(path))


def strip_source_metadata(model: Any) -> None:
    """Drop the exporter's per-node debugging metadata (the Python stack trace of each operator, with this
    checkout's absolute paths and line numbers, and the FX node it came from): with it, the same weights give a
    different `model.onnx`, and so a different sha256, in every folder and after any edit to the model's source.
    Nothing reads it at inference."""
    import onnx

    graphs = [model.graph, *(f for f in model.functions)]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            del node.metadata_props[:]
            graphs.extend(attr.g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH)
            graphs.extend(attr.graphs[i] for attr in node.attribute for i in range(len(attr.graphs)))


def selections_as_matmuls(model: Any) -> int:
    """Rewrite, in `model`'s main graph, each float `Gather` with constant 1-D indices along the last axis, or
    the one before a static last axis, as a `MatMul` with a one-hot matrix; a `Mul` by a constant vector over
    the selected entries that only it feeds is folded into the matrix. Returns how many were rewritten."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes, types = {}, {}
    for value in (*inferred.value_info, *inferred.input, *inferred.output):
        tensor = value.type.tensor_type
        types[value.name] = tensor.elem_type
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}

    rewritten, dropped, replacements = 0, set(), {}
    for node in graph.node:
        if node.op_type != "Gather" or types.get(node.input[0]) != onnx.TensorProto.FLOAT:
            continue
        index, shape = constants.get(node.input[1]), shapes.get(node.input[0])
        if index is None or index.ndim != 1 or not shape:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0) % len(shape)
        inner = shape[axis + 1:]
        if axis < len(shape) - 2 or shape[axis] is None or None in inner:
            continue
        size, width = int(shape[axis]), int(np.prod(inner, dtype=np.int64))
        index = np.where(index < 0, index + size, index).astype(np.int64)
        if ((index < 0) | (index >= size)).any():
            continue
        sign, out = np.ones(width * len(index), dtype=np.float32), node.output[0]
        trailing = (len(index),) if width == 1 else (len(index), width)  # the output's dims a factor may span
        follower = _sign_follower(consumers.get(out, []), constants, trailing, graph_outputs, out)
        if follower is not None:
            factor = constants[next(n for n in follower.input if n != out)]
            sign = np.broadcast_to(factor, trailing).reshape(-1).astype(np.float32)
            dropped.add(id(follower))
            out = follower.output[0]
        select = np.zeros((size * width, len(index) * width), dtype=np.float32)
        rows = (index[:, None] * width + np.arange(width)).reshape(-1)
        select[rows, np.arange(len(rows))] = sign
        name = f"{node.name or node.output[0]}_as_matmul"
        graph.initializer.append(numpy_helper.from_array(select, f"{name}_select"))
        nodes = []
        if width == 1:
            nodes.append(helper.make_node("MatMul", [node.input[0], f"{name}_select"], [out], name=name))
        else:  # the selected axis and the last one flattened into one, selected, then split again
            graph.initializer.append(numpy_helper.from_array(np.array([0] * axis + [-1], np.int64), f"{name}_flat"))
            graph.initializer.append(numpy_helper.from_array(
                np.array([0] * axis + [len(index), width], np.int64), f"{name}_split"))
            nodes += [helper.make_node("Reshape", [node.input[0], f"{name}_flat"], [f"{name}_flat_out"],
                                       name=f"{name}_flat"),
                      helper.make_node("MatMul", [f"{name}_flat_out", f"{name}_select"], [f"{name}_mm_out"], name=name),
                      helper.make_node("Reshape", [f"{name}_mm_out", f"{name}_split"], [out], name=f"{name}_split")]
        replacements[id(node)] = nodes
        rewritten += 1
    if rewritten:
        new_nodes = []
        for node in graph.node:
            if id(node) in dropped:
                continue
            new_nodes.extend(replacements.get(id(node), [node]))
        del graph.node[:]
        graph.node.extend(new_nodes)
    return rewritten


def _sign_follower(consumers: list[Any], constants: dict[str, np.ndarray], trailing: tuple[int, ...],
                   graph_outputs: set[str], gathered: str) -> Any:
    """The gather's only consumer when it is a `Mul` by a float32 constant that broadcasts over the output's
    `trailing` dims alone (the selected axis and what follows it), else None."""
    if len(consumers) != 1 or gathered in graph_outputs or consumers[0].op_type != "Mul":
        return None
    mul = consumers[0]
    other = [name for name in mul.input if name != gathered]
    if len(other) != 1 or other[0] not in constants:
        return None
    factor = constants[other[0]]
    if factor.dtype != np.float32 or factor.ndim > len(trailing):
        return None
    try:
        np.broadcast_to(factor, trailing)
    except ValueError:
        return None
    return mul
