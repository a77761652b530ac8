//! numpy/TF indexing (issue 15, items 6-8): `Ellipsis` and `NewAxis` in `s!`, `gather_nd`,
//! `tensor_scatter_nd_add`/`_update`, slice and scatter writes on Variables, `boolean_mask`,
//! and `GradientTape::jacobian`/`batch_jacobian`. Values are TF's (the examples of its
//! documentation, worked by hand); each op runs eagerly and on both backends (exact for
//! integers), and gradients are checked against central finite differences in f64.

mod common;

use common::{assert_close, assert_equivalent, rand_f64};
use kiln::{s, DType, Ellipsis, GradientTape, NewAxis, Tensor, Variable};

fn i64s(t: &Tensor) -> Vec<i64> {
    t.to_vec::<i64>().unwrap()
}

fn arange(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n as i64).collect::<Vec<_>>(), shape).unwrap()
}

/// The gradient of `sum(f(x) * w)` for fixed weights, against central differences.
fn check_gradient(f: fn(&Tensor) -> Tensor, x: &Tensor) {
    let w = rand_f64(f(x).shape(), 77);
    let loss = |x: &Tensor| (f(x) * &w).sum_all().to_scalar::<f64>().unwrap();
    let tape = GradientTape::new();
    tape.watch(x);
    let l = (f(x) * &w).sum_all();
    let g = tape.gradient_tensors(&l, &[x]).unwrap().remove(0).unwrap().to_vec::<f64>().unwrap();
    let base = x.to_vec::<f64>().unwrap();
    for i in 0..base.len() {
        let at = |d: f64| {
            let mut v = base.clone();
            v[i] += d;
            loss(&Tensor::from_vec(v, x.shape()).unwrap())
        };
        let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
        assert!((fd - g[i]).abs() < 1e-6 * fd.abs().max(1.0), "element {i}: fd {fd}, tape {}", g[i]);
    }
}

#[test]
fn ellipsis_and_new_axis_index_as_numpy() {
    let t = arange(&[2, 3, 4]);
    assert_eq!(t.slice(&s![Ellipsis, 1]).shape(), &[2, 3]);
    assert_eq!(i64s(&t.slice(&s![Ellipsis, 1])), vec![1, 5, 9, 13, 17, 21]);
    assert_eq!(t.slice(&s![Ellipsis, 1, NewAxis]).shape(), &[2, 3, 1]);
    assert_eq!(t.slice(&s![0, Ellipsis, 2]).to_vec::<i64>().unwrap(), vec![2, 6, 10]);
    assert_eq!(t.slice(&s![NewAxis, .., NewAxis, 1..;2]).shape(), &[1, 2, 1, 1, 4]);
    assert_eq!(t.slice(&s![1, 2, 3, Ellipsis]).shape(), &[] as &[usize]);
    assert_eq!(i64s(&t.slice(&s![1, 2, 3, Ellipsis])), vec![23]);
    assert!(t.try_slice(&s![Ellipsis, 0, Ellipsis]).unwrap_err().to_string().contains("more than one Ellipsis"));
    assert!(t.try_slice(&s![0, 0, 0, 0]).is_err());
    assert_equivalent(
        |x: &[Tensor]| vec![x[0].slice(&s![Ellipsis, 1, NewAxis]), x[0].slice(&s![NewAxis, -1, Ellipsis, ..;-1])],
        &[t],
        &[],
    );
}

#[test]
fn gather_nd_picks_elements_and_slabs() {
    // TF's documentation: gather_nd([[a, b], [c, d]], [[0, 0], [1, 1]]) = [a, d], and
    // with [[1], [0]] the rows swapped.
    let p = Tensor::new(&[[1i32, 2], [3, 4]]);
    assert_eq!(p.gather_nd(&Tensor::new(&[[0i64, 0], [1, 1]])).to_vec::<i32>().unwrap(), vec![1, 4]);
    assert_eq!(p.gather_nd(&Tensor::new(&[[1i32], [0]])).to_vec::<i32>().unwrap(), vec![3, 4, 1, 2]);
    let t = arange(&[2, 3, 4]);
    let idx = Tensor::new(&[[[1i64, 2], [0, 0]], [[0, 1], [1, 0]]]);
    let g = t.gather_nd(&idx);
    assert_eq!(g.shape(), &[2, 2, 4]);
    assert_eq!(i64s(&g.slice(&s![0, 0])), vec![20, 21, 22, 23]);
    for bad in [Tensor::new(&[[2i64, 0]]), Tensor::new(&[[0i64, 3]]), Tensor::new(&[[-1i64, 0]])] {
        let e = t.try_gather_nd(&bad).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
        let f = kiln::function(move |x: &Tensor| x.try_gather_nd(&bad));
        assert!(f.call(&t).is_err(), "compiled");
    }
    assert!(t.try_gather_nd(&Tensor::new(&[[0.5f32]])).is_err());
    assert!(t.try_gather_nd(&Tensor::new(&[[0i64, 0, 0, 0]])).is_err());
    assert_equivalent(|x: &[Tensor]| vec![x[0].gather_nd(&Tensor::new(&[[1i64, 2], [0, 1]]))], &[t], &[]);
    check_gradient(|x| x.gather_nd(&Tensor::new(&[[1i64, 0], [0, 2], [1, 0]])), &rand_f64(&[2, 3], 1));
}

