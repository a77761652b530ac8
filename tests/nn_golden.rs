//! Activations, losses, BatchNormalization, regularizers, constraints and metrics against
//! Keras 3 (jax backend, float32): tests/golden/keras_layers.json, made by
//! tests/golden/keras_layers.py. Each value is checked eagerly and inside a compiled
//! function. Tolerance 2e-6 relative (float32 rounding of a few ops; GELU's erf is a
//! 1.5e-7-accurate approximation).

use kiln::losses::{
    BinaryCrossentropy, CategoricalCrossentropy, Huber, Loss, MeanAbsoluteError, MeanSquaredError,
    SparseCategoricalCrossentropy,
};
use kiln::metrics::{F1Score, LabelMetric, Precision, Recall};
use kiln::nn::constraints::Constraint;
use kiln::nn::regularizers::Regularizer;
use kiln::nn::{activations, constraints, regularizers, BatchNormalization, Layer};
use kiln::Tensor;
use serde_json::Value;

fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/keras_layers.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn t(v: &Value, shape: &[usize]) -> Tensor {
    Tensor::from_vec(floats(v), shape).unwrap()
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 2e-6 * w.abs().max(1.0), "{what}: got {got:?}, Keras {want:?}");
    }
}

/// `f` applied eagerly and compiled must both match `want`.
fn both(what: &str, want: &[f32], args: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor + Send + Sync + Clone + 'static) {
    close(&f(args).to_vec::<f32>().unwrap(), want, &format!("{what} (eager)"));
    let compiled = kiln::function(move |a: &[Tensor]| f(a));
    close(&compiled.call(args).unwrap().to_vec::<f32>().unwrap(), want, &format!("{what} (compiled)"));
}

#[test]
fn activations_match_keras() {
    let g = golden();
    let x = t(&g["x"], &[1, 13]);
    for name in ["relu", "sigmoid", "tanh", "softplus", "elu", "selu", "gelu", "softmax"] {
        let f = activations::by_name(name).unwrap();
        both(name, &floats(&g["activations"][name]), std::slice::from_ref(&x), move |a| f(&a[0]));
    }
}

#[test]
fn the_seed_softplus_equals_the_builtin() {
    let g = golden();
    let my_softplus = |z: &Tensor| (z.exp() + 1.0).log();
    both("my_softplus", &floats(&g["activations"]["softplus"]), &[t(&g["x"], &[1, 13])], move |a| my_softplus(&a[0]));
}

#[test]
fn losses_match_keras() {
    let g = &golden()["losses"];
    let s = [2, 3];
    let (y_true, y_pred, probs) = (t(&g["y_true"], &s), t(&g["y_pred"], &s), t(&g["probs"], &s));
    let (onehot, bin_true) = (t(&g["onehot"], &s), t(&g["bin_true"], &s));
    let labels = Tensor::new(&[1i64, 0]);
    type L = Box<dyn Fn() -> Box<dyn Loss> + Send + Sync>;
    let cases: Vec<(&str, L, &Tensor, &Tensor)> = vec![
        ("mse", Box::new(|| Box::new(MeanSquaredError)), &y_true, &y_pred),
        ("mae", Box::new(|| Box::new(MeanAbsoluteError)), &y_true, &y_pred),
        ("huber_1", Box::new(|| Box::new(Huber::new(1.0))), &y_true, &y_pred),
        ("huber_0_5", Box::new(|| Box::new(Huber::new(0.5))), &y_true, &y_pred),
        ("bce_probs", Box::new(|| Box::new(BinaryCrossentropy::new(false))), &bin_true, &probs),
        ("bce_logits", Box::new(|| Box::new(BinaryCrossentropy::new(true))), &bin_true, &y_pred),
        ("cce_probs", Box::new(|| Box::new(CategoricalCrossentropy::new(false))), &onehot, &probs),
        ("cce_logits", Box::new(|| Box::new(CategoricalCrossentropy::new(true))), &onehot, &y_pred),
        ("scce_probs", Box::new(|| Box::new(SparseCategoricalCrossentropy::new(false))), &labels, &probs),
        ("scce_logits", Box::new(|| Box::new(SparseCategoricalCrossentropy::new(true))), &labels, &y_pred),
    ];
    for (name, make, a, b) in cases {
        let want = [g[name].as_f64().unwrap() as f32];
        let loss: std::sync::Arc<dyn Loss> = make().into();
        both(name, &want, &[a.clone(), b.clone()], move |args| loss.call(&args[0], &args[1]).unwrap());
    }
}

