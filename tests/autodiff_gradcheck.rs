//! Gradient check of every op's VJP by central finite differences in f64, and the same
//! gradients computed eagerly and inside a traced `kiln::function` (both backends).
//!
//! Each case is a function of float inputs (plus constant integer indices or labels). Its loss
//! is `sum(f(x) * w)` for a fixed random `w` of the output's shape (so every output element
//! has a different weight), and the tape's gradient, seeded with `w`, is compared with
//! `(L(x + eps·e_i) - L(x - eps·e_i)) / 2eps`, eps = 1e-6, for every input element i.
//!
//! Tolerance: |tape - numeric| <= 1e-6·|numeric| + 1e-7. In f64 the central difference has a
//! truncation error O(eps²·f''') ≈ 1e-12 and a rounding error ≈ |L|·1e-16/eps ≈ 1e-10·|L|
//! (|L| < 100 here), so the bound has about three orders of magnitude of headroom while a
//! wrong rule (a missing factor, a wrong sign, a transposed operand) misses it by far.
//! Inputs are drawn away from kinks (|x| ≥ 0.3 for abs/relu/sign, fractional parts in
//! [0.1, 0.4] for the roundings, positive bases for log/sqrt/pow).

mod common;

use kiln::{s, Backend, DType, GradientTape, Tensor};

type F = fn(&[Tensor]) -> Tensor;

const EPS: f64 = 1e-6;
const RTOL: f64 = 1e-6;
const ATOL: f64 = 1e-7;

fn uniform(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    Tensor::random_uniform(shape, DType::F64, seed) * (hi - lo) + lo
}

/// Magnitudes in [0.3, 1.5] with random signs: away from the kink at 0.
fn away(shape: &[usize], seed: u64) -> Tensor {
    let m = uniform(shape, seed, 0.3, 1.5);
    let negative = Tensor::random_uniform(shape, DType::F64, seed + 1000).less(&Tensor::scalar(0.5f64));
    negative.select(&-&m, &m)
}

/// Integers in -2..=3 plus fractions in [0.1, 0.4]: away from the steps of floor/ceil/round.
fn fractional(shape: &[usize], seed: u64) -> Tensor {
    let ints = (Tensor::random_uniform(shape, DType::F64, seed + 2000) * 6.0 - 2.0).floor();
    ints + uniform(shape, seed, 0.1, 0.4)
}

fn n(shape: &[usize], seed: u64) -> Tensor {
    uniform(shape, seed, -1.5, 1.5)
}

fn pos(shape: &[usize], seed: u64) -> Tensor {
    uniform(shape, seed, 0.5, 2.0)
}

fn loss(f: F, xs: &[Tensor], w: &Tensor) -> f64 {
    (f(xs) * w).sum_all().item().unwrap()
}

/// The tape's gradients (zeros where `None`), seeded with `w`.
fn tape_grads(f: F, xs: &[Tensor], w: &Tensor) -> Vec<Tensor> {
    let tape = GradientTape::new();
    for x in xs {
        tape.watch(x);
    }
    let y = f(xs);
    let refs: Vec<&Tensor> = xs.iter().collect();
    let grads = tape.gradient_tensors_with(&y, &refs, w).unwrap();
    grads.into_iter().zip(xs).map(|(g, x)| g.unwrap_or_else(|| x.zeros_like())).collect()
}

fn numeric_grad(f: F, xs: &[Tensor], k: usize, w: &Tensor) -> Vec<f64> {
    let base = xs[k].to_vec::<f64>().unwrap();
    let at = |i: usize, d: f64| {
        let mut v = base.clone();
        v[i] += d;
        let mut ys = xs.to_vec();
        ys[k] = Tensor::from_vec(v, xs[k].shape()).unwrap();
        loss(f, &ys, w)
    };
    (0..base.len()).map(|i| (at(i, EPS) - at(i, -EPS)) / (2.0 * EPS)).collect()
}

