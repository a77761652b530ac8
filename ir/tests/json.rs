//! The JSON form: exact round trips, and rejection (never a panic) of corrupt or hostile input.

mod printers_graphs;

use kiln_ir::{Error, Graph};
use printers_graphs::{kitchen_sink, small};
use proptest::prelude::*;
use serde_json::{json, Value};

fn roundtrip(g: &Graph) {
    let j = g.to_json();
    let back = Graph::from_json(&j).unwrap_or_else(|e| panic!("{e}\n{j}"));
    assert!(back.structurally_eq(g), "graph -> json -> graph differs");
    assert_eq!(back.to_json(), j, "json -> graph -> json differs");
    assert_eq!(back.to_text(), g.to_text());
}

#[test]
fn every_op_roundtrips() {
    roundtrip(&kitchen_sink());
    roundtrip(&small());
    roundtrip(&Graph::new(""));
}

#[test]
fn layout_is_as_documented() {
    let v: Value = serde_json::from_str(&small().to_json()).unwrap();
    assert_eq!(v["name"], "small");
    assert_eq!(v["vars"][0], json!({"name": "dense/kernel", "dtype": "f32", "shape": [3, 4]}));
    assert_eq!(v["nodes"][0], json!({"op": "input", "dtype": "f32", "shape": [2, 3]}));
    assert_eq!(
        v["nodes"][4],
        json!({"op": "sum", "dtype": "f32", "shape": [2], "args": [3], "attrs": {"axes": [1], "keepdims": false}})
    );
    // 1.0f32, 2.5f32 little-endian.
    assert_eq!(v["nodes"][5]["data"], "AACAPwAAIEA=");
    assert_eq!(
        v["nodes"][7],
        json!({"op": "assign_var", "dtype": "f32", "shape": [3, 4], "args": [2], "after": [2], "var": 0})
    );
    assert_eq!(v["outputs"], json!([6, 7]));
}

/// `small()`'s JSON with one edit applied to the tree.
fn edited(f: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(&small().to_json()).unwrap();
    f(&mut v);
    v.to_string()
}

#[test]
fn corrupt_and_hostile_json_is_rejected() {
    let cases: Vec<(&str, String)> = vec![
        ("not json", "{\"name\": ".to_string()),
        ("wrong type", edited(|v| v["nodes"][3]["args"] = json!("zero"))),
        ("unknown field", edited(|v| v["nodes"][3]["colour"] = json!(1))),
        ("forward ref", edited(|v| v["nodes"][3]["args"] = json!([0, 9]))),
        ("self ref (cycle)", edited(|v| v["nodes"][3]["args"] = json!([3, 1]))),
        ("huge ref", edited(|v| v["nodes"][3]["args"] = json!([18446744073709551615u64, 1]))),
        ("output out of range", edited(|v| v["outputs"] = json!([100]))),
        ("absurd shape", edited(|v| v["nodes"][0]["shape"] = json!([99999999999u64, 99999999999u64]))),
        ("absurd reshape", edited(|v| v["nodes"][3]["attrs"] = json!({"shape": [4294967296u64, 4294967296u64]}))),
        (
            "absurd slice",
            edited(|v| {
                v["nodes"][3]["op"] = json!("slice");
                v["nodes"][3]["args"] = json!([0]);
                v["nodes"][3]["attrs"] =
                    json!({"dims": [[18446744073709551615u64, 18446744073709551615u64, -9223372036854775808i64]]});
            }),
        ),
        ("negative dim", edited(|v| v["nodes"][0]["shape"] = json!([-1]))),
        ("float dim", edited(|v| v["nodes"][0]["shape"] = json!([1.5]))),
        ("bad dtype", edited(|v| v["nodes"][0]["dtype"] = json!("f16"))),
        ("inconsistent type", edited(|v| v["nodes"][3]["dtype"] = json!("f64"))),
        ("wrong const size", edited(|v| v["nodes"][5]["data"] = json!("AACAPw=="))),
        ("bad base64", edited(|v| v["nodes"][5]["data"] = json!("%%%"))),
        ("const without data", edited(|v| v["nodes"][5].as_object_mut().unwrap().remove("data").map(|_| ()).unwrap())),
        ("unknown op", edited(|v| v["nodes"][3]["op"] = json!("frobnicate"))),
        ("missing attr", edited(|v| v["nodes"][4]["attrs"] = json!({"axes": [1]}))),
        ("attr of wrong type", edited(|v| v["nodes"][4]["attrs"]["keepdims"] = json!(1))),
        ("undeclared var", edited(|v| v["nodes"][2]["var"] = json!(5))),
        ("var on add", edited(|v| v["nodes"][3]["var"] = json!(0))),
        (
            "read unordered against a write",
            edited(|v| {
                let read = json!({"op": "read_var", "dtype": "f32", "shape": [3, 4], "var": 0});
                v["nodes"].as_array_mut().unwrap().push(read)
            }),
        ),
        ("body on add", edited(|v| v["nodes"][3]["body"] = json!({"name": "k", "nodes": [], "outputs": []}))),
        ("input with args", edited(|v| v["nodes"][1]["args"] = json!([0]))),
    ];
    for (what, text) in cases {
        match Graph::from_json(&text) {
            Err(Error::Parse { .. } | Error::Graph(_)) => {}
            other => panic!("{what}: expected an error, got {other:?}"),
        }
    }
}

