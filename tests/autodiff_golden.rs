//! Gradients of a small MLP loss against JAX (`tests/golden/autodiff_mlp.py`, float64):
//! two dense layers with ReLU, sparse softmax cross-entropy averaged over the batch.
//! Tolerance 1e-12 relative (+1e-14 absolute): both sides compute the same few dozen f64
//! roundings per value in different orders, which bounds the difference near 1e-14.

use kiln::{GradientTape, Tensor, Variable};
use serde_json::Value;

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f64> = v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    Tensor::from_vec(data, &shape).unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= 1e-12 * b.abs() + 1e-14, "{what}[{i}]: kiln {a:e}, jax {b:e}");
    }
}

#[test]
fn mlp_gradients_match_jax() {
    let golden: Value = serde_json::from_str(include_str!("golden/autodiff_mlp.json")).unwrap();
    let x = tensor(&golden["x"]);
    let labels: Vec<i64> = golden["labels"].as_array().unwrap().iter().map(|l| l.as_i64().unwrap()).collect();
    let labels = Tensor::from_vec(labels.clone(), &[labels.len()]).unwrap();
    let names = ["w1", "b1", "w2", "b2"];
    let params: Vec<Variable> = names.iter().map(|n| Variable::new(tensor(&golden[*n]))).collect();

    let tape = GradientTape::new();
    let h = (x.matmul(&params[0].read()) + params[1].read()).relu();
    let logits = h.matmul(&params[2].read()) + params[3].read();
    let loss = kiln::sparse_softmax_cross_entropy_with_logits(&logits, &labels).unwrap().mean_all();
    let want_loss = golden["loss"].as_f64().unwrap();
    assert!((loss.item().unwrap() - want_loss).abs() <= 1e-12 * want_loss.abs(), "loss");

    let refs: Vec<&Variable> = params.iter().collect();
    let grads = tape.gradient(&loss, &refs).unwrap();
    for (name, g) in names.iter().zip(grads) {
        assert_close(&g.unwrap(), &tensor(&golden["grads"][*name]), name);
    }
}
