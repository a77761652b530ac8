#!/usr/bin/env python3
"""Writes the golden values the reference interpreter (kiln_ir::interp) is tested against.

    python3 tests/golden/make_golden.py      # with numpy installed (pip install numpy)

Outputs (committed; the Rust tests never run Python):
  ops.json      one case per op application: operands, the expected result (or the
                expected kind of error) and the tolerance it is compared with.
  random.json   values of the counter-based RNG, from an independent Python implementation
                of the algorithm documented in ir/src/interp/random.rs.
  display.json  arrays and the exact string numpy's str() gives for each.

Expected values:
  * integer, bool and shape ops: numpy, exact (integer division and mean truncate toward
    zero and casts saturate as TensorFlow does, so those are computed here explicitly);
  * f32 float math: evaluated by numpy in float64 on the (exact) f32 operands, then rounded
    to f32 -- the correctly rounded answer. Tolerance rtol 1e-6 (~8 ulp of f32), because
    the interpreter may differ from it in the last bits;
  * f64 float math: numpy float64, rtol 1e-12;
  * f32 matmul accumulates in f32 (gemm): rtol 1e-5 plus atol 1e-5 * max|result|;
  * sums: numpy float64 pairwise sums, rtol 1e-6 (f32) / 1e-12 (f64) plus a small atol
    relative to sum(|x|) to absorb cancellation.
Floats are written as JSON numbers (an f32 as the exact float64 of its value) or the
strings "nan", "inf", "-inf".
"""
import json
import math
import os

import numpy as np

rng = np.random.default_rng(20261126)
HERE = os.path.dirname(os.path.abspath(__file__))
NP = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}
NAME = {np.dtype(v): k for k, v in NP.items()}


def enc(x):
    x = np.asarray(x)
    dt = NAME[x.dtype]
    flat = x.reshape(-1)
    if dt in ("f32", "f64"):
        data = []
        for v in flat.tolist():
            if math.isnan(v):
                data.append("nan")
            elif math.isinf(v):
                data.append("inf" if v > 0 else "-inf")
            else:
                data.append(v)
    else:
        data = flat.tolist()
    return {"dtype": dt, "shape": list(x.shape), "data": data}


cases = []


def case(op, args, out=None, error=None, rtol=0.0, atol=0.0, note=""):
    c = {"op": op, "args": [enc(a) for a in args], "rtol": rtol, "atol": atol}
    if note:
        c["note"] = note
    if error:
        c["error"] = error
    else:
        c["out"] = enc(out)
    cases.append(c)


def randf(shape, dt, lo=-3.0, hi=3.0):
    return rng.uniform(lo, hi, size=shape).astype(NP[dt])


def randi(shape, dt, lo=-20, hi=20):
    return rng.integers(lo, hi, size=shape).astype(NP[dt])


def rtol_of(dt):
    return 1e-6 if dt == "f32" else 1e-12


SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1e-8, 88.0, -88.0, 3.0, -7.25]

# ---------------------------------------------------------------- unary
def sigmoid(x):
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sign(x):
    return np.where(np.isnan(x), x, np.sign(x) + 0.0)


UNARY = {
    "neg": (np.negative, None),
    "abs": (np.abs, None),
    "exp": (np.exp, None),
    "log": (np.log, (0.01, 10.0)),
    "log1p": (np.log1p, (-0.9, 10.0)),
    "expm1": (np.expm1, None),
    "sqrt": (np.sqrt, (0.0, 10.0)),
    "rsqrt": (lambda x: 1.0 / np.sqrt(x), (0.01, 10.0)),
    "square": (np.square, None),
    "tanh": (np.tanh, None),
    "sigmoid": (sigmoid, (-30.0, 30.0)),
    "relu": (lambda x: np.maximum(x, 0), None),
    "softplus": (lambda x: np.logaddexp(0.0, x), (-30.0, 30.0)),
    "sin": (np.sin, (-10.0, 10.0)),
    "cos": (np.cos, (-10.0, 10.0)),
    "sign": (sign, None),
    "floor": (np.floor, None),
    "ceil": (np.ceil, None),
    "round": (np.round, None),
}

