//! Gradients of kiln's own rules and composites stay finite where the math is finite: no
//! `inf · 0` from the untaken branch of a `select`, no overflowing intermediate where the
//! result fits, no kink convention leaking into a smooth function (docs/AUTODIFF.md, "Safe
//! forms"). Each case runs eagerly and inside a traced `kiln::function` on both backends.

mod common;

use kiln::losses::{BinaryCrossentropy, Loss};
use kiln::nn::constraints::Constraint;
use kiln::nn::{activations, constraints};
use kiln::{Backend, GradientTape, Tensor};

type F = fn(&[Tensor]) -> Tensor;

/// The gradients of `sum(f(xs))` with respect to every input.
fn grads(f: F, xs: &[Tensor]) -> Vec<Tensor> {
    let tape = GradientTape::new();
    for x in xs {
        tape.watch(x);
    }
    let y = f(xs);
    let refs: Vec<&Tensor> = xs.iter().collect();
    let g = tape.gradient_tensors(&y.sum_all(), &refs).unwrap();
    g.into_iter().zip(xs).map(|(g, x)| g.unwrap_or_else(|| x.zeros_like())).collect()
}

/// The eager gradients as f64s, after checking that both traced backends agree with them.
fn grads_everywhere(f: F, xs: &[Tensor]) -> Vec<Vec<f64>> {
    let eager = grads(f, xs);
    for backend in [Backend::Interpreter, Backend::Compiled] {
        let traced = kiln::function(move |xs: &[Tensor]| grads(f, xs)).with_backend(backend);
        let got = traced.call(xs).unwrap();
        for (k, (e, g)) in eager.iter().zip(&got).enumerate() {
            common::assert_close(e, g, &format!("{backend:?} gradient {k}"));
        }
    }
    eager.iter().map(|g| g.cast(kiln::DType::F64).to_vec::<f64>().unwrap()).collect()
}

fn assert_near(got: &[f64], want: &[f64], rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= rtol * w.abs() + 1e-30, "{what}[{i}]: got {g:e}, want {w:e}");
    }
}

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// The case: `elu'` at `[1, 50, 89, 100]` was `[1, 1, nan, nan]` in f32 (e^89 = inf
/// in the untaken branch met a zero gradient).
#[test]
fn elu_and_selu_are_finite_above_the_exp_overflow() {
    let xs = [1.0f32, 50.0, 89.0, 100.0, 0.0, -1.0, -100.0];
    let x = Tensor::new(&xs);
    let e = |x: f64| x.exp();
    let elu_want = [1.0, 1.0, 1.0, 1.0, 1.0, e(-1.0), e(-100.0)];
    assert_near(&grads_everywhere(|x| activations::elu(&x[0]), std::slice::from_ref(&x))[0], &elu_want, 1e-6, "elu'");
    let selu_want: Vec<f64> =
        xs.iter().map(|&v| if v > 0.0 { SELU_SCALE } else { SELU_SCALE * SELU_ALPHA * e(v as f64) }).collect();
    assert_near(
        &grads_everywhere(|x| activations::selu(&x[0]), std::slice::from_ref(&x))[0],
        &selu_want,
        1e-6,
        "selu'",
    );
    let forward = activations::selu(&x).to_vec::<f32>().unwrap();
    assert!(forward.iter().all(|v| v.is_finite()), "selu {forward:?}");
    // f64 overflows e^x above 709.
    let big = Tensor::new(&[800.0f64, -800.0]);
    assert_eq!(grads_everywhere(|x| activations::elu(&x[0]), &[big])[0], vec![1.0, 0.0]);
}

/// d/dx x⁰ = 0 everywhere, also at x = 0 where `0 · 0⁻¹` is NaN; for a tensor exponent too.
#[test]
fn pow_with_exponent_zero_has_gradient_zero_at_zero() {
    let x = Tensor::new(&[0.0f32, -0.0, 2.0]);
    assert_eq!(grads_everywhere(|x| x[0].powf(0.0), std::slice::from_ref(&x))[0], vec![0.0, 0.0, 0.0]);
    let p = Tensor::new(&[0.0f32, 0.0, 0.0]);
    let g = grads_everywhere(|x| x[0].pow(&x[1]), &[x, p]);
    assert_eq!(g[0], vec![0.0, 0.0, 0.0]);
    assert_near(&g[1], &[0.0, 0.0, 2f64.ln()], 1e-6, "d/dp");
}