fn check(name: &str, f: F, xs: Vec<Tensor>) {
    let out = f(&xs);
    assert_eq!(out.dtype(), DType::F64, "{name}: cases are f64");
    let w = uniform(out.shape(), 99, -1.0, 1.0);
    let grads = tape_grads(f, &xs, &w);
    for (k, x) in xs.iter().enumerate() {
        if x.dtype() != DType::F64 {
            continue;
        }
        let got = grads[k].to_vec::<f64>().unwrap();
        let want = numeric_grad(f, &xs, k, &w);
        for (i, (g, n)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - n).abs() <= RTOL * n.abs() + ATOL,
                "{name}: d/dx{k}[{i}]: tape {g:e}, finite differences {n:e}"
            );
        }
    }
    check_traced(name, f, &xs, &w, &grads);
}

/// The tape inside a traced function gives the eager gradients.
fn check_traced(name: &str, f: F, xs: &[Tensor], w: &Tensor, eager: &[Tensor]) {
    for backend in [Backend::Interpreter, Backend::Compiled] {
        let w = w.clone();
        let traced = kiln::function(move |xs: &[Tensor]| tape_grads(f, xs, &w)).with_backend(backend);
        let got = traced.call(xs).unwrap_or_else(|e| panic!("{name} traced ({backend:?}): {e}"));
        for (k, (e, g)) in eager.iter().zip(&got).enumerate() {
            common::assert_close(e, g, &format!("{name}: traced ({backend:?}) gradient {k}"));
        }
    }
}

macro_rules! gradcheck {
    ($($test:ident: $f:expr, [$($x:expr),* $(,)?];)*) => {$(
        #[test]
        fn $test() {
            check(stringify!($test), $f, vec![$($x),*]);
        }
    )*};
}

const S: &[usize] = &[2, 3];