for name, (f, rng_) in UNARY.items():
    lo, hi = rng_ or (-3.0, 3.0)
    for dt in ("f32", "f64"):
        for shape in [(7,), (2, 3, 4), (0, 3)]:
            x = randf(shape, dt, lo, hi)
            with np.errstate(all="ignore"):
                y = f(x.astype(np.float64)).astype(NP[dt])
            case({"kind": "unary", "name": name}, [x], y, rtol=rtol_of(dt))
        x = np.array(SPECIAL, dtype=NP[dt])
        with np.errstate(all="ignore"):
            y = f(x.astype(np.float64)).astype(NP[dt])
        case({"kind": "unary", "name": name}, [x], y, rtol=rtol_of(dt), note="nan/inf/zero/half cases")

for name, f in [("neg", np.negative), ("abs", np.abs), ("square", np.square), ("sign", np.sign),
                ("relu", lambda x: np.maximum(x, 0))]:
    for dt in ("i32", "i64"):
        x = randi((3, 5), dt)
        x.flat[0] = 0
        case({"kind": "unary", "name": name}, [x], f(x).astype(NP[dt]))
b = rng.random((2, 5)) < 0.5
case({"kind": "unary", "name": "logical_not"}, [b], ~b)
# round half-to-even explicitly
x = np.array([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4999999, 2.5000001, 1e15 + 0.5], dtype=np.float64)
case({"kind": "unary", "name": "round"}, [x], np.round(x), note="half to even")

# ---------------------------------------------------------------- binary
def trunc_div(a, b):
    q = np.abs(a) // np.abs(b)
    return (np.where((a < 0) ^ (b < 0), -q, q)).astype(a.dtype)


SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1), (1, 5)), ((2, 1, 3), (4, 1)), ((), (3,)), ((0, 3), (3,)),
          ((2, 0), (1, 1))]
FLOAT_BIN = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
             "maximum": np.maximum, "minimum": np.minimum}
CMP = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
       "greater": np.greater, "greater_equal": np.greater_equal}

for dt in ("f32", "f64"):
    for name, f in list(FLOAT_BIN.items()) + [("pow", np.power)]:
        for sa, sb in SHAPES:
            a = randf(sa, dt, 0.1, 3.0) if name == "pow" else randf(sa, dt)
            b = randf(sb, dt)
            with np.errstate(all="ignore"):
                y = f(a.astype(np.float64), b.astype(np.float64)).astype(NP[dt])
            case({"kind": "binary", "name": name}, [a, b], y, rtol=rtol_of(dt))
    specials = np.array(SPECIAL, dtype=NP[dt])
    a, b = np.meshgrid(specials, specials[::-1])
    for name, f in list(FLOAT_BIN.items()) + list(CMP.items()) + [("pow", np.power)]:
        with np.errstate(all="ignore"):
            y = f(a.astype(np.float64), b.astype(np.float64))
        y = y.astype(NP[dt]) if y.dtype != np.bool_ else y
        case({"kind": "binary", "name": name}, [a, b], y, rtol=rtol_of(dt), note="nan/inf/zero grid")
    for name, f in CMP.items():
        a = np.round(randf((3, 4), dt))
        b = np.round(randf((4,), dt))
        case({"kind": "binary", "name": name}, [a, b], f(a, b))

for dt in ("i32", "i64"):
    for sa, sb in SHAPES:
        a, b = randi(sa, dt), randi(sb, dt)
        for name, f in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("maximum", np.maximum),
                        ("minimum", np.minimum)] + list(CMP.items()):
            case({"kind": "binary", "name": name}, [a, b], f(a, b))
        bnz = np.where(b == 0, 3, b).astype(NP[dt])
        case({"kind": "binary", "name": "div"}, [a, bnz], trunc_div(a, bnz), note="truncating division")
    big = np.array([np.iinfo(NP[dt]).max, np.iinfo(NP[dt]).min], dtype=NP[dt])
    one = np.array([1, -1], dtype=NP[dt])
    with np.errstate(all="ignore"):
        case({"kind": "binary", "name": "add"}, [big, one], big + one, note="wrapping")
        case({"kind": "binary", "name": "mul"}, [big, np.array([2, 2], dtype=NP[dt])], big * NP[dt](2), note="wrapping")

