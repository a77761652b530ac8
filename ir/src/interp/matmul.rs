//! `MatMul`: `[..., m, k] @ [..., k, n]` with numpy-broadcast batch dims, by the one shape
//! rule and gemm call of `crate::matmul` for floats (accumulating in the element type), and
//! a plain triple loop with wrapping arithmetic for integers.

use crate::array::{Array, Data};
use crate::error::{Error, Result};
use crate::matmul::{gemm_batched, GemmScalar, MatMulShape};

use super::scalar::Num;

/// `a @ b` by gemm, on all cores for large products.
fn by_gemm<T: GemmScalar + Num>(s: &MatMulShape, a: &[T], b: &[T]) -> Vec<T> {
    assert!(a.len() >= s.lhs_index.iter().max().map_or(0, |i| (i + 1) * s.m * s.k));
    assert!(b.len() >= s.rhs_index.iter().max().map_or(0, |i| (i + 1) * s.k * s.n));
    let mut out = vec![<T as Num>::ZERO; s.batch * s.m * s.n];
    let threads = crate::config::threads();
    // SAFETY: `a` and `b` hold every matrix the batch indices name (asserted above), `out`
    // holds batch·m·n elements, and the three buffers are distinct allocations.
    unsafe { gemm_batched(s, a.as_ptr(), b.as_ptr(), out.as_mut_ptr(), threads) };
    out
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
    let s = MatMulShape::of(a.dtype(), a.shape(), b.shape())?;
    let data = match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => Data::F32(by_gemm(&s, x, y)),
        (Data::F64(x), Data::F64(y)) => Data::F64(by_gemm(&s, x, y)),
        (Data::I32(x), Data::I32(y)) => Data::I32(by_loop(&s, x, y)),
        (Data::I64(x), Data::I64(y)) => Data::I64(by_loop(&s, x, y)),
        (Data::Bool(_), Data::Bool(_)) => {
            return Err(Error::UnsupportedDType { op: "matmul", dtype: a.dtype(), expected: "a numeric dtype" })
        }
        (x, y) => return Err(Error::DTypeMismatch { op: "matmul", lhs: x.dtype(), rhs: y.dtype() }),
    };
    Array::new(data, &s.out)
}
