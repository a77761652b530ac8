"""Golden data for tests/optim_golden.rs: five steps of each Keras 3 optimizer.

Problem: linear regression, loss = mean((X @ w + b - y)^2) in float32, gradients by jax.grad.
Run with keras 3 and the jax backend:
    KERAS_BACKEND=jax python tests/golden/keras_optimizers.py > tests/golden/keras_optimizers.json
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import keras
import numpy as np

X = np.array([[1.0, 2.0, -1.0], [0.5, -1.5, 2.0], [-2.0, 0.3, 0.7], [1.2, 1.1, -0.4]], np.float32)
Y = np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
W0 = np.array([[0.1], [-0.2], [0.3]], np.float32)
B0 = np.array([0.05], np.float32)


def loss(w, b):
    r = X @ w + b - Y
    return jnp.mean(r * r)


grad = jax.grad(loss, argnums=(0, 1))

CONFIGS = {
    "sgd": lambda: keras.optimizers.SGD(0.1),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    "sgd_nesterov": lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    "sgd_exponential_decay": lambda: keras.optimizers.SGD(
        keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    ),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.01),
    "rmsprop_momentum_centered": lambda: keras.optimizers.RMSprop(0.01, momentum=0.9, centered=True),
    "adam": lambda: keras.optimizers.Adam(0.1),
    "adam_amsgrad": lambda: keras.optimizers.Adam(0.1, amsgrad=True),
    "nadam": lambda: keras.optimizers.Nadam(0.1),
}

out = {"x": X.tolist(), "y": Y.tolist(), "w0": W0.tolist(), "b0": B0.tolist(), "runs": {}}
for name, make in CONFIGS.items():
    opt = make()
    w = keras.Variable(W0)
    b = keras.Variable(B0)
    steps = []
    for _ in range(5):
        gw, gb = grad(jnp.asarray(w.value), jnp.asarray(b.value))
        opt.apply([gw, gb], [w, b])
        steps.append({"w": np.asarray(w.value).ravel().tolist(), "b": np.asarray(b.value).ravel().tolist()})
    out["runs"][name] = steps

print(json.dumps(out, indent=1))
