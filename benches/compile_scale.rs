//! Per-node cost of tracing, the pass pipeline and building the executor, on chains of 1k,
//! 2k, 4k and 8k ops (`y = tanh(y + x) * c_i`, distinct constants so CSE cannot merge
//! them): near-linear means the per-node figure stays flat. Results: docs/PERFORMANCE.md.
//!
//! `cargo bench --bench compile_scale`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kiln::passes::Pipeline;
use kiln::{Backend, Graph, Tensor};

const SIZES: [usize; 4] = [1000, 2000, 4000, 8000];

/// The traced graph of a chain of `ops` ops (three per step).
fn chain(ops: usize) -> kiln::Function<Tensor> {
    kiln::function(move |x: &Tensor| {
        let mut y = x.clone();
        for i in 0..ops / 3 {
            y = (&y + x).tanh() * (1.0 + i as f64 * 1e-6);
        }
        y
    })
    .with_backend(Backend::Interpreter)
    .with_pipeline(Pipeline::empty)
}

fn traced(ops: usize) -> Graph {
    let x = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0]);
    chain(ops).concrete_function(&x).unwrap().traced().clone()
}

fn optimized(ops: usize) -> Graph {
    let mut g = traced(ops);
    Pipeline::default().run(&mut g).unwrap();
    g
}

fn scale(c: &mut Criterion) {
    let x = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0]);
    let mut g = c.benchmark_group("compile_scale");
    g.sample_size(10);
    for n in SIZES {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("trace/{n}"), |b| b.iter(|| chain(n).concrete_function(&x).unwrap()));
        let t = traced(n);
        g.bench_function(format!("pipeline/{n}"), |b| {
            b.iter_batched(|| t.clone(), |mut t| Pipeline::default().run(&mut t).unwrap(), BatchSize::LargeInput)
        });
        let o = optimized(n);
        g.bench_function(format!("executor_build/{n}"), |b| {
            b.iter_batched(|| o.clone(), |o| kiln_jit::Executable::new(o).unwrap(), BatchSize::LargeInput)
        });
    }
    g.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
