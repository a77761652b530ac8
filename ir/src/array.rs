//! Concrete values: a typed, contiguous, row-major buffer and its shape.
//! This is the buffer code of kiln (with `jit`'s arena and the matrix movers `matmul.rs`
//! and `transpose.rs`, the only places `unsafe` may live).

use std::sync::Arc;

use smallvec::SmallVec;

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::infer::TensorType;
use crate::shape::{checked_numel, numel, Shape};

/// The error for a refused allocation of `n` elements of `T`.
fn refused<T>(op: &'static str, n: usize, what: impl FnOnce() -> String) -> Error {
    Error::OutOfMemory { op, bytes: n.saturating_mul(std::mem::size_of::<T>()), what: what() }
}

/// An empty vector with room for `n` elements, or [`Error::OutOfMemory`] if the allocator
/// refuses (a size no machine has, or more than the OS will map) instead of an abort.
///
/// ```
/// let v: Vec<f32> = kiln_ir::array::try_with_capacity("demo", 10).unwrap();
/// assert!(v.capacity() >= 10);
/// assert!(kiln_ir::array::try_with_capacity::<f64>("demo", 1 << 60).is_err());
/// ```
pub fn try_with_capacity<T>(op: &'static str, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| refused::<T>(op, n, || format!("{n} elements")))?;
    Ok(v)
}

/// `n` zero elements from the allocator's zeroed memory (no pass writing zeros: fresh
/// pages from the OS are zero already), or [`Error::OutOfMemory`].
fn try_zeroed<T: Element>(op: &'static str, n: usize) -> Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| refused::<T>(op, n, || format!("{n} {}", T::DTYPE)))?;
    if layout.size() == 0 || size == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
    if p.is_null() {
        return Err(refused::<T>(op, n, || format!("{n} {}", T::DTYPE)));
    }
    // SAFETY: `p` comes from the global allocator with the layout of `[T; n]`, which is what
    // a `Vec<T>` of capacity `n` frees with; all-zero bytes are a valid value of every
    // element type (0.0, 0, false), so all `n` elements are initialized.
    Ok(unsafe { Vec::from_raw_parts(p, n, n) })
}

