"""Golden data for kiln's recurrent layers (nn::SimpleRNN, nn::GRU, nn::LSTM): Keras 3 (jax
backend) SimpleRNN, GRU (reset_after=True) and LSTM with units=4 on a fixed float32 input
x [batch=2, time=5, features=3], zero initial state, go_backwards=False, weights set from a
seeded numpy RandomState. For each layer: the weights, the output with return_sequences=False
and =True, and the gradients of loss = sum(output_sequence * w_out) with respect to x, kernel,
recurrent_kernel and bias (jax.grad through layer.stateless_call). Every array is stored as
{"shape": [...], "data": [row-major values as float64]}.

The script also recomputes every forward pass in float64 numpy from the layout written into the
JSON ("layout" and "gate_order" of each layer) and fails if Keras disagrees, so the layout note
is checked, not just transcribed.
Run: KERAS_BACKEND=jax python tests/golden/keras_rnn.py > tests/golden/keras_rnn.json
"""

import json
import os
import re

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import keras
import numpy as np

B, T, F, U = 2, 5, 3, 4


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": a.astype(np.float64).ravel().tolist()}


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def ref_simple_rnn(x, kernel, rec, bias):
    h, seq = np.zeros((x.shape[0], U)), []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ rec + bias)
        seq.append(h)
    return np.stack(seq, 1)


def ref_gru(x, kernel, rec, bias):
    h, seq = np.zeros((x.shape[0], U)), []
    for t in range(x.shape[1]):
        xz, xr, xh = np.split(x[:, t] @ kernel + bias[0], 3, axis=-1)
        hz, hr, hh = np.split(h @ rec + bias[1], 3, axis=-1)
        z, r = sigmoid(xz + hz), sigmoid(xr + hr)
        h = z * h + (1 - z) * np.tanh(xh + r * hh)
        seq.append(h)
    return np.stack(seq, 1)


def ref_lstm(x, kernel, rec, bias):
    h, c, seq = np.zeros((x.shape[0], U)), np.zeros((x.shape[0], U)), []
    for t in range(x.shape[1]):
        i, f, g, o = np.split(x[:, t] @ kernel + h @ rec + bias, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        seq.append(h)
    return np.stack(seq, 1)


LAYERS = {
    "simple_rnn": dict(
        make=lambda seq: keras.layers.SimpleRNN(U, return_sequences=seq),
        k=1, bias_shape=(U,), ref=ref_simple_rnn, seed=1, gate_order=[],
        layout="kernel [features, units], recurrent_kernel [units, units], bias [units]; "
               "h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias), h_0 = 0; output = h"),
    "gru": dict(
        make=lambda seq: keras.layers.GRU(U, return_sequences=seq),
        k=3, bias_shape=(2, 3 * U), ref=ref_gru, seed=2, gate_order=["z", "r", "h"],
        layout="Keras 3 default reset_after=True, activation tanh, recurrent_activation sigmoid. "
               "kernel [features, 3*units], recurrent_kernel [units, 3*units], bias [2, 3*units] "
               "(row 0 input bias, row 1 recurrent bias); columns in blocks of units in gate order z, r, h. "
               "[xz|xr|xh] = x_t @ kernel + bias[0]; [hz|hr|hh] = h_{t-1} @ recurrent_kernel + bias[1]; "
               "z = sigmoid(xz + hz); r = sigmoid(xr + hr); hh' = tanh(xh + r * hh); "
               "h_t = z * h_{t-1} + (1 - z) * hh'; h_0 = 0; output = h"),
    "lstm": dict(
        make=lambda seq: keras.layers.LSTM(U, return_sequences=seq),
        k=4, bias_shape=(4 * U,), ref=ref_lstm, seed=3, gate_order=["i", "f", "c", "o"],
        layout="Keras 3 defaults: activation tanh, recurrent_activation sigmoid, unit_forget_bias=True "
               "(only an initializer: bias starts as zeros with ones in the f block; the weights here "
               "are set explicitly, see default_bias). kernel [features, 4*units], recurrent_kernel "
               "[units, 4*units], bias [4*units]; columns in blocks of units in gate order i, f, c, o. "
               "[zi|zf|zc|zo] = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias; "
               "c_t = sigmoid(zf) * c_{t-1} + sigmoid(zi) * tanh(zc); h_t = sigmoid(zo) * tanh(c_t); "
               "h_0 = c_0 = 0; output = h"),
}

rng = np.random.RandomState(0)
x = rng.standard_normal((B, T, F)).astype(np.float32)
w_out = rng.standard_normal((B, T, U)).astype(np.float32)
out = {
    "batch": B, "time": T, "features": F, "units": U,
    "note": "zero initial state, go_backwards=False, float32 computation; output_last equals "
            "output_sequence[:, -1]; grads are of loss = sum(output_sequence * w_out)",
    "x": arr(x), "w_out": arr(w_out), "layers": {},
}

for name, spec in LAYERS.items():
    wr = np.random.RandomState(spec["seed"])
    weights = {
        "kernel": (wr.standard_normal((F, spec["k"] * U)) * 0.5).astype(np.float32),
        "recurrent_kernel": (wr.standard_normal((U, spec["k"] * U)) * 0.5).astype(np.float32),
        "bias": (wr.standard_normal(spec["bias_shape"]) * 0.5).astype(np.float32),
    }
    entry = {"layout": spec["layout"], "gate_order": spec["gate_order"]}
    for seq in (False, True):
        layer = spec["make"](seq)
        layer.build((B, T, F))
        if seq and name == "lstm":
            entry["default_bias"] = arr(layer.cell.bias.value)
        # Map by the variable's name so the order Keras keeps them in does not matter.
        for v in layer.trainable_variables:
            assert v.shape == weights[v.name].shape, (name, v.name, v.shape)
            v.assign(weights[v.name])
        y = np.asarray(layer(x))
        entry["output_sequence" if seq else "output_last"] = arr(y)
    ref = spec["ref"](x.astype(np.float64), *(weights[k].astype(np.float64)
                                               for k in ("kernel", "recurrent_kernel", "bias")))
    seq_out = np.asarray(entry["output_sequence"]["data"]).reshape(B, T, U)
    last_out = np.asarray(entry["output_last"]["data"]).reshape(B, U)
    assert np.max(np.abs(seq_out - ref)) < 1e-5, (name, np.max(np.abs(seq_out - ref)))
    assert np.max(np.abs(last_out - ref[:, -1])) < 1e-5, name

    names = [v.name for v in layer.trainable_variables]
    frozen = [v.value for v in layer.non_trainable_variables]

    def loss(trainable, xs):
        y, _ = layer.stateless_call(trainable, frozen, xs)
        return jnp.sum(y * w_out)

    value, (g_w, g_x) = jax.value_and_grad(loss, argnums=(0, 1))(
        [jnp.asarray(weights[n]) for n in names], jnp.asarray(x))
    entry["weights"] = {k: arr(v) for k, v in weights.items()}
    entry["loss"] = float(value)
    entry["grad"] = {"x": arr(g_x), **{n: arr(g) for n, g in zip(names, g_w)}}
    out["layers"][name] = entry

out["versions"] = {"keras": keras.__version__, "jax": jax.__version__}
text = json.dumps(out, indent=1)
# One line per array keeps the file short and still diffable per array.
print(re.sub(r"\[\s+([^\[\]{}\"]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text))