gradcheck! {
    // ---- unary ----
    neg: |x| x[0].neg(), [n(S, 1)];
    abs: |x| x[0].abs(), [away(S, 2)];
    exp: |x| x[0].exp(), [n(S, 3)];
    log: |x| x[0].log(), [pos(S, 4)];
    log1p: |x| x[0].log1p(), [uniform(S, 5, -0.5, 2.0)];
    expm1: |x| x[0].expm1(), [n(S, 6)];
    sqrt: |x| x[0].sqrt(), [pos(S, 7)];
    rsqrt: |x| x[0].rsqrt(), [pos(S, 8)];
    square: |x| x[0].square(), [n(S, 9)];
    tanh: |x| x[0].tanh(), [n(S, 10)];
    sigmoid: |x| x[0].sigmoid(), [n(S, 11)];
    relu: |x| x[0].relu(), [away(S, 12)];
    softplus: |x| x[0].softplus(), [uniform(S, 13, -4.0, 4.0)];
    sin: |x| x[0].sin(), [n(S, 14)];
    cos: |x| x[0].cos(), [n(S, 15)];
    sign: |x| x[0].sign() * &x[0], [away(S, 16)];
    floor: |x| x[0].floor() + &x[0], [fractional(S, 17)];
    ceil: |x| x[0].ceil() * &x[0], [fractional(S, 18)];
    round: |x| x[0].round() * &x[0].square(), [fractional(S, 19)];
    logical_not: |x| x[0].greater(&x[0].scalar_like(0.0)).logical_not().select(&x[0].exp(), &x[0]), [away(S, 20)];
    // ---- binary, with broadcasting ----
    add: |x| &x[0] + &x[1], [n(S, 21), n(&[3], 22)];
    sub: |x| &x[0] - &x[1], [n(&[2, 1], 23), n(S, 24)];
    mul: |x| &x[0] * &x[1], [n(S, 25), n(&[3], 26)];
    mul_same_operand: |x| &x[0] * &x[0], [n(S, 27)];
    div: |x| &x[0] / &x[1], [n(S, 28), away(&[2, 1], 29)];
    pow: |x| x[0].pow(&x[1]), [pos(S, 30), n(&[2, 1], 31)];
    pow_literal: |x| x[0].powf(3.0), [n(S, 32)];
    maximum: |x| x[0].maximum(&x[1]), [n(S, 33), n(&[3], 34)];
    minimum: |x| x[0].minimum(&x[1]), [n(&[2, 1], 35), n(S, 36)];
    comparisons: |x| {
        let (a, b) = (&x[0], &x[1]);
        let masks = [a.equal(b), a.not_equal(b), a.less(b), a.less_equal(b), a.greater(b), a.greater_equal(b)];
        masks.iter().map(|m| m.select(&(a * 2.0), &b.square())).fold(a.zeros_like(), |acc, t| acc + t)
    }, [n(S, 37), n(S, 38)];
    logical_and_or: |x| {
        let (p, q) = (x[0].greater(&x[0].scalar_like(0.0)), x[1].less(&x[1].scalar_like(0.0)));
        p.logical_and(&q).select(&x[0], &x[1].exp()) + p.logical_or(&q).select(&x[1], &x[0].sin())
    }, [away(S, 39), away(S, 40)];
    // ---- select, cast ----
    select: |x| Tensor::new(&[[true], [false]]).select(&x[0], &x[1]), [n(S, 41), n(&[3], 42)];
    cast_float: |x| x[0].cast(DType::F64) * 3.0, [n(S, 43)];
    cast_to_int_cuts: |x| x[0].cast(DType::I64).cast(DType::F64) * &x[0], [fractional(S, 44)];
    // ---- shape and movement ----
    broadcast_to: |x| x[0].broadcast_to(&[4, 2, 3]) * &x[1], [n(&[2, 1], 45), n(&[4, 2, 3], 46)];
    reshape: |x| x[0].reshape(&[3, 2]).square(), [n(S, 47)];
    transpose: |x| x[0].transpose(&[2, 0, 1]).exp(), [n(&[2, 3, 4], 48)];
    slice: |x| x[0].slice(&s![1.., ..;-2]).square(), [n(&[3, 4], 49)];
    slice_index: |x| x[0].slice(&s![-1, 1..3]).exp(), [n(&[3, 4], 50)];
    concat: |x| Tensor::concat(&[&x[0], &x[1].square(), &x[2]], 1), [n(S, 51), n(&[2, 1], 52), n(&[2, 4], 53)];
    stack: |x| Tensor::stack(&[&x[0], &x[1].exp()], 0), [n(S, 54), n(S, 55)];
    gather: |x| x[0].gather(&Tensor::new(&[2i64, 0, 2]), 0).square(), [n(&[3, 4], 56)];
    gather_2d_indices: |x| x[0].gather(&Tensor::new(&[[1i32, 1], [0, 3]]), 1).sin(), [n(&[3, 4], 57)];
    // ---- reductions ----
    sum: |x| x[0].sum(&[1], false).square(), [n(&[2, 3, 2], 58)];
    sum_all: |x| x[0].sum_all().exp(), [n(S, 59)];
    mean_keepdims: |x| x[0].mean(&[0, 2], true).square(), [n(&[2, 3, 2], 60)];
    max: |x| x[0].max(&[1], false).square(), [n(&[2, 3, 2], 61)];
    min: |x| x[0].min(&[0], true).exp(), [n(S, 62)];
    max_all: |x| x[0].max_all() * 3.0, [n(S, 63)];
    prod: |x| x[0].prod(&[1], false), [n(&[3, 4], 64)];
    prod_with_zeros: |x| x[0].prod(&[1], false), [Tensor::new(&[[0.0f64, 1.5, -2.0], [0.0, 0.0, 3.0], [1.2, -0.7, 0.9]])];
    argmax_cuts: |x| x[0].argmax(1, false).cast(DType::F64).sum_all() * x[0].sum_all(), [n(S, 65)];
    argmin_cuts: |x| x[0].argmin(0, true).cast(DType::F64) + &x[0], [n(S, 66)];
    // ---- linear algebra ----
    matmul: |x| x[0].matmul(&x[1]), [n(&[3, 4], 67), n(&[4, 2], 68)];
    matmul_batched_broadcast: |x| x[0].matmul(&x[1]), [n(&[2, 3, 4], 69), n(&[4, 5], 70)];
    matmul_batch_of_one: |x| x[0].matmul(&x[1]), [n(&[1, 3, 4], 71), n(&[2, 4, 2], 72)];
    // ---- random: a constant for the tape ----
    random: |x| &x[0] * &Tensor::random_normal(&[2, 3], DType::F64, 7), [n(S, 73)];
    // ---- composites and losses ----
    softmax: |x| x[0].softmax(-1), [n(&[3, 4], 74)];
    log_softmax: |x| x[0].log_softmax(0), [n(&[3, 4], 75)];
    logsumexp: |x| x[0].logsumexp(&[1], false), [n(&[3, 4], 76)];
    softmax_cross_entropy: |x| kiln::softmax_cross_entropy_with_logits(&x[0], &x[1].softmax(-1)).unwrap(), [n(&[3, 4], 77), n(&[3, 4], 78)];
    sparse_softmax_cross_entropy: |x| kiln::sparse_softmax_cross_entropy_with_logits(&x[0], &Tensor::new(&[3i64, 0, 1])).unwrap(), [n(&[3, 4], 79)];
    custom_gradient_softplus: |x| kiln::custom_gradient(&[&x[0]], |a| {
        let z = a[0].clone();
        ((z.exp() + 1.0).log(), move |dy: &Tensor| vec![dy * (1.0 - 1.0 / (z.exp() + 1.0))])
    }), [n(S, 80)];
}

