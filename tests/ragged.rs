//! kiln::ragged against TensorFlow (tests/golden/ragged_strings.json, made by
//! tests/golden/ragged_strings.py): reductions over the ragged axis, to_tensor, from_tensor,
//! arithmetic, gather, concat, and gradients through the flat values, eagerly and compiled
//! (with the row splits as a traced argument, and as host constants); bad input; the
//! issue's program.

use kiln::ragged::RaggedTensor;
use kiln::strings::{StringLookup, StringTensor};
use kiln::{DType, Tensor};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/ragged_strings.json")).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| x.as_str().unwrap().parse::<f64>().unwrap()))
        .collect()
}

fn i64s(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn tensor(v: &Value, dtype: DType) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    Tensor::from_vec(f64s(&v["data"]), &shape).unwrap().cast(dtype)
}

fn close(got: &Tensor, want: &Value, what: &str) {
    let shape: Vec<usize> = want["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    assert_eq!(got.shape(), shape.as_slice(), "{what}: shape");
    let g = got.cast(DType::F64).to_vec::<f64>().unwrap();
    let w = f64s(&want["data"]);
    for (a, b) in g.iter().zip(&w) {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 2e-6 * b.abs().max(1.0);
        assert!(ok, "{what}: kiln {g:?}, tf {w:?}");
    }
}

fn same_ragged(got: &RaggedTensor, want: &Value, what: &str) {
    assert_eq!(got.row_splits().to_vec::<i64>().unwrap(), i64s(&want["row_splits"]), "{what}: row splits");
    close(got.values().unwrap(), &want["values"], what);
}

/// A golden case: its ragged tensor, flat values and row splits.
fn case(c: &Value) -> (RaggedTensor, Tensor, Vec<i64>) {
    let values =
        Tensor::from_vec(f64s(&c["values"]), &[c["values"].as_array().unwrap().len()]).unwrap().cast(DType::F32);
    let r = RaggedTensor::from_row_lengths(values.clone(), &i64s(&c["row_lengths"])).unwrap();
    (r, values, i64s(&c["row_splits"]))
}

fn splits_tensor(s: &[i64]) -> Tensor {
    Tensor::from_vec(s.to_vec(), &[s.len()]).unwrap()
}

#[test]
fn reductions_and_conversions_match_tf_eagerly() {
    let g = golden();
    for (name, c) in g["ragged"].as_object().unwrap() {
        let (r, _, splits) = case(c);
        close(&r.sum_rows().unwrap(), &c["sum_rows"], &format!("{name} sum_rows"));
        close(&r.mean_rows().unwrap(), &c["mean_rows"], &format!("{name} mean_rows"));
        close(&r.max_rows().unwrap(), &c["max_rows"], &format!("{name} max_rows"));
        close(&r.min_rows().unwrap(), &c["min_rows"], &format!("{name} min_rows"));
        close(&r.to_tensor(0.0).unwrap(), &c["to_tensor_0"], &format!("{name} to_tensor(0)"));
        close(&r.to_tensor(-1.0).unwrap(), &c["to_tensor_m1"], &format!("{name} to_tensor(-1)"));
        let bs: Vec<usize> = i64s(&c["bounding_shape"]).iter().map(|&d| d as usize).collect();
        assert_eq!(r.bounding_shape().unwrap(), bs, "{name} bounding_shape");
        assert_eq!(r.nrows(), splits.len() - 1);
        same_ragged(&r.mul_scalar(2.0).unwrap().add_scalar(1.0).unwrap(), &c["times2_plus1"], name);
        same_ragged(&r.mul(&r).unwrap(), &c["self_product"], name);
        same_ragged(&r.gather(&[2, 0, 2, 1]).unwrap(), &c["gather_rows"], &format!("{name} gather"));
        let mut small = vec![1, 1];
        small.resize(r.nrows(), 0);
        let other = RaggedTensor::from_row_lengths(Tensor::new(&[9.0f32, 8.0]), &small).unwrap();
        same_ragged(&RaggedTensor::concat(&[&r, &other], 0).unwrap(), &c["concat0_with_small"], name);
        let tens = r.mul_scalar(10.0).unwrap();
        same_ragged(&RaggedTensor::concat(&[&r, &tens], 1).unwrap(), &c["concat1_with_self"], name);
    }
}

#[test]
fn inner_dims_from_tensor_and_integers_match_tf() {
    let g = golden();
    let c = &g["ragged_inner"];
    let r = RaggedTensor::from_row_lengths(tensor(&c["values"], DType::F32), &i64s(&c["row_lengths"])).unwrap();
    close(&r.sum_rows().unwrap(), &c["sum_rows"], "inner sum_rows");
    close(&r.to_tensor(0.0).unwrap(), &c["to_tensor_0"], "inner to_tensor");
    let f = &g["from_tensor"];
    let t = tensor(&f["input"], DType::F32);
    same_ragged(&RaggedTensor::from_tensor(&t, Some(0.0)).unwrap(), &f["padding_0"], "from_tensor padding");
    same_ragged(&RaggedTensor::from_tensor(&t, None).unwrap(), &f["no_padding"], "from_tensor");
    let c = &g["int_reductions"];
    let v: Vec<i32> = i64s(&c["values"]).iter().map(|&x| x as i32).collect();
    let r = RaggedTensor::from_row_lengths(Tensor::from_vec(v, &[4]).unwrap(), &i64s(&c["row_lengths"])).unwrap();
    for (got, key) in [(r.max_rows(), "max_rows"), (r.min_rows(), "min_rows"), (r.sum_rows(), "sum_rows")] {
        let got = got.unwrap();
        assert_eq!(got.dtype(), DType::I32);
        close(&got, &c[key], key);
    }
}

/// The scalar losses TF differentiated, over flat values with the case's splits.
fn loss(
    kind: &'static str,
    splits: Vec<i64>,
    c: &Value,
) -> impl Fn(&Tensor) -> kiln::Result<Tensor> + Clone + Send + Sync {
    let w = f64s(&c["weights"]["data"]).iter().map(|&x| x as f32).collect::<Vec<_>>();
    let wt = f64s(&c["dense_weights"]["data"]).iter().map(|&x| x as f32).collect::<Vec<_>>();
    let bs: Vec<usize> = i64s(&c["bounding_shape"]).iter().map(|&d| d as usize).collect();
    move |v: &Tensor| {
        let r = RaggedTensor::from_row_splits(v.clone(), &splits_tensor(&splits))?;
        let w = Tensor::from_vec(w.clone(), &[w.len()])?;
        match kind {
            "sum_rows" => r.sum_rows()?.try_mul(&w)?.try_sum(&[0], false),
            "to_tensor" => r.to_tensor(0.0)?.try_mul(&Tensor::from_vec(wt.clone(), &bs)?)?.try_sum(&[0, 1], false),
            "mean_rows" => {
                let m = r.mean_rows()?;
                let finite = m.try_equal(&m)?;
                finite.try_select(&m, &Tensor::scalar(0.0f32))?.try_mul(&w)?.try_sum(&[0], false)
            }
            "max_rows" => r.max_rows()?.try_mul(&w)?.try_sum(&[0], false),
            _ => unreachable!(),
        }
    }
}

#[test]
fn gradients_through_flat_values_match_tf_eagerly_and_compiled() {
    let g = golden();
    for (name, c) in g["ragged"].as_object().unwrap() {
        let (_, values, splits) = case(c);
        for kind in ["sum_rows", "to_tensor", "mean_rows", "max_rows"] {
            let f = loss(kind, splits.clone(), c);
            let eager = kiln::grad(f.clone()).call(&values).unwrap().remove(0);
            close(&eager, &c[format!("grad_{kind}")], &format!("{name} eager grad of {kind}"));
            let compiled = kiln::function(move |v: &Tensor| kiln::grad(f.clone()).call(v).map(|mut g| g.remove(0)));
            let got = compiled.call(&values).unwrap();
            close(&got, &c[format!("grad_{kind}")], &format!("{name} compiled grad of {kind}"));
        }
    }
}

#[test]
fn compiled_with_traced_splits_equals_eager() {
    let g = golden();
    for (name, c) in g["ragged"].as_object().unwrap() {
        let (r, _, _) = case(c);
        let width = r.bounding_shape().unwrap()[1];
        let f = kiln::function(move |r: &RaggedTensor| {
            let joined = RaggedTensor::concat(&[r, &r.mul_scalar(10.0)?], 1)?;
            let stacked = RaggedTensor::concat(&[r, r], 0)?;
            Ok((
                r.sum_rows()?,
                r.mean_rows()?,
                r.max_rows()?,
                r.min_rows()?,
                r.to_tensor_with_width(-1.0, width)?,
                r.row_lengths()?,
                joined.values()?.clone(),
                stacked.sum_rows()?,
            ))
        });
        let (s, m, mx, mn, d, l, j, st) = f.call(r.as_args().unwrap()).unwrap();
        let eq = |a: &Tensor, b: &Tensor, what: &str| {
            let (a, b) = (a.cast(DType::F64).to_vec::<f64>().unwrap(), b.cast(DType::F64).to_vec::<f64>().unwrap());
            assert!(
                a.iter().zip(&b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan())),
                "{name} {what}: {a:?} vs {b:?}"
            );
        };
        eq(&s, &r.sum_rows().unwrap(), "sum_rows");
        eq(&m, &r.mean_rows().unwrap(), "mean_rows");
        eq(&mx, &r.max_rows().unwrap(), "max_rows");
        eq(&mn, &r.min_rows().unwrap(), "min_rows");
        eq(&d, &r.to_tensor(-1.0).unwrap(), "to_tensor");
        eq(&l, &r.row_lengths().unwrap(), "row_lengths");
        let joined = RaggedTensor::concat(&[&r, &r.mul_scalar(10.0).unwrap()], 1).unwrap();
        eq(&j, joined.values().unwrap(), "concat axis 1");
        eq(&st, &RaggedTensor::concat(&[&r, &r], 0).unwrap().sum_rows().unwrap(), "concat axis 0");
        // A ragged result comes back with its splits.
        let double = kiln::function(|r: &RaggedTensor| r.add(r));
        let got = double.call(r.as_args().unwrap()).unwrap();
        assert_eq!(got.row_splits().to_vec::<i64>().unwrap(), r.row_splits().to_vec::<i64>().unwrap());
        eq(got.values().unwrap(), r.mul_scalar(2.0).unwrap().values().unwrap(), "ragged result");
    }
}

