//! `matmul` through the `gemm` crate, writing straight into the executor's buffer.
//!
//! Operands are row-major `[..., m, k]` and `[..., k, n]` with broadcast batch dims; the
//! result `[..., m, n]` is contiguous. Small products run single-threaded: gemm's own
//! threading threshold is too low on this machine (`docs/BACKGROUND.md`).

use gemm::Parallelism;
use kiln_ir::{broadcast_strides, DType, Error, Result};

/// Multiply-adds below which a product runs on one thread (docs/BACKGROUND.md: 2-4 M).
pub const PARALLEL_MIN_MACS: usize = 3 << 20;

/// The static shape of one matmul node, precomputed at build time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatMulShape {
    pub dtype: DType,
    pub m: usize,
    pub k: usize,
    pub n: usize,
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
    /// The plan for `lhs @ rhs -> out`; `Err` for dtypes gemm does not handle (f32, f64 only).
    pub fn new(dtype: DType, lhs: &[usize], rhs: &[usize], out: &[usize]) -> Result<MatMulShape> {
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Err(Error::UnsupportedDType { op: "matmul", dtype, expected: "f32 or f64 for gemm" });
        }
        let (ra, rb, ro) = (lhs.len(), rhs.len(), out.len());
        if ra < 2 || rb < 2 || ro < 2 {
            return Err(Error::invalid("matmul", "operands must have rank >= 2"));
        }
        let (m, k, n) = (lhs[ra - 2], lhs[ra - 1], rhs[rb - 1]);
        let batch_shape = &out[..ro - 2];
        let batch: usize = batch_shape.iter().product();
        let index = |op: &[usize]| -> Vec<usize> {
            let bs = broadcast_strides(&op[..op.len() - 2], batch_shape);
            (0..batch).map(|b| flat_index(b, batch_shape, &bs)).collect()
        };
        Ok(MatMulShape {
            dtype,
            m,
            k,
            n,
            batch,
            lhs_index: index(lhs),
            rhs_index: index(rhs),
            lhs_transposed: false,
            rhs_transposed: false,
        })
    }

    /// Multiply-adds of the whole product.
    pub fn macs(&self) -> usize {
        self.batch * self.m * self.n * self.k
    }
}

/// Offset (in elements) of result index `i` in an operand read with broadcast strides `bs`.
fn flat_index(i: usize, shape: &[usize], bs: &[usize]) -> usize {
    let (mut rem, mut idx) = (i, 0);
    for d in (0..shape.len()).rev() {
        idx += (rem % shape[d]) * bs[d];
        rem /= shape[d];
    }
    idx
}

/// Computes `out = lhs @ rhs` for every batch entry, with up to `threads` threads.
///
/// # Safety
/// `lhs`, `rhs` and `out` must point to buffers of `s.dtype` holding the full operand and
/// result shapes `s` was built from; `out` must not overlap the operands.
pub unsafe fn matmul(s: &MatMulShape, lhs: *const u8, rhs: *const u8, out: *mut u8, threads: usize) {
    let par =
        if threads > 1 && s.macs() >= PARALLEL_MIN_MACS { Parallelism::Rayon(threads) } else { Parallelism::None };
    match s.dtype {
        // SAFETY: forwarded from the caller's contract, with the element type matching the dtype.
        DType::F32 => unsafe { batched::<f32>(s, lhs.cast(), rhs.cast(), out.cast(), par) },
        // SAFETY: as above.
        DType::F64 => unsafe { batched::<f64>(s, lhs.cast(), rhs.cast(), out.cast(), par) },
        _ => unreachable!("MatMulShape::new only accepts f32 and f64"),
    }
}

trait GemmScalar: Copy + 'static {
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

unsafe fn batched<T: GemmScalar>(s: &MatMulShape, lhs: *const T, rhs: *const T, out: *mut T, par: Parallelism) {
    let (m, k, n) = (s.m, s.k, s.n);
    for b in 0..s.batch {
        if m == 0 || n == 0 {
            return;
        }
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
