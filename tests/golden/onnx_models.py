"""Small ONNX models for tests/onnx.rs (Gemm, Relu, Softmax, an MLP, broadcasting, reshapes,
If, Loop, Scan), made with the `onnx` package, and their outputs computed by onnxruntime on
fixed random inputs.

Writes tests/golden/onnx/<name>.onnx and tests/golden/onnx/expected.json (per model: its
inputs and the outputs onnxruntime gives). The models are opset 17, as kiln exports.
Regenerate with: python3 tests/golden/onnx_models.py   (pip install onnx onnxruntime numpy)
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")
rng = np.random.default_rng(20261128)
F = TensorProto.FLOAT


def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def model(name, nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnx_models.py")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def normal(*shape):
    return rng.normal(size=shape).astype(np.float32)


models = {}

# Gemm: alpha * A' @ B' + beta * C, both operands transposed, C broadcast over rows.
models["gemm"] = (
    model(
        "gemm",
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], name="gemm", alpha=0.5, beta=2.0, transA=1, transB=1)],
        [vi("a", [3, 4])],
        [vi("y", [4, 5])],
        [init("b", normal(5, 3)), init("c", normal(5))],
    ),
    {"a": normal(3, 4)},
)

models["relu"] = (
    model("relu", [helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [2, 5])], [vi("y", [2, 5])]),
    {"x": normal(2, 5)},
)

# Softmax over the last axis and over a middle one.
models["softmax"] = (
    model(
        "softmax",
        [
            helper.make_node("Softmax", ["x"], ["y"], name="softmax_last"),
            helper.make_node("Softmax", ["x"], ["z"], name="softmax_mid", axis=1),
        ],
        [vi("x", [2, 3, 4])],
        [vi("y", [2, 3, 4]), vi("z", [2, 3, 4])],
    ),
    {"x": normal(2, 3, 4) * 3},
)

# An MLP: Gemm + Relu, MatMul + Add, Softmax; batch dim symbolic.
models["mlp"] = (
    model(
        "mlp",
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="dense1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu1"),
            helper.make_node("MatMul", ["r", "w2"], ["m"], name="dense2"),
            helper.make_node("Add", ["m", "b2"], ["logits"], name="bias2"),
            helper.make_node("Softmax", ["logits"], ["p"], name="softmax"),
        ],
        [vi("x", ["N", 8])],
        [vi("p", ["N", 3])],
        [init("w1", normal(8, 16) * 0.5), init("b1", normal(16) * 0.1), init("w2", normal(16, 3) * 0.5),
         init("b2", normal(3) * 0.1)],
    ),
    {"x": normal(4, 8)},
)

# numpy broadcasting: [3,1] + [1,4], [2,3,4] * [4], scalar - [2,3,4], [2,3,4] / [3,1].
models["broadcast"] = (
    model(
        "broadcast",
        [
            helper.make_node("Add", ["a", "b"], ["s"], name="add"),
            helper.make_node("Mul", ["x", "v"], ["p"], name="mul"),
            helper.make_node("Sub", ["k", "x"], ["d"], name="sub"),
            helper.make_node("Div", ["x", "col"], ["q"], name="div"),
        ],
        [vi("a", [3, 1]), vi("b", [1, 4]), vi("x", [2, 3, 4])],
        [vi("s", [3, 4]), vi("p", [2, 3, 4]), vi("d", [2, 3, 4]), vi("q", [2, 3, 4])],
        [init("v", normal(4)), init("k", np.float32(1.5)), init("col", normal(3, 1) + 3)],
    ),
    {"a": normal(3, 1), "b": normal(1, 4), "x": normal(2, 3, 4)},
)

# Reshape (0 and -1), Transpose, Flatten, ReduceMean, Unsqueeze: the shape plumbing exporters write.
models["reshape"] = (
    model(
        "reshape",
        [
            helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
            helper.make_node("Transpose", ["r"], ["t"], name="transpose", perm=[2, 0, 1]),
            helper.make_node("Flatten", ["t"], ["f"], name="flatten", axis=1),
            helper.make_node("ReduceMean", ["x"], ["m"], name="mean", axes=[1], keepdims=0),
            helper.make_node("Unsqueeze", ["m", "ax"], ["u"], name="unsqueeze"),
        ],
        [vi("x", [2, 6])],
        [vi("f", [3, 4]), vi("u", [2, 1])],
        [init("shape", np.array([0, -1, 3], dtype=np.int64)), init("ax", np.array([1], dtype=np.int64))],
    ),
    {"x": normal(2, 6)},
)

# Control flow, as other exporters write it: an If whose branches read outer values, a Loop
# with a trip count carrying a value (its body reads an outer weight), and a Scan with a
# running sum (state) and a per-step output.
then_g = helper.make_graph(
    [helper.make_node("Mul", ["x", "w"], ["t"], name="then_mul")], "then", [], [vi("t", [2, 3])])
else_g = helper.make_graph(
    [helper.make_node("Sub", ["x", "w"], ["e"], name="else_sub")], "else", [], [vi("e", [2, 3])])
models["if"] = (
    model(
        "if",
        [
            helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
            helper.make_node("Greater", ["s", "zero"], ["c"], name="positive"),
            helper.make_node("If", ["c"], ["y"], name="if", then_branch=then_g, else_branch=else_g),
        ],
        [vi("x", [2, 3])],
        [vi("y", [2, 3])],
        [init("w", normal(2, 3)), init("zero", np.float32(0))],
    ),
    {"x": normal(2, 3)},
)
body = helper.make_graph(
    [
        helper.make_node("Identity", ["c_in"], ["c_out"], name="keep_going"),
        helper.make_node("MatMul", ["v_in", "w"], ["m"], name="step_matmul"),
        helper.make_node("Tanh", ["m"], ["v_out"], name="step_tanh"),
    ],
    "loop_body",
    [vi("i", [], TensorProto.INT64), vi("c_in", [], TensorProto.BOOL), vi("v_in", [2, 3])],
    [vi("c_out", [], TensorProto.BOOL), vi("v_out", [2, 3])],
)
models["loop"] = (
    model(
        "loop",
        [helper.make_node("Loop", ["trips", "", "x"], ["y"], name="loop", body=body)],
        [vi("x", [2, 3])],
        [vi("y", [2, 3])],
        [init("trips", np.int64(4)), init("w", normal(3, 3))],
    ),
    {"x": normal(2, 3)},
)
scan_body = helper.make_graph(
    [
        helper.make_node("Add", ["acc_in", "row"], ["acc_out"], name="accumulate"),
        helper.make_node("Mul", ["acc_out", "row"], ["out"], name="emit"),
    ],
    "scan_body",
    [vi("acc_in", [3]), vi("row", [3])],
    [vi("acc_out", [3]), vi("out", [3])],
)
models["scan"] = (
    model(
        "scan",
        [helper.make_node("Scan", ["init", "xs"], ["final", "ys"], name="scan", body=scan_body, num_scan_inputs=1)],
        [vi("xs", [4, 3])],
        [vi("final", [3]), vi("ys", [4, 3])],
        [init("init", normal(3))],
    ),
    {"xs": normal(4, 3)},
)

os.makedirs(OUT, exist_ok=True)
expected = {}
for name, (m, feeds) in models.items():
    path = os.path.join(OUT, f"{name}.onnx")
    onnx.save(m, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    expected[name] = {
        "inputs": [{"name": k, "shape": list(v.shape), "data": v.ravel().tolist()} for k, v in feeds.items()],
        "outputs": [{"shape": list(o.shape), "data": o.ravel().tolist()} for o in outs],
    }
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print("wrote", ", ".join(models))
