//! kiln::sparse and kiln::sets against TensorFlow 2.21 (tests/golden/sparse_sets.json, made
//! by tests/golden/sparse_sets.py), eagerly and inside `kiln::function` (compiled); bad input;
//! eager-vs-compiled equivalence; an f64 finite-difference check of sparse matmul's gradients.

use kiln::sparse::{self, SparseTensor};
use kiln::{DType, GradientTape, Tensor};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/sparse_sets.json")).unwrap()
}

fn dense(v: &Value, dtype: DType) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f64> = v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    Tensor::from_vec(data, &shape).unwrap().cast(dtype)
}

fn sparse_of(v: &Value, dtype: DType) -> SparseTensor {
    let rows = v["indices"].as_array().unwrap();
    let shape: Vec<usize> = v["dense_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.as_array().unwrap().iter().map(|i| i.as_i64().unwrap())).collect();
    let values: Vec<f64> = v["values"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    let n = values.len();
    let indices = Tensor::from_vec(flat, &[n, shape.len()]).unwrap();
    SparseTensor::new(indices, Tensor::from_vec(values, &[n]).unwrap().cast(dtype), &shape).unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.cast(DType::F64).to_vec::<f64>().unwrap()
}

fn close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (f64s(got), f64s(want));
    for (a, b) in g.iter().zip(&w) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{what}: kiln {g:?}, tf {w:?}");
    }
}

/// Same indices, dense shape and (close) values.
fn same_sparse(got: &SparseTensor, want: &SparseTensor, what: &str) {
    assert_eq!(got.dense_shape(), want.dense_shape(), "{what}: dense_shape");
    assert_eq!(got.indices().to_vec::<i64>().unwrap(), want.indices().to_vec::<i64>().unwrap(), "{what}: indices");
    close(got.values(), want.values(), what);
}

fn input(g: &Value, name: &str) -> SparseTensor {
    sparse_of(&g["inputs"][name], DType::F32)
}

#[test]
fn sparse_ops_match_tensorflow_eagerly() {
    let g = golden();
    let (a, b, messy, cube) = (input(&g, "a"), input(&g, "b"), input(&g, "messy"), input(&g, "cube"));
    let want = |k: &str| sparse_of(&g[k], DType::F32);
    let want_dense = |k: &str| dense(&g[k], DType::F32);
    let d = dense(&g["inputs"]["d"], DType::F32);
    close(&sparse::matmul(&a, &d).unwrap(), &want_dense("matmul"), "matmul");
    close(&a.to_dense().unwrap(), &want_dense("to_dense_a"), "to_dense");
    same_sparse(&sparse::add(&a, &b).unwrap(), &want("add_sparse"), "add sparse");
    close(
        &sparse::add_dense(&a, &dense(&g["inputs"]["dense_b"], DType::F32)).unwrap(),
        &want_dense("add_dense"),
        "add dense",
    );
    same_sparse(&messy.reorder().unwrap(), &want("reorder_messy"), "reorder");
    close(&messy.reduce_sum(&[0], false).unwrap(), &want_dense("reduce_sum_messy_0"), "reduce_sum 0");
    close(&messy.reduce_sum(&[1], true).unwrap(), &want_dense("reduce_sum_messy_1_keepdims"), "reduce_sum keepdims");
    close(&messy.reduce_sum(&[0, 1], false).unwrap(), &want_dense("reduce_sum_messy_all"), "reduce_sum all");
    close(&messy.reduce_sum_all().unwrap(), &want_dense("reduce_sum_messy_all"), "reduce_sum_all");
    close(&cube.reduce_sum(&[0, -1], false).unwrap(), &want_dense("reduce_sum_cube_02"), "reduce_sum cube");
    same_sparse(&a.slice(&[1, 1], &[5, 3]).unwrap(), &want("slice_a"), "slice");
    same_sparse(&cube.slice(&[0, 0, 0], &[2, 2, 2]).unwrap(), &want("slice_cube"), "slice cube");
    same_sparse(&a.transpose(&[1, 0]).unwrap(), &want("transpose_a"), "transpose");
    same_sparse(&cube.transpose(&[2, 0, 1]).unwrap(), &want("transpose_cube_201"), "transpose cube");
    same_sparse(&sparse::concat(0, &[&a, &b]).unwrap(), &want("concat_0"), "concat 0");
    same_sparse(&sparse::concat(1, &[&a, &b]).unwrap(), &want("concat_1"), "concat 1");
    let from = SparseTensor::from_dense(&dense(&g["inputs"]["mostly_zero"], DType::F32)).unwrap();
    same_sparse(&from, &want("from_dense"), "from_dense");
    same_sparse(&a.reshape(&[2, -1]).unwrap(), &want("reshape_a_2x6"), "reshape");
    same_sparse(&cube.reshape(&[9, 2]).unwrap(), &want("reshape_cube_9x2"), "reshape cube");
    let keep = Tensor::new(&[true, false, true, false, true]);
    same_sparse(&a.retain(&keep).unwrap(), &want("retain_a"), "retain");
    let w = dense(&g["inputs"]["w"], DType::F32);
    let adj = |b: &Tensor, ta, tb| sparse::matmul_with(&a, b, ta, tb).unwrap();
    close(&adj(&w, true, false), &want_dense("matmul_adjoint_a"), "matmul adjoint_a");
    close(&adj(&d.transpose(&[1, 0]), false, true), &want_dense("matmul_adjoint_b"), "matmul adjoint_b");
    close(&adj(&w.transpose(&[1, 0]), true, true), &want_dense("matmul_adjoint_ab"), "matmul adjoint_a, adjoint_b");
}

