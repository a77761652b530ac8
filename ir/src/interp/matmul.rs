//! `MatMul`: `[..., m, k] @ [..., k, n]` with numpy-broadcast batch dims, by the one shape
//! rule and gemm call of `crate::matmul` for floats (accumulating in the element type), and
//! a plain triple loop with wrapping arithmetic for integers.

use crate::array::{Array, Data, Uninit};
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::matmul::{gemm_batched, GemmScalar, MatMulShape, ParFor};
use crate::shape::Shape;

use super::scalar::Num;

/// `a @ b` by gemm, on all cores for large products (on `par`'s threads, else gemm's own),
/// into a buffer gemm writes whole (no zeroing first).
fn by_gemm<T: GemmScalar + Num + Element>(s: &MatMulShape, a: &[T], b: &[T], par: Option<ParFor>) -> Result<Vec<T>> {
    assert!(a.len() >= s.lhs_index.iter().max().map_or(0, |i| (i + 1) * s.m * s.k));
    assert!(b.len() >= s.rhs_index.iter().max().map_or(0, |i| (i + 1) * s.k * s.n));
    let mut out = Uninit::<T>::try_new("matmul", s.batch * s.m * s.n)?;
    // SAFETY: `a` and `b` hold every matrix the batch indices name (asserted above; a
    // transposed operand holds the same number of elements per matrix), `out` has room
    // for batch·m·n elements, and the three buffers are distinct allocations.
    unsafe { gemm_batched(s, a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), crate::config::threads(), par) };
    // SAFETY: `gemm_batched` writes every element of every result matrix.
    Ok(unsafe { out.assume_init() })
}

/// `a @ b` by definition, integers wrapping.
fn by_loop<T: Num>(s: &MatMulShape, a: &[T], b: &[T]) -> Vec<T> {
    let (m, k, n) = (s.m, s.k, s.n);
    let mut out = vec![T::ZERO; s.batch * m * n];
    for (bi, c) in out.chunks_exact_mut((m * n).max(1)).enumerate().take(s.batch) {
        let (a, b) = (&a[s.lhs_index[bi] * m * k..], &b[s.rhs_index[bi] * k * n..]);
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).fold(T::ZERO, |acc, p| acc.add(a[i * k + p].mul(b[p * n + j])));
            }
        }
    }
    out
}

pub(crate) fn matmul(a: &Array, b: &Array) -> Result<Array> {
    matmul_transposed(a, false, b, false)
}

/// `a @ b` with `a`'s last two axes transposed first when `ta`, and `b`'s when `tb`: for
/// floats one gemm reading the operand through swapped strides, as the executor runs a
/// product of a `transpose` node, instead of a transposed copy (eager gradients of
/// `matmul` need both forms). Errors as `matmul` on the transposed shapes.
///
/// ```
/// use kiln_ir::{interp, Array};
/// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
/// let b = Array::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]).unwrap();
/// // aᵀ b: [2, 3] @ [3, 2]
/// let p = interp::matmul_transposed(&a, true, &b, false).unwrap();
/// assert_eq!((p.shape(), p.to_vec::<f32>().unwrap()), (&[2, 2][..], vec![6.0, 8.0, 8.0, 10.0]));
/// assert!(interp::matmul_transposed(&a, false, &b, false).is_err());
/// ```
pub fn matmul_transposed(a: &Array, ta: bool, b: &Array, tb: bool) -> Result<Array> {
    matmul_transposed_on(a, ta, b, tb, None)
}

/// [`matmul_transposed`] with large float products split over `par`'s threads (see
/// [`gemm_batched`](crate::matmul::gemm_batched)) instead of gemm's own: eager products
/// run on the executor's pool this way.
///
/// ```
/// use kiln_ir::{interp, Array};
/// let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let serial = |n: usize, f: &(dyn Fn(usize) + Sync)| (0..n).for_each(f);
/// let p = interp::matmul_transposed_on(&a, false, &a, true, Some(&serial)).unwrap();
/// assert_eq!(p.to_vec::<f32>().unwrap(), vec![5.0, 11.0, 11.0, 25.0]);
/// ```
pub fn matmul_transposed_on(a: &Array, ta: bool, b: &Array, tb: bool, par: Option<ParFor>) -> Result<Array> {
    let view = |x: &Array, t: bool| -> Result<Shape> {
        let mut shape = Shape::from_slice(x.shape());
        if t {
            let r = shape.len();
            if r < 2 {
                return Err(Error::invalid("matmul", format!("cannot transpose the last two axes of {:?}", x.shape())));
            }
            shape.swap(r - 2, r - 1);
        }
        Ok(shape)
    };
    let mut s = MatMulShape::of(a.dtype(), &view(a, ta)?, &view(b, tb)?)?;
    (s.lhs_transposed, s.rhs_transposed) = (ta, tb);
    let data = match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => Data::F32(by_gemm(&s, x, y, par)?),
        (Data::F64(x), Data::F64(y)) => Data::F64(by_gemm(&s, x, y, par)?),
        (Data::I32(_), Data::I32(_)) | (Data::I64(_), Data::I64(_)) if ta || tb => {
            // Integer products are plain loops over row-major operands: transpose first.
            let t = |x: &Array, t: bool| if t { last_two_swapped(x) } else { Ok(x.clone()) };
            return matmul_transposed_on(&t(a, ta)?, false, &t(b, tb)?, false, par);
        }
        (Data::I32(x), Data::I32(y)) => Data::I32(by_loop(&s, x, y)),
        (Data::I64(x), Data::I64(y)) => Data::I64(by_loop(&s, x, y)),
        (Data::Bool(_), Data::Bool(_)) => {
            return Err(Error::UnsupportedDType { op: "matmul", dtype: a.dtype(), expected: "a numeric dtype" })
        }
        (x, y) => return Err(Error::DTypeMismatch { op: "matmul", lhs: x.dtype(), rhs: y.dtype() }),
    };
    Array::new(data, &s.out)
}

/// `x` with its last two axes swapped, as a new array.
fn last_two_swapped(x: &Array) -> Result<Array> {
    let r = x.rank();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    super::movement::transpose(x, &perm)
}