/// Asks the allocator for `bytes` and gives them straight back: an [`Error::OutOfMemory`]
/// naming `op` and `what` if it refuses. For code that then allocates through infallible
/// `Vec` functions (the interpreter's kernels), so that a size the OS will not map is an
/// error before any of it is written. Small sizes are not probed.
///
/// ```
/// assert!(kiln_ir::array::probe_alloc("demo", 1 << 20, || "a buffer".into()).is_ok());
/// assert!(kiln_ir::array::probe_alloc("demo", 1 << 62, || "a buffer".into()).is_err());
/// ```
pub fn probe_alloc(op: &'static str, bytes: usize, what: impl FnOnce() -> String) -> Result<()> {
    if bytes >= crate::recycle::MIN_BYTES {
        drop(try_with_capacity::<u8>(op, bytes).map_err(|_| Error::OutOfMemory { op, bytes, what: what() })?);
    }
    Ok(())
}

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
    #[inline]
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` elements of `dtype`, all zero (false). Panics if they cannot be allocated.
    pub fn zeros(dtype: DType, n: usize) -> Data {
        Data::try_zeros("zeros", dtype, n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `n` copies of `v` converted to `dtype` as a cast would. Panics if they cannot be
    /// allocated.
    pub fn filled(dtype: DType, n: usize, v: f64) -> Data {
        Data::try_filled("fill", dtype, n, v).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Data::zeros`], or [`Error::OutOfMemory`] naming `op` if the allocator refuses.
    ///
    /// ```
    /// use kiln_ir::{DType, Data};
    /// assert_eq!(Data::try_zeros("demo", DType::I32, 3).unwrap().len(), 3);
    /// assert!(Data::try_zeros("demo", DType::F64, 1 << 59).is_err());
    /// ```
    pub fn try_zeros(op: &'static str, dtype: DType, n: usize) -> Result<Data> {
        Ok(match dtype {
            DType::F32 => Data::F32(try_zeroed(op, n)?),
            DType::F64 => Data::F64(try_zeroed(op, n)?),
            DType::I32 => Data::I32(try_zeroed(op, n)?),
            DType::I64 => Data::I64(try_zeroed(op, n)?),
            DType::Bool => Data::Bool(try_zeroed(op, n)?),
        })
    }

    /// [`Data::filled`], or [`Error::OutOfMemory`] naming `op` if the allocator refuses.
    pub fn try_filled(op: &'static str, dtype: DType, n: usize, v: f64) -> Result<Data> {
        fn fill<T: Element>(op: &'static str, n: usize, x: T) -> Result<Data> {
            let mut out = try_with_capacity(op, n)?;
            out.resize(n, x);
            Ok(T::into_data(out))
        }
        if v == 0.0 && v.is_sign_positive() {
            return Data::try_zeros(op, dtype, n);
        }
        match dtype {
            DType::F32 => fill(op, n, v as f32),
            DType::F64 => fill(op, n, v),
            DType::I32 => fill(op, n, v as i32),
            DType::I64 => fill(op, n, v as i64),
            DType::Bool => fill(op, n, v != 0.0),
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
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        with_data!(self, v => {
            let bytes = std::mem::size_of_val(v.as_slice());
            // SAFETY: every element type is plain old data (bool is one byte holding 0 or 1),
            // the pointer is valid for `bytes` bytes and u8 has alignment 1.
            unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, bytes) }
        })
    }

    /// Elements `from..from + n`, copied.
    pub fn range(&self, from: usize, n: usize) -> Data {
        match self {
            Data::F32(v) => Data::F32(v[from..from + n].to_vec()),
            Data::F64(v) => Data::F64(v[from..from + n].to_vec()),
            Data::I32(v) => Data::I32(v[from..from + n].to_vec()),
            Data::I64(v) => Data::I64(v[from..from + n].to_vec()),
            Data::Bool(v) => Data::Bool(v[from..from + n].to_vec()),
        }
    }

    /// Copies `src`'s elements `from..from + n` over this data's `at..at + n`; `Err` if the
    /// dtypes differ. Panics if a range is out of bounds.
    ///
    /// ```
    /// use kiln_ir::Data;
    /// let mut d = Data::F32(vec![0.0; 4]);
    /// d.copy_range(1, &Data::F32(vec![1.0, 2.0, 3.0]), 1, 2).unwrap();
    /// assert_eq!(d.as_bytes(), Data::F32(vec![0.0, 2.0, 3.0, 0.0]).as_bytes());
    /// assert!(d.copy_range(0, &Data::I32(vec![1]), 0, 1).is_err());
    /// ```
    pub fn copy_range(&mut self, at: usize, src: &Data, from: usize, n: usize) -> Result<()> {
        match (self, src) {
            (Data::F32(d), Data::F32(s)) => d[at..at + n].copy_from_slice(&s[from..from + n]),
            (Data::F64(d), Data::F64(s)) => d[at..at + n].copy_from_slice(&s[from..from + n]),
            (Data::I32(d), Data::I32(s)) => d[at..at + n].copy_from_slice(&s[from..from + n]),
            (Data::I64(d), Data::I64(s)) => d[at..at + n].copy_from_slice(&s[from..from + n]),
            (Data::Bool(d), Data::Bool(s)) => d[at..at + n].copy_from_slice(&s[from..from + n]),
            (d, s) => return Err(Error::invalid("copy", format!("{} elements into {} data", s.dtype(), d.dtype()))),
        }
        Ok(())
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
        if checked_numel(shape) != Some(data.len()) {
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
        // One element: a plain `vec!`, not the fallible fill path (eager scalar operands
        // pass through here on every op).
        let data = match dtype {
            DType::F32 => Data::F32(vec![v as f32]),
            DType::F64 => Data::F64(vec![v]),
            DType::I32 => Data::I32(vec![v as i32]),
            DType::I64 => Data::I64(vec![v as i64]),
            DType::Bool => Data::Bool(vec![v != 0.0]),
        };
        Array { shape: Shape::new(), data: Arc::new(data) }
    }

    /// Zeros of `shape`; panics with the error of [`Array::try_zeros`].
    pub fn zeros(shape: &[usize], dtype: DType) -> Array {
        Array::try_zeros(shape, dtype).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `v` (converted as a cast would) everywhere; panics with the error of [`Array::try_full`].
    pub fn full(shape: &[usize], dtype: DType, v: f64) -> Array {
        Array::try_full(shape, dtype, v).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Zeros of `shape`: [`Error::Overflow`] if the shape's size overflows,
    /// [`Error::OutOfMemory`] if the allocator refuses it.
    ///
    /// ```
    /// use kiln_ir::{Array, DType};
    /// assert_eq!(Array::try_zeros(&[2, 2], DType::F32).unwrap().len(), 4);
    /// assert!(Array::try_zeros(&[(1 << 62) + 1, 4096], DType::F32).is_err());
    /// ```
    pub fn try_zeros(shape: &[usize], dtype: DType) -> Result<Array> {
        Array::try_full(shape, dtype, 0.0)
    }

    /// `v` (converted as a cast would) everywhere; errors as [`Array::try_zeros`].
    pub fn try_full(shape: &[usize], dtype: DType, v: f64) -> Result<Array> {
        let op = if v == 0.0 { "zeros" } else { "fill" };
        TensorType::new(dtype, shape).check_size(op)?;
        Ok(Array { shape: SmallVec::from_slice(shape), data: Arc::new(Data::try_filled(op, dtype, numel(shape), v)?) })
    }

    #[inline]
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The shared data, to keep a buffer alive or test uniqueness.
    pub fn data_arc(&self) -> &Arc<Data> {
        &self.data
    }

    /// Mutable data if this array is the only owner of its buffer (for in-place reuse).
    #[inline]
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
        if checked_numel(shape) != Some(self.len()) {
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
    /// Room for `n` elements; panics with the error of [`Uninit::try_new`].
    pub fn new(n: usize) -> Self {
        Uninit::try_new("alloc", n).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Room for `n` elements, or [`Error::OutOfMemory`] naming `op` if the allocator refuses.
    ///
    /// ```
    /// assert!(kiln_ir::Uninit::<f32>::try_new("demo", 8).is_ok());
    /// assert!(kiln_ir::Uninit::<f32>::try_new("demo", 1 << 61).is_err());
    /// ```
    pub fn try_new(op: &'static str, n: usize) -> Result<Self> {
        Ok(Uninit { v: crate::recycle::try_take(op, n)?, n })
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