#[test]
fn tensor_scatter_nd_add_and_update() {
    // TF's documentation: scatter into [1, 1, 1, 1, 1, 1, 1, 1] at [[4], [3], [1], [7]].
    let t = Tensor::fill(&[8], 1.0, DType::I32);
    let idx = Tensor::new(&[[4i64], [3], [1], [7]]);
    let upd = Tensor::new(&[9i32, 10, 11, 12]);
    assert_eq!(t.tensor_scatter_nd_add(&idx, &upd).to_vec::<i32>().unwrap(), vec![1, 12, 1, 11, 10, 1, 1, 13]);
    assert_eq!(t.tensor_scatter_nd_update(&idx, &upd).to_vec::<i32>().unwrap(), vec![1, 11, 1, 10, 9, 1, 1, 12]);
    // Slabs: rows of a matrix.
    let m = Tensor::zeros(&[3, 2], DType::F64);
    let rows = m.tensor_scatter_nd_update(&Tensor::new(&[[2i64], [0]]), &Tensor::new(&[[1.0f64, 2.0], [3.0, 4.0]]));
    assert_eq!(rows.to_vec::<f64>().unwrap(), vec![3.0, 4.0, 0.0, 0.0, 1.0, 2.0]);
    let e = m.try_tensor_scatter_nd_add(&Tensor::new(&[[0i64]]), &Tensor::new(&[1.0f64])).unwrap_err();
    assert!(e.to_string().contains("updates must be"), "{e}");
    assert!(m.try_tensor_scatter_nd_update(&Tensor::new(&[[3i64]]), &Tensor::new(&[[1.0f64, 1.0]])).is_err());
    assert_equivalent(
        |x: &[Tensor]| {
            let idx = Tensor::new(&[[0i64, 1], [2, 0]]);
            vec![x[0].tensor_scatter_nd_add(&idx, &x[1]), x[0].tensor_scatter_nd_update(&idx, &x[1])]
        },
        &[rand_f64(&[3, 2], 2), rand_f64(&[2], 3)],
        &[],
    );
    check_gradient(
        |x| x.tensor_scatter_nd_update(&Tensor::new(&[[1i64], [3]]), &(x.slice(&s![0..2]) * 3.0)),
        &rand_f64(&[4], 4),
    );
    check_gradient(
        |x| x.tensor_scatter_nd_add(&Tensor::new(&[[1i64], [1]]), &x.slice(&s![2..4]).exp()),
        &rand_f64(&[4], 5),
    );
}

#[test]
fn variables_take_slice_and_scatter_writes_eagerly_and_compiled() {
    let v = Variable::new(Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]));
    let program = {
        let v = v.clone();
        move |x: &[Tensor]| {
            v.assign_slice(&s![0, 1], &Tensor::scalar(42.0f32)).unwrap();
            v.assign_slice(&s![.., 2], &x[0]).unwrap();
            v.scatter_nd_add(&Tensor::new(&[[1i64, 0]]), &Tensor::new(&[10.0f32])).unwrap();
            v.scatter_nd_update(&Tensor::new(&[[1i64, 1]]), &Tensor::new(&[-1.0f32])).unwrap();
            vec![v.read()]
        }
    };
    let out = program(&[Tensor::new(&[0.0f32, 1.0])]);
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![1.0, 42.0, 0.0, 14.0, -1.0, 1.0]);
    v.assign(&Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]])).unwrap();
    assert_equivalent(program, &[Tensor::new(&[0.0f32, 1.0])], std::slice::from_ref(&v));
    // A bad write is an error and leaves the value as it was.
    let before = v.read().to_vec::<f32>().unwrap();
    assert!(v.assign_slice(&s![.., 2], &Tensor::new(&[1.0f32, 2.0, 3.0])).is_err());
    assert!(v.scatter_nd_add(&Tensor::new(&[[5i64, 0]]), &Tensor::new(&[1.0f32])).is_err());
    assert_eq!(v.read().to_vec::<f32>().unwrap(), before);
    // Gradients flow to the written value, not to the overwritten part.
    let w = Variable::new(Tensor::new(&[1.0f64, 2.0, 3.0]));
    let tape = GradientTape::new();
    let x = Tensor::scalar(5.0f64);
    tape.watch(&x);
    let y = w.read().with_slice(&s![1], &(&x * 2.0)).unwrap().square().sum_all();
    let g = tape.gradient_tensors(&y, &[&x]).unwrap().remove(0).unwrap();
    assert_eq!(g.to_scalar::<f64>().unwrap(), 40.0); // d/dx (2x)^2
    check_gradient(|x| x.with_slice(&s![Ellipsis, 1..], &x.slice(&s![.., 0..1]).sin()).unwrap(), &rand_f64(&[2, 3], 6));
}