#[test]
fn the_book_huber_closure_is_a_loss() {
    let g = &golden()["losses"];
    let huber_fn = |y_true: &Tensor, y_pred: &Tensor| {
        let error = y_true - y_pred;
        let is_small = error.abs().less(&error.scalar_like(1.0));
        is_small.select(&(error.square() / 2.0), &(error.abs() - 0.5)).mean_all()
    };
    let got = Loss::call(&huber_fn, &t(&g["y_true"], &[2, 3]), &t(&g["y_pred"], &[2, 3])).unwrap();
    close(&[got.to_scalar::<f32>().unwrap()], &[g["huber_1"].as_f64().unwrap() as f32], "huber_fn");
}

#[test]
fn losses_reject_labels_of_the_wrong_shape_or_dtype() {
    let pred = Tensor::zeros(&[2, 3], kiln::DType::F32);
    let e = MeanSquaredError.call(&Tensor::zeros(&[2, 2], kiln::DType::F32), &pred).unwrap_err();
    assert!(e.to_string().contains("f32[2,2]") || e.to_string().contains("[2, 2]"), "{e}");
    assert!(SparseCategoricalCrossentropy::new(true).call(&Tensor::new(&[0.0f32, 1.0]), &pred).is_err());
    assert!(SparseCategoricalCrossentropy::new(true).call(&Tensor::new(&[0i64, 1, 2]), &pred).is_err());
    let e = SparseCategoricalCrossentropy::new(true).call(&Tensor::new(&[0i64, 3]), &pred).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    assert!(CategoricalCrossentropy::new(false).call(&Tensor::zeros(&[3, 2], kiln::DType::F32), &pred).is_err());
    // As Keras: labels are cast to the predictions' dtype, and `[n]` matches `[n, 1]`.
    let onehot = Tensor::new(&[[0.0f64, 1.0, 0.0], [1.0, 0.0, 0.0]]);
    let probs = Tensor::new(&[[0.2f32, 0.7, 0.1], [0.5, 0.25, 0.25]]);
    let cast = CategoricalCrossentropy::new(false).call(&onehot, &probs).unwrap();
    let same = CategoricalCrossentropy::new(false).call(&onehot.cast(kiln::DType::F32), &probs).unwrap();
    assert_eq!(cast.to_scalar::<f32>().unwrap(), same.to_scalar::<f32>().unwrap());
    let column = Tensor::new(&[[1.0f32], [3.0]]);
    let flat = MeanSquaredError.call(&Tensor::new(&[2.0f32, 2.0]), &column).unwrap();
    assert_eq!(flat.to_scalar::<f32>().unwrap(), 1.0);
}

#[test]
fn batch_normalization_matches_keras_in_training_and_inference() {
    let g = &golden()["batch_norm"];
    let x = t(&g["x"], &[4, 3]);
    for compiled in [false, true] {
        let bn = std::sync::Arc::new(BatchNormalization::new());
        let train = if compiled {
            let b = bn.clone();
            kiln::function(move |x: &Tensor| b.call(x, true).unwrap()).call(&x).unwrap()
        } else {
            bn.call(&x, true).unwrap()
        };
        close(&train.to_vec::<f32>().unwrap(), &floats(&g["train"]), "bn train");
        close(&bn.moving_mean().unwrap().read().to_vec::<f32>().unwrap(), &floats(&g["moving_mean"]), "moving_mean");
        close(
            &bn.moving_variance().unwrap().read().to_vec::<f32>().unwrap(),
            &floats(&g["moving_variance"]),
            "moving_var",
        );
        close(&bn.call(&x, false).unwrap().to_vec::<f32>().unwrap(), &floats(&g["infer"]), "bn inference");
        assert_eq!(bn.trainable_variables().len(), 2);
        assert_eq!(bn.non_trainable_variables().len(), 2);
    }
}

