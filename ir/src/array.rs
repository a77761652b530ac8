//! Concrete values: a typed, contiguous, row-major buffer and its shape.
//! This is the buffer code of kiln (with `jit`'s arena, the only place `unsafe` may live).

use std::sync::Arc;

use smallvec::SmallVec;

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::shape::{numel, Shape};

/// Untyped storage: one vector per dtype.
#[derive(Clone, Debug)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

/// Runs `$body` with `$v` bound to the typed vector inside a [`Data`], whatever its dtype.
#[macro_export]
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::Data::F32($v) => $body,
            $crate::Data::F64($v) => $body,
            $crate::Data::I32($v) => $body,
            $crate::Data::I64($v) => $body,
            $crate::Data::Bool($v) => $body,
        }
    };
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` elements of `dtype`, all zero (false).
    pub fn zeros(dtype: DType, n: usize) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::F64 => Data::F64(vec![0.0; n]),
            DType::I32 => Data::I32(vec![0; n]),
            DType::I64 => Data::I64(vec![0; n]),
            DType::Bool => Data::Bool(vec![false; n]),
        }
    }

    /// `n` copies of `v` converted to `dtype` as a cast would.
    pub fn filled(dtype: DType, n: usize, v: f64) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![v as f32; n]),
            DType::F64 => Data::F64(vec![v; n]),
            DType::I32 => Data::I32(vec![v as i32; n]),
            DType::I64 => Data::I64(vec![v as i64; n]),
            DType::Bool => Data::Bool(vec![v != 0.0; n]),
        }
    }

    /// Element `i` as f64 (bool as 0/1). For printing and tests, not for kernels.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Data::F32(v) => v[i] as f64,
            Data::F64(v) => v[i],
            Data::I32(v) => v[i] as f64,
            Data::I64(v) => v[i] as f64,
            Data::Bool(v) => v[i] as u8 as f64,
        }
    }

    /// Raw bytes, little-endian as in memory on every platform kiln supports.
    pub fn as_bytes(&self) -> &[u8] {
        with_data!(self, v => {
            let bytes = std::mem::size_of_val(v.as_slice());
            // SAFETY: every element type is plain old data (bool is one byte holding 0 or 1),
            // the pointer is valid for `bytes` bytes and u8 has alignment 1.
            unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, bytes) }
        })
    }

    /// Rebuilds data from raw little-endian bytes; `Err` if the length is not a multiple
    /// of the element size or a bool byte is neither 0 nor 1.
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Result<Data> {
        let size = dtype.size();
        if !bytes.len().is_multiple_of(size) {
            return Err(Error::invalid(
                "from_bytes",
                format!("{} bytes is not a whole number of {dtype} elements", bytes.len()),
            ));
        }
        let chunks = bytes.chunks_exact(size);
        Ok(match dtype {
            DType::F32 => Data::F32(chunks.map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
            DType::F64 => Data::F64(chunks.map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()),
            DType::I32 => Data::I32(chunks.map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect()),
            DType::I64 => Data::I64(chunks.map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
            DType::Bool => {
                if let Some(b) = bytes.iter().find(|&&b| b > 1) {
                    return Err(Error::invalid("from_bytes", format!("byte {b} is not a bool")));
                }
                Data::Bool(bytes.iter().map(|&b| b == 1).collect())
            }
        })
    }
}

/// A concrete tensor value: shape plus shared, immutable data. Cloning is cheap (an `Arc`).
///
/// ```
/// use kiln_ir::{Array, DType};
/// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// assert_eq!(a.dtype(), DType::F32);
/// assert_eq!(a.shape(), &[2, 2]);
/// assert_eq!(a.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
/// assert!(Array::from_vec(vec![1i32, 2, 3], &[2, 2]).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Array {
    shape: Shape,
    data: Arc<Data>,
}