/// The loss TF differentiated: `sum(matmul(a, d) * w)`.
fn matmul_loss(a: &SparseTensor, d: &Tensor, w: &Tensor) -> kiln::Result<Tensor> {
    Ok(sparse::matmul(a, d)?.try_mul(w)?.sum_all())
}

fn matmul_grads(a: &SparseTensor, d: &Tensor, w: &Tensor) -> kiln::Result<Vec<Tensor>> {
    let tape = GradientTape::new();
    tape.watch(a.values());
    tape.watch(d);
    let loss = matmul_loss(a, d, w)?;
    Ok(tape.gradient_tensors(&loss, &[a.values(), d])?.into_iter().map(Option::unwrap).collect())
}

#[test]
fn matmul_gradients_match_tensorflow_eager_and_compiled() {
    let g = golden();
    let a = input(&g, "a");
    let (d, w) = (dense(&g["inputs"]["d"], DType::F32), dense(&g["inputs"]["w"], DType::F32));
    let want_values = dense(&g["matmul_grad_values"], DType::F32);
    let want_dense = dense(&g["matmul_grad_dense"], DType::F32);
    let eager = matmul_grads(&a, &d, &w).unwrap();
    close(&eager[0], &want_values, "d loss / d values (eager)");
    close(&eager[1], &want_dense, "d loss / d dense (eager)");
    let w2 = w.clone();
    let f = kiln::function(move |a: &SparseTensor, d: &Tensor| matmul_grads(a, d, &w2));
    let compiled = f.call((&a, &d)).unwrap();
    close(&compiled[0], &want_values, "d loss / d values (compiled)");
    close(&compiled[1], &want_dense, "d loss / d dense (compiled)");
}

