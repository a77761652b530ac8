//! The collectives `all_reduce`, `broadcast` and `all_gather`: ops whose value depends on
//! the same op running in every process of a job.
//!
//! The IR knows nothing of how processes talk. A transport (the `kiln` crate's MPI world,
//! behind its `mpi` feature) implements [`Collectives`] and [`install`]s itself for the
//! whole process; the interpreter, eager execution and the executor all reach it through
//! [`eval`](super::eval). With none installed the process is alone: every collective gives
//! its operand back (`all_gather` stacks it on a new axis of length 1).
//!
//! The ops are `impure effect` rows: the passes never fold, merge, hoist or remove them, and
//! `kiln::distributed` orders each after the previous effect of its trace, so every process
//! calls them in program order (a collective that one process skips deadlocks the others).
//!
//! ```
//! use kiln_ir::interp::collective;
//! use kiln_ir::{interp, Array, DType, Op, ReduceOp, TensorType};
//! assert_eq!(collective::size(), 1); // no transport installed
//! let x = Array::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
//! let s = interp::eval(&Op::AllReduce(ReduceOp::Sum), &[&x], &TensorType::new(DType::F32, &[2])).unwrap();
//! assert_eq!(s.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
//! let g = interp::eval(&Op::AllGather(1), &[&x], &TensorType::new(DType::F32, &[1, 2])).unwrap();
//! assert_eq!(g.shape(), &[1, 2]);
//! ```

use std::sync::{Arc, RwLock};

use crate::array::Array;
use crate::error::{Error, Result};
use crate::op::{BinaryOp, ReduceOp};

/// A transport between the processes of one job (MPI's world communicator, say).
///
/// Every process of the job calls the same methods in the same order with operands of the
/// same dtype and shape; an implementation reports a mismatch as an error rather than
/// reducing garbage. Methods may be called from any thread, one at a time per process.
///
/// A transport that pretends to be rank 0 of two processes whose operands are equal:
///
/// ```
/// use std::sync::Arc;
/// use kiln_ir::interp::collective::{self, Collectives};
/// use kiln_ir::{interp, Array, DType, Op, ReduceOp, Result, TensorType};
/// struct Twins;
/// impl Collectives for Twins {
///     fn rank(&self) -> usize { 0 }
///     fn size(&self) -> usize { 2 }
///     fn all_reduce(&self, x: &Array, op: ReduceOp) -> Result<Array> {
///         assert_eq!(op, ReduceOp::Sum);
///         let v: Vec<f32> = x.to_vec::<f32>()?.iter().map(|v| v * 2.0).collect();
///         Array::from_vec(v, x.shape())
///     }
///     fn broadcast(&self, x: &Array, _root: usize) -> Result<Array> { Ok(x.clone()) }
///     fn all_gather(&self, x: &Array) -> Result<Array> {
///         let v = x.to_vec::<f32>()?;
///         Array::from_vec([v.clone(), v].concat(), &[2, x.len()])
///     }
/// }
/// collective::install(Arc::new(Twins));
/// let x = Array::from_vec(vec![1.0f32, 3.0], &[2]).unwrap();
/// let ty = TensorType::new(DType::F32, &[2]);
/// let mean = interp::eval(&Op::AllReduce(ReduceOp::Mean), &[&x], &ty).unwrap(); // sum / 2
/// assert_eq!(mean.to_vec::<f32>().unwrap(), vec![1.0, 3.0]);
/// let stacked = interp::eval(&Op::AllGather(2), &[&x], &TensorType::new(DType::F32, &[2, 2])).unwrap();
/// assert_eq!(stacked.to_vec::<f32>().unwrap(), vec![1.0, 3.0, 1.0, 3.0]);
/// assert!(collective::uninstall().is_some());
/// ```
pub trait Collectives: Send + Sync {
    /// This process's number, `0..size()`.
    fn rank(&self) -> usize;
    /// How many processes the job has.
    fn size(&self) -> usize;
    /// `x` combined elementwise across processes by `op`: `Sum`, `Prod`, `Max` or `Min`
    /// (the interpreter derives `Mean` from `Sum`). The result has `x`'s dtype and shape.
    fn all_reduce(&self, x: &Array, op: ReduceOp) -> Result<Array>;
    /// Process `root`'s `x`, on every process.
    fn broadcast(&self, x: &Array, root: usize) -> Result<Array>;
    /// Every process's `x` stacked in rank order: shape `[size, ..x.shape]`.
    fn all_gather(&self, x: &Array) -> Result<Array>;
}

static BACKEND: RwLock<Option<Arc<dyn Collectives>>> = RwLock::new(None);

/// Makes `backend` the transport of every collective this process runs from now on;
/// returns the one it replaces.
pub fn install(backend: Arc<dyn Collectives>) -> Option<Arc<dyn Collectives>> {
    BACKEND.write().unwrap_or_else(|e| e.into_inner()).replace(backend)
}

/// Removes the installed transport (collectives act as on one process again).
pub fn uninstall() -> Option<Arc<dyn Collectives>> {
    BACKEND.write().unwrap_or_else(|e| e.into_inner()).take()
}

/// The installed transport, if any.
pub fn backend() -> Option<Arc<dyn Collectives>> {
    BACKEND.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// This process's rank: 0 without a transport.
pub fn rank() -> usize {
    backend().map_or(0, |b| b.rank())
}

/// The number of processes: 1 without a transport.
pub fn size() -> usize {
    backend().map_or(1, |b| b.size())
}

pub(super) fn all_reduce(x: &Array, op: ReduceOp) -> Result<Array> {
    let Some(b) = backend() else { return Ok(x.clone()) };
    if b.size() == 1 {
        return Ok(x.clone());
    }
    if op != ReduceOp::Mean {
        return b.all_reduce(x, op);
    }
    // The mean is the sum divided once, in the operand's dtype (integers truncate, as the
    // `mean` reduction does), so each process gets the same bits.
    let sum = b.all_reduce(x, ReduceOp::Sum)?;
    let n = Array::scalar_f64(x.dtype(), b.size() as f64);
    super::elementwise::binary(BinaryOp::Div, &sum, &n)
}

pub(super) fn broadcast(x: &Array, root: usize) -> Result<Array> {
    let Some(b) = backend() else { return single_root(root).map(|_| x.clone()) };
    if root >= b.size() {
        return Err(Error::Runtime {
            op: "broadcast",
            msg: format!("root rank {root} is not a process of a job of {}", b.size()),
        });
    }
    if b.size() == 1 {
        return Ok(x.clone());
    }
    b.broadcast(x, root)
}

fn single_root(root: usize) -> Result<()> {
    if root != 0 {
        return Err(Error::Runtime { op: "broadcast", msg: format!("root rank {root} in a job of one process") });
    }
    Ok(())
}

pub(super) fn all_gather(x: &Array, ranks: usize) -> Result<Array> {
    let size = size();
    if ranks != size {
        return Err(Error::Runtime {
            op: "all_gather",
            msg: format!("traced for {ranks} process(es) but the job has {size}: trace the function again"),
        });
    }
    let mut shape = vec![1];
    shape.extend_from_slice(x.shape());
    match backend() {
        Some(b) if size > 1 => b.all_gather(x),
        _ => x.reshaped(&shape),
    }
}