for dt in ("bool",):
    a = rng.random((3, 1)) < 0.5
    b = rng.random((1, 4)) < 0.5
    for name, f in [("logical_and", np.logical_and), ("logical_or", np.logical_or), ("equal", np.equal),
                    ("not_equal", np.not_equal)]:
        case({"kind": "binary", "name": name}, [a, b], f(a, b))

# ---------------------------------------------------------------- select
for dt in ("f32", "i64", "bool"):
    for sc, sa, sb in [((2, 3), (2, 3), (2, 3)), ((3,), (2, 1), ()), ((2, 1, 1), (3, 1), (1, 4)), ((0,), (1,), ())]:
        c = rng.random(sc) < 0.5
        a = (rng.random(sa) < 0.5) if dt == "bool" else (randi(sa, dt) if dt == "i64" else randf(sa, dt))
        b = (rng.random(sb) < 0.5) if dt == "bool" else (randi(sb, dt) if dt == "i64" else randf(sb, dt))
        case({"kind": "select"}, [c, a, b], np.where(c, a, b))

# ---------------------------------------------------------------- cast
def tf_cast(x, to):
    if x.dtype.kind == "f" and to in ("i32", "i64"):
        info = np.iinfo(NP[to])
        t = np.trunc(np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=np.inf, neginf=-np.inf))
        out = np.empty(x.shape, dtype=NP[to])
        flat = t.reshape(-1)
        res = [info.max if v >= info.max else info.min if v <= info.min else int(v) for v in flat.tolist()]
        out.reshape(-1)[:] = res
        return out
    return x.astype(NP[to])


for src in ("f32", "f64", "i32", "i64", "bool"):
    if src in ("f32", "f64"):
        x = np.concatenate([randf((8,), src, -100, 100),
                            np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 2.9, -2.9, 3e9, -3e9, 1e19, -1e19, 0.5],
                                     dtype=NP[src])])
    elif src == "bool":
        x = rng.random((6,)) < 0.5
    else:
        x = randi((8,), src, -1000, 1000)
        if src == "i64":
            x = np.concatenate([x, np.array([2**40 + 7, -(2**40) - 3, 2**62 + 1, 0], dtype=np.int64)])
    for to in ("f32", "f64", "i32", "i64", "bool"):
        case({"kind": "cast", "to": to}, [x], tf_cast(x, to), note="saturating, nan->0" if src[0] == "f" else "")

# ---------------------------------------------------------------- shape and movement
x = randf((2, 3), "f32")
for shape in [(4, 2, 3), (2, 3), (0, 2, 3)]:
    case({"kind": "broadcast_to", "shape": list(shape)}, [x], np.broadcast_to(x, shape))
x = randi((3, 1), "i32")
case({"kind": "broadcast_to", "shape": [2, 3, 5]}, [x], np.broadcast_to(x, (2, 3, 5)))
case({"kind": "broadcast_to", "shape": [4]}, [np.array(7, dtype=np.int64)], np.broadcast_to(np.int64(7), (4,)))

x = randi((2, 3, 4), "i64")
for shape in [(24,), (4, 6), (2, 1, 12, 1), (3, 2, 4)]:
    case({"kind": "reshape", "shape": list(shape)}, [x], x.reshape(shape))
case({"kind": "reshape", "shape": [0, 5]}, [np.zeros((5, 0), dtype=np.float32)], np.zeros((0, 5), dtype=np.float32))

for shape, perm in [((2, 3), (1, 0)), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (1, 2, 0)), ((2, 3, 4, 5), (3, 1, 0, 2)),
                    ((0, 3, 2), (2, 0, 1)), ((), ())]:
    x = randf(shape, "f64")
    case({"kind": "transpose", "perm": list(perm)}, [x], np.transpose(x, perm))
b = rng.random((2, 3)) < 0.5
case({"kind": "transpose", "perm": [1, 0]}, [b], b.T)


def py_slices(spec):
    return tuple(slice(*s) for s in spec)


