//! The equivalence harness: a program runs eagerly (the reference) and through every
//! backend, and the results must agree within the tolerances stated here, in one place.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kiln::{Backend, DType, Tensor, Variable};

/// Tolerances of compiled results against the eager reference.
///
/// Integers, booleans and every shape/movement op must match exactly. Floats may differ
/// because the JIT evaluates transcendentals with polynomials accurate to a few ULP (bounds in
/// docs/JIT.md) and may sum in another order (vector accumulators); a chain of a few such ops
/// stays within a relative 2e-5 (f32, about 170 ULP: headroom for reductions over thousands of
/// elements) and 1e-12 (f64). The absolute part covers results that cancel to near zero.
pub fn tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F32 => (2e-5, 1e-6),
        DType::F64 => (1e-12, 1e-13),
        _ => (0.0, 0.0),
    }
}

/// Asserts `got` equals `want`: same dtype and shape, NaN where NaN, infinities equal, and
/// finite values within `tolerance(dtype)`.
#[track_caller]
pub fn assert_close(want: &Tensor, got: &Tensor, what: &str) {
    assert_eq!(want.dtype(), got.dtype(), "{what}: dtype");
    assert_eq!(want.shape(), got.shape(), "{what}: shape");
    let (rtol, atol) = tolerance(want.dtype());
    let w = want.array().unwrap();
    let g = got.array().unwrap();
    for i in 0..w.len() {
        let (a, b) = (w.get_f64(i), g.get_f64(i));
        let ok = if a.is_nan() {
            b.is_nan()
        } else if a.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= atol + rtol * a.abs()
        };
        assert!(ok, "{what}: element {i} differs: want {a:e}, got {b:e} (rtol {rtol}, atol {atol})");
    }
}

/// Runs `program` eagerly, then as a `kiln::function` with each backend, comparing outputs and
/// the final state of `vars` (each run starts from the same initial variable values). Also
/// asserts that a second call with the same signature does not run the closure again.
pub fn assert_equivalent<F>(program: F, inputs: &[Tensor], vars: &[Variable])
where
    F: Fn(&[Tensor]) -> Vec<Tensor> + Send + Sync + Clone + 'static,
{
    let initial: Vec<Tensor> = vars.iter().map(|v| Tensor::from(v.value())).collect();
    let reset = || {
        for (v, t) in vars.iter().zip(&initial) {
            v.assign(t).unwrap();
        }
    };
    let want = program(inputs);
    let want_vars: Vec<Tensor> = vars.iter().map(|v| Tensor::from(v.value())).collect();
    for backend in [Backend::Interpreter, Backend::Compiled] {
        reset();
        let runs = Arc::new(AtomicUsize::new(0));
        let (p, r) = (program.clone(), runs.clone());
        let f = kiln::function(move |args: &[Tensor]| {
            r.fetch_add(1, Ordering::SeqCst);
            p(args)
        })
        .with_backend(backend);
        let got = f.call(inputs).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(got.len(), want.len());
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_close(w, g, &format!("{backend:?} output {i}"));
        }
        for (i, (v, w)) in vars.iter().zip(&want_vars).enumerate() {
            assert_close(w, &Tensor::from(v.value()), &format!("{backend:?} variable {i}"));
        }
        reset();
        f.call(inputs).unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}: a same-signature call must not retrace");
    }
    reset();
    program(inputs);
}

/// Deterministic pseudo-random f32 values in [-2, 2) (no RNG crate needed).
pub fn rand_f32(shape: &[usize], seed: u64) -> Tensor {
    (Tensor::random_uniform(shape, DType::F32, seed) * 4.0) - 2.0
}

/// Deterministic pseudo-random f64 values in [-2, 2).
pub fn rand_f64(shape: &[usize], seed: u64) -> Tensor {
    (Tensor::random_uniform(shape, DType::F64, seed) * 4.0) - 2.0
}