#[test]
fn shape_dependent_ops_on_traced_splits_are_errors_that_say_so() {
    let r = RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![3.0]]).unwrap();
    let f = kiln::function(|r: &RaggedTensor| r.to_tensor(0.0));
    let e = f.call(r.as_args().unwrap()).unwrap_err().to_string();
    assert!(e.contains("traced"), "{e}");
    let f = kiln::function(|r: &RaggedTensor| Ok(r.gather(&[0])?.values()?.clone()));
    assert!(f.call(r.as_args().unwrap()).is_err());
    // Host splits inside a traced function are constants: to_tensor traces.
    let f = kiln::function(|v: &Tensor| RaggedTensor::from_row_lengths(v.clone(), &[2, 1])?.to_tensor(0.0));
    assert_eq!(f.call(&Tensor::new(&[1.0f32, 2.0, 3.0])).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 0.0]);
}

#[test]
fn bad_row_splits_and_lengths_are_errors_naming_the_problem() {
    let v = || Tensor::new(&[1.0f32, 2.0, 3.0]);
    let err = |s: &[i64]| RaggedTensor::from_row_splits(v(), &splits_tensor(s)).unwrap_err().to_string();
    assert!(err(&[1, 2, 3]).contains("start at 0"), "{}", err(&[1, 2, 3]));
    assert!(err(&[0, 2, 1, 3]).contains("decrease"), "{}", err(&[0, 2, 1, 3]));
    assert!(err(&[0, 2]).contains("end at the number of values 3"), "{}", err(&[0, 2]));
    let e = RaggedTensor::from_row_splits(v(), &Tensor::new(&[[0i64, 3]])).unwrap_err().to_string();
    assert!(e.contains("row_splits must be integers"), "{e}");
    let e = RaggedTensor::from_row_splits(v(), &Tensor::new(&[0.0f32, 3.0])).unwrap_err().to_string();
    assert!(e.contains("row_splits must be integers"), "{e}");
    let e = RaggedTensor::from_row_lengths(v(), &[4, -1]).unwrap_err().to_string();
    assert!(e.contains("non-negative"), "{e}");
    let e = RaggedTensor::from_row_lengths(v(), &[1, 1]).unwrap_err().to_string();
    assert!(e.contains("end at the number of values"), "{e}");
    let e = RaggedTensor::from_row_splits(Tensor::scalar(1.0f32), &splits_tensor(&[0, 1])).unwrap_err().to_string();
    assert!(e.contains("rank >= 1"), "{e}");

    let a = RaggedTensor::from_nested(&[vec![1.0f32], vec![2.0, 3.0]]).unwrap();
    let b = RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![3.0]]).unwrap();
    assert!(a.add(&b).unwrap_err().to_string().contains("same row splits"));
    let c = RaggedTensor::from_nested(&[vec![1.0f32]]).unwrap();
    assert!(RaggedTensor::concat(&[&a, &c], 1).unwrap_err().to_string().contains("same number of rows"));
    assert!(RaggedTensor::concat(&[&a, &c], 2).unwrap_err().to_string().contains("axis must be 0 or 1"));
    let ints = RaggedTensor::from_nested(&[vec![1i32]]).unwrap();
    assert!(RaggedTensor::concat(&[&a, &ints], 0).is_err());
    assert!(a.gather(&[2]).unwrap_err().to_string().contains("out of range"));
    assert!(a.map_values(|v| v.try_sum(&[0], true)).unwrap_err().to_string().contains("leading dim"));
    assert!(ints.mean_rows().unwrap_err().to_string().contains("float"));
    assert!(RaggedTensor::from_tensor(&Tensor::new(&[1.0f32]), None).unwrap_err().to_string().contains("rank >= 2"));
    let words = StringTensor::new(&["a b"], &[1]).unwrap().split(" ").unwrap();
    assert!(words.sum_rows().unwrap_err().to_string().contains("strings"));
    assert!(words.as_args().unwrap_err().to_string().contains("cannot be traced"));
}

