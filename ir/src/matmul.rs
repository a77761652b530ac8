//! The one matmul: its shape and batch rule (used by shape inference, the interpreter and
//! the JIT's executor) and the one call into the `gemm` crate (used by the interpreter and
//! the executor alike), with one threading threshold.
//!
//! Operands are row-major `[..., m, k]` and `[..., k, n]` with numpy-broadcast batch dims;
//! the result `[..., m, n]` is contiguous.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::shape::{broadcast_shapes, broadcast_strides, Shape};

/// Multiply-adds below which a product runs on one thread. gemm's own threshold is too low
/// on a 2-core machine: the small products of an MLP step got slower on two threads
/// (docs/BACKGROUND.md measured the crossover at 2-4 M multiply-adds).
pub const PARALLEL_MIN_MACS: usize = 3 << 20;

/// The shape of one (batched) matrix product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatMulShape {
    pub dtype: DType,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// The result's shape: broadcast batch dims, then `m, n`.
    pub out: Shape,
    /// Number of matrices in the result.
    pub batch: usize,
    /// Per result batch index, the matrix index in each operand (broadcast batch dims).
    pub lhs_index: Vec<usize>,
    pub rhs_index: Vec<usize>,
    /// Whether an operand buffer holds the transpose of its last two axes (`[..., k, m]`
    /// for the lhs, `[..., n, k]` for the rhs): the executor then hands gemm the operand of a
    /// `transpose` node with swapped strides instead of materializing the transpose.
    pub lhs_transposed: bool,
    pub rhs_transposed: bool,
}

impl MatMulShape {
    /// The product `lhs @ rhs` of operands of `dtype`: ranks at least 2, inner dims equal,
    /// batch dims broadcastable; otherwise an `Err` naming both shapes.
    ///
    /// ```
    /// use kiln_ir::{matmul::MatMulShape, DType};
    /// let s = MatMulShape::of(DType::F32, &[3, 1, 2, 4], &[5, 4, 6]).unwrap();
    /// assert_eq!(s.out.as_slice(), &[3, 5, 2, 6]);
    /// assert_eq!((s.batch, s.lhs_index[7], s.rhs_index[7]), (15, 1, 2));
    /// ```
    pub fn of(dtype: DType, lhs: &[usize], rhs: &[usize]) -> Result<MatMulShape> {
        let mismatch = || Error::ShapeMismatch { op: "matmul", lhs: lhs.into(), rhs: rhs.into() };
        let (ra, rb) = (lhs.len(), rhs.len());
        if ra < 2 || rb < 2 {
            return Err(Error::invalid(
                "matmul",
                format!("operands must have rank >= 2, got {lhs:?} and {rhs:?} (reshape vectors to [1,n] or [n,1])"),
            ));
        }
        let (m, k, k2, n) = (lhs[ra - 2], lhs[ra - 1], rhs[rb - 2], rhs[rb - 1]);
        if k != k2 {
            return Err(mismatch());
        }
        let batch_shape = broadcast_shapes(&lhs[..ra - 2], &rhs[..rb - 2]).ok_or_else(mismatch)?;
        let batch = crate::shape::checked_numel(&batch_shape)
            .ok_or_else(|| Error::Overflow { op: "matmul", what: format!("batch dims {batch_shape:?}") })?;
        let index = |op: &[usize]| -> Vec<usize> {
            let bs = broadcast_strides(&op[..op.len() - 2], &batch_shape);
            (0..batch).map(|b| flat_index(b, &batch_shape, &bs)).collect()
        };
        let (lhs_index, rhs_index) = (index(lhs), index(rhs));
        let mut out = batch_shape;
        out.push(m);
        out.push(n);
        Ok(MatMulShape {
            dtype,
            m,
            k,
            n,
            out,
            batch,
            lhs_index,
            rhs_index,
            lhs_transposed: false,
            rhs_transposed: false,
        })
    }

    /// Multiply-adds of the whole product.
    pub fn macs(&self) -> usize {
        self.batch * self.m * self.n * self.k
    }
}

/// Offset (in matrices) of result batch index `i` in an operand read with broadcast strides `bs`.
fn flat_index(i: usize, shape: &[usize], bs: &[usize]) -> usize {
    let (mut rem, mut idx) = (i, 0);
    for d in (0..shape.len()).rev() {
        idx += (rem % shape[d]) * bs[d];
        rem /= shape[d];
    }
    idx
}

/// Element types gemm multiplies.
pub trait GemmScalar: Copy + 'static {
    const ZERO: Self;
    const ONE: Self;
}
impl GemmScalar for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
}
impl GemmScalar for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
}

/// `out = lhs @ rhs` for every batch entry of `s`, with up to `threads` threads for products
/// of [`PARALLEL_MIN_MACS`] or more.
///
/// # Safety
/// `lhs`, `rhs` and `out` point to buffers of `T` holding the full operand and result shapes
/// `s` was built from (operands transposed as `s` says); `out` does not overlap the operands.
pub unsafe fn gemm_batched<T: GemmScalar>(s: &MatMulShape, lhs: *const T, rhs: *const T, out: *mut T, threads: usize) {
    let par = if threads > 1 && s.macs() >= PARALLEL_MIN_MACS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let (m, k, n) = (s.m, s.k, s.n);
    if m == 0 || n == 0 {
        return;
    }
    for b in 0..s.batch {
        // SAFETY: the offsets stay inside the operand and result buffers (caller's contract:
        // the batch indices come from the shapes those buffers hold).
        let (a, bm, d) =
            unsafe { (lhs.add(s.lhs_index[b] * m * k), rhs.add(s.rhs_index[b] * k * n), out.add(b * m * n)) };
        if k == 0 {
            // An empty sum: gemm with k = 0 would leave `dst` untouched, so write the zeros.
            // SAFETY: `d` is valid for m*n elements.
            unsafe { std::slice::from_raw_parts_mut(d, m * n).fill(T::ZERO) };
            continue;
        }
        // (column stride, row stride) of each operand: row-major, or row-major transposed.
        let (a_cs, a_rs) = if s.lhs_transposed { (m as isize, 1) } else { (1, k as isize) };
        let (b_cs, b_rs) = if s.rhs_transposed { (k as isize, 1) } else { (1, n as isize) };
        // SAFETY: these strides describe exactly the m×k, k×n and m×n blocks above (each
        // operand block holds m·k or k·n elements either way); `read_dst = false, beta = 1`
        // overwrites `dst` with lhs·rhs (gemm names alpha/beta the reverse of BLAS).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                d,
                1,
                n as isize,
                false,
                a,
                a_cs,
                a_rs,
                bm,
                b_cs,
                b_rs,
                T::ZERO,
                T::ONE,
                false,
                false,
                false,
                par,
            )
        };
    }
}