/// The gradient of `g(x) = sum(inner(x) * w)` as a function of x, for second-order checks:
/// differentiating it runs the VJPs of the VJPs (slice → unslice → slice, gather →
/// scatter_add → gather, the max reduction's masks, matmul's transposes).
fn inner_grad(inner: fn(&Tensor) -> Tensor, x: &Tensor) -> Tensor {
    let tape = GradientTape::new();
    tape.watch(x);
    let y = inner(x);
    let w = uniform(y.shape(), 123, -1.0, 1.0);
    (tape.gradient_tensors(&(y * w).sum_all(), &[x]).unwrap().remove(0).unwrap()).sin()
}

gradcheck! {
    second_order_slice_unslice: |x| inner_grad(|x| x.slice(&s![1.., ..;-2]).square(), &x[0]), [n(&[3, 4], 81)];
    second_order_gather_scatter_add: |x| inner_grad(|x| x.gather(&Tensor::new(&[2i64, 0, 2]), 1).powf(3.0), &x[0]), [n(&[2, 3], 82)];
    second_order_concat: |x| inner_grad(|x| Tensor::concat(&[x, &x.square()], 0).exp(), &x[0]), [n(S, 83)];
    second_order_matmul: |x| inner_grad(|x| x.matmul(&x.t()).tanh(), &x[0]), [n(&[3, 2], 84)];
    second_order_reductions: |x| inner_grad(|x| x.max(&[1], false).exp() + x.mean_all() * x.prod_all(), &x[0]), [n(S, 85)];
    second_order_elementwise: |x| inner_grad(|x| x.sigmoid() * x.softplus() + x.abs().sqrt() - (x.square() + 1.0).rsqrt(), &x[0]), [away(S, 86)];
}

/// f32 → f64 → f32 casts pass the gradient back in the operand's dtype, exactly.
#[test]
fn cast_between_floats_passes_the_gradient_in_the_operand_dtype() {
    let x = Tensor::new(&[1.5f32, -2.0]);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = x.cast(DType::F64) * 4.0;
    let g = tape.gradient_tensors_with(&y, &[&x], &Tensor::new(&[1.0f64, 0.5])).unwrap().remove(0).unwrap();
    assert_eq!(g.dtype(), DType::F32);
    assert_eq!(g.to_vec::<f32>().unwrap(), vec![4.0, 2.0]);
}