#[test]
fn sparse_ops_match_tensorflow_compiled() {
    let g = golden();
    let (a, b, messy, cube) = (input(&g, "a"), input(&g, "b"), input(&g, "messy"), input(&g, "cube"));
    let want = |k: &str| sparse_of(&g[k], DType::F32);
    let want_dense = |k: &str| dense(&g[k], DType::F32);
    let d = dense(&g["inputs"]["d"], DType::F32);

    let mm = kiln::function(|s: &SparseTensor, d: &Tensor| sparse::matmul(s, d));
    close(&mm.call((&a, &d)).unwrap(), &want_dense("matmul"), "compiled matmul");
    assert!(mm.graph((&a, &d)).unwrap().to_text().contains("scatter_add"));

    let reorder = kiln::function(|s: &SparseTensor| s.reorder());
    same_sparse(&reorder.call(&messy).unwrap(), &want("reorder_messy"), "compiled reorder");
    let reduce = kiln::function(|s: &SparseTensor| s.reduce_sum(&[1], true));
    close(&reduce.call(&messy).unwrap(), &want_dense("reduce_sum_messy_1_keepdims"), "compiled reduce_sum");
    let reduce_cube = kiln::function(|s: &SparseTensor| s.reduce_sum(&[0, 2], false));
    close(&reduce_cube.call(&cube).unwrap(), &want_dense("reduce_sum_cube_02"), "compiled reduce_sum cube");
    let transpose = kiln::function(|s: &SparseTensor| s.transpose(&[2, 0, 1]));
    same_sparse(&transpose.call(&cube).unwrap(), &want("transpose_cube_201"), "compiled transpose");
    let concat = kiln::function(|a: &SparseTensor, b: &SparseTensor| sparse::concat(1, &[a, b]));
    same_sparse(&concat.call((&a, &b)).unwrap(), &want("concat_1"), "compiled concat");
    let reshape = kiln::function(|s: &SparseTensor| s.reshape(&[9, 2]));
    same_sparse(&reshape.call(&cube).unwrap(), &want("reshape_cube_9x2"), "compiled reshape");
    let adjoint = kiln::function(|s: &SparseTensor, w: &Tensor| sparse::matmul_with(s, w, true, false));
    let w = dense(&g["inputs"]["w"], DType::F32);
    close(&adjoint.call((&a, &w)).unwrap(), &want_dense("matmul_adjoint_a"), "compiled matmul adjoint_a");
    let to_dense = kiln::function(|s: &SparseTensor| s.to_dense());
    close(&to_dense.call(&a).unwrap(), &want_dense("to_dense_a"), "compiled to_dense");
    let add_dense = kiln::function(|s: &SparseTensor, d: &Tensor| sparse::add_dense(s, d));
    let dense_b = dense(&g["inputs"]["dense_b"], DType::F32);
    close(&add_dense.call((&a, &dense_b)).unwrap(), &want_dense("add_dense"), "compiled add dense");

    // Traced sparse + sparse keeps both entries of a shared position (sorted): same dense value.
    let add = kiln::function(|a: &SparseTensor, b: &SparseTensor| sparse::add(a, b));
    let sum = add.call((&a, &b)).unwrap();
    assert_eq!(sum.nnz(), a.nnz() + b.nnz());
    close(&sum.to_dense().unwrap(), &want("add_sparse").to_dense().unwrap(), "compiled add sparse");
    let mut rows = sum.indices().to_vec::<i64>().unwrap().chunks(2).map(<[i64]>::to_vec).collect::<Vec<_>>();
    let sorted = {
        let mut s = rows.clone();
        s.sort();
        s
    };
    assert_eq!(std::mem::take(&mut rows), sorted, "traced add is in canonical order");
}

#[test]
fn value_dependent_ops_refuse_to_trace() {
    let g = golden();
    let a = input(&g, "a");
    let slice = kiln::function(|s: &SparseTensor| s.slice(&[0, 0], &[1, 1]));
    assert!(slice.call(&a).unwrap_err().to_string().contains("traced function does not know"));
    let retain = kiln::function(|s: &SparseTensor, keep: &Tensor| s.retain(keep));
    assert!(retain.call((&a, &Tensor::new(&[true, false, true, false, true]))).is_err());
    let coalesce = kiln::function(|s: &SparseTensor| s.coalesce());
    assert!(coalesce.call(&a).is_err());
    let from_dense = kiln::function(|t: &Tensor| SparseTensor::from_dense(t));
    assert!(from_dense.call(&Tensor::new(&[[1.0f32, 0.0]])).is_err());
    let sets = kiln::function(|t: &Tensor| kiln::sets::intersection(t, t));
    assert!(sets.call(&Tensor::new(&[[1i64, 2]])).unwrap_err().to_string().contains("host ops"));
}

