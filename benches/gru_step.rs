//! W7: a GRU training step, compiled and eager. The first 256 digits read as 8 steps of 8
//! pixels, `nn::GRU(64)` (Keras layout, `reset_after=true`), `Dense(10)`, softmax
//! cross-entropy, SGD 0.01: forward loop, reverse loop and update in one `kiln::function`.
//! Peers: `benches/peers/sys_jax_loops.py` (JAX `lax.scan`, TF `tf.scan`, the same cell);
//! results in docs/PERFORMANCE.md.
//!
//! `cargo bench --bench gru_step`

#[allow(dead_code)]
#[path = "../examples/data/digits.rs"]
mod digits_data;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::losses::{Loss, SparseCategoricalCrossentropy};
use kiln::nn::{Dense, Layer, Sequential, GRU};
use kiln::optim::{Optimizer, SGD};
use kiln::{GradientTape, Result, Tensor, Variable};

const BATCH: usize = 256;

fn step(model: &Sequential, optimizer: &SGD, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let tape = GradientTape::new();
    let loss = SparseCategoricalCrossentropy::new(true).call(y, &model.call(x, true)?)?;
    let vars = model.trainable_variables();
    let grads = tape.gradient(&loss, &vars.iter().collect::<Vec<_>>())?;
    let pairs: Vec<(Tensor, &Variable)> =
        grads.into_iter().zip(&vars).map(|(g, v)| (g.expect("connected"), v)).collect();
    optimizer.apply_gradients(&pairs)?;
    Ok(loss)
}

fn w7(c: &mut Criterion) {
    let (x, y) = digits_data::load().unwrap();
    let rows = Tensor::from_vec((0..BATCH as i64).collect::<Vec<_>>(), &[BATCH]).unwrap();
    let x = x.gather(&rows, 0).reshape([BATCH as i64, 8, 8]);
    let y = y.gather(&rows, 0);
    let model = Arc::new(Sequential::new().add(GRU::new(64).seed(0)).add(Dense::new(10).seed(2)));
    let optimizer = Arc::new(SGD::new(0.01));
    let mut g = c.benchmark_group("W7_gru_step");
    g.sample_size(30);
    let (m, o) = (model.clone(), optimizer.clone());
    let compiled = kiln::function(move |x: &Tensor, y: &Tensor| step(&m, &o, x, y));
    let first = compiled.call((&x, &y)).unwrap().to_scalar::<f32>().unwrap();
    assert!(first.is_finite() && first > 0.0, "loss {first}");
    g.bench_function("compiled", |b| b.iter(|| compiled.call((&x, &y)).unwrap()));
    g.sample_size(10);
    g.bench_function("eager", |b| b.iter(|| step(&model, &optimizer, &x, &y).unwrap()));
    g.finish();
}

criterion_group!(benches, w7);
criterion_main!(benches);
