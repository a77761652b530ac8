"""Golden data for kiln::sparse and kiln::sets (issue 17): TensorFlow's tf.sparse ops (matmul with
its adjoint flags and its gradients in the values and the dense operand, add, reduce_sum, reorder
with repeated indices, slice, transpose, concat, from_dense, reshape, retain) and tf.sets
(intersection, union, difference, size) on dense and sparse integer inputs and on dense strings. float32 values, int64 indices.
Run: python tests/golden/sparse_sets.py > tests/golden/sparse_sets.json
"""

import json

import numpy as np
import tensorflow as tf

rng = np.random.RandomState(0)


def dense(t):
    a = np.asarray(t)
    return {"shape": list(a.shape), "data": a.astype(np.float64).ravel().tolist()}


def sparse(s):
    return {
        "indices": np.asarray(s.indices).tolist(),
        "values": np.asarray(s.values).astype(np.float64).tolist(),
        "dense_shape": np.asarray(s.dense_shape).tolist(),
    }


def make(indices, values, shape, dtype=tf.float32):
    return tf.SparseTensor(tf.constant(indices, tf.int64), tf.constant(values, dtype), shape)


# A canonical [3, 4] matrix, another overlapping it, and an unordered one with a repeated index.
a = make([[0, 1], [0, 3], [1, 0], [2, 2], [2, 3]], [1.5, -2.0, 3.0, 0.5, 4.0], [3, 4])
b = make([[0, 1], [1, 1], [2, 3]], [2.0, -1.0, -4.0], [3, 4])
messy = make([[2, 1], [0, 3], [2, 1], [1, 0], [0, 0]], [1.0, 2.0, 3.0, 4.0, 5.0], [3, 4])
cube = make([[0, 1, 2], [1, 0, 1], [1, 2, 0], [0, 0, 0]], [1.0, 2.0, 3.0, 4.0], [2, 3, 3])
dense_b = rng.standard_normal((3, 4)).astype(np.float32)
d = rng.standard_normal((4, 2)).astype(np.float32)
w = rng.standard_normal((3, 2)).astype(np.float32)
mostly_zero = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -2.0]], np.float32)

values = tf.Variable(a.values)
dv = tf.Variable(d)
with tf.GradientTape() as tape:
    p = tf.sparse.sparse_dense_matmul(tf.SparseTensor(a.indices, values, a.dense_shape), dv)
    loss = tf.reduce_sum(p * w)
g_values, g_dense = tape.gradient(loss, [values, dv])

out = {
    "inputs": {"a": sparse(a), "b": sparse(b), "messy": sparse(messy), "cube": sparse(cube),
               "dense_b": dense(dense_b), "d": dense(d), "w": dense(w), "mostly_zero": dense(mostly_zero)},
    "matmul": dense(p),
    "matmul_grad_values": dense(g_values),
    "matmul_grad_dense": dense(g_dense),
    "add_sparse": sparse(tf.sparse.add(a, b)),
    "add_dense": dense(tf.sparse.add(a, dense_b)),
    "to_dense_a": dense(tf.sparse.to_dense(a)),
    "reorder_messy": sparse(tf.sparse.reorder(messy)),
    "reduce_sum_messy_0": dense(tf.sparse.reduce_sum(messy, axis=0)),
    "reduce_sum_messy_1_keepdims": dense(tf.sparse.reduce_sum(messy, axis=1, keepdims=True)),
    "reduce_sum_messy_all": dense(tf.sparse.reduce_sum(messy)),
    "reduce_sum_cube_02": dense(tf.sparse.reduce_sum(cube, axis=[0, 2])),
    "slice_a": sparse(tf.sparse.slice(a, [1, 1], [5, 3])),
    "slice_cube": sparse(tf.sparse.slice(cube, [0, 0, 0], [2, 2, 2])),
    "transpose_a": sparse(tf.sparse.transpose(a)),
    "transpose_cube_201": sparse(tf.sparse.transpose(cube, [2, 0, 1])),
    "concat_0": sparse(tf.sparse.concat(0, [a, b])),
    "concat_1": sparse(tf.sparse.concat(1, [a, b])),
    "from_dense": sparse(tf.sparse.from_dense(mostly_zero)),
    "reshape_a_2x6": sparse(tf.sparse.reshape(a, [2, -1])),
    "reshape_cube_9x2": sparse(tf.sparse.reshape(cube, [9, 2])),
    "retain_a": sparse(tf.sparse.retain(a, [True, False, True, False, True])),
    "matmul_adjoint_a": dense(tf.sparse.sparse_dense_matmul(a, w, adjoint_a=True)),
    "matmul_adjoint_b": dense(tf.sparse.sparse_dense_matmul(a, d.T.copy(), adjoint_b=True)),
    "matmul_adjoint_ab": dense(tf.sparse.sparse_dense_matmul(a, w.T.copy(), adjoint_a=True, adjoint_b=True)),
}

