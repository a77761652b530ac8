//! The MPI transport (feature `mpi`): MPI's world communicator through the `mpi` crate
//! (rsmpi), installed as the process's [`Collectives`].
//!
//! Before each collective the processes all-gather a small header (which collective, its
//! attribute, dtype and shape), so a process that calls another collective, or passes
//! another dtype or shape, makes every process fail with an error naming it, instead of
//! reducing mismatched buffers or waiting forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use ::mpi::collective::SystemOperation;
use ::mpi::environment::Universe;
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::{Communicator, CommunicatorCollectives, Equivalence, Root};
use ::mpi::Threading;
use kiln_ir::interp::collective::{self, Collectives};
use kiln_ir::{with_data, Array, DType, Element, Error, ReduceOp, Result};

use super::World;

/// What keeps MPI open: dropped with the last [`World`], which finalizes MPI.
pub(crate) struct Session {
    transport: Arc<Transport>,
    _universe: Universe,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.transport.closed.store(true, Ordering::SeqCst);
        if std::thread::panicking() {
            // MPI_Finalize waits for every process; the others may be waiting in a
            // collective this one will never reach. End the job instead of hanging it.
            eprintln!("kiln::distributed: rank {} panicked; aborting the job", self.transport.rank);
            abort(101);
        }
    }
}

static SESSION: Mutex<Weak<Session>> = Mutex::new(Weak::new());

/// Whether a launcher started this process as part of a job (Open MPI's `mpirun`, or a
/// PMI/PMIx launcher such as Slurm's or MPICH's): only then is MPI initialized.
fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].iter().any(|v| std::env::var_os(v).is_some())
}

pub(super) fn init() -> Result<Option<World>> {
    if !launched_by_mpi() {
        return Ok(None);
    }
    let mut current = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    let session = match current.upgrade() {
        Some(s) => s,
        None => {
            let (universe, threading) = ::mpi::initialize_with_threading(Threading::Multiple).ok_or_else(|| {
                failure(
                    "init",
                    "MPI was already started in this process, and is finalized when the last World is dropped: \
                     keep one World for the whole program"
                        .into(),
                )
            })?;
            if !matches!(threading, Threading::Serialized | Threading::Multiple) {
                return Err(failure(
                    "init",
                    format!("this MPI library offers thread level {threading:?}; kiln needs at least Serialized"),
                ));
            }
            let comm = universe.world();
            let transport = Arc::new(Transport {
                rank: comm.rank() as usize,
                size: comm.size() as usize,
                lock: Mutex::new(()),
                closed: AtomicBool::new(false),
            });
            collective::install(transport.clone());
            let s = Arc::new(Session { transport, _universe: universe });
            *current = Arc::downgrade(&s);
            s
        }
    };
    let (rank, size) = (session.transport.rank, session.transport.size);
    Ok(Some(World { session: Some(session), rank, size }))
}

/// Ends every process of the job.
pub(super) fn abort(code: i32) -> ! {
    SimpleCommunicator::world().abort(code)
}

fn failure(op: &'static str, msg: String) -> Error {
    Error::Runtime { op, msg }
}

/// The installed transport: MPI's world communicator, one call at a time.
struct Transport {
    rank: usize,
    size: usize,
    /// MPI is initialized with at least `Serialized`: calls from several threads must not
    /// overlap.
    lock: Mutex<()>,
    closed: AtomicBool,
}

/// Which collective a header describes, and its attribute.
#[derive(Clone, Copy)]
enum Call {
    AllReduce(ReduceOp),
    Broadcast(usize),
    AllGather,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::AllReduce(_) => "all_reduce",
            Call::Broadcast(_) => "broadcast",
            Call::AllGather => "all_gather",
        }
    }

    fn code(self) -> [i64; 2] {
        match self {
            Call::AllReduce(r) => [0, ReduceOp::ALL.iter().position(|&o| o == r).expect("a reduction") as i64],
            Call::Broadcast(root) => [1, root as i64],
            Call::AllGather => [2, 0],
        }
    }
}

/// Dims written out in a header; longer shapes are compared by the hash slot.
const DIMS: usize = 8;
const HEADER: usize = 5 + DIMS + 1;

