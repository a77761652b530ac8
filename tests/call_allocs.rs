//! The steady-state call of a compiled function allocates a fixed, small number of times
//! (issue 18, W5). Its own test binary: the counting allocator counts only the thread
//! running the measured calls, and no other test file shares the allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use kiln::Tensor;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

/// Allocations per call of `call`, after warm-up, over many calls.
fn allocs_per_call(mut call: impl FnMut()) -> f64 {
    for _ in 0..100 {
        call();
    }
    let before = allocs();
    let n = 1000;
    for _ in 0..n {
        call();
    }
    let per_call = (allocs() - before) as f64 / n as f64;
    eprintln!("{per_call} allocations per call");
    per_call
}

/// W5: `3·w1² + 2·w1·w2` and its two scalar arguments.
fn w5() -> (kiln::Function<Tensor>, Tensor, Tensor) {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    (f, Tensor::scalar(5.0f32), Tensor::scalar(3.0f32))
}

/// What a fresh output tensor costs: its buffer, the array's `Arc` and the tensor's `Arc`.
const ALLOCS_PER_OUTPUT: f64 = 3.0;

/// W5 (issue 18): a compiled call on two scalars allocates its one output tensor and
/// nothing else: no argument vector, no call state, no outcome vector, no output vector.
#[test]
fn w5_call_allocates_only_its_output() {
    let (f, w1, w2) = w5();
    assert_eq!(f.call((&w1, &w2)).unwrap().to_scalar::<f32>().unwrap(), 105.0);
    assert!(f.concrete_function((&w1, &w2)).unwrap().executable().unwrap().is_direct());
    let per_call = allocs_per_call(|| drop(f.call((black_box(&w1), &w2)).unwrap()));
    assert!(per_call <= ALLOCS_PER_OUTPUT, "W5 allocates {per_call} times per call");
}

/// W5 through `call_into`: the output is written into the caller's tensor, so a steady
/// call allocates nothing at all.
#[test]
fn w5_call_into_allocates_nothing() {
    let (f, w1, w2) = w5();
    let mut y = f.call((&w1, &w2)).unwrap();
    let per_call = allocs_per_call(|| f.call_into((black_box(&w1), &w2), &mut y).unwrap());
    assert_eq!(y.to_scalar::<f32>().unwrap(), 105.0);
    assert_eq!(per_call, 0.0, "W5 through call_into allocates {per_call} times per call");
}

/// The same for a tuple of outputs, arguments given as a slice, and a graph that takes the
/// general executor path (a call state from the pool).
#[test]
fn other_call_shapes_allocate_only_their_outputs() {
    let f = kiln::function(|x: &Tensor, y: &Tensor| (x * y, x + y));
    let (x, y) = (Tensor::new(&[1.0f32, 2.0]), Tensor::new(&[3.0f32, 4.0]));
    let (p, s) = f.call((&x, &y)).unwrap();
    assert_eq!((p.to_vec::<f32>().unwrap(), s.to_vec::<f32>().unwrap()), (vec![3.0, 8.0], vec![4.0, 6.0]));
    let per_call = allocs_per_call(|| drop(f.call((black_box(&x), &y)).unwrap()));
    assert!(per_call <= 2.0 * ALLOCS_PER_OUTPUT, "a two-output call allocates {per_call} times");

    let args = [x.clone(), y.clone()];
    let per_call = allocs_per_call(|| drop(f.call(black_box(&args[..])).unwrap()));
    assert!(per_call <= 2.0 * ALLOCS_PER_OUTPUT, "a call on a slice allocates {per_call} times");

    let g = kiln::function(|x: &Tensor| x.sum_all() * 2.0);
    assert_eq!(g.call(&x).unwrap().to_scalar::<f32>().unwrap(), 6.0);
    assert!(!g.concrete_function(&x).unwrap().executable().unwrap().is_direct());
    let per_call = allocs_per_call(|| drop(g.call(black_box(&x)).unwrap()));
    assert!(per_call <= ALLOCS_PER_OUTPUT, "a general-path call allocates {per_call} times");
}

