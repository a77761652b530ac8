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

/// `cargo test --release --test call_allocs -- --ignored --nocapture`: ns per W5 call.
#[test]
#[ignore]
fn w5_call_time() {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    let (w1, w2) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    f.call((&w1, &w2)).unwrap();
    let calls = 200_000;
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let s = std::time::Instant::now();
            for _ in 0..calls {
                drop(f.call((black_box(&w1), &w2)).unwrap());
            }
            s.elapsed().as_secs_f64() / calls as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    eprintln!("W5: {:.0} ns per call (median of 15), min {:.0}", t[7] * 1e9, t[0] * 1e9);
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let s = std::time::Instant::now();
            for _ in 0..calls {
                drop(black_box(Tensor::scalar(black_box(1.0f32))));
            }
            s.elapsed().as_secs_f64() / calls as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    eprintln!("floor: {:.0} ns per new scalar tensor (median of 15), min {:.0}", t[7] * 1e9, t[0] * 1e9);
}

#[test]
#[ignore]
fn w5_schedule() {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    let (w1, w2) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    let c = f.concrete_function((&w1, &w2)).unwrap();
    eprintln!("{}", c.executable().unwrap().schedule_text());
}
