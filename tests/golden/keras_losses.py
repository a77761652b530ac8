"""Golden data for kiln's loss reductions (issue 15, item 10): Keras 3 (jax backend) losses with
each reduction ("sum_over_batch_size", "sum", "none", "mean_with_sample_weight"), with and
without a per-sample weight, labels given as [n] against [n, 1] predictions (Keras squeezes or
expands the last axis) and integer labels cast to the predictions' dtype. float32.
Run: KERAS_BACKEND=jax python tests/golden/keras_losses.py > tests/golden/keras_losses.json
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

rng = np.random.RandomState(0)
N, D, C = 4, 3, 3


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": a.astype(np.float64).ravel().tolist()}


y_reg = rng.standard_normal((N, D)).astype(np.float32)
p_reg = rng.standard_normal((N, D)).astype(np.float32)
y_bin = (rng.uniform(size=(N, D)) > 0.5).astype(np.float32)
p_prob = rng.uniform(0.05, 0.95, size=(N, D)).astype(np.float32)
logits = rng.standard_normal((N, C)).astype(np.float32)
labels = np.array([0, 2, 1, 2], np.int64)
onehot = np.eye(C, dtype=np.float32)[labels]
weight = np.array([1.0, 0.5, 0.0, 2.0], np.float32)
col_true = rng.standard_normal((N,)).astype(np.float32)   # [n] labels
col_pred = rng.standard_normal((N, 1)).astype(np.float32)  # [n, 1] predictions

CASES = {
    "mse": (lambda r: keras.losses.MeanSquaredError(reduction=r), y_reg, p_reg),
    "mae": (lambda r: keras.losses.MeanAbsoluteError(reduction=r), y_reg, p_reg),
    "huber_2": (lambda r: keras.losses.Huber(delta=2.0, reduction=r), y_reg, p_reg),
    "bce": (lambda r: keras.losses.BinaryCrossentropy(reduction=r), y_bin, p_prob),
    "bce_logits": (lambda r: keras.losses.BinaryCrossentropy(from_logits=True, reduction=r), y_bin, p_reg),
    "cce_logits": (lambda r: keras.losses.CategoricalCrossentropy(from_logits=True, reduction=r), onehot, logits),
    "scce_logits": (lambda r: keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=r), labels, logits),
    "scce_column_labels": (lambda r: keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=r),
                           labels[:, None], logits),
    "mse_column": (lambda r: keras.losses.MeanSquaredError(reduction=r), col_true, col_pred),
    "mse_int_labels": (lambda r: keras.losses.MeanSquaredError(reduction=r), labels.astype(np.int32)[:, None],
                       col_pred),
}
REDUCTIONS = ["sum_over_batch_size", "sum", "none", "mean_with_sample_weight"]

out = {"inputs": {k: arr(v) for k, v in dict(
    y_reg=y_reg, p_reg=p_reg, y_bin=y_bin, p_prob=p_prob, logits=logits, labels=labels, onehot=onehot,
    weight=weight, col_true=col_true, col_pred=col_pred).items()}, "losses": {}}
for name, (make, yt, yp) in CASES.items():
    entry = {}
    for r in REDUCTIONS:
        for weighted in (False, True):
            sw = weight if weighted else None
            v = make(r)(yt, yp, sample_weight=sw)
            entry[f"{r}{'_weighted' if weighted else ''}"] = arr(v)
    out["losses"][name] = entry


def huber_fn(y_true, y_pred):  # the book's, returning per-element losses
    error = y_true - y_pred
    small = keras.ops.abs(error) < 1
    return keras.ops.where(small, keras.ops.square(error) / 2, keras.ops.abs(error) - 0.5)


from keras.src.losses.losses import LossFunctionWrapper  # what model.compile(loss=fn) wraps a function in
wrapped = LossFunctionWrapper(huber_fn)
out["huber_fn"] = {"plain": arr(wrapped(y_reg, p_reg)), "weighted": arr(wrapped(y_reg, p_reg, sample_weight=weight[:, None]))}
out["versions"] = {"keras": keras.__version__}
print(json.dumps(out, indent=1))
