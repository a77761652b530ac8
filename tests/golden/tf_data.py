"""Golden data for kiln::data::Pipeline and decode_csv (issue 17, Dataset): TensorFlow's
tf.data results for deterministic pipelines (padded_batch shapes and values, interleave order,
take/skip/repeat, filter, batch with drop_remainder, concatenate, zip,
flat_map, unbatch) and tf.io.decode_csv with defaults.
Each case is a list of elements; an element is a list of components {dtype, shape, data}.
Run: python tests/golden/tf_data.py > tests/golden/tf_data.json
"""

import json

import numpy as np
import tensorflow as tf


def comp(t):
    a = np.asarray(t)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": a.astype(np.float64).ravel().tolist()}


def elements(ds):
    out = []
    for e in ds:
        e = e if isinstance(e, tuple) else (e,)
        out.append([comp(c) for c in e])
    return out


R = tf.data.Dataset.range

CASES = {
    "skip_take_repeat": R(7).skip(2).take(3).repeat(2),
    "repeat_skip_take": R(5).repeat(3).skip(4).take(6),
    "empty_repeat_forever": R(0).repeat().take(5),
    "batch_drop_remainder": R(7).batch(3, drop_remainder=True),
    "batch_keep_remainder": R(7).batch(3),
    "filter_batch": R(20).filter(lambda x: x % 3 == 0).batch(2),
    "map_filter": R(10).map(lambda x: x * x + 1).filter(lambda x: x % 2 == 0),
    "interleave_repeat_c2_b2": R(1, 6).interleave(lambda x: tf.data.Dataset.from_tensors(x).repeat(x),
                                                  cycle_length=2, block_length=2),
    "interleave_range_c3_b1": R(1, 5).interleave(lambda x: R(10 * x, 10 * x + x), cycle_length=3, block_length=1),
    "interleave_range_c2_b3": R(1, 5).interleave(lambda x: R(10 * x, 10 * x + x), cycle_length=2, block_length=3),
    "padded_batch_default": R(1, 6).map(lambda x: tf.fill([x], x)).padded_batch(2),
    "padded_batch_shapes_values": R(1, 6).map(lambda x: (tf.fill([x], x), tf.fill([x % 3 + 1, 2], tf.cast(x, tf.float32))))
    .padded_batch(2, padded_shapes=([None], [3, None]), padding_values=(tf.constant(-1, tf.int64), tf.constant(0.5))),
    "padded_batch_fixed_drop": R(1, 6).map(lambda x: tf.fill([x], x)).padded_batch(2, padded_shapes=[6],
                                                                                  drop_remainder=True),
    "concatenate": R(3).concatenate(R(10, 12)),
    "zip": tf.data.Dataset.zip((R(5), R(10, 13).map(lambda x: x * 2))),
    "flat_map": R(1, 4).flat_map(lambda x: R(x)),
    "padded_batch_unbatch": R(1, 6).map(lambda x: tf.fill([x], x)).padded_batch(2).unbatch(),
}

RECORDS = ["1,2.5,3", ",,", "4,,7", " 5 ,-0.25,1e3", "\"6\",\"1.5\",2"]
DEFAULTS = [tf.constant([0], tf.int32), tf.constant([1.5], tf.float32), tf.constant([9.0], tf.float64)]
csv = [comp(c) for c in tf.io.decode_csv(RECORDS, record_defaults=DEFAULTS)]
csv_i64 = [comp(c) for c in tf.io.decode_csv(["10,20", "30,"], record_defaults=[tf.constant([], tf.int64),
                                                                                 tf.constant([-5], tf.int64)])]


def fails(records, defaults):
    try:
        tf.io.decode_csv(records, record_defaults=defaults)
        return False
    except tf.errors.InvalidArgumentError:
        return True


errors = {
    "required_missing": fails([",1"], [tf.constant([], tf.float32), tf.constant([0.0])]),
    "too_few_fields": fails(["1"], [tf.constant([0.0]), tf.constant([0.0])]),
    "too_many_fields": fails(["1,2,3"], [tf.constant([0.0]), tf.constant([0.0])]),
    "not_an_int": fails(["1.5"], [tf.constant([0], tf.int32)]),
}

print(json.dumps({
    "tensorflow": tf.__version__,
    "cases": {k: elements(v) for k, v in CASES.items()},
    "decode_csv": {"records": RECORDS, "columns": csv, "i64": csv_i64, "errors": errors},
}, indent=1))