#[test]
fn map_values_and_scalar_ops_trace_and_differentiate() {
    let s = SparseTensor::new(Tensor::new(&[[0i64, 1], [1, 1]]), Tensor::new(&[-2.0f64, 3.0]), &[2, 2]).unwrap();
    let f = kiln::function(|s: &SparseTensor| -> kiln::Result<SparseTensor> {
        let t = -&(&s.abs()? * 2.0);
        t.map_values(|v| v.exp() - 1.0)
    });
    let eager = (&s.abs().unwrap() * 2.0).neg().unwrap().map_values(|v| v.exp() - 1.0).unwrap();
    let compiled = f.call(&s).unwrap();
    same_sparse(&compiled, &eager, "map_values eager vs compiled");
    close(eager.values(), &Tensor::new(&[(-4.0f64).exp() - 1.0, (-6.0f64).exp() - 1.0]), "map_values");
    let tape = GradientTape::new();
    tape.watch(s.values());
    let y = s.mul_scalar(3.0).unwrap().reduce_sum_all().unwrap();
    let g = tape.gradient_tensors(&y, &[s.values()]).unwrap();
    assert_eq!(g[0].as_ref().unwrap().to_vec::<f64>().unwrap(), vec![3.0, 3.0]);
}

#[test]
fn matmul_gradients_pass_finite_differences_f64() {
    // A random 6x5 sparse matrix at ~30% density with one repeated index, times a 5x4 dense.
    let idx: Vec<i64> = vec![0, 0, 0, 3, 1, 4, 2, 2, 3, 1, 3, 1, 4, 0, 5, 2, 5, 4];
    let n = idx.len() / 2;
    let a_vals = Tensor::random_normal(&[n], DType::F64, 3);
    let a = SparseTensor::new(Tensor::from_vec(idx, &[n, 2]).unwrap(), a_vals, &[6, 5]).unwrap();
    let d = Tensor::random_normal(&[5, 4], DType::F64, 4);
    let w = Tensor::random_normal(&[6, 4], DType::F64, 5);
    let grads = matmul_grads(&a, &d, &w).unwrap();
    let loss = |a: &SparseTensor, d: &Tensor| matmul_loss(a, d, &w).unwrap().to_scalar::<f64>().unwrap();
    let eps = 1e-6;
    let bump = |t: &Tensor, i: usize, by: f64| {
        let mut v = t.to_vec::<f64>().unwrap();
        v[i] += by;
        Tensor::from_vec(v, t.shape()).unwrap()
    };
    for i in 0..n {
        let at = |by| loss(&a.with_values(bump(a.values(), i, by)).unwrap(), &d);
        let fd = (at(eps) - at(-eps)) / (2.0 * eps);
        let got = grads[0].to_vec::<f64>().unwrap()[i];
        assert!((fd - got).abs() < 1e-6, "values[{i}]: analytic {got}, numeric {fd}");
    }
    for i in 0..d.numel() {
        let at = |by| loss(&a, &bump(&d, i, by));
        let fd = (at(eps) - at(-eps)) / (2.0 * eps);
        let got = grads[1].to_vec::<f64>().unwrap()[i];
        assert!((fd - got).abs() < 1e-6, "dense[{i}]: analytic {got}, numeric {fd}");
    }
}

