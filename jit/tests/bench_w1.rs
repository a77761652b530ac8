//! Figures for docs/JIT.md, ignored by default (timing on a shared machine):
//! `cargo test --release -p kiln-jit --test bench_w1 -- --ignored --nocapture`.
//! W1: tanh-GELU over 2^22 f32, single thread, in GB/s (read + write), next to a plain
//! copy of the same buffer; and the compile latency of a few kernels.

mod common;

use std::time::Instant;

use common::*;
use kiln_ir::{BinaryOp, DType, Kernel, Op, ReduceOp, UnaryOp};

fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "a measurement: prints ns per element for both paths and compile latency"]
fn w1_gelu_bandwidth_and_compile_latency() {
    let n = 1 << 22;
    let mut rng = Rng(7);
    let x: Vec<f32> = (0..n).map(|_| (rng.unit() as f32 - 0.5) * 8.0).collect();
    let mut y = vec![0.0f32; n];
    let ptrs = [x.as_ptr() as *const u8];
    let bytes = (n * 8) as f64;
    let mut z = vec![0.0f32; n];
    let tc = best_of(20, || {
        z.copy_from_slice(std::hint::black_box(&x));
        std::hint::black_box(&mut z);
    });
    println!("memcpy 2^22 f32, 1 thread: {:.3} ms, {:.1} GB/s", tc * 1e3, bytes / tc / 1e9);
    let tanh = kernel(&[ty(DType::F32, &[n])], |g, x| add(g, Op::Unary(UnaryOp::Tanh), &[x[0]]));
    // f64: half the elements, the same bytes.
    let tanh64 = kernel(&[ty(DType::F64, &[n / 2])], |g, x| add(g, Op::Unary(UnaryOp::Tanh), &[x[0]]));
    let x64: Vec<f64> = x[..n / 2].iter().map(|&v| v as f64).collect();
    let ptrs64 = [x64.as_ptr() as *const u8];
    for path in kiln_jit::MathPath::available().into_iter().rev() {
        kiln_jit::set_math_path(path).unwrap();
        let how = path.name();
        let sin = kernel(&[ty(DType::F32, &[n])], |g, x| add(g, Op::Unary(UnaryOp::Sin), &[x[0]]));
        for (name, body) in [("GELU", gelu(n)), ("tanh", tanh.clone()), ("f64 tanh", tanh64.clone()), ("sin", sin)] {
            let k = kiln_jit::compile(&body).unwrap();
            let (p, m) = if name.starts_with("f64") { (ptrs64.as_ptr(), n / 2) } else { (ptrs.as_ptr(), n) };
            // SAFETY: one operand of m elements and an output of m elements, of the kernel's
            // dtype (`y` holds n f32s, the same bytes as n/2 f64s).
            let mut run = || unsafe { (k.func())(p, y.as_mut_ptr() as *mut u8, 0, m) };
            run();
            let t = best_of(20, run);
            println!(
                "{name} over 16 MiB, 1 thread, {how}: {:.3} ms, {:.2} ns/elt, {:.1} GB/s, {:.2}x memcpy, {} clif lines",
                t * 1e3,
                t * 1e9 / m as f64,
                bytes / t / 1e9,
                t / tc,
                k.clif().lines().count()
            );
        }
    }
    let sq =
        kiln_jit::compile(&kernel(&[ty(DType::F32, &[n])], |g, x| add(g, Op::Binary(BinaryOp::Mul), &[x[0], x[0]])))
            .unwrap();
    // SAFETY: as above.
    let ts = best_of(20, || unsafe { (sq.func())(ptrs.as_ptr(), y.as_mut_ptr() as *mut u8, 0, n) });
    println!("x*x 2^22 f32, 1 thread: {:.3} ms, {:.1} GB/s", ts * 1e3, bytes / ts / 1e9);

    // Compile latency (uncached), median of 15.
    let cases: Vec<(&str, Kernel)> = vec![
        (
            "add [1024]",
            kernel(&[ty(DType::F32, &[1024]), ty(DType::F32, &[1024])], |g, x| {
                add(g, Op::Binary(BinaryOp::Add), &[x[0], x[1]])
            }),
        ),
        ("gelu [2^22]", gelu(n)),
        (
            "sum(exp(x-m)) rows [4096,1024]",
            kernel(&[ty(DType::F32, &[4096, 1024]), ty(DType::F32, &[4096, 1])], |g, x| {
                let s = add(g, Op::Binary(BinaryOp::Sub), &[x[0], x[1]]);
                let e = add(g, Op::Unary(UnaryOp::Exp), &[s]);
                add(g, Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: true }, &[e])
            }),
        ),
    ];
    for (name, k) in &cases {
        let mut ts: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                let c = kiln_jit::compile_uncached(k).unwrap();
                let e = t.elapsed().as_secs_f64();
                drop(c);
                e
            })
            .collect();
        ts.sort_by(f64::total_cmp);
        println!("compile {name}: {:.0} µs", ts[7] * 1e6);
    }
}