SLICES = [
    ((5,), [(1, 4, 1)]),
    ((5,), [(None, None, -1)]),
    ((7,), [(6, 0, -2)]),
    ((7,), [(-2, None, -3)]),
    ((4, 6), [(None, None, 2), (5, 1, -1)]),
    ((4, 6), [(3, 3, 1), (None, None, 1)]),
    ((3, 4, 5), [(None, None, -1), (1, None, 2), (-1, -6, -2)]),
    ((3, 4, 5), [(-100, 100, 1), (10, -10, -1), (2, 3, 1)]),
    ((0, 4), [(None, None, -1), (1, 3, 1)]),
]
for shape, spec in SLICES:
    for dt in ("f32", "i32"):
        x = randf(shape, dt) if dt == "f32" else randi(shape, dt)
        y = x[py_slices(spec)]
        case({"kind": "slice", "py": [list(s) for s in spec]}, [x], y)
        z = np.zeros_like(x)
        z[py_slices(spec)] = y
        case({"kind": "unslice", "py": [list(s) for s in spec], "shape": list(shape)}, [y], z)

for shapes, axis in [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0), (2, 2)], 1), ([(2, 3, 4)], 2),
                     ([(2, 0, 2), (2, 3, 2)], 1), ([(3,), (5,)], 0)]:
    for dt in ("f64", "i32", "bool"):
        xs = [randf(s, dt) if dt == "f64" else (randi(s, dt) if dt == "i32" else rng.random(s) < 0.5) for s in shapes]
        case({"kind": "concat", "axis": axis}, xs, np.concatenate(xs, axis=axis))

for pshape, ishape, axis in [((5, 3), (4,), 0), ((5, 3), (2, 2), 1), ((2, 6, 3), (3, 2), 1), ((4,), (), 0),
                             ((4,), (0,), 0), ((0, 3), (2,), 1)]:
    p = randf(pshape, "f32")
    for idt in ("i32", "i64"):
        idx = rng.integers(0, pshape[axis], size=ishape).astype(NP[idt]) if pshape[axis] > 0 else np.zeros(
            ishape, dtype=NP[idt])
        case({"kind": "gather", "axis": axis}, [p, idx], np.take(p, idx, axis=axis))
        upd = randf(pshape[:axis] + ishape + pshape[axis + 1:], "f32") if idt == "i32" else randi(
            pshape[:axis] + ishape + pshape[axis + 1:], "i64")
        z = np.zeros(pshape, dtype=upd.dtype)
        np.add.at(z, (slice(None),) * axis + (idx,), upd)
        case({"kind": "scatter_add", "axis": axis, "shape": list(pshape)}, [upd, idx], z,
             rtol=1e-6, note="repeated indices accumulate")
p = randf((3, 4), "f64")
for bad in (3, -1):
    case({"kind": "gather", "axis": 0}, [p, np.array([0, bad], dtype=np.int64)], error="runtime",
         note="index out of range")
    case({"kind": "scatter_add", "axis": 0, "shape": [3, 4]}, [randf((2, 4), "f64"), np.array([bad, 0], dtype=np.int32)],
         error="runtime", note="index out of range")

