//! Steady-state calls allocate only their results (`run`) or nothing (`run_into`),
//! counted by a global allocator on the calling thread (the executors here run with one
//! thread). Tests are serialized by a lock.

mod executor_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use executor_support::*;
use kiln_ir::{Array, BinaryOp, DType, Graph, Op, UnaryOp};
use kiln_jit::{Executable, Options, Outcome};

struct Counting;

thread_local! {
    /// Set on the measuring thread only: an allocation by another thread of the process (the
    /// test harness reporting, a test waiting on `SERIAL`) is not the call's.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` (run 20 times) per run.
fn allocs_per_call(mut f: impl FnMut()) -> f64 {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    for _ in 0..20 {
        f();
    }
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::SeqCst) as f64 / 20.0
}

/// Two fused kernels, then `x @ w`, then an epilogue kernel: two outputs.
fn kernels_and_matmul() -> Graph {
    let mut g = Graph::new("alloc");
    let x = input(&mut g, &[32, 16]);
    let w = input(&mut g, &[16, 8]);
    let a = fused(&mut g, &[x], |b, i| un(b, UnaryOp::Tanh, i[0]));
    let bb = fused(&mut g, &[a, x], |b, i| bin(b, BinaryOp::Mul, i[0], i[1]));
    let mm = g.add(Op::MatMul, &[bb, w]).unwrap();
    let y = fused(&mut g, &[mm], |b, i| un(b, UnaryOp::Relu, i[0]));
    g.set_outputs(vec![y, a]);
    g
}

fn gemm_chain() -> Graph {
    let mut g = Graph::new("gemms");
    let x = input(&mut g, &[32, 16]);
    let w = input(&mut g, &[16, 16]);
    let m1 = g.add(Op::MatMul, &[x, w]).unwrap();
    let r = g.add(Op::Reshape(kiln_ir::Shape::from_slice(&[16, 32])), &[m1]).unwrap();
    let rr = g.add(Op::Reshape(kiln_ir::Shape::from_slice(&[32, 16])), &[r]).unwrap();
    let m2 = g.add(Op::MatMul, &[rr, w]).unwrap();
    g.set_outputs(vec![m2]);
    g
}

fn inputs() -> [Array; 2] {
    [f32s(&data(512, 1), &[32, 16]), f32s(&data(256, 2), &[16, 16])]
}

/// Allocations per `[m, k] @ [k, n]` f32 product of the gemm crate itself (through the one
/// wrapper the executor calls, which allocates nothing of its own), on one thread.
/// They depend on the CPU (gemm picks its micro-kernel and packing at run time: an AVX-512
/// CPU packs where an AVX2 one does not), so the bounds below are relative to this.
fn gemm_allocs(m: usize, k: usize, n: usize) -> f64 {
    let (a, b) = (data(m * k, 1), data(k * n, 2));
    let mut dst = vec![0f32; m * n];
    let shape = kiln_ir::matmul::MatMulShape::of(DType::F32, &[m, k], &[k, n]).unwrap();
    let mut product = || {
        // SAFETY: row-major [m, k] @ [k, n] into an [m, n] buffer, the lengths of the
        // vectors and the shapes `shape` was built from; one thread.
        unsafe { kiln_ir::matmul::gemm_batched(&shape, a.as_ptr(), b.as_ptr(), dst.as_mut_ptr(), 1, None) }
    };
    product(); // gemm's per-thread buffers are set up on first use
    allocs_per_call(product)
}

/// A poisoned lock (an earlier test failed while holding it) still serializes: one failure
/// must not turn into two.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The matmul-only graph (runs without the code generator): `run_into` allocates nothing
/// beyond what gemm itself allocates per product, `run` adds its output tensor.
#[test]
fn steady_state_matmul_graph() {
    let _s = serial();
    let exe = Executable::with_options(gemm_chain(), Options { threads: 1, ..Options::default() }).unwrap();
    let ins = inputs();
    let gemm = gemm_allocs(32, 16, 16);
    let mut out = exe.run(&ins, &[]).unwrap();
    exe.run_into(&ins, &[], &mut out).unwrap();
    let into = allocs_per_call(|| exe.run_into(&ins, &[], &mut out).unwrap());
    assert!(into <= 2.0 * gemm, "run_into: {into} allocations per call (gemm alone: {gemm})");
    let fresh = allocs_per_call(|| drop(exe.run(&ins, &[]).unwrap()));
    // One output: its Vec, its Arc, and the outcome's output vector.
    assert!(fresh <= 2.0 * gemm + 3.0, "run: {fresh} allocations per call (gemm alone: {gemm})");
    println!("gemm alone {gemm}/product, run_into {into}/call, run {fresh}/call");
}