#[test]
fn eager_and_compiled_agree_on_random_sparse_tensors() {
    for seed in 0..4u64 {
        // A [7, 9] sparse tensor: 20 random positions (repeats likely), random values.
        let pos = Tensor::random_uniform(&[20, 2], DType::F64, seed) * Tensor::new(&[7.0f64, 9.0]);
        let indices = pos.floor().cast(DType::I64);
        let s = SparseTensor::new(indices, Tensor::random_normal(&[20], DType::F64, seed + 10), &[7, 9]).unwrap();
        let d = Tensor::random_normal(&[9, 3], DType::F64, seed + 20);
        let t = s.transpose(&[1, 0]).unwrap();
        let body = |s: &SparseTensor, d: &Tensor| -> kiln::Result<Vec<Tensor>> {
            let r = s.reorder()?;
            let t = s.transpose(&[1, 0])?;
            let c = sparse::concat(0, &[s, &r])?;
            Ok(vec![
                sparse::matmul(s, d)?,
                r.indices().clone(),
                r.values().clone(),
                t.to_dense()?,
                c.reduce_sum(&[0], false)?,
                sparse::add(s, &r)?.to_dense()?,
            ])
        };
        let eager = body(&s, &d).unwrap();
        let compiled = kiln::function(body).call((&s, &d)).unwrap();
        for (i, (e, c)) in eager.iter().zip(&compiled).enumerate() {
            close(c, e, &format!("seed {seed}, output {i}"));
        }
        close(&t.to_dense().unwrap(), &s.to_dense().unwrap().transpose(&[1, 0]), "transpose vs dense");
        close(&sparse::matmul(&s, &d).unwrap(), &s.to_dense().unwrap().matmul(&d), "matmul vs dense");
    }
}

fn err(r: kiln::Result<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let v = || Tensor::new(&[1.0f32, 2.0]);
    let idx = |rows: [[i64; 2]; 2]| Tensor::new(&rows);
    assert!(err(SparseTensor::new(idx([[0, 0], [2, 1]]), v(), &[2, 2])).contains("out of bounds"));
    assert!(err(SparseTensor::new(idx([[0, -1], [1, 1]]), v(), &[2, 2])).contains("negative"));
    assert!(err(SparseTensor::new(idx([[0, 0], [1, 1]]), Tensor::new(&[1.0f32]), &[2, 2])).contains("nnz = 2"));
    assert!(err(SparseTensor::new(idx([[0, 0], [1, 1]]), v(), &[2, 2, 2])).contains("indices must be i64"));
    assert!(err(SparseTensor::new(Tensor::new(&[[0i32, 0], [1, 1]]), v(), &[2, 2])).contains("indices must be i64"));
    assert!(err(SparseTensor::new(Tensor::new(&[0i64, 1]), v(), &[2])).contains("[nnz, 1]"));
    assert!(err(SparseTensor::new(idx([[0, 0], [1, 1]]), Tensor::new(&[[1.0f32, 2.0]]), &[2, 2])).contains("values"));
    assert!(err(SparseTensor::new(idx([[0, 0], [1, 1]]), v(), &[])).contains("rank >= 1"));
    assert!(err(SparseTensor::new(idx([[0, 0], [1, 1]]), v(), &[usize::MAX / 2, 4])).contains("i64"));

    let s = SparseTensor::new(idx([[1, 0], [0, 1]]), v(), &[2, 2]).unwrap();
    assert!(err(s.check_canonical()).contains("out of order"));
    let d = Tensor::zeros(&[3, 2], DType::F32);
    assert!(err(sparse::matmul(&s, &d)).contains("sparse [m, k] and a dense [k, n]"));
    assert!(err(sparse::matmul(&s, &Tensor::zeros(&[2, 2], DType::F64))).contains("dtype mismatch"));
    let cube = SparseTensor::new(Tensor::new(&[[0i64, 0, 0]]), Tensor::new(&[1.0f32]), &[1, 2, 2]).unwrap();
    assert!(err(sparse::matmul(&cube, &d)).contains("sparse.matmul"));
    assert!(err(sparse::add(&s, &cube)).contains("sparse.add"));
    assert!(err(sparse::add(&s, &s.cast(DType::F64).unwrap())).contains("dtype mismatch"));
    assert!(err(sparse::add_dense(&s, &d)).contains("sparse.add_dense"));
    assert!(err(sparse::concat(0, &[&s, &cube])).contains("differ"));
    assert!(err(sparse::concat(2, &[&s, &s])).contains("sparse.concat"));
    assert!(err(sparse::concat(0, &[])).contains("at least one"));
    assert!(err(s.transpose(&[0, 0])).contains("each of the 2 dims once"));
    assert!(err(s.transpose(&[0])).contains("each of the 2 dims once"));
    assert!(err(s.reduce_sum(&[2], false)).contains("sparse.reduce_sum"));
    assert!(err(s.slice(&[0], &[1])).contains("one entry per dim"));
    assert!(err(s.slice(&[3, 0], &[1, 1])).contains("past the end"));
    assert!(err(s.with_values(Tensor::new(&[1.0f32]))).contains("one per entry"));
    assert!(err(s.reshape(&[3, -1])).contains("cannot reshape"));
    assert!(err(s.reshape(&[-1, -1])).contains("cannot reshape"));
    assert!(err(s.retain(&Tensor::new(&[true]))).contains("bool [2]"));
    assert!(err(sparse::matmul_with(&s, &Tensor::zeros(&[2, 3], DType::F32), true, true)).contains("adjoint_a = true"));
    assert!(err(SparseTensor::from_dense(&Tensor::scalar(1.0f32))).contains("rank >= 1"));

    // Indices out of bounds inside a trace are caught when the graph runs.
    let f = kiln::function(|i: &Tensor, v: &Tensor| SparseTensor::new(i.clone(), v.clone(), &[2, 2])?.to_dense());
    assert!(f.call((&idx([[0, 0], [5, 1]]), &v())).is_err());
}

