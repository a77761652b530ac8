//! Data-parallel training across processes (Horovod's model, on MPI): every process runs
//! the same program on its own shard of the data, and collectives combine values across
//! processes. `docs/DISTRIBUTED.md` covers setup, semantics and scaling.
//!
//! [`all_reduce`], [`broadcast`] and [`all_gather`] are graph ops: eagerly they run at once;
//! inside a [`kiln::function`](crate::function) they become nodes that the compiled step runs
//! in program order, so a whole distributed training step is one compiled function. They
//! have gradients (the gradient of a sum over processes sums the cotangents over processes).
//!
//! The transport is MPI (the cargo feature `mpi`, over the system's Open MPI): [`init`]
//! joins the job `mpirun` started. Without the feature, or in a process not started by
//! `mpirun`, the world has one process and every collective gives its operand back, so the
//! same program runs alone unchanged.
//!
//! ```
//! use kiln::distributed::{self, ReduceOp};
//! use kiln::{DType, Tensor};
//! let world = distributed::init().unwrap();
//! let t = Tensor::fill(&[4], world.rank() as f64 + 1.0, DType::F32);
//! let s = world.all_reduce(&t, ReduceOp::Sum).unwrap();
//! let f = kiln::function(|x: &Tensor| distributed::all_reduce(x, ReduceOp::Mean));
//! let m = f.call(&t).unwrap();
//! if world.size() == 1 {
//!     assert_eq!(s.to_vec::<f32>().unwrap(), vec![1.0; 4]);
//!     assert_eq!(m.to_vec::<f32>().unwrap(), vec![1.0; 4]);
//! }
//! ```

#[cfg(feature = "mpi")]
mod mpi;
mod optimizer;

pub use kiln_ir::ReduceOp;
pub use optimizer::{average_gradients, DistributedOptimizer, DEFAULT_BUCKET_BYTES};

#[cfg(feature = "mpi")]
use std::sync::Arc;

use kiln_ir::interp::collective;
use kiln_ir::Op;

use crate::context::apply_effect;
use crate::{Result, Tensor, Variable};

/// Every process's `x` combined elementwise by `op` (sum, mean, max, min or prod over the
/// processes), on every process. `x` must have the same dtype and shape everywhere.
///
/// Max and min take MPI's own comparison: a NaN need not propagate (unlike the
/// `max`/`min` reductions). Integer means truncate.
///
/// ```
/// use kiln::distributed::{all_reduce, ReduceOp};
/// use kiln::Tensor;
/// // One process: the operand itself.
/// let s = all_reduce(&Tensor::new(&[1.0f32, 2.0]), ReduceOp::Sum).unwrap();
/// assert_eq!(s.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
/// ```
pub fn all_reduce(x: &Tensor, op: ReduceOp) -> Result<Tensor> {
    apply_effect(Op::AllReduce(op), &[x])
}

/// Process `root`'s `x` on every process (the others' `x` give only dtype and shape).
///
/// ```
/// let b = kiln::distributed::broadcast(&kiln::Tensor::scalar(7i64), 0).unwrap();
/// assert_eq!(b.to_scalar::<i64>().unwrap(), 7);
/// ```
pub fn broadcast(x: &Tensor, root: usize) -> Result<Tensor> {
    apply_effect(Op::Broadcast(root), &[x])
}

/// Every process's `x`, stacked in rank order: shape `[size, ..x.shape]`. Inside a traced
/// function the size is fixed when the function is traced.
///
/// ```
/// let g = kiln::distributed::all_gather(&kiln::Tensor::new(&[1i32, 2])).unwrap();
/// assert_eq!(g.shape(), &[1, 2]);
/// ```
pub fn all_gather(x: &Tensor) -> Result<Tensor> {
    apply_effect(Op::AllGather(collective::size()), &[x])
}

/// Sets every Variable to process `root`'s value (Horovod's `broadcast_variables`): run it
/// once after the model is built, so that every process starts from the same weights.
///
/// ```
/// let w = kiln::Variable::new(kiln::Tensor::new(&[1.0f32, 2.0]));
/// kiln::distributed::broadcast_variables(&[&w], 0).unwrap();
/// assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
/// ```
pub fn broadcast_variables(variables: &[&Variable], root: usize) -> Result<()> {
    for v in variables {
        v.assign(&broadcast(&v.read(), root)?)?;
    }
    Ok(())
}

