//! A persistent thread pool for splitting one kernel's output range across cores.
//!
//! Workers are started once and sleep on a condition variable between jobs, so a parallel
//! kernel costs a wake-up, not a thread spawn (a fresh `std::thread::scope` costs tens of
//! µs). One job runs at a time: a caller that finds the pool busy (another thread's kernel)
//! runs its job inline instead of queueing, so concurrent calls never wait on each other.
//! Nothing is allocated per job.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;

/// The job being run: a borrowed closure with its lifetime erased (see [`ThreadPool::for_each`]).
type JobPtr = *const (dyn Fn(usize) + Sync);

struct State {
    job: Option<JobPtr>,
    /// Number of chunks of the current job.
    n: usize,
    /// Next chunk to hand out.
    next: usize,
    /// Chunks handed out or waiting that have not finished.
    pending: usize,
    shutdown: bool,
}

// SAFETY: the job pointer is only dereferenced while its `for_each` call is blocked waiting
// for `pending == 0`, so the closure (which is `Sync`) outlives every use on other threads.
unsafe impl Send for State {}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
}

/// A fixed set of worker threads plus the calling thread.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let pool = kiln_jit::pool::ThreadPool::new(2);
/// let sum = AtomicUsize::new(0);
/// pool.for_each(10, &|i| {
///     sum.fetch_add(i, Ordering::Relaxed);
/// });
/// assert_eq!(sum.into_inner(), 45);
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
    /// Held for the duration of a job; `try_lock` failing means "busy, run inline".
    busy: Mutex<()>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
}

impl ThreadPool {
    /// A pool using `threads` threads in total: the caller plus `threads - 1` workers.
    pub fn new(threads: usize) -> ThreadPool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State { job: None, n: 0, next: 0, pending: 0, shutdown: false }),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let workers = (1..threads)
            .map(|i| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name(format!("kiln-worker-{i}"))
                    .spawn(move || worker(&s))
                    .expect("spawning a kiln worker thread")
            })
            .collect();
        ThreadPool { shared, busy: Mutex::new(()), workers, threads }
    }

    /// Total threads a job may use (workers plus the caller).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Calls `f(i)` for every `i` in `0..n`, spread over the pool, and returns when all are
    /// done. Runs everything on the calling thread if the pool has one thread or is busy.
    pub fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let guard = if self.threads > 1 && n > 1 { self.busy.try_lock().ok() } else { None };
        let Some(_guard) = guard else {
            (0..n).for_each(f);
            return;
        };
        // SAFETY: only the lifetime is erased. The pointer is cleared below before this
        // function returns, and workers only call it for chunks counted in `pending`, which
        // we wait to reach zero first, so no call outlives the borrow of `f`.
        let job: JobPtr = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), JobPtr>(f) };
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.job = Some(job);
        st.n = n;
        st.next = 0;
        st.pending = n;
        self.shared.work.notify_all();
        // The caller works too, claiming chunks like any worker.
        while st.next < st.n {
            let i = st.next;
            st.next += 1;
            drop(st);
            f(i);
            st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.pending -= 1;
        }
        while st.pending > 0 {
            st = self.shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.job = None;
    }
}

fn worker(s: &Shared) {
    let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if st.shutdown {
            return;
        }
        match st.job {
            Some(job) if st.next < st.n => {
                let i = st.next;
                st.next += 1;
                drop(st);
                // SAFETY: chunk `i` was claimed under the lock while the job was live, and
                // `for_each` keeps the closure borrowed until `pending` (which counts this
                // chunk) reaches zero.
                unsafe { (*job)(i) };
                st = s.state.lock().unwrap_or_else(|e| e.into_inner());
                st.pending -= 1;
                if st.pending == 0 {
                    s.done.notify_all();
                }
            }
            _ => st = s.work.wait(st).unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).shutdown = true;
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The thread count from `KILN_NUM_THREADS`, else the number of available cores.
pub fn default_threads() -> usize {
    kiln_ir::config::threads()
}

/// The process-wide pool with `threads` threads (created on first use, then shared).
pub fn shared(threads: usize) -> Arc<ThreadPool> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = pools.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(threads.max(1)).or_insert_with(|| Arc::new(ThreadPool::new(threads))).clone()
}

/// [`ThreadPool::for_each`] on the process-wide pool of [`default_threads`] threads: the
/// [`kiln_ir::matmul::ParFor`] on which eager products run, so that they share the
/// executor's threads instead of starting gemm's own.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let done = AtomicUsize::new(0);
/// kiln_jit::pool::for_each_default(4, &|_| {
///     done.fetch_add(1, Ordering::Relaxed);
/// });
/// assert_eq!(done.into_inner(), 4);
/// ```
pub fn for_each_default(n: usize, f: &(dyn Fn(usize) + Sync)) {
    static POOL: OnceLock<Arc<ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| shared(default_threads())).for_each(n, f)
}
