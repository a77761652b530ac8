"""Golden gradients for tests/autodiff_golden.rs, computed by JAX in float64.

A two-layer MLP with ReLU and sparse softmax cross-entropy (mean over the batch), on fixed
random inputs; the JSON holds the inputs, the loss and the gradients of every parameter.
Regenerate with: python3 tests/golden/autodiff_mlp.py   (with jax installed: pip install "jax[cpu]")
"""
import json
import os

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

rng = np.random.default_rng(20261126)
x = rng.normal(size=(4, 3))
w1 = rng.normal(size=(3, 5)) * 0.7
b1 = rng.normal(size=(5,)) * 0.1
w2 = rng.normal(size=(5, 2)) * 0.7
b2 = rng.normal(size=(2,)) * 0.1
labels = np.array([0, 1, 1, 0], dtype=np.int64)


def loss(w1, b1, w2, b2):
    h = jax.nn.relu(x @ w1 + b1)
    logits = h @ w2 + b2
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


value, grads = jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(w1, b1, w2, b2)


def enc(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


out = {
    "x": enc(x),
    "w1": enc(w1),
    "b1": enc(b1),
    "w2": enc(w2),
    "b2": enc(b2),
    "labels": [int(v) for v in labels],
    "loss": float(value),
    "grads": {k: enc(g) for k, g in zip(["w1", "b1", "w2", "b2"], grads)},
    "jax_version": jax.__version__,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autodiff_mlp.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path, "loss", float(value))