#[test]
fn deep_nesting_is_rejected() {
    let mut body = json!({"name": "k", "nodes": [{"op": "input", "dtype": "f32", "shape": []}], "outputs": [0]});
    for _ in 0..40 {
        body = json!({"name": "k", "nodes": [
            {"op": "input", "dtype": "f32", "shape": []},
            {"op": "fused", "dtype": "f32", "shape": [], "args": [0], "body": body}
        ], "outputs": [1]});
    }
    assert!(Graph::from_json(&body.to_string()).is_err());
    // Deeper than serde_json's own recursion limit.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Graph::from_json(&deep).is_err());
}

/// Every value position of a JSON tree, as a path of keys/indices.
fn paths(v: &Value, here: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(here.clone());
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                here.push(json!(i));
                paths(x, here, out);
                here.pop();
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                here.push(json!(k));
                paths(x, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match k {
        Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
        Value::String(s) => &mut v[s.as_str()],
        _ => unreachable!(),
    })
}

fn replacement(k: u8) -> Value {
    match k % 12 {
        0 => json!(null),
        1 => json!(-1),
        2 => json!(18446744073709551615u64),
        3 => json!(1e300),
        4 => json!("f32"),
        5 => json!([]),
        6 => json!({}),
        7 => json!(true),
        8 => json!([1099511627776u64, 1099511627776u64]),
        9 => json!([[0, 2, 1]]),
        10 => json!(0),
        _ => json!(3),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn mutated_json_trees_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut v: Value = serde_json::from_str(&kitchen_sink().to_json()).unwrap();
        for (p, k) in edits {
            let mut all = Vec::new();
            paths(&v, &mut Vec::new(), &mut all);
            let path = all[p % all.len()].clone();
            *at(&mut v, &path) = replacement(k);
        }
        if let Ok(g) = Graph::from_json(&v.to_string()) {
            prop_assert!(g.verify().is_ok());
            let j = g.to_json();
            prop_assert_eq!(Graph::from_json(&j).unwrap().to_json(), j);
        }
    }

    #[test]
    fn truncated_or_spliced_json_never_panics(cut in any::<usize>(), ins in "[\\[\\]{}\",:0-9a-z -]{0,8}") {
        let j = small().to_json();
        let p = cut % (j.len() + 1);
        let _ = Graph::from_json(&j[..p]);
        let spliced = format!("{}{}{}", &j[..p], ins, &j[p..]);
        let _ = Graph::from_json(&spliced);
    }
}

/// The reference interpreter gives bit-identical outputs and variable writes for the
/// original graph and its text and JSON round trips (same constants, attributes, seeds).
#[test]
fn roundtripped_graphs_compute_the_same_bits() {
    use kiln_ir::{interp, Array};
    let g = kitchen_sink();
    let inputs = vec![
        Array::from_vec(vec![0.5f32, -1.25, 2.0, 3.5, -0.0, 7.0], &[2, 3]).unwrap(),
        Array::from_vec(vec![1.5f32, -2.0, 0.25], &[3]).unwrap(),
        Array::from_vec(vec![2i32, 0], &[2]).unwrap(),
        Array::from_vec(vec![true, false, true, false, false, true], &[2, 3]).unwrap(),
        Array::scalar(9i64),
        Array::zeros(&[0, 3], kiln_ir::DType::F32),
    ];
    let vars = vec![
        Array::from_vec((0..12).map(|i| i as f32 * 0.5).collect::<Vec<f32>>(), &[3, 4]).unwrap(),
        Array::scalar(4i64),
    ];
    let want = interp::run(&g, &inputs, &vars).unwrap();
    for back in [Graph::from_text(&g.to_text()).unwrap(), Graph::from_json(&g.to_json()).unwrap()] {
        let got = interp::run(&back, &inputs, &vars).unwrap();
        assert_eq!(got.outputs.len(), want.outputs.len());
        for (i, (a, b)) in got.outputs.iter().zip(&want.outputs).enumerate() {
            assert!(a.bits_eq(b), "output {i} differs: {a:?} vs {b:?}");
        }
        assert_eq!(got.writes.len(), want.writes.len());
        for ((va, a), (vb, b)) in got.writes.iter().zip(&want.writes) {
            assert!(va == vb && a.bits_eq(b), "write of @{va} differs");
        }
    }
}
