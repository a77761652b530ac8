//! Creating tensors: constants, ranges, identity matrices and seeded random values.

use kiln_ir::{Array, DType, Distribution, TensorType};

use super::or_panic;
use crate::trace::random;
use crate::{Error, Result, Tensor};

impl Tensor {
    /// Zeros of `shape` and `dtype`.
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::from_array(Array::zeros(shape, dtype))
    }

    /// Ones of `shape` and `dtype`.
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::fill(shape, 1.0, dtype)
    }

    /// `value` (converted to `dtype`) everywhere.
    ///
    /// ```
    /// let t = kiln::Tensor::fill(&[2], 7.0, kiln::DType::I32);
    /// assert_eq!(t.to_vec::<i32>().unwrap(), vec![7, 7]);
    /// ```
    pub fn fill(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        Tensor::from_array(Array::full(shape, dtype, value))
    }

    /// Zeros with this tensor's shape and dtype.
    pub fn zeros_like(&self) -> Tensor {
        Tensor::zeros(self.shape(), self.dtype())
    }

    /// Ones with this tensor's shape and dtype.
    pub fn ones_like(&self) -> Tensor {
        Tensor::ones(self.shape(), self.dtype())
    }

    /// `start, start+step, ...` below `stop` (numpy `arange`).
    ///
    /// ```
    /// let t = kiln::Tensor::arange(0.0, 5.0, 2.0, kiln::DType::I64);
    /// assert_eq!(t.to_vec::<i64>().unwrap(), vec![0, 2, 4]);
    /// ```
    #[track_caller]
    pub fn arange(start: f64, stop: f64, step: f64, dtype: DType) -> Tensor {
        or_panic(Tensor::try_arange(start, stop, step, dtype))
    }

    /// The fallible form of [`Tensor::arange`].
    pub fn try_arange(start: f64, stop: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !stop.is_finite() {
            return Err(Error::invalid("arange", format!("bad range {start}..{stop} step {step}")));
        }
        let n = ((stop - start) / step).ceil().max(0.0) as usize;
        let values: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        let data = match dtype {
            DType::F32 => kiln_ir::Data::F32(values.iter().map(|&v| v as f32).collect()),
            DType::F64 => kiln_ir::Data::F64(values),
            DType::I32 => kiln_ir::Data::I32(values.iter().map(|&v| v as i32).collect()),
            DType::I64 => kiln_ir::Data::I64(values.iter().map(|&v| v as i64).collect()),
            DType::Bool => return Err(Error::UnsupportedDType { op: "arange", dtype, expected: "a numeric dtype" }),
        };
        Ok(Tensor::from_array(Array::new(data, &[n])?))
    }

    /// The `n × n` identity matrix.
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        let mut v = vec![0.0; n * n];
        for i in 0..n {
            v[i * n + i] = 1.0;
        }
        let t = Tensor::from_array(Array::from_vec(v, &[n, n]).expect("n*n elements"));
        t.cast(dtype)
    }

    /// Uniform values in `[0, 1)`, determined by `seed` alone (the same on every machine).
    /// Inside a traced function this is a graph node, never folded to a constant.
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let a = Tensor::random_uniform(&[3], DType::F32, 7);
    /// assert_eq!(a.to_vec::<f32>().unwrap(), Tensor::random_uniform(&[3], DType::F32, 7).to_vec::<f32>().unwrap());
    /// ```
    #[track_caller]
    pub fn random_uniform(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
        or_panic(random(Distribution::Uniform, seed, TensorType::new(dtype, shape), None))
    }

    /// Standard normal values, determined by `seed` alone.
    #[track_caller]
    pub fn random_normal(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
        or_panic(random(Distribution::Normal, seed, TensorType::new(dtype, shape), None))
    }
}
