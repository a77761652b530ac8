//! Sparse × dense matmul at 1% density: a [1024, 1024] `SparseTensor` (10,486 entries at
//! random positions, canonical order) times a dense [1024, 256] f32, against the same product
//! with the left operand dense (gemm); and at 0.1% density, to show how the sparse product
//! scales with the entries while the dense one does not. kiln's sparse matmul is a composite (gather the dense
//! rows, scale, scatter_add), run eagerly and compiled. Results: docs/PERFORMANCE.md.
//!
//! `cargo bench --bench sparse_matmul`

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::sparse::{self, SparseTensor};
use kiln::{DType, Tensor};
use std::hint::black_box;

const M: usize = 1024;
const K: usize = 1024;
const N: usize = 256;

#[path = "common/timing.rs"]
mod timing;
use timing::median;

/// A [M, K] sparse tensor with `M * K / per` distinct random positions.
fn random_sparse(per: usize) -> SparseTensor {
    let nnz = M * K / per;
    // A deterministic LCG: positions need only be spread out, not statistically good.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut taken = std::collections::BTreeSet::new();
    while taken.len() < nnz {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        taken.insert((x >> 20) as usize % (M * K));
    }
    let idx: Vec<i64> = taken.iter().flat_map(|&p| [(p / K) as i64, (p % K) as i64]).collect();
    let values = Tensor::random_normal(&[nnz], DType::F32, 1);
    SparseTensor::new(Tensor::from_vec(idx, &[nnz, 2]).unwrap(), values, &[M, K]).unwrap()
}

fn sparse_matmul(c: &mut Criterion) {
    let d = Tensor::random_normal(&[K, N], DType::F32, 2);
    let compiled = kiln::function(|s: &SparseTensor, d: &Tensor| sparse::matmul(s, d));
    let dense_compiled = kiln::function(|a: &Tensor, d: &Tensor| a.matmul(d));
    for (per, name) in [(100, "1pct"), (1000, "0.1pct")] {
        let s = random_sparse(per);
        let dense_a = s.to_dense().unwrap();
        // The paths compute one product.
        let want = dense_a.matmul(&d);
        for got in [sparse::matmul(&s, &d).unwrap(), compiled.call((&s, &d)).unwrap()] {
            let diff = (&got - &want).abs().max_all().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-3, "sparse and dense products differ by {diff}");
        }
        let mut g = c.benchmark_group(format!("sparse_matmul_1024x1024_{name}_x_1024x256_f32"));
        g.sample_size(20);
        g.bench_function("sparse_eager", |b| b.iter(|| sparse::matmul(black_box(&s), black_box(&d)).unwrap()));
        g.bench_function("sparse_compiled", |b| b.iter(|| compiled.call((black_box(&s), black_box(&d))).unwrap()));
        if per == 100 {
            g.bench_function("dense_eager", |b| b.iter(|| black_box(&dense_a).matmul(black_box(&d))));
            g.bench_function("dense_compiled", |b| {
                b.iter(|| dense_compiled.call((black_box(&dense_a), black_box(&d))).unwrap())
            });
        }
        g.finish();
        let sparse_eager = median(21, || drop(sparse::matmul(&s, &d).unwrap()));
        let sparse_compiled = median(21, || drop(compiled.call((&s, &d)).unwrap()));
        let dense = median(21, || drop(dense_a.matmul(&d)));
        println!(
            "{name}: sparse eager {:.3} ms, sparse compiled {:.3} ms, dense (gemm) {:.3} ms; dense / sparse eager = {:.2}",
            sparse_eager * 1e3,
            sparse_compiled * 1e3,
            dense * 1e3,
            dense / sparse_eager
        );
    }
}

criterion_group!(benches, sparse_matmul);
criterion_main!(benches);