# ---------------------------------------------------------------- reductions
def int_mean(x, axes, keepdims):
    s = x.sum(axis=axes, keepdims=keepdims, dtype=np.int64)
    c = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    q = np.where(s < 0, -((-s) // c), s // c)
    return q.astype(x.dtype)


RED = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod}
for shape, axes in [((6,), (0,)), ((3, 4), (0,)), ((3, 4), (1,)), ((3, 4), (0, 1)), ((2, 3, 4), (0, 2)),
                    ((2, 3, 4), (1,)), ((2, 3, 4), ()), ((), ()), ((0, 3), (1,)), ((2, 0, 3), (0, 2)),
                    ((40, 50), (0, 1))]:
    for keepdims in (False, True):
        for dt in ("f32", "f64", "i32", "i64"):
            x = randf(shape, dt, 0.5, 1.5) if dt[0] == "f" else randi(shape, dt, -5, 6)
            for name, f in RED.items():
                count = int(np.prod([shape[a] for a in axes])) if axes else 1
                if name in ("max", "min") and count == 0:
                    continue  # numpy has no identity here; tested by hand in ir/tests
                if name == "mean" and dt[0] == "i":
                    if count == 0:
                        continue
                    y = int_mean(x, axes, keepdims)
                elif dt[0] == "f":
                    with np.errstate(all="ignore"):
                        y = f(x.astype(np.float64), axis=axes, keepdims=keepdims).astype(NP[dt])
                else:
                    y = f(x, axis=axes, keepdims=keepdims, **({} if name in ("max", "min") else {"dtype": x.dtype}))
                    y = np.asarray(y).astype(NP[dt])
                atol = 0.0
                if dt[0] == "f" and name in ("sum", "mean"):
                    atol = (1e-7 if dt == "f32" else 1e-13) * float(np.abs(x).sum() + 1.0)
                case({"kind": "reduce", "name": name, "axes": list(axes), "keepdims": keepdims}, [x], y,
                     rtol=rtol_of(dt) * (8 if name == "prod" else 1) if dt[0] == "f" else 0.0, atol=atol)

x = np.array([[1.0, np.nan, 3.0], [np.inf, -np.inf, 2.0], [-1.0, -2.0, -3.0]], dtype=np.float32)
for name, f in RED.items():
    for axis in (0, 1):
        with np.errstate(all="ignore"):
            y = f(x.astype(np.float64), axis=axis).astype(np.float32)
        case({"kind": "reduce", "name": name, "axes": [axis], "keepdims": False}, [x], y, rtol=1e-6,
             note="nan/inf propagation")

for shape, axis in [((7,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), 1), ((2, 0, 3), 2)]:
    for keepdims in (False, True):
        for dt in ("f32", "i32", "i64"):
            x = randi(shape, dt, -3, 3) if dt[0] == "i" else np.round(randf(shape, dt)).astype(np.float32)
            for name, f in (("argmax", np.argmax), ("argmin", np.argmin)):
                case({"kind": "arg", "name": name, "axis": axis, "keepdims": keepdims}, [x],
                     f(x, axis=axis, keepdims=keepdims).astype(np.int64), note="ties go to the first index")
x = np.array([[1.0, np.nan, 3.0, np.nan], [np.inf, 2.0, np.inf, -np.inf], [5.0, 5.0, -1.0, -1.0]], dtype=np.float64)
for name, f in (("argmax", np.argmax), ("argmin", np.argmin)):
    for axis in (0, 1):
        case({"kind": "arg", "name": name, "axis": axis, "keepdims": False}, [x],
             f(x, axis=axis).astype(np.int64), note="first nan wins")

# ---------------------------------------------------------------- matmul
for sa, sb in [((2, 3), (3, 4)), ((1, 5), (5, 1)), ((4, 3, 2), (2, 5)), ((3, 2), (4, 2, 3)), ((2, 1, 3, 4), (5, 4, 2)),
               ((3, 0), (0, 4)), ((0, 3), (3, 2)), ((2, 3), (3, 0)), ((0, 2, 3), (3, 3)), ((17, 33), (33, 9))]:
    for dt in ("f32", "f64", "i32", "i64"):
        if dt[0] == "f":
            a, b = randf(sa, dt), randf(sb, dt)
            y64 = np.matmul(a.astype(np.float64), b.astype(np.float64))
            y = y64.astype(NP[dt])
            k = sa[-1]
            scale = float(np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64)).max(initial=0.0))
            rtol, atol = (1e-5, 1e-6 * scale) if dt == "f32" else (1e-12, 1e-15 * scale)
        else:
            a, b = randi(sa, dt, -9, 10), randi(sb, dt, -9, 10)
            y, rtol, atol = np.matmul(a, b).astype(NP[dt]), 0.0, 0.0
        case({"kind": "matmul"}, [a, b], y, rtol=rtol, atol=atol)

with open(os.path.join(HERE, "ops.json"), "w") as f:
    json.dump({"cases": cases}, f, separators=(",", ":"))

# ---------------------------------------------------------------- random
M = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def key(seed, counter):
    return mix(seed ^ mix(((counter & M) + GAMMA) & M))


def bits(k, j):
    return mix((k + ((j + 1) * GAMMA)) & M)


def unit64(w):
    return (w >> 11) * 2.0**-53


def unit32(w):
    return (w >> 40) * 2.0**-24


def normal(k, i):
    u1, u2 = unit64(bits(k, 2 * i)), unit64(bits(k, 2 * i + 1))
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


