//! W3 (MLP train step 784→512→512→10, ReLU, softmax cross-entropy, batch 256, SGD — the
//! whole step one compiled function), W4 (its compile latency: first call minus steady
//! call), and W6 (the same step eager). Results and peers: docs/PERFORMANCE.md.
//!
//! `cargo bench --bench train_step`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::Tensor;

#[path = "common/math_paths.rs"]
mod math_paths;
#[path = "common/timing.rs"]
mod timing;
use math_paths::each_math_path;
use timing::median;

#[path = "common/mlp.rs"]
mod mlp;
use mlp::{batch, Mlp};

fn w3_w4_w6(c: &mut Criterion) {
    let (x, y) = batch();
    let mut g = c.benchmark_group("W3_mlp_train_step");
    g.sample_size(20);
    let mlp = Mlp::new();
    let p = mlp.params.clone();
    let step = kiln::function(move |x: &Tensor, y: &Tensor| Mlp::step(&p, x, y));
    // The process's very first call compiles every kernel cold (later fresh functions hit
    // the process-wide kernel cache), so it is timed here once.
    let t0 = Instant::now();
    step.call((&x, &y)).unwrap();
    let first = t0.elapsed();
    let t1 = Instant::now();
    step.call((&x, &y)).unwrap();
    println!("W4 cold: first call {first:?}, steady call {:?}, compile = {:?}", t1.elapsed(), first - t1.elapsed());
    g.bench_function("compiled", |b| b.iter(|| step.call((&x, &y)).unwrap()));
    // The step's only transcendentals are the [256, 10] log_softmax's: the math path should not
    // matter, and this shows it does not.
    for path in each_math_path() {
        let p = mlp.params.clone();
        let f = kiln::function(move |x: &Tensor, y: &Tensor| Mlp::step(&p, x, y));
        f.call((&x, &y)).unwrap();
        println!("W3 [{}]: {:.3} ms", path.name(), median(21, || drop(f.call((&x, &y)).unwrap())) * 1e3);
    }
    g.bench_function("eager", |b| b.iter(|| Mlp::step(&mlp.params, &x, &y)));
    g.finish();

    let mut g = c.benchmark_group("W4_compile_latency");
    g.sample_size(10);
    g.bench_function("first_call_minus_steady", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let p = mlp.params.clone();
                let fresh = kiln::function(move |x: &Tensor, y: &Tensor| Mlp::step(&p, x, y));
                let t0 = Instant::now();
                fresh.call((&x, &y)).unwrap();
                let first = t0.elapsed();
                let t1 = Instant::now();
                fresh.call((&x, &y)).unwrap();
                total += first.saturating_sub(t1.elapsed());
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, w3_w4_w6);
criterion_main!(benches);