/// The processes of this job. Holds MPI open: MPI is finalized when the last handle (and
/// every clone) is dropped, and cannot be started again in the same process.
///
/// ```
/// let world = kiln::distributed::init().unwrap();
/// println!("{world:?}: rank {} of {}", world.rank(), world.size());
/// assert!(world.is_mpi() || world.size() == 1);
/// ```
#[derive(Clone)]
pub struct World {
    #[cfg(feature = "mpi")]
    session: Option<Arc<mpi::Session>>,
    rank: usize,
    size: usize,
}

/// Joins the job: with the `mpi` feature in a process started by `mpirun` (or another MPI
/// launcher), initializes MPI and makes it the transport of every collective; otherwise a
/// world of one process. Calling it again while a [`World`] is alive gives the same world.
///
/// ```
/// let world = kiln::distributed::init().unwrap();
/// assert!(world.rank() < world.size());
/// ```
pub fn init() -> Result<World> {
    #[cfg(feature = "mpi")]
    if let Some(world) = mpi::init()? {
        return Ok(world);
    }
    Ok(World::alone())
}

impl World {
    fn alone() -> World {
        World {
            #[cfg(feature = "mpi")]
            session: None,
            rank: 0,
            size: 1,
        }
    }

    /// Whether MPI carries this world's collectives.
    pub fn is_mpi(&self) -> bool {
        #[cfg(feature = "mpi")]
        return self.session.is_some();
        #[cfg(not(feature = "mpi"))]
        false
    }

    /// This process's number, `0..size()`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// How many processes the job has.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this is rank 0, the process that writes checkpoints, logs and progress.
    ///
    /// ```
    /// let world = kiln::distributed::init().unwrap();
    /// if world.is_root() {
    ///     println!("only once per job");
    /// }
    /// ```
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// [`all_reduce`] (eagerly, or as a node when tracing).
    pub fn all_reduce(&self, x: &Tensor, op: ReduceOp) -> Result<Tensor> {
        all_reduce(x, op)
    }

    /// [`broadcast`].
    pub fn broadcast(&self, x: &Tensor, root: usize) -> Result<Tensor> {
        broadcast(x, root)
    }

    /// [`all_gather`].
    pub fn all_gather(&self, x: &Tensor) -> Result<Tensor> {
        all_gather(x)
    }

    /// Waits until every process reaches this point (an all-reduce of one value).
    ///
    /// ```
    /// kiln::distributed::init().unwrap().barrier().unwrap();
    /// ```
    pub fn barrier(&self) -> Result<()> {
        crate::init_scope(|| all_reduce(&Tensor::scalar(0i32), ReduceOp::Sum)).map(|_| ())
    }

    /// `result`'s value; if it is an `Err`, ends the whole job naming this rank and the error
    /// ([`World::abort`]). A process that returned the error instead would leave the others
    /// waiting in their next collective (and itself in MPI's finalization, which waits for
    /// them). A panic needs no such call: it aborts the job when it drops the `World`.
    ///
    /// ```
    /// let world = kiln::distributed::init().unwrap();
    /// let loss: f64 = world.or_abort(Ok(0.25));
    /// assert_eq!(loss, 0.25);
    /// ```
    pub fn or_abort<T>(&self, result: Result<T>) -> T {
        match result {
            Ok(v) => v,
            Err(e) => self.abort(1, &format!("error: {e}")),
        }
    }

    /// Ends the whole job at once with `code` (MPI_Abort: every process, not only this one),
    /// after printing `why`. A process that cannot go on calls this rather than returning,
    /// which would leave the others waiting in their next collective.
    ///
    /// ```no_run
    /// let world = kiln::distributed::init().unwrap();
    /// world.abort(2, "the data file is missing");
    /// ```
    pub fn abort(&self, code: i32, why: &str) -> ! {
        eprintln!("kiln::distributed: rank {} of {} aborts the job: {why}", self.rank, self.size);
        #[cfg(feature = "mpi")]
        if self.is_mpi() {
            mpi::abort(code);
        }
        std::process::exit(code)
    }
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "World(rank {} of {}, {})", self.rank, self.size, if self.is_mpi() { "MPI" } else { "alone" })
    }
}
