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
/// on a 2-core machine: the small products of an MLP step got slower on two threads. With
/// gemm's threads (docs/BACKGROUND.md) the crossover was 2-4 M multiply-adds; on the
/// executor's pool, whose idle workers poll for the next job, W3's 1.3 M products
/// (`256×512×10`) gain from two (docs/PERFORMANCE.md, twelfth session).
pub const PARALLEL_MIN_MACS: usize = 1 << 20;

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

/// A kernel adding a product to a value: `acc + c·p`, `c·p + acc`, `acc - c·p`, `acc + p`,
/// `p + acc` or `acc - p`, and nothing else, from two inputs of the kernel's own type (no
/// broadcast), with `c` a scalar constant. `is_product(k)` says whether the kernel's input
/// `k` is a product. Returns the inputs of `acc` and of `p`, and `beta` (`±c` or `±1`): the
/// kernel is `acc + beta·p`, which gemm computes as it stores the product
/// ([`gemm_batched_update`]; the executor's `gemm_update.rs`, and the memory plan, which
/// gives such a product no slot).
///
/// ```
/// use kiln_ir::{matmul::added_product, Array, BinaryOp, DType, Graph, Kernel, Op, TensorType};
/// let mut body = Graph::new("update");
/// let t = TensorType::new(DType::F32, &[4, 3]);
/// let (w, g) = (body.add_input(t.clone()), body.add_input(t));
/// let lr = body.add_const(Array::scalar(0.5f32));
/// let step = body.add(Op::Binary(BinaryOp::Mul), &[g, lr]).unwrap();
/// let new = body.add(Op::Binary(BinaryOp::Sub), &[w, step]).unwrap();
/// body.set_outputs(vec![new]);
/// assert_eq!(added_product(&Kernel { body }, |k| k == 1), Some((0, 1, -0.5)));
/// ```
pub fn added_product(kernel: &crate::Kernel, is_product: impl Fn(usize) -> bool) -> Option<(usize, usize, f64)> {
    use crate::{BinaryOp, Op};
    let body = &kernel.body;
    let inputs = body.inputs();
    let &[out] = body.outputs() else { return None };
    if inputs.len() != 2 || inputs.iter().any(|&n| body.node(n).ty != body.node(out).ty) {
        return None;
    }
    let input = |n| inputs.iter().position(|&x| x == n);
    let scalar = |n| match &body.node(n).op {
        Op::Const(a) if a.shape().is_empty() && a.dtype().is_float() => Some(a.get_f64(0)),
        _ => None,
    };
    // The product's term: input `p` (beta 1) or `p` times a scalar constant, and how many
    // nodes the body then holds (inputs, constant, term and output), so that it computes
    // nothing else.
    let term = |n| match (input(n), &body.node(n).op) {
        (Some(p), _) => Some((p, 1.0, 3)),
        (None, Op::Binary(BinaryOp::Mul)) => match body.args(n)[..] {
            [x, y] => match (input(x), input(y)) {
                (Some(p), None) => Some((p, scalar(y)?, 5)),
                (None, Some(p)) => Some((p, scalar(x)?, 5)),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    let [l, r] = body.args(out)[..] else { return None };
    // `acc + term` in either order, or `acc - term`.
    let (acc, (p, c, nodes), sign) = match body.node(out).op {
        Op::Binary(BinaryOp::Add) => match (input(l), term(r)) {
            (Some(a), Some(t)) if is_product(t.0) && a != t.0 => (a, t, 1.0),
            _ => (input(r)?, term(l)?, 1.0),
        },
        Op::Binary(BinaryOp::Sub) => (input(l)?, term(r)?, -1.0),
        _ => return None,
    };
    if p == acc || !is_product(p) || body.node_ids().count() != nodes {
        return None;
    }
    Some((acc, p, sign * c))
}

/// Element types gemm multiplies.
pub trait GemmScalar: Copy + Send + Sync + 'static {
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

/// Whether a transpose's permutation swaps the last two axes and keeps the others: gemm
/// then reads its operand with swapped strides, so the executor hands a product that
/// operand instead of computing the transpose, and the memory plan keeps the operand live
/// until that product.
///
/// ```
/// use kiln_ir::matmul::swaps_last_two;
/// assert!(swaps_last_two(&[1, 0]) && swaps_last_two(&[0, 2, 1]));
/// assert!(!swaps_last_two(&[2, 1, 0]) && !swaps_last_two(&[0]));
/// ```
pub fn swaps_last_two(perm: &[usize]) -> bool {
    let r = perm.len();
    r >= 2 && perm[r - 2] == r - 1 && perm[r - 1] == r - 2 && perm[..r - 2].iter().enumerate().all(|(i, &p)| p == i)
}

/// Starts gemm's one-time set-up on a thread of its own, once per process: `true` for the
/// call that started it. gemm reads the caches' sizes from sysfs on its first product (about
/// 1.3 ms of CPU on the machines measured), so a caller that will multiply later and has
/// other work first gets that set-up done meanwhile. kiln calls it when the process creates
/// its first float matrix and when a trace records a product: started at the first matrix,
/// the set-up is over before a first call, instead of sharing the two cores with the trace
/// and the compile (W4 3.95 → 3.42 ms, docs/PERFORMANCE.md, twelfth session).
///
/// ```
/// assert!(kiln_ir::matmul::warm_up()); // a doc test is a process of its own
/// assert!(!kiln_ir::matmul::warm_up()); // later calls do nothing
/// ```
pub fn warm_up() -> bool {
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    // A load first: callers on hot paths (every new matrix) then share the flag's cache line.
    if STARTED.load(std::sync::atomic::Ordering::Relaxed) || STARTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    let product = || {
        let a = crate::Array::from_vec(vec![1.0f32; 64 * 64], &[64, 64]).expect("64x64 holds 4096 values");
        let _ = crate::interp::matmul_transposed(&a, false, &a, false);
    };
    // Without a thread (the system refusing one), the set-up waits for the first product.
    let _ = std::thread::Builder::new().name("kiln-gemm-warm-up".into()).spawn(product);
    true
}

/// Spreads work over threads: `par(n, &f)` calls `f(i)` for every `i` in `0..n`, on
/// whichever threads it has, and returns when all are done (the executor's pool,
/// `kiln_jit::pool::ThreadPool::for_each`).
pub type ParFor<'a> = &'a (dyn Fn(usize, &(dyn Fn(usize) + Sync)) + Sync);

/// Along a product's `n` (columns) when its lhs costs less to pack than its rhs, else along
/// `m` (rows): each part of a split product packs the whole of the other operand again. An
/// operand read transposed (a weight gradient's `xᵀ`, a backward product's `Wᵀ`) counts
/// twice its size, as measured rather than derived: on the Zen 3 measured, splitting away
/// from it was 2–4% faster for products of W3's sizes, and splitting away from the larger
/// row-major operand instead was no faster (docs/PERFORMANCE.md, thirteenth session).
fn split_along_n(s: &MatMulShape) -> bool {
    let weight = |transposed: bool| if transposed { 2 } else { 1 };
    // Both operands hold `k` rows or columns: compare the other dimension, weighted.
    s.m * weight(s.lhs_transposed) <= s.n * weight(s.rhs_transposed)
}

/// Parts of at least this many rows or columns: packing the shared operand once per part
/// costs about `1/MIN_PART` of the part's multiply-adds.
const MIN_PART: usize = 64;

/// How many single-threaded parts a product of `s` runs as with `threads` threads: one
/// below [`PARALLEL_MIN_MACS`], else up to `threads`, each at least 64 rows or columns.
///
/// ```
/// use kiln_ir::{matmul::{parts, MatMulShape}, DType};
/// assert_eq!(parts(&MatMulShape::of(DType::F32, &[256, 784], &[784, 512]).unwrap(), 2), 2);
/// assert_eq!(parts(&MatMulShape::of(DType::F32, &[256, 784], &[784, 512]).unwrap(), 1), 1);
/// assert_eq!(parts(&MatMulShape::of(DType::F32, &[8, 8], &[8, 8]).unwrap(), 2), 1);
/// ```
pub fn parts(s: &MatMulShape, threads: usize) -> usize {
    if threads <= 1 || s.macs() < PARALLEL_MIN_MACS {
        return 1;
    }
    let len = if split_along_n(s) { s.n } else { s.m };
    threads.min(len.div_ceil(MIN_PART)).max(1)
}

/// `out = lhs @ rhs` for every batch entry of `s`. With `par`, a product of more than one
/// [`parts`] runs as that many single-threaded gemm calls on `par`'s threads, each writing
/// its own rows or columns of the result; without, gemm spreads a large one over up to
/// `threads` threads of its own (rayon's).
///
/// A part only chooses which rows or columns a call computes, never how an element is
/// accumulated: a split product has the bits of one single-threaded call
/// (`split_products_are_bitwise_those_of_one_call`).
///
/// # Safety
/// `lhs`, `rhs` and `out` point to buffers of `T` holding the full operand and result shapes
/// `s` was built from (operands transposed as `s` says); `out` does not overlap the operands.
pub unsafe fn gemm_batched<T: GemmScalar>(
    s: &MatMulShape,
    lhs: *const T,
    rhs: *const T,
    out: *mut T,
    threads: usize,
    par: Option<ParFor>,
) {
    // SAFETY: the caller's contract.
    unsafe { gemm_parts(s, lhs, rhs, out, None, threads, par) }
}

/// `out += beta · (lhs @ rhs)` for every batch entry of `s`, split as [`gemm_batched`]
/// splits: gemm adds the product into `out` as it stores it, so an optimizer's
/// `w - lr · (xᵀ @ dz)` costs no pass over `w` of its own (the executor's
/// `gemm_update.rs`). Each element is `out + beta · p` for a product `p` accumulated as
/// [`gemm_batched`] accumulates it, up to where gemm rounds `beta · p`.
///
/// # Safety
/// As [`gemm_batched`], with `out` holding the values to add to.
pub unsafe fn gemm_batched_update<T: GemmScalar>(
    s: &MatMulShape,
    lhs: *const T,
    rhs: *const T,
    out: *mut T,
    beta: T,
    threads: usize,
    par: Option<ParFor>,
) {
    // SAFETY: the caller's contract.
    unsafe { gemm_parts(s, lhs, rhs, out, Some(beta), threads, par) }
}

/// [`gemm_batched`] (`update: None`) or [`gemm_batched_update`] (`Some(beta)`).
///
/// # Safety
/// As [`gemm_batched_update`].
unsafe fn gemm_parts<T: GemmScalar>(
    s: &MatMulShape,
    lhs: *const T,
    rhs: *const T,
    out: *mut T,
    update: Option<T>,
    threads: usize,
    par: Option<ParFor>,
) {
    let n = parts(s, threads);
    match par {
        Some(par) if n > 1 => {
            // Addresses, not pointers, cross to the other threads (raw pointers are not Sync).
            let (lhs, rhs, out) = (lhs as usize, rhs as usize, out as usize);
            // SAFETY: the caller's contract, and parts write disjoint rows or columns.
            par(n, &|i| unsafe {
                gemm_part(s, lhs as *const T, rhs as *const T, out as *mut T, update, i, n, gemm::Parallelism::None)
            });
        }
        _ => {
            let par = if n > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
            // SAFETY: the caller's contract.
            unsafe { gemm_part(s, lhs, rhs, out, update, 0, 1, par) }
        }
    }
}

/// Part `part` of `parts` of every batch entry's product: the columns (or rows, see
/// [`split_along_n`]) of that share of the result, written, or added times `beta` with
/// `update: Some(beta)`.
///
/// # Safety
/// As [`gemm_batched_update`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_part<T: GemmScalar>(
    s: &MatMulShape,
    lhs: *const T,
    rhs: *const T,
    out: *mut T,
    update: Option<T>,
    part: usize,
    parts: usize,
    par: gemm::Parallelism,
) {
    let (m, k, n) = (s.m, s.k, s.n);
    if m == 0 || n == 0 {
        return;
    }
    let along_n = split_along_n(s);
    let len = if along_n { n } else { m };
    let per = len.div_ceil(parts);
    let (lo, hi) = ((part * per).min(len), ((part + 1) * per).min(len));
    if lo == hi {
        return;
    }
    let (pm, pn) = if along_n { (m, hi - lo) } else { (hi - lo, n) };
    for b in 0..s.batch {
        // SAFETY: the offsets stay inside the operand and result buffers (caller's contract:
        // the batch indices come from the shapes those buffers hold).
        let (a, bm, d) =
            unsafe { (lhs.add(s.lhs_index[b] * m * k), rhs.add(s.rhs_index[b] * k * n), out.add(b * m * n)) };
        // (column stride, row stride) of each operand: row-major, or row-major transposed.
        let (a_cs, a_rs) = if s.lhs_transposed { (m as isize, 1) } else { (1, k as isize) };
        let (b_cs, b_rs) = if s.rhs_transposed { (k as isize, 1) } else { (1, n as isize) };
        // SAFETY: the part's first column of rhs and of the result, or first row of lhs
        // and of the result, lie inside the blocks above (lo < n, or lo < m).
        let (a, bm, d) = unsafe {
            if along_n {
                (a, bm.offset(lo as isize * b_cs), d.add(lo))
            } else {
                (a.offset(lo as isize * a_rs), bm, d.add(lo * n))
            }
        };
        if k == 0 {
            // An empty sum: gemm with k = 0 would leave `dst` untouched, which is right for
            // an update; a product writes the zeros.
            if update.is_some() {
                continue;
            }
            for r in 0..pm {
                // SAFETY: row `r` of the part holds `pn` elements of the m×n block.
                unsafe { std::slice::from_raw_parts_mut(d.add(r * n), pn).fill(T::ZERO) };
            }
            continue;
        }
        // SAFETY: these strides describe exactly the part's pm×k, k×pn and pm×pn blocks
        // inside the m×k, k×n and m×n ones above. gemm computes `dst = alpha·dst +
        // beta·lhs·rhs` (alpha and beta named the reverse of BLAS), reading `dst` only with
        // `read_dst`.
        unsafe {
            gemm::gemm(
                pm,
                pn,
                k,
                d,
                1,
                n as isize,
                update.is_some(),
                a,
                a_cs,
                a_rs,
                bm,
                b_cs,
                b_rs,
                T::ONE,
                update.unwrap_or(T::ONE),
                false,
                false,
                false,
                par,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lhs @ rhs` for `s`, with `par` a `parts`-way split run on this thread, or gemm alone
    /// on one thread.
    fn product<T: GemmScalar + Default>(s: &MatMulShape, lhs: &[T], rhs: &[T], threads: Option<usize>) -> Vec<T> {
        let mut out = vec![T::default(); s.batch * s.m * s.n];
        let serial = |n: usize, f: &(dyn Fn(usize) + Sync)| (0..n).rev().for_each(f);
        let (threads, par): (usize, Option<ParFor>) = match threads {
            Some(t) => (t, Some(&serial)),
            None => (1, None),
        };
        // SAFETY: the buffers hold the operand and result shapes of `s`.
        unsafe { gemm_batched(s, lhs.as_ptr(), rhs.as_ptr(), out.as_mut_ptr(), threads, par) };
        out
    }

    /// Each part packs the whole of the operand the split does not cut: the split spares the
    /// one that costs more, a transposed operand counting twice its size.
    #[test]
    fn a_split_spares_the_operand_dearer_to_pack() {
        let along_n = |m: usize, n: usize, ta: bool, tb: bool| {
            let mut s = MatMulShape::of(DType::F32, &[m, 256], &[256, n]).unwrap();
            (s.lhs_transposed, s.rhs_transposed) = (ta, tb);
            split_along_n(&s)
        };
        // Row-major operands: the smaller lhs is packed again, ties along `n`.
        assert!(along_n(256, 512, false, false) && along_n(512, 512, false, false));
        assert!(!along_n(784, 512, false, false));
        // A transposed lhs (W3's weight gradients) is cut unless it is at most half the rhs.
        assert!(!along_n(512, 512, true, false) && !along_n(384, 512, true, false));
        assert!(along_n(256, 512, true, false));
        // A transposed rhs is cut unless the lhs is more than twice its size.
        assert!(along_n(768, 512, false, true) && along_n(1024, 512, false, true));
        assert!(!along_n(1100, 512, false, true));
        // Both transposed: as neither.
        assert!(along_n(512, 512, true, true) && !along_n(513, 512, true, true));
    }

    /// A product split into parts gives every element the same bits as one gemm call: the
    /// parts only choose which rows or columns each call computes.
    #[test]
    fn split_products_are_bitwise_those_of_one_call() {
        // (m, k, n, lhs transposed, rhs transposed, batch): both split directions, uneven
        // parts, edges narrower than a microkernel, both transposes, a broadcast batch.
        let cases = [
            (256, 784, 512, false, false, 1),
            (784, 256, 512, true, false, 1),
            (512, 256, 512, true, false, 1),
            (256, 512, 512, false, true, 1),
            (1000, 520, 7, false, false, 1),
            (9, 700, 997, false, true, 1),
            (130, 200, 129, true, true, 1),
            (67, 300, 65, false, false, 3),
        ];
        for (m, k, n, ta, tb, batch) in cases {
            let lhs_shape = if ta { vec![batch, k, m] } else { vec![batch, m, k] };
            let rhs_shape = if tb { vec![n, k] } else { vec![k, n] };
            let view = |sh: &[usize], t: bool| {
                let mut v = sh.to_vec();
                let r = v.len();
                if t {
                    v.swap(r - 2, r - 1);
                }
                v
            };
            let mut s = MatMulShape::of(DType::F32, &view(&lhs_shape, ta), &view(&rhs_shape, tb)).unwrap();
            (s.lhs_transposed, s.rhs_transposed) = (ta, tb);
            // Values whose products round: any change in how a sum is formed shows.
            let fill = |len: usize, seed: u32| -> Vec<f32> {
                (0..len as u32)
                    .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0 + 1e-4 * i as f32)
                    .collect()
            };
            let lhs = fill(batch * m * k, 17);
            let rhs = fill(k * n, 91);
            let one = product(&s, &lhs, &rhs, None);
            for threads in [2, 3, 5] {
                assert!(parts(&s, threads) > 1 || s.macs() < PARALLEL_MIN_MACS, "{m}x{k}x{n} is not split");
                let split = product(&s, &lhs, &rhs, Some(threads));
                let same = one.iter().zip(&split).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{m}x{k}x{n} (transposed {ta}/{tb}, batch {batch}) in {threads} parts");
            }
            // f64 goes the same way.
            let (lhs64, rhs64): (Vec<f64>, Vec<f64>) =
                (lhs.iter().map(|&v| v as f64).collect(), rhs.iter().map(|&v| v as f64).collect());
            let mut s64 = s.clone();
            s64.dtype = DType::F64;
            let one = product(&s64, &lhs64, &rhs64, None);
            assert!(one.iter().zip(product(&s64, &lhs64, &rhs64, Some(2))).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn warm_up_starts_once_across_threads() {
        let started: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(warm_up)).collect();
            hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        // Nothing else in this test binary traces a product, so these four calls are the
        // process's first.
        assert_eq!(started, 1);
        assert!(!warm_up());
    }

    /// An update adds `beta ·` the product to what `out` held, element for element, split
    /// into parts or not (within an f32 rounding or two of `out + beta · p`), and an empty
    /// sum leaves `out` as it was.
    #[test]
    fn an_update_adds_beta_times_the_product() {
        for (m, k, n, ta) in [(784, 256, 512, true), (256, 512, 10, false), (37, 1000, 3, false), (8, 0, 8, false)] {
            // A transposed lhs is stored `[k, m]`; these values only fill it.
            let mut s = MatMulShape::of(DType::F32, &[m, k], &[k, n]).unwrap();
            s.lhs_transposed = ta;
            let lhs: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let rhs: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let acc: Vec<f32> = (0..m * n).map(|i| (i % 13) as f32 - 6.5).collect();
            let p = product(&s, &lhs, &rhs, None);
            for threads in [1, 2] {
                let mut out = acc.clone();
                let serial = |n: usize, f: &(dyn Fn(usize) + Sync)| (0..n).for_each(f);
                // SAFETY: the buffers hold the operand and result shapes of `s`.
                unsafe {
                    gemm_batched_update(&s, lhs.as_ptr(), rhs.as_ptr(), out.as_mut_ptr(), -0.01, threads, Some(&serial))
                };
                for ((o, a), p) in out.iter().zip(&acc).zip(&p) {
                    let want = a - 0.01 * p;
                    assert!(
                        (o - want).abs() <= 2.0 * f32::EPSILON * (a.abs() + (0.01 * p).abs()),
                        "{m}x{k}x{n}: {o} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_empty_sum_writes_zeros() {
        let s = MatMulShape::of(DType::F32, &[4096, 0], &[0, 1024]).unwrap();
        let mut out = vec![f32::NAN; 4096 * 1024];
        let serial = |n: usize, f: &(dyn Fn(usize) + Sync)| (0..n).for_each(f);
        // SAFETY: k = 0, so the operands are never read; `out` holds m·n elements.
        unsafe { gemm_batched(&s, [].as_ptr(), [].as_ptr(), out.as_mut_ptr(), 2, Some(&serial)) };
        assert!(out.iter().all(|&v| v == 0.0));
    }
}
