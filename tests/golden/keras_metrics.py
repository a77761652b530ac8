"""Golden data for kiln's streaming metrics (issue 15, item 11): Keras 3 (jax backend)
MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError (with and without per-sample
weights), a MeanMetricWrapper around a custom function, AUC (ROC and PR, 200 and 7
thresholds), Precision and Recall with their state Variables, each fed two batches.
float32. Run: KERAS_BACKEND=jax python tests/golden/keras_metrics.py > tests/golden/keras_metrics.json
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

rng = np.random.RandomState(1)


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": a.astype(np.float64).ravel().tolist()}


batches = []
for n in (5, 3):
    batches.append(dict(
        y_reg=rng.standard_normal((n, 2)).astype(np.float32),
        p_reg=rng.standard_normal((n, 2)).astype(np.float32),
        y_bin=(rng.uniform(size=(n, 4)) > 0.5).astype(np.float32),
        p_score=rng.uniform(size=(n, 4)).astype(np.float32),
        weight=rng.uniform(0, 2, size=(n,)).astype(np.float32),
    ))


def max_abs_error(y_true, y_pred):
    return keras.ops.max(keras.ops.abs(y_pred - y_true), axis=-1)


REG = {
    "mae": lambda: keras.metrics.MeanAbsoluteError(),
    "mse": lambda: keras.metrics.MeanSquaredError(),
    "rmse": lambda: keras.metrics.RootMeanSquaredError(),
    "max_abs_error": lambda: keras.metrics.MeanMetricWrapper(max_abs_error, name="max_abs_error"),
}
SCORE = {
    "auc_roc_200": lambda: keras.metrics.AUC(),
    "auc_roc_7": lambda: keras.metrics.AUC(num_thresholds=7),
    "auc_pr_200": lambda: keras.metrics.AUC(curve="PR"),
    "precision": lambda: keras.metrics.Precision(),
    "recall": lambda: keras.metrics.Recall(),
}

out = {"batches": [{k: arr(v) for k, v in b.items()} for b in batches], "results": {}, "state": {}}
for name, make in REG.items():
    for weighted in (False, True):
        m = make()
        for b in batches:
            m.update_state(b["y_reg"], b["p_reg"], sample_weight=b["weight"] if weighted else None)
        out["results"][name + ("_weighted" if weighted else "")] = float(m.result())
for name, make in SCORE.items():
    m = make()
    for b in batches:
        m.update_state(b["y_bin"], b["p_score"])
    out["results"][name] = float(m.result())
    if name in ("precision", "recall"):
        out["state"][name] = {v.name: arr(v.value) for v in m.variables}
out["versions"] = {"keras": keras.__version__}
print(json.dumps(out, indent=1))