/// Tiny calls run under the signature cache's read lock: many threads calling one
/// function, on two signatures, each get their own right results.
#[test]
fn tiny_calls_from_many_threads() {
    let (f, _, _) = w5();
    std::thread::scope(|s| {
        for t in 0..4 {
            let f = &f;
            s.spawn(move || {
                for i in 0..2000 {
                    let w1 = t as f32 + i as f32 * 0.5;
                    let got = f.call((&Tensor::scalar(w1), &Tensor::scalar(3.0f32))).unwrap();
                    assert_eq!(got.to_scalar::<f32>().unwrap(), 3.0 * w1 * w1 + 6.0 * w1);
                    let v = f.call((&Tensor::new(&[w1]), &Tensor::new(&[1.0f32]))).unwrap();
                    assert_eq!(v.to_vec::<f32>().unwrap(), vec![3.0 * w1 * w1 + 2.0 * w1]);
                }
            });
        }
    });
    assert_eq!(f.trace_count(), 2);
}

/// Nanoseconds this thread has run on a CPU (Linux), so that time spent preempted by
/// other processes on a busy machine does not count.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Nanoseconds per `f()` over 15 runs of `calls` calls: the median and minimum of on-CPU
/// time (wall time where the OS does not report it), and the median of wall time.
fn ns_per_call(calls: u32, mut f: impl FnMut()) -> (f64, f64, f64) {
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let (c0, w0) = (on_cpu_ns(), std::time::Instant::now());
        for _ in 0..calls {
            f();
        }
        let w = w0.elapsed().as_nanos() as f64 / calls as f64;
        wall.push(w);
        cpu.push(match (c0, on_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / calls as f64,
            _ => w,
        });
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    (cpu[7], cpu[0], wall[7])
}

/// `cargo test --release --test call_allocs -- --ignored --nocapture`: ns per W5 call.
#[test]
#[ignore]
fn w5_call_time() {
    let (f, w1, w2) = w5();
    f.call((&w1, &w2)).unwrap();
    let (med, min, wall) = ns_per_call(200_000, || drop(f.call((black_box(&w1), &w2)).unwrap()));
    eprintln!("W5: {med:.0} ns per call on-CPU (median of 15), min {min:.0}; wall {wall:.0} ns");
    let mut y = f.call((&w1, &w2)).unwrap();
    let (med, min, wall) = ns_per_call(200_000, || f.call_into((black_box(&w1), &w2), &mut y).unwrap());
    eprintln!("W5 call_into: {med:.0} ns per call on-CPU (median of 15), min {min:.0}; wall {wall:.0} ns");
    let (med, min, wall) = ns_per_call(200_000, || drop(black_box(Tensor::scalar(black_box(1.0f32)))));
    eprintln!("floor: {med:.0} ns per new scalar tensor on-CPU (median of 15), min {min:.0}; wall {wall:.0} ns");
}

/// Where a W5 call's time goes: the signature lookup, the executor alone, and a new scalar
/// tensor (what returning one costs at least). Run like `w5_call_time`.
#[test]
#[ignore]
fn w5_breakdown() {
    let (f, w1, w2) = w5();
    f.call((&w1, &w2)).unwrap();
    let c = f.concrete_function((&w1, &w2)).unwrap();
    let exe = c.executable().unwrap();
    let (a1, a2) = (kiln::ir::Array::scalar(5.0f32), kiln::ir::Array::scalar(3.0f32));
    let mut out = kiln::ir::interp::Outcome { outputs: Vec::new(), writes: Vec::new() };
    for (name, (med, _, _)) in [
        ("call", ns_per_call(200_000, || drop(f.call((black_box(&w1), &w2)).unwrap()))),
        ("concrete_function", ns_per_call(200_000, || drop(f.concrete_function((black_box(&w1), &w2)).unwrap()))),
        (
            "run_borrowed",
            ns_per_call(200_000, || {
                exe.run_borrowed(&[black_box(&a1), &a2], &[], &mut out).unwrap();
                out.outputs.clear();
            }),
        ),
        ("scalar tensor", ns_per_call(200_000, || drop(black_box(Tensor::scalar(black_box(1.0f32)))))),
    ] {
        eprintln!("{name}: {med:.0} ns");
    }
}
