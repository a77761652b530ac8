//! Weight initializers: anything implementing [`Initializer`], including closures
//! `Fn(&[usize], DType) -> Tensor`. Built-ins follow Keras 3 (`VarianceScaling`), seeded.
//!
//! ```
//! use kiln::nn::initializers::{GlorotUniform, Initializer};
//! use kiln::DType;
//! let a = GlorotUniform::new(1).init(&[4, 3], DType::F32).unwrap();
//! let b = GlorotUniform::new(1).init(&[4, 3], DType::F32).unwrap();
//! assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap()); // seeded
//! let limit = (6.0f32 / 7.0).sqrt();
//! assert!(a.to_vec::<f32>().unwrap().iter().all(|v| v.abs() <= limit));
//! ```

use kiln_ir::DType;

use crate::models::ObjectConfig;
use crate::{Error, Result, Tensor};

/// Makes a layer's initial weights of a shape and dtype (run eagerly, outside any trace).
pub trait Initializer: Send + Sync {
    fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor>;

    /// The class name and config that rebuild this initializer, for whole-model saving.
    /// `None` (a closure's) saves no initializer: a loaded layer's weights come from the file,
    /// and the layer's default initializer stands in for re-initialization.
    fn get_config(&self) -> Option<ObjectConfig> {
        None
    }
}

impl<F: Fn(&[usize], DType) -> Tensor + Send + Sync> Initializer for F {
    fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let t = self(shape, dtype);
        if t.shape() != shape || t.dtype() != dtype {
            return Err(Error::invalid(
                "initializer",
                format!(
                    "asked for {}, the initializer returned {}",
                    kiln_ir::TensorType::new(dtype, shape),
                    t.tensor_type()
                ),
            ));
        }
        Ok(t)
    }
}

/// `(fan_in, fan_out)` of a weight shape, as Keras computes them: a kernel `[.., in, out]`
/// has `fan_in = in · receptive field`, `fan_out = out · receptive field`.
pub fn fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        n => {
            let rf: usize = shape[..n - 2].iter().product();
            ((shape[n - 2] * rf) as f64, (shape[n - 1] * rf) as f64)
        }
    }
}

/// All zeros.
#[derive(Clone, Copy, Debug, Default)]
pub struct Zeros;

impl Initializer for Zeros {
    fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        Ok(Tensor::zeros(shape, dtype))
    }
    fn get_config(&self) -> Option<ObjectConfig> {
        Some(ObjectConfig::new("Zeros"))
    }
}

/// All ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ones;

impl Initializer for Ones {
    fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        Ok(Tensor::ones(shape, dtype))
    }
    fn get_config(&self) -> Option<ObjectConfig> {
        Some(ObjectConfig::new("Ones"))
    }
}

/// Which fan `VarianceScaling` divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
    FanAvg,
}

/// The distribution of `VarianceScaling`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleDistribution {
    /// Normal truncated at two standard deviations, rescaled to keep the variance.
    TruncatedNormal,
    /// Uniform in `[-limit, limit]` with `limit = sqrt(3 · variance)`.
    Uniform,
}

/// Keras's `VarianceScaling`: variance `scale / fan`, the base of Glorot, He and LeCun.
#[derive(Clone, Copy, Debug)]
pub struct VarianceScaling {
    pub scale: f64,
    pub mode: FanMode,
    pub distribution: ScaleDistribution,
    pub seed: u64,
}

impl Initializer for VarianceScaling {
    fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        if !dtype.is_float() {
            return Err(Error::invalid("initializer", format!("VarianceScaling needs a float dtype, got {dtype}")));
        }
        let (fan_in, fan_out) = fans(shape);
        let fan = match self.mode {
            FanMode::FanIn => fan_in,
            FanMode::FanOut => fan_out,
            FanMode::FanAvg => (fan_in + fan_out) / 2.0,
        };
        let variance = self.scale / fan.max(1.0);
        let t = match self.distribution {
            ScaleDistribution::Uniform => {
                let limit = (3.0 * variance).sqrt();
                Tensor::random_uniform(shape, DType::F64, self.seed) * (2.0 * limit) - limit
            }
            ScaleDistribution::TruncatedNormal => {
                // 0.879... is the stddev of a unit normal truncated to [-2, 2] (Keras's constant).
                let stddev = variance.sqrt() / 0.879_625_661_034_239_8;
                truncated_normal(shape, self.seed)? * stddev
            }
        };
        t.try_cast(dtype)
    }
}

/// Unit normal values redrawn (from further seeded draws) until they lie within 2 stddevs.
fn truncated_normal(shape: &[usize], seed: u64) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut values = Tensor::random_normal(&[n], DType::F64, seed).to_vec::<f64>()?;
    let mut round = 1u64;
    while values.iter().any(|v| v.abs() > 2.0) {
        let fresh = Tensor::random_normal(&[n], DType::F64, seed.wrapping_add(round.wrapping_mul(0x9e37_79b9)))
            .to_vec::<f64>()?;
        for (v, f) in values.iter_mut().zip(fresh) {
            if v.abs() > 2.0 {
                *v = f;
            }
        }
        round += 1;
    }
    Tensor::from_vec(values, shape)
}