rand_cases = []
for dist in ("uniform", "normal"):
    for dt in ("f32", "f64"):
        for seed, counter, shape in [(0, None, (5,)), (42, None, (2, 3)), (42, 0, (2, 3)), (42, 7, (4,)),
                                     (2**64 - 1, -3, (3,)), (123456789, None, (0, 2))]:
            k = key(seed, counter if counter is not None else 0)
            n = int(np.prod(shape))
            if dist == "uniform":
                vals = [unit32(bits(k, i)) if dt == "f32" else unit64(bits(k, i)) for i in range(n)]
            else:
                vals = [normal(k, i) for i in range(n)]
            y = np.array(vals, dtype=np.float64).astype(NP[dt]).reshape(shape)
            rand_cases.append({"dist": dist, "seed": str(seed), "counter": counter, "out": enc(y),
                               "rtol": 0.0 if dist == "uniform" else (1e-6 if dt == "f32" else 1e-12)})
with open(os.path.join(HERE, "random.json"), "w") as f:
    json.dump({"cases": rand_cases}, f, separators=(",", ":"))

# ---------------------------------------------------------------- display
shows = [
    np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    np.array([1.5, 2.25, -3.0], dtype=np.float32),
    np.array([1, 2, 3], dtype=np.int32),
    np.array([[-10, 200], [3, 4]], dtype=np.int64),
    np.array([True, False, True]),
    np.array(3.5),
    np.array(1.0),
    np.array(-7, dtype=np.int64),
    np.array(True),
    np.array(1e20),
    np.array(1.5e-7, dtype=np.float32),
    np.array(np.nan),
    np.array([0.1, 0.25, 1.0 / 3.0]),
    np.array([1.0 / 3.0], dtype=np.float32),
    np.array([1e-5, 1.0, 123.5]),
    np.array([1e10, 1.0]),
    np.array([1.5e-5, 2.0, -3.25e3]),
    np.array([np.nan, 1.0, -np.inf]),
    np.array([np.nan, np.inf]),
    np.array([-0.0, 0.0, 1e-3]),
    np.zeros((0,)),
    np.zeros((2, 0), dtype=np.int32),
    np.arange(24, dtype=np.float64).reshape(2, 3, 4),
    np.arange(24, dtype=np.int64).reshape(2, 3, 4) - 12,
    np.arange(1200, dtype=np.int32),
    np.arange(2000, dtype=np.float32).reshape(40, 50) / 8.0,
    np.arange(1100, dtype=np.float64).reshape(10, 10, 11),
    np.linspace(-1.0, 1.0, 30),
    np.arange(40, dtype=np.int64) * 1000003,
    rng.random((2, 3)) < 0.5,
    rng.standard_normal((3, 4)).astype(np.float32),
    rng.standard_normal((2, 2, 2)),
    np.array([[1e8, 1.0]]),
    np.array([123456789.0, 0.5], dtype=np.float32),
]
for scale in (1e-6, 1e-3, 1.0, 1e3, 1e5, 1e9, 1e120):
    for dt in (np.float32, np.float64):
        if dt == np.float32 and scale > 1e30:
            continue
        shows.append((rng.standard_normal((3, 7)) * scale).astype(dt))
shows += [
    np.array([0.1, 0.2, 0.30000000000000004]),
    np.array([1.0 / 512.0, 0.125]),
    np.array([-np.inf, np.inf, np.nan], dtype=np.float32),
    np.array([1e-300, 1e300]),
    rng.integers(-10**12, 10**12, size=(4, 9)),
    np.arange(-5, 25, dtype=np.int32).reshape(1, 2, 15),
    rng.random((1001,)) < 0.5,
    np.zeros((3, 0, 2)),
]
for v in (1e15, 123456789.0, 999999.9, 1e6, 16777216.0, 1e-4, 0.00011, -2.5e-5, 0.0, -0.0):
    shows += [np.array(v, dtype=np.float32), np.array(v)]
with open(os.path.join(HERE, "display.json"), "w") as f:
    json.dump({"cases": [{"array": enc(a), "str": str(a)} for a in shows]}, f, separators=(",", ":"))

print(f"{len(cases)} op cases, {len(rand_cases)} random cases, {len(shows)} display cases")