#[test]
fn boolean_mask_is_eager_only_and_differentiable() {
    // TF's documentation: boolean_mask([[1, 2], [3, 4], [5, 6]], [True, False, True]).
    let t = Tensor::new(&[[1i32, 2], [3, 4], [5, 6]]);
    assert_eq!(t.boolean_mask(&Tensor::new(&[true, false, true])).unwrap().to_vec::<i32>().unwrap(), vec![1, 2, 5, 6]);
    let m = Tensor::new(&[[true, false], [false, true], [true, true]]);
    let picked = t.boolean_mask(&m).unwrap();
    assert_eq!((picked.shape(), picked.to_vec::<i32>().unwrap()), (&[4usize][..], vec![1, 4, 5, 6]));
    assert_eq!(t.boolean_mask(&Tensor::new(&[false, false, false])).unwrap().shape(), &[0, 2]);
    assert!(t.boolean_mask(&Tensor::new(&[true, false])).is_err());
    assert!(t.boolean_mask(&Tensor::new(&[1i32, 0, 1])).is_err());
    let f = kiln::function(|x: &Tensor| x.boolean_mask(&x.greater(&x.scalar_like(2.0))));
    let e = f.call(&Tensor::new(&[1.0f32, 3.0])).unwrap_err().to_string();
    assert!(e.contains("use `boolean_mask_sized`"), "{e}");
    check_gradient(|x| x.boolean_mask(&Tensor::new(&[true, false, true])).unwrap().exp(), &rand_f64(&[3, 2], 7));
}

#[test]
fn jacobians_match_finite_differences_eagerly_and_compiled() {
    let f = |x: &Tensor| Tensor::stack(&[&x.sin().prod_all(), &(x * x).sum_all(), &x.slice(&s![0]).exp()], 0);
    let x = rand_f64(&[3], 8);
    let jac = move |x: &Tensor| {
        let tape = GradientTape::new();
        tape.watch(x);
        let y = f(x);
        tape.jacobian_tensors(&y, &[x]).unwrap().remove(0).unwrap()
    };
    let j = jac(&x);
    assert_eq!(j.shape(), &[3, 3]);
    let base = x.to_vec::<f64>().unwrap();
    for c in 0..3 {
        let at = |d: f64| {
            let mut v = base.clone();
            v[c] += d;
            f(&Tensor::from_vec(v, &[3]).unwrap()).to_vec::<f64>().unwrap()
        };
        let (hi, lo) = (at(1e-6), at(-1e-6));
        for r in 0..3 {
            let fd = (hi[r] - lo[r]) / 2e-6;
            let got = j.to_vec::<f64>().unwrap()[r * 3 + c];
            assert!((fd - got).abs() < 1e-6, "J[{r},{c}]: fd {fd}, tape {got}");
        }
    }
    let compiled = kiln::function(move |x: &Tensor| jac(x)).call(&x).unwrap();
    assert_close(&j, &compiled, "compiled jacobian");
    // Variables, and a source the target does not depend on.
    let w = Variable::new(Tensor::new(&[[1.0f64, 2.0], [3.0, 4.0]]));
    let unused = Variable::new(Tensor::scalar(1.0f64));
    let tape = GradientTape::new();
    let y = w.read().matmul(&Tensor::new(&[[1.0f64], [-1.0]])).reshape([2]);
    let js = tape.jacobian(&y, &[&w, &unused]).unwrap();
    assert_eq!(js[0].as_ref().unwrap().shape(), &[2, 2, 2]);
    assert_eq!(js[0].as_ref().unwrap().to_vec::<f64>().unwrap(), vec![1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, -1.0]);
    assert!(js[1].is_none());
}

