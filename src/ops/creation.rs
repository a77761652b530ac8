//! Creating tensors: constants, ranges, identity matrices and seeded random values.

use kiln_ir::array::try_with_capacity;
use kiln_ir::{with_data, Array, DType, Data, Distribution, Element, TensorType};

use super::or_panic;
use crate::context::random;
use crate::{Error, Result, Tensor};

impl Tensor {
    /// Zeros of `shape` and `dtype`; panics with the error of [`Tensor::try_zeros`].
    #[track_caller]
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        or_panic(Tensor::try_zeros(shape, dtype))
    }

    /// Zeros of `shape` and `dtype`, or an `Err` if the shape's size overflows
    /// ([`Error::Overflow`]) or the allocator refuses it ([`Error::OutOfMemory`]).
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// assert_eq!(Tensor::try_zeros(&[2, 3], DType::F32).unwrap().shape(), &[2, 3]);
    /// assert!(Tensor::try_zeros(&[(1 << 62) + 1, 4096], DType::F32).is_err());
    /// ```
    pub fn try_zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Ok(Tensor::from_array(Array::try_zeros(shape, dtype)?))
    }

    /// Ones of `shape` and `dtype`.
    #[track_caller]
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::fill(shape, 1.0, dtype)
    }

    /// `value` (converted to `dtype`) everywhere; panics with the error of [`Tensor::try_fill`].
    ///
    /// ```
    /// let t = kiln::Tensor::fill(&[2], 7.0, kiln::DType::I32);
    /// assert_eq!(t.to_vec::<i32>().unwrap(), vec![7, 7]);
    /// ```
    #[track_caller]
    pub fn fill(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        or_panic(Tensor::try_fill(shape, value, dtype))
    }

    /// The fallible form of [`Tensor::fill`]: errors as [`Tensor::try_zeros`].
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// assert!(Tensor::try_fill(&[1 << 32, 1 << 32], 1.0, DType::I32).is_err());
    /// ```
    pub fn try_fill(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        Ok(Tensor::from_array(Array::try_full(shape, dtype, value)?))
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

    /// The fallible form of [`Tensor::arange`]; a range of more elements than fit in
    /// memory is an `Err`.
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// assert!(Tensor::try_arange(0.0, 1e19, 1.0, DType::F32).is_err());
    /// ```
    pub fn try_arange(start: f64, stop: f64, step: f64, dtype: DType) -> Result<Tensor> {
        fn values<T: Element>(n: usize, start: f64, step: f64) -> Result<Data> {
            let mut v = try_with_capacity("arange", n)?;
            v.extend((0..n).map(|i| T::from_f64(start + i as f64 * step)));
            Ok(T::into_data(v))
        }
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !stop.is_finite() {
            return Err(Error::invalid("arange", format!("bad range {start}..{stop} step {step}")));
        }
        let count = ((stop - start) / step).ceil().max(0.0);
        // 2^64 as f64 is the first count a usize cannot hold (`as` would saturate it).
        if count >= u64::MAX as f64 {
            return Err(Error::Overflow { op: "arange", what: format!("a range of {count} elements") });
        }
        let n = count as usize;
        TensorType::new(dtype, &[n]).check_size("arange")?;
        let data = match dtype {
            DType::F32 => values::<f32>(n, start, step)?,
            DType::F64 => values::<f64>(n, start, step)?,
            DType::I32 => values::<i32>(n, start, step)?,
            DType::I64 => values::<i64>(n, start, step)?,
            DType::Bool => return Err(Error::UnsupportedDType { op: "arange", dtype, expected: "a numeric dtype" }),
        };
        Ok(Tensor::from_array(Array::new(data, &[n])?))
    }

    /// The `n × n` identity matrix; panics with the error of [`Tensor::try_eye`].
    #[track_caller]
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        or_panic(Tensor::try_eye(n, dtype))
    }

    /// The `n × n` identity matrix, or an `Err` if `n × n` elements overflow or cannot be
    /// allocated.
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// assert_eq!(Tensor::try_eye(2, DType::I32).unwrap().to_vec::<i32>().unwrap(), vec![1, 0, 0, 1]);
    /// assert!(Tensor::try_eye(1 << 32, DType::F32).is_err());
    /// ```
    pub fn try_eye(n: usize, dtype: DType) -> Result<Tensor> {
        fn diagonal<T: Element>(v: &mut [T], n: usize) {
            for i in 0..n {
                v[i * n + i] = T::from_f64(1.0);
            }
        }
        TensorType::new(dtype, &[n, n]).check_size("eye")?;
        let mut data = Data::try_zeros("eye", dtype, n * n)?;
        with_data!(&mut data, v => diagonal(v, n));
        Ok(Tensor::from_array(Array::new(data, &[n, n])?))
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