# Sets. Dense rows with repeats, a rank-3 pair, and sparse operands (canonical order).
sa = np.array([[1, 2, 3, 3], [5, 5, 6, 0], [7, 8, 9, 10]], np.int64)
sb = np.array([[2, 3, 4], [0, 6, 6], [1, 1, 1]], np.int64)
ta = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 7]]], np.int32)
tb = np.array([[[2, 9], [4, 3]], [[1, 1], [8, 7]]], np.int32)
ssa = tf.SparseTensor([[0, 0], [0, 1], [1, 0], [2, 0], [2, 2]], tf.constant([4, 1, 9, 3, 2], tf.int64), [3, 3])
sets_out = {"inputs": {"sa": dense(sa), "sb": dense(sb), "ta": dense(ta), "tb": dense(tb), "ssa": sparse(ssa)}}
for name, (x, y) in {"dense": (sa, sb), "rank3": (ta, tb), "sparse_dense": (ssa, sb),
                     "dense_sparse": (sb, ssa), "sparse_sparse": (ssa, ssa)}.items():
    sets_out[name] = {
        "intersection": sparse(tf.sets.intersection(x, y)),
        "union": sparse(tf.sets.union(x, y)),
        "a_minus_b": sparse(tf.sets.difference(x, y, aminusb=True)),
        "b_minus_a": sparse(tf.sets.difference(x, y, aminusb=False)),
    }
sets_out["size_ssa"] = dense(tf.sets.size(ssa))
sets_out["size_union_dense"] = dense(tf.sets.size(tf.sets.union(sa, sb)))
# String sets (dense, rank 2 and 3; rows with repeats, an empty string, non-ASCII).
stra = np.array([["b", "a", "b", ""], ["x", "ü", "y", "x"]], object)
strb = np.array([["a", "c", "", "c"], ["ü", "z", "z", "z"]], object)
str3a = np.array([[["p", "q"], ["r", "r"]], [["s", "t"], ["u", "v"]]], object)
str3b = np.array([[["q", "p"], ["s", "r"]], [["t", "t"], ["w", "u"]]], object)


def sparse_str(s):
    return {
        "indices": np.asarray(s.indices).tolist(),
        "values": [v.decode("utf-8") for v in np.asarray(s.values)],
        "dense_shape": np.asarray(s.dense_shape).tolist(),
    }


sets_out["strings"] = {"inputs": {"a": stra.tolist(), "b": strb.tolist(), "a3": str3a.tolist(), "b3": str3b.tolist()}}
for name, (x, y) in {"rank2": (stra, strb), "rank3": (str3a, str3b)}.items():
    x, y = tf.constant(x.astype(str)), tf.constant(y.astype(str))
    sets_out["strings"][name] = {
        "intersection": sparse_str(tf.sets.intersection(x, y)),
        "union": sparse_str(tf.sets.union(x, y)),
        "a_minus_b": sparse_str(tf.sets.difference(x, y, aminusb=True)),
        "b_minus_a": sparse_str(tf.sets.difference(x, y, aminusb=False)),
        "size_a": dense(tf.sets.size(tf.sets.union(x, x))),
    }
out["sets"] = sets_out

print(json.dumps(out, indent=1))
