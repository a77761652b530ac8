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
    (allocs() - before) as f64 / n as f64
}

#[test]
fn w5_call_allocations() {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    let (w1, w2) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    assert_eq!(f.call((&w1, &w2)).unwrap().to_scalar::<f32>().unwrap(), 105.0);
    let per_call = allocs_per_call(|| drop(f.call((black_box(&w1), &w2)).unwrap()));
    eprintln!("W5: {per_call} allocations per call");
}

/// Nanoseconds this thread has run on a CPU (Linux), so that time spent preempted by
/// other processes on a busy machine does not count.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Median and minimum nanoseconds per `f()` over 15 runs of `calls` calls, on-CPU time
/// where the OS reports it, else wall time.
fn ns_per_call(calls: u32, mut f: impl FnMut()) -> (f64, f64) {
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let (c0, w0) = (on_cpu_ns(), std::time::Instant::now());
            for _ in 0..calls {
                f();
            }
            let wall = w0.elapsed().as_nanos() as f64;
            let ns = match (c0, on_cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64,
                _ => wall,
            };
            ns / calls as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[7], t[0])
}

/// `cargo test --release --test call_allocs -- --ignored --nocapture`: ns per W5 call.
#[test]
#[ignore]
fn w5_call_time() {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    let (w1, w2) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    f.call((&w1, &w2)).unwrap();
    let (med, min) = ns_per_call(200_000, || drop(f.call((black_box(&w1), &w2)).unwrap()));
    eprintln!("W5: {med:.0} ns per call (median of 15), min {min:.0}");
    let (med, min) = ns_per_call(200_000, || drop(black_box(Tensor::scalar(black_box(1.0f32)))));
    eprintln!("floor: {med:.0} ns per new scalar tensor (median of 15), min {min:.0}");
}

#[test]
#[ignore]
fn w5_schedule() {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    let (w1, w2) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    let c = f.concrete_function((&w1, &w2)).unwrap();
    eprintln!("{}", c.executable().unwrap().schedule_text());
}

#[test]
#[ignore]
fn w5_breakdown() {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    let (w1, w2) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    f.call((&w1, &w2)).unwrap();
    let c = f.concrete_function((&w1, &w2)).unwrap();
    let exe = c.executable().unwrap();
    let (a1, a2) = (kiln::ir::Array::scalar(5.0f32), kiln::ir::Array::scalar(3.0f32));
    let mut out = kiln::ir::interp::Outcome { outputs: Vec::new(), writes: Vec::new() };
    for (name, (med, _)) in [
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

#[test]
#[ignore]
fn w5_exe_only() {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    let (w1, w2) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    let c = f.concrete_function((&w1, &w2)).unwrap();
    let exe = c.executable().unwrap();
    let (a1, a2) = (kiln::ir::Array::scalar(5.0f32), kiln::ir::Array::scalar(3.0f32));
    let mut out = kiln::ir::interp::Outcome { outputs: Vec::new(), writes: Vec::new() };
    let (med, _) = ns_per_call(1_000_000, || {
        exe.run_borrowed(&[black_box(&a1), &a2], &[], &mut out).unwrap();
        out.outputs.clear();
    });
    eprintln!("run_borrowed: {med:.0} ns");
}
