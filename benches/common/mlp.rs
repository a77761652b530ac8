//! W3's model and batch (MLP 784→512→512→10, ReLU, softmax cross-entropy, batch 256, SGD),
//! shared by the benches that time it and by `tests/kernel_cache.rs`.

use kiln::{DType, GradientTape, Tensor, Variable};

pub struct Mlp {
    pub params: Vec<Variable>,
}

impl Mlp {
    pub fn new() -> Mlp {
        let dims = [784usize, 512, 512, 10];
        let mut params = Vec::new();
        for (i, w) in dims.windows(2).enumerate() {
            let scale = (2.0 / w[0] as f64).sqrt();
            params.push(Variable::new(Tensor::random_normal(&[w[0], w[1]], DType::F32, i as u64) * scale));
            params.push(Variable::new(Tensor::zeros(&[w[1]], DType::F32)));
        }
        Mlp { params }
    }

    /// One SGD step on a batch; returns the loss.
    pub fn step(params: &[Variable], x: &Tensor, y: &Tensor) -> Tensor {
        let tape = GradientTape::new();
        let mut h = x.clone();
        for (i, pair) in params.chunks(2).enumerate() {
            h = h.matmul(&pair[0].read()) + pair[1].read();
            if i < 2 {
                h = h.relu();
            }
        }
        let logp = h.log_softmax(-1);
        let loss = -(logp * y).sum(&[-1], false).mean_all();
        let refs: Vec<&Variable> = params.iter().collect();
        let grads = tape.gradient(&loss, &refs).unwrap();
        for (p, g) in params.iter().zip(grads) {
            p.assign_sub(&(g.unwrap() * 0.01)).unwrap();
        }
        loss
    }
}

/// A fixed batch: 256 uniform images and one-hot labels.
pub fn batch() -> (Tensor, Tensor) {
    let x = Tensor::random_uniform(&[256, 784], DType::F32, 11);
    let labels = (Tensor::random_uniform(&[256], DType::F32, 12) * 10.0).floor().cast(DType::I64);
    (x, labels.one_hot(10, DType::F32))
}