impl Array {
    /// Wraps data in a shape; `Err` if the lengths disagree.
    pub fn new(data: Data, shape: &[usize]) -> Result<Array> {
        if data.len() != numel(shape) {
            return Err(Error::Length { len: data.len(), shape: SmallVec::from_slice(shape) });
        }
        Ok(Array { shape: SmallVec::from_slice(shape), data: Arc::new(data) })
    }

    pub fn from_vec<T: Element>(v: Vec<T>, shape: &[usize]) -> Result<Array> {
        Array::new(T::into_data(v), shape)
    }

    pub fn scalar<T: Element>(v: T) -> Array {
        Array { shape: Shape::new(), data: Arc::new(T::into_data(vec![v])) }
    }

    /// A rank-0 array of `dtype` holding `v` converted as a cast would.
    pub fn scalar_f64(dtype: DType, v: f64) -> Array {
        Array { shape: Shape::new(), data: Arc::new(Data::filled(dtype, 1, v)) }
    }

    pub fn zeros(shape: &[usize], dtype: DType) -> Array {
        Array { shape: SmallVec::from_slice(shape), data: Arc::new(Data::zeros(dtype, numel(shape))) }
    }

    pub fn full(shape: &[usize], dtype: DType, v: f64) -> Array {
        Array { shape: SmallVec::from_slice(shape), data: Arc::new(Data::filled(dtype, numel(shape), v)) }
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The shared data, to keep a buffer alive or test uniqueness.
    pub fn data_arc(&self) -> &Arc<Data> {
        &self.data
    }

    /// Mutable data if this array is the only owner of its buffer (for in-place reuse).
    pub fn data_mut(&mut self) -> Option<&mut Data> {
        Arc::get_mut(&mut self.data)
    }

    /// The typed elements, or `None` if `T` is not this array's dtype.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::slice(&self.data)
    }

    /// The elements copied out; `Err` naming both dtypes if `T` does not match.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.as_slice::<T>().map(|s| s.to_vec()).ok_or(Error::WrongElement { expected: self.dtype(), found: T::DTYPE })
    }

    /// The same data seen with another shape of the same size (no copy).
    pub fn reshaped(&self, shape: &[usize]) -> Result<Array> {
        if numel(shape) != self.len() {
            return Err(Error::Reshape { from: self.shape.clone(), to: crate::shape::fmt_shape(shape) });
        }
        Ok(Array { shape: SmallVec::from_slice(shape), data: self.data.clone() })
    }

    /// Element `i` (row-major) as f64. For printing and tests, not for kernels.
    pub fn get_f64(&self, i: usize) -> f64 {
        self.data.get_f64(i)
    }

    /// Same dtype, shape and bits (so NaN equals NaN and -0.0 differs from 0.0).
    pub fn bits_eq(&self, other: &Array) -> bool {
        self.shape == other.shape
            && self.dtype() == other.dtype()
            && (Arc::ptr_eq(&self.data, &other.data) || self.data.as_bytes() == other.data.as_bytes())
    }
}

/// Builds a vector of `n` elements by writing each one exactly once, without zeroing it
/// first: large outputs are written by kernels, and zeroing 16 MB costs as much as a pass.
pub struct Uninit<T> {
    v: Vec<T>,
    n: usize,
}

impl<T: Element> Uninit<T> {
    pub fn new(n: usize) -> Self {
        Uninit { v: crate::recycle::take(n), n }
    }

    /// Where to write: valid for `n` elements of `T`.
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.v.as_mut_ptr()
    }

    /// Declares all `n` elements written.
    ///
    /// # Safety
    /// Every one of the `n` elements must have been written through [`Uninit::as_mut_ptr`]
    /// (for `bool`, with 0 or 1).
    pub unsafe fn assume_init(mut self) -> Vec<T> {
        // SAFETY: the caller guarantees all n elements are initialized; capacity >= n.
        unsafe { self.v.set_len(self.n) };
        self.v
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        crate::recycle::give(self);
    }
}