#[test]
fn string_ragged_rows_gather_and_concat() {
    let words = StringTensor::new(&["a b", "", "c d e"], &[3]).unwrap().split(" ").unwrap();
    let g = words.gather(&[2, 0]).unwrap();
    assert_eq!(g.to_nested_strings().unwrap(), vec![vec!["c", "d", "e"], vec!["a", "b"]]);
    let j = RaggedTensor::concat(&[&words, &words], 1).unwrap();
    assert_eq!(j.to_nested_strings().unwrap()[0], vec!["a", "b", "a", "b"]);
    assert_eq!(j.to_nested_strings().unwrap()[1], vec!["", ""]);
    assert_eq!(RaggedTensor::concat(&[&words, &g], 0).unwrap().nrows(), 5);
    assert_eq!(words.bounding_shape().unwrap(), vec![3, 3]);
}

#[test]
fn the_issue_program_runs() -> kiln::Result<()> {
    let r = RaggedTensor::from_row_lengths(Tensor::new(&[1.0f32, 2.0, 3.0, 4.0, 5.0]), &[2, 0, 3])?;
    assert_eq!(r.sum_rows()?.to_vec::<f32>()?, vec![3.0, 0.0, 12.0]);
    let padded = r.to_tensor(0.0)?;
    assert_eq!(padded.shape(), &[3, 3]);
    let t = StringTensor::new(&["hello world", "kiln"], &[2])?;
    let words: RaggedTensor = t.split(" ")?;
    let ids = StringLookup::new(&["hello", "world", "kiln"]).call(&words)?;
    assert_eq!(ids.to_nested::<i64>()?, vec![vec![1, 2], vec![3]]);
    let shown = format!("{padded} {ids:?} {ids} {r}");
    assert!(shown.contains("<RaggedTensor [[1, 2], [3]]>"), "{shown}");
    assert!(shown.contains("<RaggedTensor [[1, 2], [], [3, 4, 5]]>"), "{shown}");
    Ok(())
}