// ---- sets ----

fn set_input(g: &Value, name: &str, dtype: DType) -> Tensor {
    dense(&g["sets"]["inputs"][name], dtype)
}

fn check_sets(got: [SparseTensor; 4], want: &Value, dtype: DType, what: &str) {
    for (k, got) in ["intersection", "union", "a_minus_b", "b_minus_a"].iter().zip(got) {
        let want = sparse_of(&want[k], dtype);
        assert_eq!(got.dtype(), dtype, "{what} {k}");
        same_sparse(&got, &want, &format!("{what} {k}"));
    }
}

fn all_four(a: &impl kiln::sets::SetInput, b: &impl kiln::sets::SetInput) -> [SparseTensor; 4] {
    [
        kiln::sets::intersection(a, b).unwrap(),
        kiln::sets::union(a, b).unwrap(),
        kiln::sets::difference(a, b, true).unwrap(),
        kiln::sets::difference(a, b, false).unwrap(),
    ]
}

#[test]
fn sets_match_tensorflow() {
    let g = golden();
    let s = &g["sets"];
    let (sa, sb) = (set_input(&g, "sa", DType::I64), set_input(&g, "sb", DType::I64));
    let (ta, tb) = (set_input(&g, "ta", DType::I32), set_input(&g, "tb", DType::I32));
    let ssa = sparse_of(&s["inputs"]["ssa"], DType::I64);
    check_sets(all_four(&sa, &sb), &s["dense"], DType::I64, "dense");
    check_sets(all_four(&ta, &tb), &s["rank3"], DType::I32, "rank 3");
    check_sets(all_four(&ssa, &sb), &s["sparse_dense"], DType::I64, "sparse, dense");
    check_sets(all_four(&sb, &ssa), &s["dense_sparse"], DType::I64, "dense, sparse");
    check_sets(all_four(&ssa, &ssa), &s["sparse_sparse"], DType::I64, "sparse, sparse");
    close(&kiln::sets::size(&ssa).unwrap(), &dense(&s["size_ssa"], DType::I32), "size sparse");
    let union = kiln::sets::union(&sa, &sb).unwrap();
    close(&kiln::sets::size(&union).unwrap(), &dense(&s["size_union_dense"], DType::I32), "size of a union");
    assert_eq!(kiln::sets::size(&sa).unwrap().to_vec::<i32>().unwrap(), vec![3, 3, 4]);
}

