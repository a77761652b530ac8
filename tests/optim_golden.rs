//! Five steps of each optimizer on a small linear regression must match Keras 3's weights
//! (jax backend, float32) to 1e-5 — eagerly and with the step compiled.
//! Data: tests/golden/keras_optimizers.json, made by tests/golden/keras_optimizers.py.
//!
//! Gradients here are written out by hand (`d/dw mean(r²) = 2 Xᵀ r / n`), so the test
//! exercises the optimizers alone, not autodiff.

use kiln::optim::schedule::exponential_decay;
use kiln::optim::{Adam, Nadam, Optimizer, RMSprop, SGD};
use kiln::{Tensor, Variable};
use serde_json::Value;

fn golden() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/keras_optimizers.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn matrix(v: &Value) -> Tensor {
    let rows: Vec<Vec<f32>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect();
    let (n, m) = (rows.len(), rows[0].len());
    Tensor::from_vec(rows.concat(), &[n, m]).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn make(name: &str) -> Box<dyn Optimizer> {
    match name {
        "sgd" => Box::new(SGD::new(0.1)),
        "sgd_momentum" => Box::new(SGD::new(0.1).momentum(0.9)),
        "sgd_nesterov" => Box::new(SGD::new(0.1).momentum(0.9).nesterov(true)),
        "sgd_exponential_decay" => Box::new(SGD::new(exponential_decay(0.1, 2, 0.5, false))),
        "rmsprop" => Box::new(RMSprop::new(0.01)),
        "rmsprop_momentum_centered" => Box::new(RMSprop::new(0.01).momentum(0.9).centered(true)),
        "adam" => Box::new(Adam::new(0.1)),
        "adam_amsgrad" => Box::new(Adam::new(0.1).amsgrad(true)),
        "nadam" => Box::new(Nadam::new(0.1)),
        other => panic!("no optimizer config `{other}` in the test"),
    }
}

/// The gradients of `mean((x w + b - y)²)` with respect to `w` and `b`.
fn gradients(x: &Tensor, y: &Tensor, w: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
    let n = x.shape()[0] as f64;
    let r = &(&x.matmul(w) + b) - y;
    let gw = x.t().matmul(&r) * (2.0 / n);
    let gb = r.sum(&[0], false) * (2.0 / n);
    (gw, gb)
}

fn step(opt: &dyn Optimizer, x: &Tensor, y: &Tensor, w: &Variable, b: &Variable) -> kiln::Result<()> {
    let (gw, gb) = gradients(x, y, &w.read(), &b.read());
    opt.apply_gradients(&[(gw, w), (gb, b)])
}

fn check(name: &str, compiled: bool) {
    let g = golden();
    let (x, y) = (matrix(&g["x"]), matrix(&g["y"]));
    let w = Variable::new(matrix(&g["w0"]));
    let b = Variable::new(Tensor::from_vec(floats(&g["b0"]), &[1]).unwrap());
    let opt: std::sync::Arc<dyn Optimizer> = make(name).into();
    let f = {
        let (opt, w, b) = (opt.clone(), w.clone(), b.clone());
        kiln::function(move |x: &Tensor, y: &Tensor| step(opt.as_ref(), x, y, &w, &b))
    };
    for (i, expected) in g["runs"][name].as_array().unwrap().iter().enumerate() {
        if compiled {
            f.call((&x, &y)).unwrap();
        } else {
            step(opt.as_ref(), &x, &y, &w, &b).unwrap();
        }
        let got_w = w.read().to_vec::<f32>().unwrap();
        let got_b = b.read().to_vec::<f32>().unwrap();
        let want: Vec<f32> = floats(&expected["w"]).into_iter().chain(floats(&expected["b"])).collect();
        for (got, want) in got_w.iter().chain(&got_b).zip(&want) {
            assert!(
                (got - want).abs() <= 1e-5,
                "{name} (compiled: {compiled}) step {}: got {got}, Keras {want}",
                i + 1
            );
        }
    }
    assert_eq!(opt.iterations().read().to_scalar::<i64>().unwrap(), 5);
    if compiled {
        assert_eq!(f.trace_count(), 1, "{name}: the step traces once");
    }
}

const NAMES: [&str; 9] = [
    "sgd",
    "sgd_momentum",
    "sgd_nesterov",
    "sgd_exponential_decay",
    "rmsprop",
    "rmsprop_momentum_centered",
    "adam",
    "adam_amsgrad",
    "nadam",
];

#[test]
fn every_optimizer_matches_keras_for_five_eager_steps() {
    for name in NAMES {
        check(name, false);
    }
}

#[test]
fn every_optimizer_matches_keras_for_five_compiled_steps() {
    for name in NAMES {
        check(name, true);
    }
}

#[test]
fn a_gradient_of_the_wrong_shape_is_an_error_and_changes_nothing() {
    let w = Variable::new(Tensor::new(&[1.0f32, 2.0]));
    let opt = Adam::new(0.1);
    let e = opt.apply_gradients(&[(Tensor::new(&[1.0f32, 2.0, 3.0]), &w)]).unwrap_err();
    assert!(e.to_string().contains(w.name()), "{e}");
    let e = opt.apply_gradients(&[(Tensor::new(&[1.0f64, 2.0]), &w)]).unwrap_err();
    assert!(e.to_string().contains("f64"), "{e}");
    assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    assert_eq!(opt.iterations().read().to_scalar::<i64>().unwrap(), 0);
}

#[test]
fn slots_are_created_once_per_variable() {
    let w = Variable::new(Tensor::new(&[1.0f32, 2.0]));
    let opt = Adam::new(0.1);
    for _ in 0..3 {
        opt.apply_gradients(&[(Tensor::new(&[0.5f32, 0.5]), &w)]).unwrap();
    }
    // iterations, learning_rate (as Keras 3) + momentum, velocity, velocity_hat
    assert_eq!(opt.variables().len(), 5);
}
