//! `Trainer::fit`: learns a small problem, fills the history (with validation), and stops
//! cleanly on a NaN loss with every weight as after the last good step.

use std::sync::Arc;

use kiln::data::Dataset;
use kiln::losses::SparseCategoricalCrossentropy;
use kiln::metrics::SparseCategoricalAccuracy;
use kiln::nn::{Dense, Layer, Sequential};
use kiln::optim::SGD;
use kiln::training::Trainer;
use kiln::{DType, Error, Tensor};

/// Three Gaussian blobs in 4-d, labelled by blob.
fn blobs(n: usize, seed: u64) -> (Tensor, Tensor) {
    let noise = Tensor::random_normal(&[n, 4], DType::F32, seed) * 0.5;
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let centers: Vec<f32> =
        labels.iter().flat_map(|&l| (0..4).map(move |j| if j as i64 == l { 2.0 } else { -1.0 })).collect();
    (noise + Tensor::from_vec(centers, &[n, 4]).unwrap(), Tensor::from_vec(labels, &[n]).unwrap())
}

fn trainer(model: Arc<Sequential>) -> Trainer {
    Trainer::new(
        model,
        Arc::new(SparseCategoricalCrossentropy::new(true)),
        Arc::new(SGD::new(0.1)),
        vec![Arc::new(SparseCategoricalAccuracy::new())],
    )
}

#[test]
fn fit_learns_and_fills_the_history() {
    let model = Arc::new(Sequential::new().add(Dense::new(8).activation("relu").seed(1)).add(Dense::new(3).seed(2)));
    let (x, y) = blobs(60, 3);
    let (vx, vy) = blobs(30, 4);
    let train = Dataset::from_tensors(&[x, y]).unwrap().shuffle(0).batch(16, false);
    let val = Dataset::from_tensors(&[vx, vy]).unwrap().batch(10, false);
    let h = trainer(model).fit(&train, 8, Some(&val)).unwrap();
    assert_eq!(h.loss.len(), 8);
    assert_eq!(h.val_loss.len(), 8);
    assert_eq!(h.metrics[0].1.len(), 8);
    assert_eq!(h.val_metrics[0].1.len(), 8);
    assert!(h.loss[7] < 0.5 * h.loss[0], "loss {:?}", h.loss);
    assert!(h.val_metrics[0].1[7] > 0.9, "validation accuracy {:?}", h.val_metrics);
}

#[test]
fn nan_loss_stops_with_the_last_good_weights() {
    let model = Arc::new(Sequential::new().add(Dense::new(3).seed(5)));
    let (x, y) = blobs(32, 6);
    // Poison the third batch (rows 16..24 with batches of 8, no shuffle).
    let mut xs = x.to_vec::<f32>().unwrap();
    xs[16 * 4] = f32::NAN;
    let x = Tensor::from_vec(xs, &[32, 4]).unwrap();
    let train = Dataset::from_tensors(&[x.clone(), y.clone()]).unwrap().batch(8, false);
    let t = trainer(model.clone());
    // The expected weights: the same model trained on the first two batches only.
    let reference = Arc::new(Sequential::new().add(Dense::new(3).seed(5)));
    let first16 = Tensor::from_vec((0..16i64).collect::<Vec<_>>(), &[16]).unwrap();
    let good = Dataset::from_tensors(&[x.gather(&first16, 0), y.gather(&first16, 0)]).unwrap().batch(8, false);
    trainer(reference.clone()).fit(&good, 1, None).unwrap();

    let e = t.fit(&train, 3, None).unwrap_err();
    assert!(matches!(e, Error::Training(_)), "{e}");
    assert!(e.to_string().contains("epoch 1 step 3") && e.to_string().contains("loss is NaN"), "{e}");
    for (a, b) in model.variables().iter().zip(reference.variables()) {
        assert_eq!(a.read().to_vec::<f32>().unwrap(), b.read().to_vec::<f32>().unwrap(), "{}", a.name());
    }
}

/// The guard checks what a step commits, not only its loss: a finite loss whose gradient is
/// NaN (`sqrt(|p - y|)` at `p == y`) must not leave NaN weights, and the error says so.
#[test]
fn a_nan_gradient_with_a_finite_loss_is_undone() {
    use kiln::nn::initializers::Zeros;
    let model = Arc::new(Sequential::new().add(Dense::new(1).kernel_initializer(Zeros)));
    let x = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]]);
    let y = Tensor::zeros(&[2, 1], DType::F32);
    let train = Dataset::from_tensors(&[x, y]).unwrap().batch(2, false);
    let loss = |y: &Tensor, p: &Tensor| (p - y).abs().sqrt().mean_all();
    let t = Trainer::new(model.clone(), Arc::new(loss), Arc::new(SGD::new(0.1)), vec![]);
    let e = t.fit(&train, 2, None).unwrap_err();
    assert!(matches!(e, Error::Training(_)), "{e}");
    assert!(e.to_string().contains("epoch 1 step 1"), "{e}");
    assert!(e.to_string().contains("kernel"), "the error names the variable: {e}");
    for v in model.variables() {
        assert!(v.read().to_vec::<f32>().unwrap().iter().all(|w| *w == 0.0), "{} = {}", v.name(), v.read());
    }
}

#[test]
fn an_empty_dataset_is_an_error() {
    let model = Arc::new(Sequential::new().add(Dense::new(3).seed(5)));
    let train = Dataset::from_tensors(&[Tensor::zeros(&[0, 4], DType::F32), Tensor::zeros(&[0], DType::I64)])
        .unwrap()
        .batch(8, false);
    let e = trainer(model).fit(&train, 2, None).unwrap_err();
    assert!(e.to_string().contains("no batches"), "{e}");
}

/// The book's regression setup: `[n]` targets, a `Dense(1)` model (`[n, 1]` predictions) and
/// `huber_fn` returning per-element losses; `fit` reduces them as Keras does and learns.
#[test]
fn fit_takes_the_books_huber_fn_and_column_predictions() {
    let x = Tensor::random_normal(&[64, 3], DType::F32, 5);
    let y = x.matmul(&Tensor::new(&[[1.0f32], [-2.0], [0.5]])).reshape([64]) + 0.3;
    let huber_fn = |y_true: &Tensor, y_pred: &Tensor| {
        let error = y_true - y_pred;
        let small = error.abs().less(&error.scalar_like(1.0));
        small.select(&(error.square() / 2.0), &(error.abs() - 0.5))
    };
    let model = Arc::new(Sequential::new().add(Dense::new(1).seed(3)));
    let trainer = Trainer::new(model, Arc::new(huber_fn), Arc::new(SGD::new(0.1)), vec![]);
    let train = Dataset::from_tensors(&[x, y]).unwrap().batch(16, false);
    let h = trainer.fit(&train, 20, None).unwrap();
    assert!(h.loss[19] < 0.1 * h.loss[0], "{:?}", h.loss);
}