/// `d/dp xᵖ = xᵖ ln x` (0 for x <= 0): its own gradient in x must not differentiate the untaken
/// `ln 0` (NaN from `0 / 0`). d/dx (x³ ln x) = 3x² ln x + x², 0 at x = 0.
#[test]
fn pow_exponent_gradient_differentiates_at_a_zero_base() {
    let f: F = |xs| {
        let (x, p) = (&xs[0], &xs[1]);
        let inner = GradientTape::new();
        inner.watch(p);
        let y = x.pow(p);
        inner.gradient_tensors(&y.sum_all(), &[p]).unwrap().remove(0).unwrap()
    };
    let x = Tensor::new(&[0.0f64, 2.0]);
    let p = Tensor::new(&[3.0f64, 3.0]);
    let g = grads_everywhere(f, &[x, p]);
    assert_near(&g[0], &[0.0, 12.0 * 2f64.ln() + 4.0], 1e-12, "d/dx d/dp");
}

/// expm1' = eˣ, not `expm1(x) + 1`, which rounds to 0 for x below about -17 in f32.
#[test]
fn expm1_gradient_keeps_its_relative_accuracy_for_negative_inputs() {
    let x = Tensor::new(&[-20.0f32, -30.0, 1.0]);
    let want: Vec<f64> = [-20.0f64, -30.0, 1.0].iter().map(|v| v.exp()).collect();
    assert_near(&grads_everywhere(|x| x[0].expm1(), &[x])[0], &want, 1e-5, "expm1'");
}

/// rsqrt' = -½ y³: computing y³ first overflows f32 where the result fits (y = 7.5e12).
#[test]
fn rsqrt_gradient_does_not_overflow_in_an_intermediate() {
    let x = Tensor::new(&[1.78e-26f32]);
    let got = grads_everywhere(|x| x[0].rsqrt(), &[x])[0][0];
    let want = -0.5 * (1.78e-26f32 as f64).powf(-1.5);
    assert!(want > -f32::MAX as f64 && (got - want).abs() <= 1e-5 * want.abs(), "rsqrt' {got:e}, want {want:e}");
}

/// Binary cross-entropy on logits is smooth at logit 0: its gradient is `sigmoid(x) - z`, also
/// at x = 0 (where relu'(0) = abs'(0) = 0 used to drop the 0.5), and finite at ±1000.
#[test]
fn binary_crossentropy_from_logits_gradient_at_zero_and_large_logits() {
    let f: F = |x| BinaryCrossentropy::new(true).call(&x[1], &x[0]).unwrap();
    let logits = Tensor::new(&[[0.0f32, -0.0, 1000.0, -1000.0, 2.0]]);
    let labels = Tensor::new(&[[1.0f32, 0.0, 0.0, 1.0, 0.25]]);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want: Vec<f64> = [(0.0, 1.0), (0.0, 0.0), (1000.0, 0.0), (-1000.0, 1.0), (2.0, 0.25)]
        .iter()
        .map(|&(x, z)| (sig(x) - z) / 5.0)
        .collect();
    assert_near(&grads_everywhere(f, &[logits, labels])[0], &want, 1e-6, "bce'");
}

/// `max_norm` leaves a zero column at zero; its gradient there is 0, not NaN from √0's inf.
#[test]
fn max_norm_gradient_at_a_zero_column() {
    let w = Tensor::new(&[[0.0f32, 3.0], [0.0, 4.0]]);
    let g = grads_everywhere(|x| constraints::max_norm(1.0, 0).call(&x[0]), &[w]);
    assert!(g[0].iter().all(|v| v.is_finite()), "{:?}", g[0]);
    assert_eq!(g[0][0], 0.0);
}