#[test]
fn sets_bad_input() {
    let a = Tensor::new(&[[1i64, 2]]);
    assert!(err(kiln::sets::union(&a, &Tensor::new(&[[1i32, 2]]))).contains("dtype mismatch"));
    assert!(err(kiln::sets::union(&a, &Tensor::new(&[[1i64], [2]]))).contains("same dims before the last"));
    assert!(err(kiln::sets::union(&Tensor::new(&[1i64, 2]), &Tensor::new(&[1i64]))).contains("rank >= 2"));
    assert!(err(kiln::sets::union(&Tensor::new(&[[1.0f32]]), &Tensor::new(&[[1.0f32]]))).contains("I32 or I64"));
    assert!(err(kiln::sets::size(&Tensor::new(&[[true]]))).contains("I32 or I64"));
    let unsorted = SparseTensor::new(Tensor::new(&[[0i64, 1], [0, 0]]), Tensor::new(&[1i64, 2]), &[1, 2]).unwrap();
    assert!(err(kiln::sets::intersection(&unsorted, &a)).contains("out of order"));
}

#[test]
fn the_issue_program_runs() {
    let s = SparseTensor::new(Tensor::new(&[[0i64, 1], [1, 0]]), Tensor::new(&[3.0f32, 4.0]), &[2, 3]).unwrap();
    let d = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    let p = sparse::matmul(&s, &d).unwrap();
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![9.0, 12.0, 4.0, 8.0]);
    assert_eq!(s.to_dense().unwrap().shape(), &[2, 3]);
    let i = kiln::sets::intersection(&Tensor::new(&[[1i64, 2, 3]]), &Tensor::new(&[[2i64, 3, 4]])).unwrap();
    assert_eq!(i.values().to_vec::<i64>().unwrap(), vec![2, 3]);
    assert_eq!(i.indices().to_vec::<i64>().unwrap(), vec![0, 0, 0, 1]);
    assert!(format!("{p} {i:?}").contains("SparseTensor"));
}

#[test]
fn empty_sparse_tensors_and_empty_sets() {
    let none = SparseTensor::new(
        Tensor::from_vec(Vec::<i64>::new(), &[0, 2]).unwrap(),
        Tensor::from_vec(Vec::<f32>::new(), &[0]).unwrap(),
        &[2, 3],
    )
    .unwrap();
    let d = Tensor::ones(&[3, 2], DType::F32);
    assert_eq!(sparse::matmul(&none, &d).unwrap().to_vec::<f32>().unwrap(), vec![0.0; 4]);
    assert_eq!(none.reorder().unwrap().nnz(), 0);
    assert_eq!(none.coalesce().unwrap().nnz(), 0);
    assert_eq!(none.transpose(&[1, 0]).unwrap().dense_shape(), &[3, 2]);
    let f = kiln::function(|s: &SparseTensor, d: &Tensor| -> kiln::Result<Vec<Tensor>> {
        Ok(vec![sparse::matmul(s, d)?, s.reorder()?.to_dense()?, s.reduce_sum(&[0], false)?])
    });
    let out = f.call((&none, &d)).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![0.0; 4]);
    assert_eq!(out[1].to_vec::<f32>().unwrap(), vec![0.0; 6]);
    assert_eq!(out[2].to_vec::<f32>().unwrap(), vec![0.0; 3]);
    // Disjoint rows: every result row empty, so the set axis has size 0 (as TF's).
    let i = kiln::sets::intersection(&Tensor::new(&[[1i32], [2]]), &Tensor::new(&[[3i32], [4]])).unwrap();
    assert_eq!((i.nnz(), i.dense_shape()), (0, &[2usize, 0][..]));
    assert_eq!(kiln::sets::size(&i).unwrap().to_vec::<i32>().unwrap(), vec![0, 0]);
}