#[test]
fn empty_rows_and_no_values_eager_and_traced() {
    let r = RaggedTensor::from_nested::<f32>(&[vec![], vec![]]).unwrap();
    assert_eq!(r.sum_rows().unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.0]);
    assert_eq!(r.max_rows().unwrap().to_vec::<f32>().unwrap(), vec![f32::MIN, f32::MIN]);
    assert_eq!(r.to_tensor(0.0).unwrap().shape(), &[2, 0]);
    assert_eq!(r.bounding_shape().unwrap(), vec![2, 0]);
    let f = kiln::function(|r: &RaggedTensor| Ok((r.sum_rows()?, r.min_rows()?, r.to_tensor_with_width(7.0, 1)?)));
    let (s, m, d) = f.call(r.as_args().unwrap()).unwrap();
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![0.0, 0.0]);
    assert_eq!(m.to_vec::<f32>().unwrap(), vec![f32::MAX, f32::MAX]);
    assert_eq!(d.to_vec::<f32>().unwrap(), vec![7.0, 7.0]);
    let none = RaggedTensor::from_row_splits(Tensor::zeros(&[0], DType::I64), &Tensor::new(&[0i64])).unwrap();
    assert_eq!((none.nrows(), none.sum_rows().unwrap().shape()), (0, &[0usize][..]));
}
