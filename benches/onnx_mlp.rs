//! An imported ONNX MLP: kiln (the model turned into a kiln graph, optimized and compiled by
//! the JIT) against tract running the same file. The model is the digits MLP's shape —
//! 64 → Dense(64, relu) → Dense(10) → softmax — exported by kiln itself, so both runtimes
//! read exactly the same bytes; batches of 1 (latency) and 256 (throughput).
//! Results in docs/PERFORMANCE.md.
//!
//! `cargo bench --bench onnx_mlp`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::nn::{Dense, Layer, Sequential};
use kiln::{DType, Tensor};
use tract_onnx::prelude::{tvec, Framework, InferenceModelExt, TValue};

fn mlp_bytes(batch: usize) -> Vec<u8> {
    let model = Arc::new(Sequential::new().add(Dense::new(64).seed(1).activation("relu")).add(Dense::new(10).seed(2)));
    let f = kiln::function(move |x: &Tensor| model.call(x, false).unwrap().softmax(-1));
    let x = Tensor::zeros(&[batch, 64], DType::F32);
    kiln::onnx::to_model_bytes(&f.concrete_function(&x).unwrap()).unwrap()
}

fn onnx_mlp(c: &mut Criterion) {
    let mut g = c.benchmark_group("onnx_mlp");
    for batch in [1usize, 256] {
        let bytes = mlp_bytes(batch);
        let x = Tensor::random_normal(&[batch, 64], DType::F32, 5);
        let kiln_model = kiln::onnx::from_bytes(&bytes).unwrap();
        let tract_model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .unwrap();
        let data = x.to_vec::<f32>().unwrap();
        let input: TValue = tract_onnx::prelude::Tensor::from_shape(&[batch, 64], &data).unwrap().into();
        // Both give the same probabilities before anything is timed.
        let ours = kiln_model.call(std::slice::from_ref(&x)).unwrap().remove(0).to_vec::<f32>().unwrap();
        let theirs = tract_model.run(tvec![input.clone()]).unwrap();
        let theirs = theirs[0].as_slice::<f32>().unwrap();
        assert!(ours.iter().zip(theirs).all(|(a, b)| (a - b).abs() < 1e-5));
        g.bench_function(format!("kiln_batch{batch}"), |b| {
            b.iter(|| kiln_model.call(std::slice::from_ref(&x)).unwrap())
        });
        g.bench_function(format!("tract_batch{batch}"), |b| b.iter(|| tract_model.run(tvec![input.clone()]).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, onnx_mlp);
criterion_main!(benches);