#[test]
fn large_traced_sorts_are_stable_and_match_eager() {
    // 800 entries (above the pairwise sort's 512) on 1,200 positions: many repeats, whose
    // order a stable sort keeps; and 12 entries (pairwise) on the same shape.
    for (n, seed) in [(800usize, 7u64), (12, 8)] {
        let pos = Tensor::random_uniform(&[n, 2], DType::F64, seed) * Tensor::new(&[30.0f64, 40.0]);
        let values = Tensor::arange(0.0, n as f64, 1.0, DType::F32);
        let s = SparseTensor::new(pos.floor().cast(DType::I64), values, &[30, 40]).unwrap();
        let sorted = kiln::function(|s: &SparseTensor| s.reorder()).call(&s).unwrap();
        let transposed = kiln::function(|s: &SparseTensor| s.transpose(&[1, 0])).call(&s).unwrap();
        same_sparse(&sorted, &s.reorder().unwrap(), &format!("{n} entries: traced reorder"));
        same_sparse(&transposed, &s.transpose(&[1, 0]).unwrap(), &format!("{n} entries: traced transpose"));
    }
}

/// A nested JSON array of strings as a StringTensor.
fn strings_of(v: &Value) -> kiln::strings::StringTensor {
    fn walk(v: &Value, depth: usize, shape: &mut Vec<usize>, out: &mut Vec<String>) {
        match v {
            Value::Array(items) => {
                if shape.len() == depth {
                    shape.push(items.len());
                }
                items.iter().for_each(|i| walk(i, depth + 1, shape, out));
            }
            other => out.push(other.as_str().unwrap().to_string()),
        }
    }
    let (mut shape, mut out) = (Vec::new(), Vec::new());
    walk(v, 0, &mut shape, &mut out);
    kiln::strings::StringTensor::from_vec(out, &shape).unwrap()
}

#[test]
fn string_sets_match_tensorflow() {
    use kiln::sets::strings as s;
    let g = golden();
    let g = &g["sets"]["strings"];
    for (case, a, b) in [("rank2", "a", "b"), ("rank3", "a3", "b3")] {
        let (a, b) = (strings_of(&g["inputs"][a]), strings_of(&g["inputs"][b]));
        let got = [
            s::intersection(&a, &b).unwrap(),
            s::union(&a, &b).unwrap(),
            s::difference(&a, &b, true).unwrap(),
            s::difference(&a, &b, false).unwrap(),
        ];
        for (got, op) in got.iter().zip(["intersection", "union", "a_minus_b", "b_minus_a"]) {
            let want = &g[case][op];
            let idx: Vec<i64> = want["indices"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_array().unwrap().iter().map(|i| i.as_i64().unwrap()))
                .collect();
            let values: Vec<String> =
                want["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            let shape: Vec<usize> =
                want["dense_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(got.indices.to_vec::<i64>().unwrap(), idx, "{case} {op}: indices");
            assert_eq!(got.values.to_vec(), values, "{case} {op}: values");
            assert_eq!(got.dense_shape, shape, "{case} {op}: dense_shape");
        }
        let size = s::size(&a).unwrap();
        assert_eq!(f64s(&size), f64s(&dense(&g[case]["size_a"], DType::I32)), "{case} size");
    }
    let one = kiln::strings::StringTensor::new(&["a"], &[1]).unwrap();
    assert!(s::union(&one, &one).unwrap_err().to_string().contains("rank >= 2"));
}
