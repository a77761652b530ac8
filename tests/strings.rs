//! kiln::strings against TensorFlow and Keras (tests/golden/ragged_strings.json, made by
//! tests/golden/ragged_strings.py): length, lower/upper, split, join, reduce_join, substr,
//! regex_replace, regex_full_match, to_number, as_string, to_hash_bucket_fast (FarmHash
//! Fingerprint64) and StringLookup; bad input; strings feeding a compiled function.

use kiln::ragged::RaggedTensor;
use kiln::strings::{StringLookup, StringTensor, Unit};
use kiln::{DType, Tensor};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/ragged_strings.json")).unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn dims(v: &Value) -> Vec<usize> {
    v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

fn string_tensor(v: &Value) -> StringTensor {
    StringTensor::from_vec(strs(&v["data"]), &dims(v)).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn same_numbers(got: &Tensor, want: &Value, what: &str) {
    assert_eq!(got.shape(), dims(want).as_slice(), "{what}: shape");
    assert_eq!(got.cast(DType::F64).to_vec::<f64>().unwrap(), numbers(want), "{what}");
}

fn same_strings(got: &StringTensor, want: &Value, what: &str) {
    assert_eq!(got, &string_tensor(want), "{what}");
}

fn same_ragged_strings(got: &RaggedTensor, want: &Value, what: &str) {
    let splits: Vec<i64> = want["row_splits"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    assert_eq!(got.row_splits().to_vec::<i64>().unwrap(), splits, "{what}: splits");
    same_strings(got.string_values().unwrap(), &want["values"], what);
}

#[test]
fn string_ops_match_tf() {
    let g = &golden()["strings"];
    let input = strs(&g["input"]);
    let s = StringTensor::from_vec(input.clone(), &[input.len()]).unwrap();
    same_numbers(&s.length(Unit::Byte), &g["length_bytes"], "length bytes");
    same_numbers(&s.length(Unit::Utf8Char), &g["length_chars"], "length chars");
    same_strings(&s.lower(), &g["lower"], "lower");
    same_strings(&s.upper(), &g["upper"], "upper");
    same_ragged_strings(&s.split(" ").unwrap(), &g["split_space"], "split ' '");
    same_ragged_strings(&s.split("").unwrap(), &g["split_whitespace"], "split whitespace");
    same_ragged_strings(&s.split(",").unwrap(), &g["split_comma"], "split ','");

    let grid = string_tensor(&g["grid"]);
    same_strings(&grid.reduce_join(None, false, "").unwrap(), &g["reduce_join_all"], "reduce_join all");
    same_strings(&grid.reduce_join(Some(0), false, "").unwrap(), &g["reduce_join_0"], "reduce_join 0");
    same_strings(&grid.reduce_join(Some(1), false, "-").unwrap(), &g["reduce_join_1_sep"], "reduce_join 1");
    same_strings(&grid.reduce_join(Some(-1), true, "").unwrap(), &g["reduce_join_1_keepdims"], "keepdims");
    let other = StringTensor::new(&["x", "y", "z", "u", "v", "w"], &[2, 3]).unwrap();
    same_strings(&StringTensor::join(&[&grid, &other], "+").unwrap(), &g["join_sep"], "join");

    let st = |v: &[&str]| StringTensor::new(v, &[v.len()]).unwrap();
    same_strings(&st(&["hello", "kiln", "ab"]).substr(1, 3, Unit::Byte).unwrap(), &g["substr_1_3"], "substr 1 3");
    same_strings(&st(&["hello", "kiln", "abc"]).substr(-3, 2, Unit::Byte).unwrap(), &g["substr_m3_2"], "substr -3 2");
    let chars = st(&["héllo", "wörld"]).substr(1, 2, Unit::Utf8Char).unwrap();
    same_strings(&chars, &g["substr_chars_1_2"], "substr chars");

    same_strings(&s.regex_replace("[aeiou]", "_", true).unwrap(), &g["regex_replace_global"], "replace global");
    same_strings(&s.regex_replace("[aeiou]", "_", false).unwrap(), &g["regex_replace_first"], "replace first");
    let dates = st(&["2024-01-31", "x 1999-12-01"]);
    let swapped = dates.regex_replace(r"(\d+)-(\d+)-(\d+)", r"\3/\2/\1", true).unwrap();
    same_strings(&swapped, &g["regex_replace_group"], "replace groups");
    same_numbers(&s.regex_full_match("[a-z]+").unwrap(), &g["regex_full_match"], "full match");
    same_numbers(&s.regex_full_match(r"\w+ \w+").unwrap(), &g["regex_full_match_words"], "full match words");
    // RE2's Perl classes are ASCII, in and out of brackets; \b is an ASCII word boundary.
    let t = st(&["é1 x_", "kiln2"]);
    assert_eq!(t.regex_replace(r"[\w]", "#", true).unwrap().as_slice(), &["é# ##", "#####"]);
    assert_eq!(t.regex_replace(r"\W", "#", true).unwrap().as_slice(), &["#1#x_", "kiln2"]);
    assert_eq!(t.regex_replace(r"\bx", "X", true).unwrap().as_slice(), &["é1 X_", "kiln2"]);
    assert_eq!(t.regex_replace(r"\Bi", "I", true).unwrap().as_slice(), &["é1 x_", "kIln2"]);
    assert_eq!(t.regex_replace(r"\\d", "-", true).unwrap().as_slice(), &["é1 x_", "kiln2"]);
}

#[test]
fn conversions_and_hashes_match_tf() {
    let g = &golden()["strings"];
    let nums = strs(&g["to_number_input"]);
    let ok: Vec<&str> = [0, 1, 2, 4].iter().map(|&i| nums[i].as_str()).collect();
    let ok = StringTensor::new(&ok, &[4]).unwrap();
    let f32s = ok.to_number(DType::F32).unwrap();
    assert_eq!(f32s.dtype(), DType::F32);
    let want: Vec<f32> = numbers(&g["to_number_f32"]).iter().map(|&x| x as f32).collect();
    assert_eq!(f32s.to_vec::<f32>().unwrap(), want);
    same_numbers(&ok.to_number(DType::F64).unwrap(), &g["to_number_f64"], "to_number f64");
    same_numbers(
        &StringTensor::new(&["12", "-7", "0"], &[3]).unwrap().to_number(DType::I32).unwrap(),
        &g["to_number_i32"],
        "to_number i32",
    );
    let big = StringTensor::new(&["9007199254740993", "-3"], &[2]).unwrap().to_number(DType::I64).unwrap();
    let want: Vec<i64> = g["to_number_i64"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    assert_eq!(big.to_vec::<i64>().unwrap(), want);
    // TF refuses "abc" and accepts " 7" (surrounding whitespace).
    assert_eq!(g["to_number_bad"], "error");
    assert_eq!(g["to_number_space"], "accepted");
    let e = StringTensor::scalar("abc").to_number(DType::F32).unwrap_err().to_string();
    assert!(e.contains("\"abc\""), "{e}");
    assert_eq!(StringTensor::scalar(&nums[3]).to_number(DType::I64).unwrap().to_scalar::<i64>().unwrap(), 7);

    let as_str = |t: Tensor| StringTensor::as_string(&t).unwrap();
    same_strings(&as_str(Tensor::new(&[1.5f32, -0.25, 3.0, 1e-7])), &g["as_string_f32"], "as_string f32");
    same_strings(&as_str(Tensor::new(&[3i64, -42, 0])), &g["as_string_i64"], "as_string i64");
    same_strings(&as_str(Tensor::new(&[true, false])), &g["as_string_bool"], "as_string bool");

    let h = strs(&g["hash_input"]);
    let h = StringTensor::from_vec(h.clone(), &[h.len()]).unwrap();
    same_numbers(&h.to_hash_bucket_fast(10).unwrap(), &g["hash_10"], "hash 10");
    same_numbers(&h.to_hash_bucket_fast(1000003).unwrap(), &g["hash_1000003"], "hash 1000003");
}

#[test]
fn string_lookup_matches_keras() {
    let g = &golden()["lookup"];
    let vocab = strs(&g["vocab"]);
    let vocab: Vec<&str> = vocab.iter().map(String::as_str).collect();
    let input = strs(&g["input"]);
    let input = StringTensor::from_vec(input.clone(), &[input.len()]).unwrap();
    let base = StringLookup::new(&vocab);
    same_numbers(&base.call(&input).unwrap(), &g["default"], "default");
    let oov3 = base.clone().with_num_oov_indices(3).unwrap();
    same_numbers(&oov3.call(&input).unwrap(), &g["oov_3"], "3 OOV ids");
    let mask = base.clone().with_mask_token("[MASK]").unwrap();
    same_numbers(&mask.call(&input).unwrap(), &g["mask"], "mask token");
    let both = base.clone().with_mask_token("").unwrap().with_num_oov_indices(2).unwrap();
    same_numbers(&both.call(&input).unwrap(), &g["mask_oov_2"], "mask and 2 OOV ids");
    assert_eq!(both.vocabulary_size() as u64, g["vocabulary_size_mask_oov_2"].as_u64().unwrap());
    assert_eq!(both.get_vocabulary(), vec!["", "[UNK]", "[UNK]", "hello", "world", "kiln"]);
    let words = StringTensor::new(&["hello world", "kiln"], &[2]).unwrap().split(" ").unwrap();
    let ids = base.call(&words).unwrap();
    let want = &g["ragged_call"];
    let splits: Vec<i64> = want["row_splits"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    assert_eq!(ids.row_splits().to_vec::<i64>().unwrap(), splits);
    same_numbers(ids.values().unwrap(), &want["values"], "ragged ids");
}

#[test]
fn bad_string_input_is_an_error_naming_it() {
    let t = StringTensor::new(&["héllo", "ab"], &[2]).unwrap();
    let e = t.substr(1, 1, Unit::Byte).unwrap_err().to_string();
    assert!(e.contains("cut a UTF-8 character") && e.contains("héllo"), "{e}");
    let e = t.substr(3, 1, Unit::Byte).unwrap_err().to_string();
    assert!(e.contains("pos 3 out of range") && e.contains("\"ab\""), "{e}");
    assert!(t.substr(-6, 1, Unit::Utf8Char).unwrap_err().to_string().contains("out of range"));
    assert!(t.substr(0, -1, Unit::Byte).unwrap_err().to_string().contains("len must be >= 0"));
    let e = t.regex_replace("(unclosed", "", true).unwrap_err().to_string();
    assert!(e.contains("invalid regex \"(unclosed\""), "{e}");
    assert!(t.regex_full_match("[").unwrap_err().to_string().contains("invalid regex"));
    assert!(t.regex_replace("a", r"\q", true).unwrap_err().to_string().contains("invalid rewrite"));
    let e = StringTensor::new(&["1", "x2"], &[2]).unwrap().to_number(DType::I32).unwrap_err().to_string();
    assert!(e.contains("\"x2\"") && e.contains("i32"), "{e}");
    assert!(t.to_number(DType::Bool).is_err());
    assert!(StringTensor::new(&["a"], &[2]).unwrap_err().to_string().contains("holds 2 strings"));
    let grid = StringTensor::new(&["a", "b"], &[1, 2]).unwrap();
    assert!(grid.split(" ").unwrap_err().to_string().contains("rank-1"));
    assert!(StringTensor::join(&[&t, &grid], "").unwrap_err().to_string().contains("shapes must be equal"));
    assert!(t.reduce_join(Some(2), false, "").is_err());
    assert!(t.to_hash_bucket_fast(0).unwrap_err().to_string().contains("num_buckets"));
    assert!(StringLookup::try_new(&["a", "b", "a"]).unwrap_err().to_string().contains("repeats \"a\""));
    assert!(StringLookup::new(&["a"]).with_mask_token("a").unwrap_err().to_string().contains("mask token"));
    let strict = StringLookup::new(&["a"]).with_num_oov_indices(0).unwrap();
    assert!(strict.call(&t).unwrap_err().to_string().contains("\"héllo\" is not in the vocabulary"));
    assert!(StringTensor::as_string(&Tensor::new(&[1.0f32]).reshape([1])).is_ok());
}

#[test]
fn host_preprocessing_feeds_a_compiled_function() {
    // Strings → ids on the host; the ids (a ragged i64 tensor) go into the traced function.
    let lookup = StringLookup::new(&["the", "cat", "sat"]);
    let words = StringTensor::new(&["the cat sat", "cat", "the dog"], &[3]).unwrap().split(" ").unwrap();
    let ids = lookup.call(&words).unwrap();
    let embed = Tensor::new(&[[0.0f32, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]);
    let f = kiln::function(move |r: &RaggedTensor| {
        let vectors = embed.try_gather(r.values()?, 0)?;
        RaggedTensor::from_row_splits(vectors, r.row_splits())?.mean_rows()
    });
    let pooled = f.call(ids.as_args().unwrap()).unwrap();
    assert_eq!(pooled.shape(), &[3, 2]);
    assert_eq!(pooled.to_vec::<f32>().unwrap(), vec![2.0 / 3.0, 2.0 / 3.0, 0.0, 1.0, 0.5, 0.0]);
    // The strings themselves cannot be passed.
    let e = words.as_args().unwrap_err().to_string();
    assert!(e.contains("no string dtype"), "{e}");
    let f = kiln::function(|t: &Tensor| StringTensor::new(&["a b"], &[1])?.split(" ").map(|_| t.clone()));
    assert!(f.call(&Tensor::scalar(1.0f32)).is_ok());
    let returns_strings = kiln::function(|t: &Tensor| {
        let _ = t;
        StringTensor::new(&["a b"], &[1])?.split(" ")
    });
    let e = returns_strings.call(&Tensor::scalar(1.0f32)).unwrap_err().to_string();
    assert!(e.contains("cannot be traced"), "{e}");
}
