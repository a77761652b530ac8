//! Compiled code is freed (issue 12, item 14): a service that keeps seeing new shapes runs
//! in bounded memory. One test in its own binary, so no other test's allocations move the
//! resident set it measures.

use kiln::{DType, Tensor};

/// Resident memory of this process, from /proc/self/statm (pages of 4 KiB).
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: f64 = statm.split_whitespace().nth(1).expect("resident field").parse().expect("a number");
    pages * 4096.0 / (1 << 20) as f64
}

fn trace_and_drop(n: usize) {
    let f = kiln::function(|x: &Tensor| (x * 2.0 + 1.0).tanh() + x.exp());
    f.call(&Tensor::ones(&[n], DType::F32)).unwrap();
}

const BOUND_MIB: f64 = 20.0;

#[test]
fn new_shapes_do_not_grow_memory() {
    // Warm up the allocator, the thread pool and the caches' steady size.
    for n in 1..=300 {
        trace_and_drop(n);
    }
    let base = rss_mib();
    for n in 1000..4000 {
        trace_and_drop(n);
    }
    let functions = rss_mib() - base;
    // Kernels of dropped functions are freed; only the recently used ones stay compiled.
    let live = kiln_jit::live_kernels();
    assert!(live <= kiln_jit::RECENT_KERNELS, "{live} kernels still alive after every function was dropped");
    assert!(functions < BOUND_MIB, "3000 traced and dropped functions kept {functions:.1} MiB");

    // One function called on ever new shapes keeps at most MAX_SIGNATURES traces.
    let base = rss_mib();
    let f = kiln::function(|x: &Tensor| (x * 2.0 + 1.0).tanh() + x.exp());
    for n in 1000..4000 {
        f.call(&Tensor::ones(&[n], DType::F32)).unwrap();
    }
    let signatures = rss_mib() - base;
    assert!(signatures < BOUND_MIB, "3000 signatures of one function kept {signatures:.1} MiB");
    drop(f);

    // Eager ops on new shapes big enough to run compiled.
    let base = rss_mib();
    for n in 0..3000 {
        let x = Tensor::ones(&[4096 + n], DType::F32);
        x.tanh();
    }
    let eager = rss_mib() - base;
    assert!(eager < BOUND_MIB, "eager ops on 3000 shapes kept {eager:.1} MiB");
    eprintln!("RSS growth: functions {functions:.1} MiB, signatures {signatures:.1} MiB, eager {eager:.1} MiB");
}
