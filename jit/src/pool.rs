//! A persistent thread pool for splitting one kernel's output range across cores.
//!
//! Workers are started once; between jobs they poll for the next one for up to [`SPIN`],
//! then sleep on a condition variable, so a parallel kernel costs at most a wake-up, not a
//! thread spawn (a fresh `std::thread::scope` costs tens of µs), and the parallel steps of
//! one call, posted µs apart, not even that. One job runs at a time: a caller that finds
//! the pool busy (another thread's kernel) runs its job inline instead of queueing, so
//! concurrent calls never wait on each other. Nothing is allocated per job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker with nothing to do (and a caller waiting for its chunks) polls before
/// sleeping. A compiled call posts its parallel steps a few µs apart; a worker that slept
/// between them woke up tens of µs late each time (a virtual CPU's wake-up), while the
/// caller, having finished its own share, waited for it.
const SPIN: Duration = Duration::from_micros(30);

/// Polls `done` until it holds or [`SPIN`] has passed.
fn spin_until(done: impl Fn() -> bool) {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if done() {
                return;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= SPIN {
            return;
        }
        // Another thread ready to run on this core (a first call's page faults, gemm's
        // set-up) gets it.
        std::thread::yield_now();
    }
}

/// The job being run: a borrowed closure with its lifetime erased (see [`ThreadPool::for_each`]).
type JobPtr = *const (dyn Fn(usize) + Sync);

struct State {
    job: Option<JobPtr>,
    /// Number of chunks of the current job.
    n: usize,
    /// Next chunk to hand out.
    next: usize,
    shutdown: bool,
    /// The caller is asleep on `done`, waiting for the workers' chunks.
    waiting: bool,
    /// Workers asleep on `work`: posting a job wakes them only if there are any.
    sleepers: usize,
}

// SAFETY: the job pointer is only dereferenced while its `for_each` call is blocked waiting
// for `left == 0`, so the closure (which is `Sync`) outlives every use on other threads.
unsafe impl Send for State {}

struct Shared {
    state: Mutex<State>,
    /// Jobs posted so far: what an idle worker polls before it sleeps.
    posted: AtomicUsize,
    /// Chunks of the current job handed out or waiting that have not finished: what a caller
    /// done with its own chunks polls before it sleeps.
    left: AtomicUsize,
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
            state: Mutex::new(State { job: None, n: 0, next: 0, shutdown: false, waiting: false, sleepers: 0 }),
            posted: AtomicUsize::new(0),
            left: AtomicUsize::new(0),
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
        // function returns, and workers only call it for chunks counted in `left`, which we
        // wait to reach zero first, so no call outlives the borrow of `f`.
        let job: JobPtr = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), JobPtr>(f) };
        let s = &*self.shared;
        let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
        st.job = Some(job);
        st.n = n;
        st.next = 0;
        s.left.store(n, Ordering::Relaxed);
        s.posted.fetch_add(1, Ordering::Release);
        if st.sleepers > 0 {
            s.work.notify_all();
        }
        // The caller works too, claiming chunks like any worker.
        while st.next < st.n {
            let i = st.next;
            st.next += 1;
            drop(st);
            f(i);
            s.left.fetch_sub(1, Ordering::AcqRel);
            st = s.state.lock().unwrap_or_else(|e| e.into_inner());
        }
        drop(st);
        spin_until(|| s.left.load(Ordering::Acquire) == 0);
        let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
        st.waiting = true;
        while s.left.load(Ordering::Acquire) > 0 {
            st = s.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.waiting = false;
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
                // `for_each` keeps the closure borrowed until `left` (which counts this
                // chunk) reaches zero.
                unsafe { (*job)(i) };
                let last = s.left.fetch_sub(1, Ordering::AcqRel) == 1;
                st = s.state.lock().unwrap_or_else(|e| e.into_inner());
                // The caller checks `left` under the lock before it sleeps, so it either saw
                // zero or is asleep now.
                if last && st.waiting {
                    s.done.notify_all();
                }
            }
            _ => {
                // A job posted from here on changes `posted`; poll it a while, then sleep.
                let seen = s.posted.load(Ordering::Acquire);
                drop(st);
                spin_until(|| s.posted.load(Ordering::Acquire) != seen);
                st = s.state.lock().unwrap_or_else(|e| e.into_inner());
                if s.posted.load(Ordering::Acquire) == seen && !st.shutdown {
                    st.sleepers += 1;
                    st = s.work.wait(st).unwrap_or_else(|e| e.into_inner());
                    st.sleepers -= 1;
                }
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).shutdown = true;
        self.shared.posted.fetch_add(1, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Runs a two-chunk job whose chunks each wait (up to 10 s) until both have started:
    /// both finish in time only if a worker ran one beside the caller. Returns how many
    /// times each chunk ran and whether both met.
    fn job_needing_a_worker(pool: &ThreadPool) -> ([usize; 2], bool) {
        let runs = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let started = AtomicUsize::new(0);
        let met = AtomicBool::new(true);
        pool.for_each(2, &|i| {
            runs[i].fetch_add(1, Ordering::Relaxed);
            started.fetch_add(1, Ordering::AcqRel);
            let t = Instant::now();
            while started.load(Ordering::Acquire) < 2 {
                if t.elapsed() > Duration::from_secs(10) {
                    met.store(false, Ordering::Relaxed);
                    return;
                }
                std::thread::yield_now();
            }
        });
        (runs.map(|r| r.into_inner()), met.into_inner())
    }

    /// A worker takes jobs posted while it polls (back to back) and jobs posted after it has
    /// gone to sleep, and runs each chunk once.
    #[test]
    fn a_worker_takes_jobs_while_polling_and_after_sleeping() {
        let pool = ThreadPool::new(2);
        for round in 0..50 {
            assert_eq!(job_needing_a_worker(&pool), ([1, 1], true));
            if round % 10 == 9 {
                std::thread::sleep(SPIN * 5);
            }
        }
    }

    /// Callers on several threads share one pool: each gets every chunk of its own job run
    /// exactly once (a caller finding the pool busy runs its job inline).
    #[test]
    fn concurrent_callers_each_run_all_their_chunks() {
        let pool = ThreadPool::new(3);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for n in [1, 2, 7, 64] {
                        let runs: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                        pool.for_each(n, &|i| {
                            runs[i].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
                    }
                });
            }
        });
    }

    /// Dropping a pool whose worker is polling for the next job joins it.
    #[test]
    fn a_pool_drops_while_its_worker_polls() {
        let pool = ThreadPool::new(2);
        assert_eq!(job_needing_a_worker(&pool), ([1, 1], true));
        drop(pool);
    }
}
