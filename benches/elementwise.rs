//! W1 (tanh-GELU on 2^22 f32, memory-bound: compared with copy bandwidth), W2 (row softmax
//! on [4096, 1024] f32), W5 (call overhead of a tiny compiled graph), and W6 (eager vs
//! compiled for W1 and W2). W1, W2 and W6 run once per math path the CPU has (AVX-512 and
//! AVX2 builds of the wide routines, and the 128-bit Cranelift code). Results and peers:
//! docs/PERFORMANCE.md.
//!
//! `cargo bench --bench elementwise`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kiln::{DType, Tensor};
use std::hint::black_box;

#[path = "common/math_paths.rs"]
mod math_paths;
#[path = "common/timing.rs"]
mod timing;
use math_paths::each_math_path;
use timing::median;

fn gelu(x: &Tensor) -> Tensor {
    0.5 * x * (1.0 + ((x + 0.044715 * x * x * x) * 0.797_884_6).tanh())
}

fn w1_gelu(c: &mut Criterion) {
    let n = 1 << 22;
    let x = Tensor::random_normal(&[n], DType::F32, 1);
    let mut g = c.benchmark_group("W1_gelu_2^22_f32");
    g.throughput(Throughput::Bytes((2 * n * 4) as u64));
    g.sample_size(30);
    let src = x.to_vec::<f32>().unwrap();
    let mut dst = vec![0.0f32; n];
    g.bench_function("copy_reference", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    let copy = median(21, || {
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
    });
    for path in each_math_path() {
        let f = kiln::function(gelu);
        f.call(&x).unwrap();
        g.bench_function(format!("compiled_{}", path.name()), |b| b.iter(|| f.call(black_box(&x)).unwrap()));
        g.bench_function(format!("eager_{}", path.name()), |b| b.iter(|| observed(gelu(black_box(&x)))));
        let compiled = median(21, || drop(f.call(black_box(&x)).unwrap()));
        let eager = median(11, || drop(observed(gelu(black_box(&x)))));
        let immediate = op_by_op(|| median(11, || drop(observed(gelu(black_box(&x))))));
        println!(
            "W1 [{}] compiled / copy = {:.2} ({:.3} ms / {:.3} ms); W6 eager {:.2} ms (op by op {:.2} ms), compiled / eager = {:.2}",
            path.name(),
            compiled / copy,
            compiled * 1e3,
            copy * 1e3,
            eager * 1e3,
            immediate * 1e3,
            compiled / eager
        );
    }
    g.finish();
}

fn w2_softmax(c: &mut Criterion) {
    let x = Tensor::random_normal(&[4096, 1024], DType::F32, 2);
    let mut g = c.benchmark_group("W2_softmax_4096x1024_f32");
    g.throughput(Throughput::Bytes((2 * 4096 * 1024 * 4) as u64));
    g.sample_size(30);
    let src = x.to_vec::<f32>().unwrap();
    let mut dst = vec![0.0f32; src.len()];
    let copy = median(21, || {
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
    });
    for path in each_math_path() {
        let f = kiln::function(|x: &Tensor| x.softmax(-1));
        f.call(&x).unwrap();
        g.bench_function(format!("compiled_{}", path.name()), |b| b.iter(|| f.call(black_box(&x)).unwrap()));
        g.bench_function(format!("eager_{}", path.name()), |b| b.iter(|| observed(black_box(&x).softmax(-1))));
        let compiled = median(21, || drop(f.call(black_box(&x)).unwrap()));
        let eager = median(21, || drop(observed(black_box(&x).softmax(-1))));
        let immediate = op_by_op(|| median(21, || drop(observed(black_box(&x).softmax(-1)))));
        println!(
            "W2 [{}] compiled / copy = {:.2} ({:.3} ms / {:.3} ms); compiled / eager = {:.2} (eager {:.3} ms, op by op {:.3} ms)",
            path.name(),
            compiled / copy,
            compiled * 1e3,
            copy * 1e3,
            compiled / eager,
            eager * 1e3,
            immediate * 1e3
        );
    }
    g.finish();
}

/// `t` with its value computed: eager elementwise ops are deferred until observed
/// (`kiln::set_lazy_eager`), and a bench that dropped the result would time nothing.
fn observed(t: Tensor) -> Tensor {
    black_box(t.array().expect("an eager value"));
    t
}

/// `f` run with deferred eager ops off: every op computed when written, as before issue 18.
fn op_by_op<R>(f: impl FnOnce() -> R) -> R {
    kiln::set_lazy_eager(false);
    let r = f();
    kiln::set_lazy_eager(true);
    r
}

fn w5_call_overhead(c: &mut Criterion) {
    let f = kiln::function(|w1: &Tensor, w2: &Tensor| 3.0 * w1.square() + 2.0 * w1 * w2);
    let (w1, w2) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    f.call((&w1, &w2)).unwrap();
    let mut g = c.benchmark_group("W5_call_overhead");
    g.bench_function("compiled_3w1^2+2w1w2", |b| b.iter(|| f.call((black_box(&w1), &w2)).unwrap()));
    let mut y = f.call((&w1, &w2)).unwrap();
    g.bench_function("compiled_call_into", |b| b.iter(|| f.call_into((black_box(&w1), &w2), &mut y).unwrap()));
    g.bench_function("eager_3w1^2+2w1w2", |b| b.iter(|| observed(3.0 * black_box(&w1).square() + 2.0 * &w1 * &w2)));
    g.finish();
    let calls = 100_000;
    let per_call = median(11, || {
        for _ in 0..calls {
            drop(f.call((black_box(&w1), &w2)).unwrap());
        }
    }) / calls as f64;
    let into = median(11, || {
        for _ in 0..calls {
            f.call_into((black_box(&w1), &w2), &mut y).unwrap();
        }
    }) / calls as f64;
    println!("W5: {:.0} ns per call, {:.0} ns per call_into", per_call * 1e9, into * 1e9);
}

criterion_group!(benches, w1_gelu, w2_softmax, w5_call_overhead);
criterion_main!(benches);