/// Fused kernels + matmul: needs every kernel compiled (no interpreter fallback).
#[test]
fn steady_state_kernels_and_matmul() {
    let _s = serial();
    let exe = Executable::with_options(kernels_and_matmul(), Options { threads: 1, ..Options::default() }).unwrap();
    assert!(exe.fallbacks().is_empty(), "every kernel must compile: {:?}", exe.fallbacks());
    let ins = [ins_x(), f32s(&data(128, 3), &[16, 8])];
    let gemm = gemm_allocs(32, 16, 8);
    let mut out: Outcome = exe.run(&ins, &[]).unwrap();
    exe.run_into(&ins, &[], &mut out).unwrap();
    let into = allocs_per_call(|| exe.run_into(&ins, &[], &mut out).unwrap());
    let fresh = allocs_per_call(|| drop(exe.run(&ins, &[]).unwrap()));
    println!("kernels+matmul: gemm alone {gemm}/product, run_into {into}/call, run {fresh}/call");
    assert!(into <= gemm, "run_into: {into} allocations per call (gemm alone: {gemm})");
    // Two outputs: each its Vec and its Arc, and the outcome's output vector.
    assert!(fresh <= gemm + 2.0 * 2.0 + 1.0, "run: {fresh} allocations per call, 2 outputs (gemm alone: {gemm})");
}

fn ins_x() -> Array {
    f32s(&data(512, 1), &[32, 16])
}

/// `x <- tanh(x @ w)` for `n` iterations: a while loop on the general path (gemm in the body).
fn matmul_loop(n: usize) -> Graph {
    Graph::from_text(&format!(
        "graph @f(%0: f32[16,16], %1: i64[], %2: f32[16,16]) -> (%4)
  %3 = while %0, %1, %2 {{carries=2}} : bool[0] {{
    graph @cond(%0: f32[16,16], %1: i64[], %2: f32[16,16]) -> (%4)
      %3 = const [{n}] : i64[]
      %4 = less %1, %3 : bool[]
  }} {{
    graph @body(%0: f32[16,16], %1: i64[], %2: f32[16,16]) -> (%4, %6)
      %3 = matmul %0, %2 : f32[16,16]
      %4 = tanh %3 : f32[16,16]
      %5 = const [1] : i64[]
      %6 = add %1, %5 : i64[]
  }}
  %4 = get %3 {{index=0}} : f32[16,16]
"
    ))
    .unwrap()
}

/// A loop on the general path allocates per iteration no more than its body's gemm does:
/// each body writes its new values over the previous iteration's (`interp::region::run`
/// hands them back to `run_into`).
#[test]
fn general_path_loops_allocate_nothing_per_iteration_beyond_gemm() {
    let _s = serial();
    let per_call = |n: usize| {
        let mut g = matmul_loop(n);
        kiln_passes::optimize(&mut g).unwrap();
        let exe = Executable::with_options(g, Options { threads: 1, ..Options::default() }).unwrap();
        assert!(exe.schedule_text().contains("region ("), "{}", exe.schedule_text());
        let ins = [f32s(&data(256, 1), &[16, 16]), Array::scalar(0i64), f32s(&data(256, 2), &[16, 16])];
        let mut out = exe.run(&ins, &[]).unwrap();
        allocs_per_call(|| exe.run_into(&ins, &[], &mut out).unwrap())
    };
    let gemm = gemm_allocs(16, 16, 16);
    let (short, long) = (per_call(10), per_call(40));
    let per_iteration = (long - short) / 30.0;
    println!("loop: {short} allocations at 10 iterations, {long} at 40; gemm alone {gemm}/product");
    assert!(per_iteration <= gemm + 0.5, "{per_iteration} allocations per iteration (gemm alone: {gemm})");
}