fn header(call: Call, x: &Array) -> [i64; HEADER] {
    let mut h = [-1i64; HEADER];
    let [kind, attr] = call.code();
    h[0] = kind;
    h[1] = attr;
    h[2] = DType::ALL.iter().position(|&d| d == x.dtype()).expect("a dtype") as i64;
    h[3] = x.shape().len() as i64;
    h[4] = x.len() as i64;
    for (slot, &d) in h[5..5 + DIMS].iter_mut().zip(x.shape()) {
        *slot = d as i64;
    }
    h[HEADER - 1] = x.shape().iter().fold(17i64, |acc, &d| acc.wrapping_mul(31).wrapping_add(d as i64));
    h
}

/// A header as text: `all_reduce(sum) of f32[3, 4]`.
fn describe(h: &[i64]) -> String {
    let call = match h[0] {
        0 => format!("all_reduce({})", ReduceOp::ALL[h[1] as usize].name()),
        1 => format!("broadcast(root {})", h[1]),
        _ => "all_gather".to_string(),
    };
    let dtype = DType::ALL[h[2] as usize].name();
    let ndim = h[3] as usize;
    let dims: Vec<String> = h[5..5 + ndim.min(DIMS)].iter().map(|d| d.to_string()).collect();
    let more = if ndim > DIMS { ", ..." } else { "" };
    format!("{call} of {dtype}[{}{more}]", dims.join(", "))
}

impl Transport {
    /// Every process's header; `Err` on every process if any differs.
    fn agree(&self, comm: &SimpleCommunicator, call: Call, x: &Array) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(failure(call.name(), "MPI was finalized (every distributed::World was dropped)".into()));
        }
        let mine = header(call, x);
        let mut all = vec![0i64; HEADER * self.size];
        comm.all_gather_into(&mine[..], &mut all[..]);
        let rows: Vec<&[i64]> = all.chunks(HEADER).collect();
        if rows.iter().all(|r| *r == rows[0]) {
            return Ok(());
        }
        let calls: Vec<String> = rows.iter().enumerate().map(|(r, h)| format!("rank {r}: {}", describe(h))).collect();
        Err(failure(
            call.name(),
            format!(
                "the processes disagree on this collective (each must call the same one with the same dtype and shape): {}",
                calls.join("; ")
            ),
        ))
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn reduced<T: Element + Equivalence + Default>(comm: &SimpleCommunicator, v: &[T], op: SystemOperation) -> Vec<T> {
    let mut out = vec![T::default(); v.len()];
    comm.all_reduce_into(v, &mut out[..], op);
    out
}

fn broadcast_from<T: Element + Equivalence>(comm: &SimpleCommunicator, v: &[T], root: usize) -> Vec<T> {
    let mut buf = v.to_vec();
    comm.process_at_rank(root as i32).broadcast_into(&mut buf[..]);
    buf
}

fn gathered<T: Element + Equivalence + Default>(comm: &SimpleCommunicator, v: &[T], size: usize) -> Vec<T> {
    let mut out = vec![T::default(); v.len() * size];
    comm.all_gather_into(v, &mut out[..]);
    out
}

impl Collectives for Transport {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce(&self, x: &Array, op: ReduceOp) -> Result<Array> {
        let op_mpi = match op {
            ReduceOp::Sum => SystemOperation::sum(),
            ReduceOp::Prod => SystemOperation::product(),
            ReduceOp::Max => SystemOperation::max(),
            ReduceOp::Min => SystemOperation::min(),
            ReduceOp::Mean => return Err(failure("all_reduce", "the interpreter computes mean from sum".into())),
        };
        let _one_at_a_time = self.locked();
        let comm = SimpleCommunicator::world();
        self.agree(&comm, Call::AllReduce(op), x)?;
        with_data!(x.data(), v => Array::from_vec(reduced(&comm, v, op_mpi), x.shape()))
    }

    fn broadcast(&self, x: &Array, root: usize) -> Result<Array> {
        let _one_at_a_time = self.locked();
        let comm = SimpleCommunicator::world();
        self.agree(&comm, Call::Broadcast(root), x)?;
        with_data!(x.data(), v => Array::from_vec(broadcast_from(&comm, v, root), x.shape()))
    }

    fn all_gather(&self, x: &Array) -> Result<Array> {
        let _one_at_a_time = self.locked();
        let comm = SimpleCommunicator::world();
        self.agree(&comm, Call::AllGather, x)?;
        let mut shape = vec![self.size];
        shape.extend_from_slice(x.shape());
        with_data!(x.data(), v => Array::from_vec(gathered(&comm, v, self.size), &shape))
    }
}