macro_rules! variance_scaling {
    ($($name:ident $scale:literal $mode:ident $dist:ident $doc:literal;)*) => {$(
        #[doc = $doc]
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            pub seed: u64,
        }
        impl $name {
            pub fn new(seed: u64) -> $name {
                $name { seed }
            }
        }
        impl Initializer for $name {
            fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
                VarianceScaling { scale: $scale, mode: FanMode::$mode, distribution: ScaleDistribution::$dist, seed: self.seed }
                    .init(shape, dtype)
            }
            fn get_config(&self) -> Option<ObjectConfig> {
                Some(ObjectConfig::new(stringify!($name)).with("seed", self.seed))
            }
        }
    )*};
}

variance_scaling! {
    GlorotUniform 1.0 FanAvg Uniform "Glorot (Xavier) uniform: limit `sqrt(6 / (fan_in + fan_out))`.";
    GlorotNormal 1.0 FanAvg TruncatedNormal "Glorot normal: truncated, stddev `sqrt(2 / (fan_in + fan_out))`.";
    HeUniform 2.0 FanIn Uniform "He uniform: limit `sqrt(6 / fan_in)`.";
    HeNormal 2.0 FanIn TruncatedNormal "He normal: truncated, stddev `sqrt(2 / fan_in)`.";
    LecunUniform 1.0 FanIn Uniform "LeCun uniform: limit `sqrt(3 / fan_in)`.";
    LecunNormal 1.0 FanIn TruncatedNormal "LeCun normal: truncated, stddev `sqrt(1 / fan_in)`.";
}

/// Keras `Orthogonal` (the recurrent kernels' default): for a shape flattened to
/// `[rows, cols]` (`cols` the last dim), the `Q` of a QR decomposition of a seeded unit-normal
/// `[max, min]` matrix, signs fixed so `R` has a positive diagonal, transposed when
/// `rows < cols`, times `gain`: orthonormal columns (or rows, for a wide shape).
///
/// ```
/// use kiln::nn::initializers::{Initializer, Orthogonal};
/// use kiln::DType;
/// let w = Orthogonal::new(3).init(&[4, 12], DType::F64).unwrap(); // a GRU's [units, 3·units]
/// let wwt = w.matmul(&w.t()).to_vec::<f64>().unwrap();
/// let eye = kiln::Tensor::eye(4, DType::F64).to_vec::<f64>().unwrap();
/// assert!(wwt.iter().zip(&eye).all(|(a, b)| (a - b).abs() < 1e-12)); // orthonormal rows
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Orthogonal {
    pub gain: f64,
    pub seed: u64,
}

impl Orthogonal {
    /// Gain 1, as Keras.
    pub fn new(seed: u64) -> Orthogonal {
        Orthogonal { gain: 1.0, seed }
    }
}

impl Initializer for Orthogonal {
    fn get_config(&self) -> Option<ObjectConfig> {
        Some(ObjectConfig::new("Orthogonal").with("gain", self.gain).with("seed", self.seed))
    }

    fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        if !dtype.is_float() || shape.len() < 2 {
            return Err(Error::invalid(
                "initializer",
                format!("Orthogonal needs a float dtype and rank >= 2, got {}", kiln_ir::TensorType::new(dtype, shape)),
            ));
        }
        let cols = shape[shape.len() - 1];
        let rows: usize = shape[..shape.len() - 1].iter().product();
        let (tall, narrow) = (rows.max(cols), rows.min(cols));
        let a = Tensor::random_normal(&[tall, narrow], DType::F64, self.seed).to_vec::<f64>()?;
        let q = Tensor::from_vec(orthonormal_columns(a, tall, narrow), &[tall, narrow])?;
        let q = if rows < cols { q.try_transpose([1, 0])? } else { q };
        let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        q.try_mul(&Tensor::scalar(self.gain))?.try_reshape(shape)?.try_cast(dtype)
    }
}

/// The `Q` of the QR decomposition of the row-major `[m, n]` matrix `a` (`m >= n`) whose `R`
/// has a positive diagonal, by modified Gram-Schmidt applied twice (one pass loses
/// orthogonality in proportion to the condition number; two restore it to rounding level).
/// A column that vanishes (probability zero for normal draws) is left zero.
fn orthonormal_columns(mut a: Vec<f64>, m: usize, n: usize) -> Vec<f64> {
    for j in 0..n {
        for _pass in 0..2 {
            for k in 0..j {
                let dot: f64 = (0..m).map(|i| a[i * n + j] * a[i * n + k]).sum();
                for i in 0..m {
                    a[i * n + j] -= dot * a[i * n + k];
                }
            }
        }
        let norm = (0..m).map(|i| a[i * n + j] * a[i * n + j]).sum::<f64>().sqrt();
        if norm > 0.0 {
            for i in 0..m {
                a[i * n + j] /= norm;
            }
        }
    }
    a
}