/// Ties follow TF: `maximum`/`minimum` give the whole gradient to the first operand; the
/// `max`/`min` reductions split it equally among the tied elements; relu'(0) = abs'(0) = 0.
#[test]
fn tie_conventions() {
    let a = Tensor::new(&[1.0f64, 2.0, 2.0]);
    let b = Tensor::new(&[1.0f64, 0.0, 3.0]);
    let tape = GradientTape::persistent();
    tape.watch(&a);
    tape.watch(&b);
    let g = |y: &Tensor| -> Vec<Vec<f64>> {
        tape.gradient_tensors(y, &[&a, &b])
            .unwrap()
            .into_iter()
            .map(|g| g.map_or(vec![0.0; 3], |g| g.to_vec::<f64>().unwrap()))
            .collect()
    };
    assert_eq!(g(&a.maximum(&b)), vec![vec![1.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]]);
    assert_eq!(g(&a.minimum(&b)), vec![vec![1.0, 0.0, 1.0], vec![0.0, 1.0, 0.0]]);
    assert_eq!(g(&a.max_all())[0], vec![0.0, 0.5, 0.5]);
    assert_eq!(g(&b.min_all())[1], vec![0.0, 1.0, 0.0]);
    let z = Tensor::new(&[0.0f64, -0.0, 1.0]);
    tape.watch(&z);
    let gz = |y: &Tensor| tape.gradient_tensors(y, &[&z]).unwrap().remove(0).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(gz(&z.relu()), vec![0.0, 0.0, 1.0]);
    assert_eq!(gz(&z.abs()), vec![0.0, 0.0, 1.0]);
}

/// A `bool` scalar from data, so that a traced `cond` has a symbolic predicate.
fn positive(x: &Tensor) -> Tensor {
    x.sum_all().greater(&Tensor::scalar(0.0f64))
}

/// An RNN-like scan: carry `h`, per-step output `h^2`, a captured weight `w`.
fn rnn(xs: &Tensor, h0: &Tensor, w: &Tensor) -> Tensor {
    let (c, ys) = kiln::scan(
        |c: &[Tensor], x: &[Tensor]| {
            let h = (&c[0] * &x[0] + w).tanh();
            Ok((vec![h.clone()], vec![h.square()]))
        },
        std::slice::from_ref(h0),
        std::slice::from_ref(xs),
    )
    .unwrap();
    &ys[0] + &c[0]
}

// Control flow: eager (Rust control flow under the tape) against finite differences, and
// traced (the region ops' own VJPs) against eager, on both backends.
gradcheck! {
    cond_taken_true: |x| kiln::cond(&positive(&x[0]), || Ok(x[0].tanh() * &x[1]), || Ok(x[1].exp())).unwrap(),
        [pos(S, 90), n(S, 91)];
    cond_taken_false: |x| kiln::cond(&positive(&x[0]), || Ok(x[0].tanh() * &x[1]), || Ok(x[1].exp() * &x[0])).unwrap(),
        [-pos(S, 92), n(S, 93)];
    switch_case_symbolic_index: |x| kiln::switch_case(
        &positive(&x[0]).cast(DType::I32),
        &[&|| Ok(x[0].sin()), &|| Ok(x[0].cos() * &x[1]), &|| Ok(x[1].clone())],
    )
    .unwrap(), [pos(S, 94), n(S, 95)];
    scan_rnn: |x| rnn(&x[0], &x[1], &x[2]), [n(&[4, 3], 96), n(&[3], 97), n(&[3], 98)];
    fori_loop_with_index: |x| kiln::fori_loop(0, 3, |i: &Tensor, v: &[Tensor]| {
        Ok(vec![&v[0] * &x[1] + v[0].sin() * i.cast(DType::F64)])
    }, &[x[0].clone()]).unwrap().remove(0), [n(S, 99), n(S, 100)];
    while_loop_counted: |x| kiln::while_loop(
        |v: &[Tensor]| Ok(v[1].less(&Tensor::scalar(3i64))),
        |v: &[Tensor]| Ok(vec![v[0].tanh() * &x[1] + &v[0], &v[1] + &Tensor::scalar(1i64)]),
        &[x[0].clone(), Tensor::scalar(0i64)],
    ).unwrap().remove(0), [n(S, 101), n(S, 102)];
    second_order_fori_loop: |x| inner_grad(|x| {
        kiln::fori_loop(0, 3, |_i: &Tensor, v: &[Tensor]| Ok(vec![(&v[0] * x).sin() + x]), std::slice::from_ref(x)).unwrap().remove(0)
    }, &x[0]), [n(S, 103)];
    second_order_scan: |x| inner_grad(|x| rnn(&x.reshape([2, 3]), &x.slice(&s![0]), &x.slice(&s![1])), &x[0]), [n(&[2, 3], 104)];
}
