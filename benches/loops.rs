//! W8: loop overhead. `fori_loop` of 10^5 iterations of a scalar `x * 0.999 + 1`, compiled
//! (one `scan` node run as a native loop) and, for scale, eager (a Rust loop of eager ops),
//! reported per iteration. Peers: `benches/peers/sys_jax_loops.py` (JAX `lax.fori_loop`, TF
//! `tf.while_loop`); results in docs/PERFORMANCE.md.
//!
//! `cargo bench --bench loops`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kiln::Tensor;

const N: i64 = 100_000;

fn step(_i: &Tensor, v: &[Tensor]) -> kiln::Result<Vec<Tensor>> {
    Ok(vec![&v[0] * 0.999 + 1.0])
}

fn w8(c: &mut Criterion) {
    let x = Tensor::scalar(0.0f32);
    let mut g = c.benchmark_group("W8_fori_loop_1e5");
    g.sample_size(20);
    g.throughput(Throughput::Elements(N as u64));
    let f = kiln::function(|x: &Tensor| Ok(kiln::fori_loop(0, N, step, std::slice::from_ref(x))?[0].clone()));
    let want = f.call(&x).unwrap().to_scalar::<f32>().unwrap();
    assert!((want - 1000.0).abs() < 1.0, "x converges to 1000, got {want}");
    g.bench_function("compiled", |b| b.iter(|| f.call(&x).unwrap()));
    g.sample_size(10);
    g.bench_function("eager", |b| b.iter(|| kiln::fori_loop(0, N, step, std::slice::from_ref(&x)).unwrap()));
    g.finish();
}

criterion_group!(benches, w8);
criterion_main!(benches);