#[test]
fn regularizers_and_constraints_match_keras() {
    let g = &golden()["weights"];
    let w = t(&g["w"], &[3, 2]);
    let one = |x: Tensor| vec![x.to_scalar::<f32>().unwrap()];
    close(&one(regularizers::l1(0.01).call(&w)), &[g["l1"].as_f64().unwrap() as f32], "l1");
    close(&one(regularizers::l2(0.01).call(&w)), &[g["l2"].as_f64().unwrap() as f32], "l2");
    close(&one(regularizers::l1_l2(0.01, 0.02).call(&w)), &[g["l1_l2"].as_f64().unwrap() as f32], "l1_l2");
    let my_l1_regularizer = |w: &Tensor| (w * 0.01).abs().sum_all();
    close(&one(my_l1_regularizer(&w)), &[g["l1"].as_f64().unwrap() as f32], "my_l1_regularizer");
    both("non_neg", &floats(&g["non_neg"]), std::slice::from_ref(&w), |a| constraints::non_neg().call(&a[0]));
    let my_positive_weights = |w: &Tensor| w.less(&w.scalar_like(0.0)).select(&w.zeros_like(), w);
    both("my_positive_weights", &floats(&g["non_neg"]), std::slice::from_ref(&w), move |a| my_positive_weights(&a[0]));
    both("max_norm", &floats(&g["max_norm_2"]), &[w], |a| constraints::max_norm(2.0, 0).call(&a[0]));
}

#[test]
fn metrics_match_keras_eager_and_compiled() {
    let g = &golden()["metrics"];
    let (yt, yp) = (t(&g["y_true"], &[8]), t(&g["y_pred"], &[8]));
    let labels: Vec<i64> = g["class_true"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let labels = Tensor::from_vec(labels, &[10]).unwrap();
    let scores = t(&g["class_pred"], &[10, 3]);
    let want = |k: &str| g[k].as_f64().unwrap() as f32;
    for compiled in [false, true] {
        let cases: Vec<(&str, std::sync::Arc<dyn LabelMetric>, &Tensor, &Tensor)> = vec![
            ("precision", std::sync::Arc::new(Precision::new()), &yt, &yp),
            ("recall", std::sync::Arc::new(Recall::new()), &yt, &yp),
            ("f1_binary", std::sync::Arc::new(F1Score::binary(0.5)), &yt, &yp),
            ("f1_macro", std::sync::Arc::new(F1Score::macro_average(3)), &labels, &scores),
        ];
        for (name, m, a, b) in cases {
            // Two half-batches: streaming state must add up to the whole.
            let n = a.shape()[0] as i32;
            let halves = [
                (a.slice(&kiln::s![..n / 2]), b.slice(&kiln::s![..n / 2])),
                (a.slice(&kiln::s![n / 2..]), b.slice(&kiln::s![n / 2..])),
            ];
            for (x, y) in &halves {
                if compiled {
                    let m2 = m.clone();
                    kiln::function(move |x: &Tensor, y: &Tensor| m2.update_state(x, y)).call((x, y)).unwrap();
                } else {
                    m.update_state(x, y).unwrap();
                }
            }
            close(&[m.result().item().unwrap() as f32], &[want(name)], &format!("{name} (compiled {compiled})"));
            m.reset().unwrap();
            assert_eq!(m.result().item().unwrap(), 0.0, "{name} after reset");
        }
    }
}
