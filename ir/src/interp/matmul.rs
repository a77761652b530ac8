//! `MatMul`: `[..., m, k] @ [..., k, n]` with numpy-broadcast batch dims.
//!
//! f32 and f64 go through the `gemm` crate (accumulating in the element type); integers use
//! a plain triple loop with wrapping arithmetic.

use crate::array::{Array, Data};
use crate::error::{Error, Result};
use crate::shape::{broadcast_shapes, numel};

use super::layout::broadcast_offsets;
use super::scalar::Num;

/// Problem sizes above this many multiply-adds use gemm's thread pool.
const PARALLEL_FLOPS: usize = 1 << 18;

/// The dims of one batched product, checked.
struct Dims {
    m: usize,
    k: usize,
    n: usize,
    /// For each output batch, the batch index in `a` and in `b`.
    a_batch: Vec<usize>,
    b_batch: Vec<usize>,
    shape: Vec<usize>,
}

fn dims(a: &[usize], b: &[usize]) -> Result<Dims> {
    let mismatch = || Error::ShapeMismatch { op: "matmul", lhs: a.into(), rhs: b.into() };
    let (ra, rb) = (a.len(), b.len());
    if ra < 2 || rb < 2 {
        return Err(Error::invalid("matmul", format!("operands must have rank >= 2, got {a:?} and {b:?}")));
    }
    let (m, k, k2, n) = (a[ra - 2], a[ra - 1], b[rb - 2], b[rb - 1]);
    if k != k2 {
        return Err(mismatch());
    }
    let batch = broadcast_shapes(&a[..ra - 2], &b[..rb - 2]).ok_or_else(mismatch)?;
    let mut shape = batch.to_vec();
    shape.extend([m, n]);
    Ok(Dims {
        m,
        k,
        n,
        a_batch: broadcast_offsets(&a[..ra - 2], &batch),
        b_batch: broadcast_offsets(&b[..rb - 2], &batch),
        shape,
    })
}

/// `c = a @ b` for one row-major `m×k` by `k×n` pair, by gemm.
fn gemm_one<T: 'static + Num>(d: &Dims, a: &[T], b: &[T], c: &mut [T]) {
    assert!(a.len() == d.m * d.k && b.len() == d.k * d.n && c.len() == d.m * d.n);
    if d.k == 0 {
        c.fill(T::ZERO);
        return;
    }
    if c.is_empty() {
        return;
    }
    let par = if d.m * d.n * d.k >= PARALLEL_FLOPS { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    let (k, n) = (d.k as isize, d.n as isize);
    // SAFETY: the three slices have exactly m*k, k*n and m*n elements (asserted above), and
    // the strides (column stride 1, row stride k or n) describe row-major matrices of those
    // sizes, so gemm reads and writes only inside them; `c` is a unique borrow.
    unsafe {
        gemm::gemm(
            d.m,
            d.n,
            d.k,
            c.as_mut_ptr(),
            1,
            n,
            false,
            a.as_ptr(),
            1,
            k,
            b.as_ptr(),
            1,
            n,
            T::ZERO,
            T::ONE,
            false,
            false,
            false,
            par,
        )
    }
}

/// `c = a @ b` by definition, integers wrapping.
fn loop_one<T: Num>(d: &Dims, a: &[T], b: &[T], c: &mut [T]) {
    for i in 0..d.m {
        for j in 0..d.n {
            c[i * d.n + j] = (0..d.k).fold(T::ZERO, |acc, p| acc.add(a[i * d.k + p].mul(b[p * d.n + j])));
        }
    }
}

fn batched<T: Num>(d: &Dims, a: &[T], b: &[T], one: fn(&Dims, &[T], &[T], &mut [T])) -> Vec<T> {
    let (sa, sb, sc) = (d.m * d.k, d.k * d.n, d.m * d.n);
    let mut out = vec![T::ZERO; numel(&d.shape)];
    if sc == 0 {
        return out;
    }
    for (bi, c) in out.chunks_exact_mut(sc).enumerate() {
        let (ia, ib) = (d.a_batch[bi], d.b_batch[bi]);
        one(d, &a[ia * sa..(ia + 1) * sa], &b[ib * sb..(ib + 1) * sb], c);
    }
    out
}

pub(crate) fn matmul(a: &Array, b: &Array) -> Result<Array> {
    let d = dims(a.shape(), b.shape())?;
    let data = match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => Data::F32(batched(&d, x, y, gemm_one)),
        (Data::F64(x), Data::F64(y)) => Data::F64(batched(&d, x, y, gemm_one)),
        (Data::I32(x), Data::I32(y)) => Data::I32(batched(&d, x, y, loop_one)),
        (Data::I64(x), Data::I64(y)) => Data::I64(batched(&d, x, y, loop_one)),
        (Data::Bool(_), Data::Bool(_)) => {
            return Err(Error::UnsupportedDType { op: "matmul", dtype: a.dtype(), expected: "a numeric dtype" })
        }
        (x, y) => return Err(Error::DTypeMismatch { op: "matmul", lhs: x.dtype(), rhs: y.dtype() }),
    };
    Array::new(data, &d.shape)
}
