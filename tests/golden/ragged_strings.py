"""Golden data for kiln::ragged and kiln::strings (issue 17): TensorFlow's tf.RaggedTensor ops
(reductions over the ragged axis, to_tensor, from_tensor, concat, gather, and gradients
through the flat values) and tf.strings ops (length, lower/upper, split, join, reduce_join,
substr, regex_replace, regex_full_match, to_number, as_string, to_hash_bucket_fast) and
Keras's StringLookup. float32 values.
Run: python tests/golden/ragged_strings.py > tests/golden/ragged_strings.json
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import tensorflow as tf
import keras


def num(t):
    if isinstance(t, tf.IndexedSlices):
        t = tf.convert_to_tensor(t)
    a = np.asarray(t)
    return {"shape": list(a.shape), "data": [float(x) if np.isfinite(x) else str(x) for x in a.astype(np.float64).ravel()]}


def strs(t):
    a = np.asarray(t)
    return {"shape": list(a.shape), "data": [x.decode("utf-8") for x in a.ravel()]}


def rag(r):
    return {"values": num(r.flat_values), "row_splits": r.row_splits.numpy().tolist()}


def rag_s(r):
    return {"values": strs(r.flat_values), "row_splits": r.row_splits.numpy().tolist()}


ragged = {}
CASES = {
    "small": ([1.0, 2.0, 3.0, 4.0, 5.0], [2, 0, 3]),
    "mixed": ([0.5, -1.5, 2.25, 3.0, -4.0, 7.5, 0.0, -0.25, 1.0, 2.0, -3.0, 6.0], [3, 0, 4, 1, 4]),
    "trailing_empty": ([-1.0, 2.0, -3.0], [0, 3, 0]),
}
for name, (vals, lengths) in CASES.items():
    v = tf.constant(vals, tf.float32)
    r = tf.RaggedTensor.from_row_lengths(v, lengths)
    w = tf.constant(np.linspace(-1.0, 2.0, len(lengths)), tf.float32)
    bs = r.bounding_shape().numpy().tolist()
    wt = tf.constant(np.arange(bs[0] * bs[1]).reshape(bs) * 0.5 - 1.0, tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(v)
        rr = tf.RaggedTensor.from_row_lengths(v, lengths)
        s = tf.reduce_sum(rr, axis=1)
        m = tf.reduce_mean(rr, axis=1)
        dense = rr.to_tensor(0.0)
        loss_sum = tf.reduce_sum(s * w)
        loss_dense = tf.reduce_sum(dense * wt)
        loss_mean = tf.reduce_sum(tf.where(tf.math.is_nan(m), 0.0, m) * w)
        loss_max = tf.reduce_sum(tf.reduce_max(rr, axis=1)[:, None] * tf.ones([1, 1]) * w[:, None])
    ragged[name] = {
        "values": vals,
        "row_lengths": lengths,
        "row_splits": r.row_splits.numpy().tolist(),
        "weights": num(w),
        "dense_weights": num(wt),
        "sum_rows": num(s),
        "mean_rows": num(m),
        "max_rows": num(tf.reduce_max(r, axis=1)),
        "min_rows": num(tf.reduce_min(r, axis=1)),
        "to_tensor_0": num(r.to_tensor(0.0)),
        "to_tensor_m1": num(r.to_tensor(-1.0)),
        "bounding_shape": bs,
        "grad_sum_rows": num(tape.gradient(loss_sum, v)),
        "grad_to_tensor": num(tape.gradient(loss_dense, v)),
        "grad_mean_rows": num(tape.gradient(loss_mean, v)),
        "grad_max_rows": num(tape.gradient(loss_max, v)),
        "times2_plus1": rag(r * 2.0 + 1.0),
        "self_product": rag(r * r),
        "gather_rows": rag(tf.gather(r, [2, 0, 2, 1])),
        "concat0_with_small": rag(tf.concat([r, tf.RaggedTensor.from_row_lengths([9.0, 8.0], [1, 1] + [0] * (len(lengths) - 2))], axis=0)),
        "concat1_with_self": rag(tf.concat([r, r * 10.0], axis=1)),
    }

# Inner (uniform) dims of the flat values: [5, 2] values in rows of 2, 0, 3.
v2 = tf.constant(np.arange(10).reshape(5, 2) * 1.5 - 3.0, tf.float32)
r2 = tf.RaggedTensor.from_row_lengths(v2, [2, 0, 3])
ragged_inner = {"values": num(v2), "row_lengths": [2, 0, 3], "sum_rows": num(tf.reduce_sum(r2, axis=1)),
                "to_tensor_0": num(r2.to_tensor(0.0))}

padded = tf.constant([[1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 4.0, 0.0], [5.0, 6.0, 7.0, 8.0]])
from_tensor = {
    "input": num(padded),
    "padding_0": rag(tf.RaggedTensor.from_tensor(padded, padding=0.0)),
    "no_padding": rag(tf.RaggedTensor.from_tensor(padded)),
}
ints = tf.RaggedTensor.from_row_lengths(tf.constant([3, -1, 7, 2], tf.int32), [1, 0, 3])
int_reductions = {"values": [3, -1, 7, 2], "row_lengths": [1, 0, 3],
                  "max_rows": num(tf.reduce_max(ints, axis=1)), "min_rows": num(tf.reduce_min(ints, axis=1)),
                  "sum_rows": num(tf.reduce_sum(ints, axis=1))}

# Strings.
words = ["Hello World", "kiln", "  two  spaces ", "héllo wörld", "", "a,b,,c"]
S = tf.constant(words)
strings = {"input": words}
strings["length_bytes"] = num(tf.strings.length(S))
strings["length_chars"] = num(tf.strings.length(S, unit="UTF8_CHAR"))
strings["lower"] = strs(tf.strings.lower(S))
strings["upper"] = strs(tf.strings.upper(S))
strings["split_space"] = rag_s(tf.strings.split(S, sep=" "))
strings["split_whitespace"] = rag_s(tf.strings.split(S))
strings["split_comma"] = rag_s(tf.strings.split(S, sep=","))
grid = tf.constant([["a", "b", "c"], ["d", "e", "f"]])
strings["grid"] = strs(grid)
strings["reduce_join_all"] = strs(tf.strings.reduce_join(grid))
strings["reduce_join_0"] = strs(tf.strings.reduce_join(grid, axis=0))
strings["reduce_join_1_sep"] = strs(tf.strings.reduce_join(grid, axis=1, separator="-"))
strings["reduce_join_1_keepdims"] = strs(tf.strings.reduce_join(grid, axis=-1, keepdims=True))
strings["join_sep"] = strs(tf.strings.join([grid, tf.constant([["x", "y", "z"], ["u", "v", "w"]])], separator="+"))
strings["substr_1_3"] = strs(tf.strings.substr(tf.constant(["hello", "kiln", "ab"]), 1, 3))
strings["substr_m3_2"] = strs(tf.strings.substr(tf.constant(["hello", "kiln", "abc"]), -3, 2))
strings["substr_chars_1_2"] = strs(tf.strings.substr(tf.constant(["héllo", "wörld"]), 1, 2, unit="UTF8_CHAR"))
strings["regex_replace_global"] = strs(tf.strings.regex_replace(S, "[aeiou]", "_"))
strings["regex_replace_first"] = strs(tf.strings.regex_replace(S, "[aeiou]", "_", replace_global=False))
strings["regex_replace_group"] = strs(tf.strings.regex_replace(tf.constant(["2024-01-31", "x 1999-12-01"]), r"(\d+)-(\d+)-(\d+)", r"\3/\2/\1"))
strings["regex_full_match"] = num(tf.cast(tf.strings.regex_full_match(S, "[a-z]+"), tf.float32))
strings["regex_full_match_words"] = num(tf.cast(tf.strings.regex_full_match(S, r"\w+ \w+"), tf.float32))
numbers = ["1.5", "-2", "3e2", " 7", "0.1"]
strings["to_number_input"] = numbers
strings["to_number_f32"] = num(tf.strings.to_number(numbers[:3] + numbers[4:], tf.float32))
strings["to_number_f64"] = num(tf.strings.to_number(numbers[:3] + numbers[4:], tf.float64))
strings["to_number_i32"] = num(tf.strings.to_number(["12", "-7", "0"], tf.int32))
strings["to_number_i64"] = tf.strings.to_number(["9007199254740993", "-3"], tf.int64).numpy().tolist()
try:
    tf.strings.to_number(["abc"], tf.float32)
    strings["to_number_bad"] = "accepted"
except tf.errors.InvalidArgumentError:
    strings["to_number_bad"] = "error"
try:
    tf.strings.to_number(numbers[3:4], tf.float32)
    strings["to_number_space"] = "accepted"
except tf.errors.InvalidArgumentError:
    strings["to_number_space"] = "error"
strings["as_string_f32"] = strs(tf.strings.as_string(tf.constant([1.5, -0.25, 3.0, 1e-7], tf.float32)))
strings["as_string_i64"] = strs(tf.strings.as_string(tf.constant([3, -42, 0], tf.int64)))
strings["as_string_bool"] = strs(tf.strings.as_string(tf.constant([True, False])))
hash_in = ["hello", "world", "kiln", "", "a longer string that crosses the 64-byte boundary of farmhash's loop!!", "héllo"]
strings["hash_input"] = hash_in
strings["hash_10"] = num(tf.strings.to_hash_bucket_fast(hash_in, 10))
strings["hash_1000003"] = num(tf.strings.to_hash_bucket_fast(hash_in, 1000003))

vocab = ["hello", "world", "kiln"]
lookup_in = tf.constant(["hello", "kiln", "unknown", "world", "other", "", "[MASK]"])
lookups = {"vocab": vocab, "input": strs(lookup_in)["data"]}
lookups["default"] = num(keras.layers.StringLookup(vocabulary=vocab)(lookup_in))
lookups["oov_3"] = num(keras.layers.StringLookup(vocabulary=vocab, num_oov_indices=3)(lookup_in))
lookups["mask"] = num(keras.layers.StringLookup(vocabulary=vocab, mask_token="[MASK]")(lookup_in))
lookups["mask_oov_2"] = num(keras.layers.StringLookup(vocabulary=vocab, mask_token="", num_oov_indices=2)(lookup_in))
lookups["vocabulary_size_mask_oov_2"] = keras.layers.StringLookup(vocabulary=vocab, mask_token="", num_oov_indices=2).vocabulary_size()
split_words = tf.strings.split(tf.constant(["hello world", "kiln"]), " ")
lookups["ragged_call"] = rag(keras.layers.StringLookup(vocabulary=vocab)(split_words))

print(json.dumps({"ragged": ragged, "ragged_inner": ragged_inner, "from_tensor": from_tensor,
                  "int_reductions": int_reductions, "strings": strings, "lookup": lookups}, indent=1))
