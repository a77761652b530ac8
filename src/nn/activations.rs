//! Activation functions: any `Fn(&Tensor) -> Tensor` (see [`Activation`]); the built-ins
//! follow Keras 3's definitions.
//!
//! ```
//! use kiln::nn::activations;
//! use kiln::Tensor;
//! // The seed's custom activation, used like a built-in:
//! let my_softplus = |z: &Tensor| (z.exp() + 1.0).log();
//! let x = Tensor::new(&[-1.0f64, 0.0, 2.0]);
//! let a = my_softplus(&x).to_vec::<f64>().unwrap();
//! let b = activations::softplus(&x).to_vec::<f64>().unwrap();
//! assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-12));
//! ```

use std::sync::Arc;

use crate::Tensor;

/// A shared activation closure, as layers store it.
pub type Activation = Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>;

/// The identity (Keras `linear`).
pub fn linear(x: &Tensor) -> Tensor {
    x.clone()
}

/// `max(x, 0)`.
pub fn relu(x: &Tensor) -> Tensor {
    x.relu()
}

/// `1 / (1 + e^-x)`.
pub fn sigmoid(x: &Tensor) -> Tensor {
    x.sigmoid()
}

/// Hyperbolic tangent.
pub fn tanh(x: &Tensor) -> Tensor {
    x.tanh()
}

/// `ln(1 + e^x)`, without overflow.
pub fn softplus(x: &Tensor) -> Tensor {
    x.softplus()
}

/// `x` for `x > 0`, else `e^x - 1` (Keras `elu`, alpha 1).
pub fn elu(x: &Tensor) -> Tensor {
    elu_with(x, 1.0)
}

fn elu_with(x: &Tensor, alpha: f64) -> Tensor {
    // expm1 of min(x, 0), not of x: e^x of the untaken branch overflows above ~88.7 (f32) and
    // its gradient, inf times the select's 0, would be NaN.
    let negative_part = x.minimum(&x.scalar_like(0.0));
    x.greater(&x.scalar_like(0.0)).select(x, &(negative_part.expm1() * alpha))
}

/// Scaled ELU with the self-normalizing constants of Klambauer et al. (Keras `selu`).
pub fn selu(x: &Tensor) -> Tensor {
    const ALPHA: f64 = 1.673_263_242_354_377_3;
    const SCALE: f64 = 1.050_700_987_355_480_5;
    elu_with(x, ALPHA) * SCALE
}

/// Exact GELU, `x Φ(x) = 0.5 x (1 + erf(x / √2))` (Keras's default, `approximate=False`).
/// `erf` is Abramowitz–Stegun 7.1.26 (absolute error below 1.5e-7), built from tensor ops.
///
/// ```
/// let g = kiln::nn::activations::gelu(&kiln::Tensor::new(&[1.0f64])).to_vec::<f64>().unwrap()[0];
/// assert!((g - 0.841_344_746).abs() < 1e-6);
/// ```
pub fn gelu(x: &Tensor) -> Tensor {
    let e = erf(&(x * std::f64::consts::FRAC_1_SQRT_2));
    x * 0.5 * (e + 1.0)
}

/// The tanh approximation of GELU (Keras `gelu(approximate=True)`).
pub fn gelu_tanh(x: &Tensor) -> Tensor {
    let inner = (x + &(x * x * x * 0.044715)) * (2.0 / std::f64::consts::PI).sqrt();
    x * 0.5 * (inner.tanh() + 1.0)
}

/// Softmax over the last axis.
pub fn softmax(x: &Tensor) -> Tensor {
    x.softmax(-1)
}

/// The error function by Abramowitz–Stegun 7.1.26, odd-extended.
fn erf(x: &Tensor) -> Tensor {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [0.254_829_592, -0.284_496_736, 1.421_413_741, -1.453_152_027, 1.061_405_429];
    let ax = x.abs();
    let t = (&ax * P + 1.0).scalar_like(1.0) / (&ax * P + 1.0);
    let mut poly = &t * A[4];
    for a in A[..4].iter().rev() {
        poly = (poly + *a) * &t;
    }
    let y = 1.0 - poly * (-(&ax * &ax)).exp();
    x.sign() * y
}

/// A built-in by its Keras name (`"relu"`, `"gelu"`, ...), or `None`.
pub fn by_name(name: &str) -> Option<Activation> {
    BUILT_IN.iter().find(|(n, _)| *n == name).map(|&(_, f)| Arc::new(f) as Activation)
}

type BuiltIn = fn(&Tensor) -> Tensor;

/// The built-in activations by Keras name.
const BUILT_IN: &[(&str, BuiltIn)] = &[
    ("linear", linear),
    ("relu", relu),
    ("sigmoid", sigmoid),
    ("tanh", tanh),
    ("softplus", softplus),
    ("elu", elu),
    ("selu", selu),
    ("gelu", gelu),
    ("softmax", softmax),
];

/// The names [`by_name`] knows.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(n, _)| *n)
}