#[test]
fn batch_jacobian_is_the_per_example_block_of_the_jacobian() {
    let w = Tensor::new(&[[1.0f64, 2.0, 0.5], [3.0, -1.0, 2.0]]);
    let x = rand_f64(&[4, 2], 9);
    let f = |x: &Tensor, w: &Tensor| x.matmul(w).tanh(); // [4, 3]
    let tape = GradientTape::persistent();
    tape.watch(&x);
    let y = f(&x, &w);
    let bj = tape.batch_jacobian(&y, &x).unwrap();
    assert_eq!(bj.shape(), &[4, 3, 2]);
    let full = tape.jacobian_tensors(&y, &[&x]).unwrap().remove(0).unwrap(); // [4, 3, 4, 2]
    for b in 0..4 {
        let block = full.slice(&s![b as isize, .., b as isize, ..]);
        assert_close(&block, &bj.slice(&s![b as isize]), &format!("example {b}"));
    }
    let compiled = kiln::function(move |x: &Tensor| {
        let tape = GradientTape::new();
        tape.watch(x);
        tape.batch_jacobian(&f(x, &w), x)
    });
    assert_close(&bj, &compiled.call(&x).unwrap(), "compiled");
    assert!(GradientTape::new()
        .batch_jacobian(&Tensor::zeros(&[2, 3], DType::F64), &Tensor::zeros(&[3, 3], DType::F64))
        .is_err());
}

/// Integer powers as TF and numpy compute them: exact, wrapping on overflow, and an error
/// for a negative exponent (eagerly, and compiled where the kernel runs on the interpreter).
#[test]
fn integer_pow_is_exact_wraps_and_refuses_negative_exponents() {
    let base = Tensor::new(&[2i64, -3, 7, 0, 1]);
    let exp = Tensor::new(&[10i64, 3, 0, 0, 1_000_000_007]);
    assert_eq!(base.pow(&exp).to_vec::<i64>().unwrap(), vec![1024, -27, 1, 1, 1]);
    let big = Tensor::new(&[3i32]).pow(&Tensor::new(&[40i32])).to_vec::<i32>().unwrap();
    assert_eq!(big, vec![3i32.wrapping_pow(40)]);
    let e = Tensor::new(&[2i32]).try_pow(&Tensor::new(&[-1i32])).unwrap_err().to_string();
    assert!(e.contains("negative integer powers"), "{e}");
    assert_equivalent(
        |x: &[Tensor]| vec![x[0].pow(&x[1]), (&x[0] + 1.0).pow(&x[1].scalar_like(3.0))],
        &[base, exp],
        &[],
    );
    // Large: the eager path's compiled kernels leave integer powers to the interpreter too.
    let n = 1 << 16;
    let ones = Tensor::fill(&[n], 3.0, DType::I32);
    let twos = Tensor::fill(&[n], 2.0, DType::I32);
    assert!(ones.pow(&twos).to_vec::<i32>().unwrap().iter().all(|&v| v == 9));
    assert!(ones.try_pow(&(twos.neg())).is_err());
    let f = kiln::function(|x: &Tensor| x.try_pow(&x.neg()));
    assert!(f.call(&Tensor::new(&[2i64, 3])).is_err(), "compiled");
}

/// The fixed-size form runs traced too, equals `boolean_mask` padded (or cut) to its size,
/// and is differentiable.
#[test]
fn boolean_mask_sized_runs_traced_and_matches_the_eager_mask() {
    let t = Tensor::new(&[[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]);
    let m = Tensor::new(&[true, false, true, true]);
    let exact = t.boolean_mask(&m).unwrap();
    assert_eq!(t.boolean_mask_sized(&m, 3, 0.0).unwrap().to_vec::<f64>().unwrap(), exact.to_vec::<f64>().unwrap());
    let padded = t.boolean_mask_sized(&m, 5, -9.0).unwrap();
    assert_eq!(padded.shape(), &[5, 2]);
    assert_eq!(padded.slice(&s![3..]).to_vec::<f64>().unwrap(), vec![-9.0; 4]);
    assert_eq!(t.boolean_mask_sized(&m, 1, 0.0).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
    assert_equivalent(
        |x: &[Tensor]| vec![x[0].boolean_mask_sized(&x[0].greater(&x[0].scalar_like(0.0)), 3, 0.5).unwrap()],
        &[rand_f64(&[6], 12)],
        &[],
    );
    check_gradient(
        |x| x.boolean_mask_sized(&Tensor::new(&[false, true, true]), 4, 1.0).unwrap().sin(),
        &rand_f64(&[3, 2], 13),
    );
    assert!(t.boolean_mask_sized(&Tensor::new(&[true]), 2, 0.0).is_err());
}
