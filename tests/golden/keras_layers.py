"""Golden data for tests/nn_golden.rs: Keras 3 (jax backend) activations, losses, a
BatchNormalization step, regularizers, constraints and metrics on fixed float32 inputs.
Run: KERAS_BACKEND=jax python tests/golden/keras_layers.py > tests/golden/keras_layers.json
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np


def f(a):
    return np.asarray(a, dtype=np.float64).ravel().tolist()


x = np.linspace(-3.0, 3.0, 13).astype(np.float32).reshape(1, 13)
out = {"x": f(x), "activations": {}}
for name in ["relu", "sigmoid", "tanh", "softplus", "elu", "selu", "gelu", "softmax"]:
    out["activations"][name] = f(keras.activations.get(name)(x))

y_true = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 2.0]], np.float32)
y_pred = np.array([[0.3, 0.6, 2.1], [0.8, -0.4, 0.2]], np.float32)
probs = np.array([[0.2, 0.7, 0.1], [0.05, 0.15, 0.8]], np.float32)
onehot = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
labels = np.array([1, 0], np.int64)
bin_true = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]], np.float32)
L = keras.losses
out["losses"] = {
    "y_true": f(y_true), "y_pred": f(y_pred), "probs": f(probs), "onehot": f(onehot), "labels": labels.tolist(),
    "bin_true": f(bin_true),
    "mse": float(L.MeanSquaredError()(y_true, y_pred)),
    "mae": float(L.MeanAbsoluteError()(y_true, y_pred)),
    "huber_1": float(L.Huber(1.0)(y_true, y_pred)),
    "huber_0_5": float(L.Huber(0.5)(y_true, y_pred)),
    "bce_probs": float(L.BinaryCrossentropy()(bin_true, probs)),
    "bce_logits": float(L.BinaryCrossentropy(from_logits=True)(bin_true, y_pred)),
    "cce_probs": float(L.CategoricalCrossentropy()(onehot, probs)),
    "cce_logits": float(L.CategoricalCrossentropy(from_logits=True)(onehot, y_pred)),
    "scce_probs": float(L.SparseCategoricalCrossentropy()(labels, probs)),
    "scce_logits": float(L.SparseCategoricalCrossentropy(from_logits=True)(labels, y_pred)),
}

bx = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 0.1], [-1.0, 4.0, 0.3], [0.5, 1.0, -0.2]], np.float32)
bn = keras.layers.BatchNormalization()
train_out = bn(bx, training=True)
out["batch_norm"] = {
    "x": f(bx),
    "train": f(train_out),
    "moving_mean": f(bn.moving_mean.value),
    "moving_variance": f(bn.moving_variance.value),
    "infer": f(bn(bx, training=False)),
}

w = np.array([[1.0, -2.0], [3.0, 0.5], [-0.1, 4.0]], np.float32)
R = keras.regularizers
C = keras.constraints
out["weights"] = {
    "w": f(w),
    "l1": float(R.L1(0.01)(w)),
    "l2": float(R.L2(0.01)(w)),
    "l1_l2": float(R.L1L2(0.01, 0.02)(w)),
    "non_neg": f(C.NonNeg()(w)),
    "max_norm_2": f(C.MaxNorm(2.0)(w)),
}

mt = np.array([0, 1, 1, 0, 1, 1, 0, 1], np.float32)
mp = np.array([0.2, 0.7, 0.4, 0.6, 0.9, 0.55, 0.1, 0.3], np.float32)
cls_true = np.array([0, 1, 2, 2, 1, 0, 2, 1, 0, 2], np.int64)
cls_pred = np.random.default_rng(0).random((10, 3)).astype(np.float32)
prec, rec = keras.metrics.Precision(), keras.metrics.Recall()
prec.update_state(mt, mp)
rec.update_state(mt, mp)
f1b = keras.metrics.F1Score(threshold=0.5)
f1b.update_state(mt.reshape(-1, 1), mp.reshape(-1, 1))
f1m = keras.metrics.F1Score(average="macro")
f1m.update_state(np.eye(3, dtype=np.float32)[cls_true], cls_pred)
out["metrics"] = {
    "y_true": f(mt), "y_pred": f(mp), "class_true": cls_true.tolist(), "class_pred": f(cls_pred),
    "precision": float(prec.result()), "recall": float(rec.result()),
    "f1_binary": f(f1b.result())[0], "f1_macro": float(f1m.result()),
}
print(json.dumps(out, indent=1))
