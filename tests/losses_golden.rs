//! Loss reductions and sample weights against Keras 3 (jax backend, float32):
//! tests/golden/keras_losses.json, made by tests/golden/keras_losses.py. Every built-in loss
//! with each reduction, with and without per-sample weights, `[n]` labels against `[n, 1]`
//! predictions, integer labels, and the book's `huber_fn` closure returning per-element
//! losses; eagerly and compiled. Tolerance 2e-6 relative.

use kiln::losses::{
    BinaryCrossentropy, CategoricalCrossentropy, Huber, Loss, MeanAbsoluteError, MeanSquaredError, Reduction,
    SparseCategoricalCrossentropy,
};
use kiln::{DType, Tensor};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/keras_losses.json")).unwrap()
}

fn tensor(v: &Value, dtype: DType) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f64> = v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    Tensor::from_vec(data, &shape).unwrap().cast(dtype)
}

fn close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    for (a, b) in g.iter().zip(&w) {
        assert!((a - b).abs() <= 2e-6 * b.abs().max(1.0), "{what}: kiln {g:?}, keras {w:?}");
    }
}

/// A loss with a given reduction.
type MakeLoss = Box<dyn Fn(Reduction) -> Box<dyn Loss>>;

/// The loss called `name` in the golden file, its labels and predictions.
fn case(name: &str, g: &Value) -> (MakeLoss, Tensor, Tensor) {
    let i = |k: &str, d| tensor(&g["inputs"][k], d);
    let f32s = |k: &str| i(k, DType::F32);
    fn boxed<L: Loss + Copy + 'static>(l: L) -> MakeLoss {
        Box::new(move |r| Box::new(l.with_reduction(r)))
    }
    match name {
        "mse" => (boxed(MeanSquaredError), f32s("y_reg"), f32s("p_reg")),
        "mae" => (boxed(MeanAbsoluteError), f32s("y_reg"), f32s("p_reg")),
        "huber_2" => (boxed(Huber::new(2.0)), f32s("y_reg"), f32s("p_reg")),
        "bce" => (boxed(BinaryCrossentropy::new(false)), f32s("y_bin"), f32s("p_prob")),
        "bce_logits" => (boxed(BinaryCrossentropy::new(true)), f32s("y_bin"), f32s("p_reg")),
        "cce_logits" => (boxed(CategoricalCrossentropy::new(true)), f32s("onehot"), f32s("logits")),
        "scce_logits" => (boxed(SparseCategoricalCrossentropy::new(true)), i("labels", DType::I64), f32s("logits")),
        "scce_column_labels" => {
            (boxed(SparseCategoricalCrossentropy::new(true)), i("labels", DType::I64).reshape([4, 1]), f32s("logits"))
        }
        "mse_column" => (boxed(MeanSquaredError), f32s("col_true"), f32s("col_pred")),
        "mse_int_labels" => (boxed(MeanSquaredError), i("labels", DType::I32).reshape([4, 1]), f32s("col_pred")),
        other => panic!("no case {other}"),
    }
}

const REDUCTIONS: [(&str, Reduction); 4] = [
    ("sum_over_batch_size", Reduction::SumOverBatchSize),
    ("sum", Reduction::Sum),
    ("none", Reduction::None),
    ("mean_with_sample_weight", Reduction::MeanWithSampleWeight),
];

#[test]
fn every_loss_and_reduction_matches_keras_eager_and_compiled() {
    let g = golden();
    let weight = tensor(&g["inputs"]["weight"], DType::F32);
    for (name, entry) in g["losses"].as_object().unwrap() {
        let (make, y_true, y_pred) = case(name, &g);
        for (key, reduction) in REDUCTIONS {
            for weighted in [false, true] {
                let want = tensor(&entry[format!("{key}{}", if weighted { "_weighted" } else { "" })], DType::F32);
                let loss: std::sync::Arc<dyn Loss> = make(reduction).into();
                let w = weighted.then(|| weight.clone());
                let what = format!("{name} {key} weighted={weighted}");
                close(&loss.call_weighted(&y_true, &y_pred, w.as_ref()).unwrap(), &want, &format!("{what} eager"));
                let f = kiln::function(move |a: &[Tensor]| loss.call_weighted(&a[0], &a[1], a.get(2)));
                let mut args = vec![y_true.clone(), y_pred.clone()];
                args.extend(w);
                close(&f.call(args.as_slice()).unwrap(), &want, &format!("{what} compiled"));
            }
        }
    }
}

#[test]
fn the_books_huber_fn_returns_per_element_losses_and_is_reduced_as_keras() {
    let g = golden();
    let huber_fn = |y_true: &Tensor, y_pred: &Tensor| {
        let error = y_true - y_pred;
        let small = error.abs().less(&error.scalar_like(1.0));
        small.select(&(error.square() / 2.0), &(error.abs() - 0.5))
    };
    let (y, p) = (tensor(&g["inputs"]["y_reg"], DType::F32), tensor(&g["inputs"]["p_reg"], DType::F32));
    close(&Loss::call(&huber_fn, &y, &p).unwrap(), &tensor(&g["huber_fn"]["plain"], DType::F32), "plain");
    let w = tensor(&g["inputs"]["weight"], DType::F32).reshape([4, 1]);
    close(
        &huber_fn.call_weighted(&y, &p, Some(&w)).unwrap(),
        &tensor(&g["huber_fn"]["weighted"], DType::F32),
        "weighted",
    );
    // A weight that broadcasts neither way is an error, as in Keras.
    assert!(huber_fn.call_weighted(&y, &p, Some(&Tensor::ones(&[4], DType::F32))).is_err());
}
