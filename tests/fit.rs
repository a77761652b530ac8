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

mod callbacks {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::Arc;

    use kiln::data::Dataset;
    use kiln::losses::SparseCategoricalCrossentropy;
    use kiln::metrics::SparseCategoricalAccuracy;
    use kiln::nn::{Dense, Layer, Sequential};
    use kiln::optim::SGD;
    use kiln::training::{
        log_value, Callback, Context, CsvLogger, EarlyStopping, FitOptions, LearningRateScheduler, Logs, Mode,
        ModelCheckpoint, Trainer,
    };
    use kiln::{DType, Tensor};

    fn model() -> Arc<Sequential> {
        Arc::new(Sequential::new().add(Dense::new(8).activation("relu").seed(1)).add(Dense::new(3).seed(2)))
    }

    fn trainer(m: Arc<Sequential>, lr: f64) -> Trainer {
        Trainer::new(
            m,
            Arc::new(SparseCategoricalCrossentropy::new(true)),
            Arc::new(SGD::new(lr)),
            vec![Arc::new(SparseCategoricalAccuracy::new())],
        )
    }

    fn data() -> Dataset {
        let (x, y) = super::blobs(60, 3);
        Dataset::from_tensors(&[x, y]).unwrap().batch(20, false)
    }

    fn weights(m: &Sequential) -> Vec<Vec<f32>> {
        m.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect()
    }

    /// Each epoch's logs and the model's weights after it.
    type Epochs = Rc<RefCell<Vec<(Logs, Vec<Vec<f32>>)>>>;

    /// Records each epoch's logs and the model's weights after it.
    struct Recorder(Epochs);
    impl Callback for Recorder {
        fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, ctx: &Context) -> kiln::Result<()> {
            let w = ctx.model.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect();
            self.0.borrow_mut().push((logs.clone(), w));
            Ok(())
        }
    }

    /// Sets every weight to zero at the start of each epoch from the given one.
    struct ZeroFrom(usize);
    impl Callback for ZeroFrom {
        fn on_epoch_begin(&mut self, epoch: usize, ctx: &Context) -> kiln::Result<()> {
            if epoch >= self.0 {
                ctx.model.variables().iter().try_for_each(|v| v.assign(&v.read().zeros_like()))?;
            }
            Ok(())
        }
    }

    #[test]
    fn early_stopping_stops_and_restores_the_best_weights() {
        let m = model();
        let seen = Rc::new(RefCell::new(Vec::new()));
        // From epoch 3 on every epoch starts from zero weights, so the loss stops improving.
        let options = FitOptions {
            epochs: 30,
            verbose: false,
            callbacks: vec![
                Box::new(ZeroFrom(3)),
                Box::new(Recorder(seen.clone())),
                Box::new(EarlyStopping::new("loss", Mode::Auto, 2).restore_best_weights(true)),
            ],
            ..FitOptions::default()
        };
        let h = trainer(m.clone(), 0.1).fit_with(&data(), options).unwrap();
        let seen = seen.borrow();
        assert!(h.loss.len() < 30, "stopped early: {:?}", h.loss);
        let best = (0..seen.len())
            .min_by(|&a, &b| log_value(&seen[a].0, "loss").unwrap().total_cmp(&log_value(&seen[b].0, "loss").unwrap()))
            .unwrap();
        assert!(best < seen.len() - 1, "the last epoch was not the best");
        assert_eq!(weights(&m), seen[best].1, "restored to the best epoch's weights");
    }

    #[test]
    fn model_checkpoint_keeps_the_best_and_csv_logger_writes_every_epoch() {
        let dir = std::env::temp_dir().join(format!("kiln-callbacks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ckpt, csv) = (dir.join("best.safetensors"), dir.join("log.csv"));
        let m = model();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let options = FitOptions {
            epochs: 6,
            verbose: false,
            validation_split: 0.25,
            callbacks: vec![
                Box::new(ZeroFrom(3)),
                Box::new(Recorder(seen.clone())),
                Box::new(ModelCheckpoint::new(&ckpt, "val_loss", Mode::Min).save_best_only(true)),
                Box::new(CsvLogger::new(&csv, false)),
            ],
            ..FitOptions::default()
        };
        trainer(m.clone(), 0.1).fit_with(&data(), options).unwrap();
        let seen = seen.borrow();
        let best = (0..seen.len())
            .min_by(|&a, &b| {
                log_value(&seen[a].0, "val_loss").unwrap().total_cmp(&log_value(&seen[b].0, "val_loss").unwrap())
            })
            .unwrap();
        kiln::checkpoint::load_weights(m.as_ref(), &ckpt).unwrap();
        assert_eq!(weights(&m), seen[best].1, "the checkpoint holds the best epoch");
        let text = std::fs::read_to_string(&csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "epoch,loss,sparse_categorical_accuracy,val_loss,val_sparse_categorical_accuracy");
        assert_eq!(lines.len(), 7);
        let loss0: f64 = lines[1].split(',').nth(1).unwrap().parse().unwrap();
        assert_eq!(loss0, log_value(&seen[0].0, "loss").unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// With plain SGD, weighting every sample by 2 — by class weights or sample weights —
    /// trains as doubling the learning rate does.
    #[test]
    fn class_and_sample_weights_scale_the_loss() {
        let run = |lr: f64, class_weight: Option<Vec<f64>>, sample_weight: bool| {
            let m = model();
            let (x, y) = super::blobs(60, 3);
            let mut tensors = vec![x, y];
            if sample_weight {
                tensors.push(Tensor::fill(&[60], 2.0, DType::F32));
            }
            let ds = Dataset::from_tensors(&tensors).unwrap().batch(20, false);
            let options = FitOptions { epochs: 3, verbose: false, class_weight, ..FitOptions::default() };
            trainer(m.clone(), lr).fit_with(&ds, options).unwrap();
            weights(&m)
        };
        let doubled = run(0.2, None, false);
        for (name, got) in
            [("class_weight", run(0.1, Some(vec![2.0; 3]), false)), ("sample_weight", run(0.1, None, true))]
        {
            for (a, b) in got.iter().flatten().zip(doubled.iter().flatten()) {
                assert!((a - b).abs() < 1e-4, "{name}: {a} vs {b}");
            }
        }
        // A class weight table too short for the labels is an error.
        let m = model();
        let options =
            FitOptions { epochs: 1, verbose: false, class_weight: Some(vec![1.0, 1.0]), ..FitOptions::default() };
        let e = trainer(m, 0.1).fit_with(&data(), options).unwrap_err().to_string();
        assert!(e.contains("class_weight"), "{e}");
    }

    /// The scheduler sets the rate before each epoch, and the compiled step uses it.
    #[test]
    fn learning_rate_scheduler_sets_the_rate_the_compiled_step_reads() {
        let m = model();
        let opt = Arc::new(SGD::new(0.1));
        let t = Trainer::new(m.clone(), Arc::new(SparseCategoricalCrossentropy::new(true)), opt.clone(), vec![]);
        let halve = LearningRateScheduler::new(|_, lr| lr / 2.0);
        let options =
            FitOptions { epochs: 3, verbose: false, callbacks: vec![Box::new(halve)], ..FitOptions::default() };
        t.fit_with(&data(), options).unwrap();
        use kiln::optim::Optimizer;
        assert_eq!(opt.learning_rate(DType::F64).unwrap().to_scalar::<f64>().unwrap(), 0.0125);
        // A rate of zero from the start leaves the weights as they are.
        let before = weights(&m);
        let stop = LearningRateScheduler::new(|_, _| 0.0);
        let options =
            FitOptions { epochs: 2, verbose: false, callbacks: vec![Box::new(stop)], ..FitOptions::default() };
        t.fit_with(&data(), options).unwrap();
        assert_eq!(weights(&m), before);
    }

    #[test]
    fn validation_split_holds_out_the_last_rows() {
        let m = model();
        let t = trainer(m.clone(), 0.1);
        let options = FitOptions { epochs: 2, verbose: false, validation_split: 0.25, ..FitOptions::default() };
        let h = t.fit_with(&data(), options).unwrap();
        let (_, held) = data().split_validation(0.25).unwrap();
        assert_eq!(held.len(), 15);
        let (vl, _) = t.evaluate(&held).unwrap();
        assert!((h.val_loss[1] - vl).abs() < 1e-6, "{} vs {vl}", h.val_loss[1]);
        assert!(data().split_validation(1.0).is_err());
    }
}

/// `fit_stream` over a table's pipeline runs the same steps as `fit` over the table (same
/// losses), and over a prefetched, shuffled stream with fewer steps than a pass it still
/// learns; bad arguments are errors.
#[test]
fn fit_stream_matches_fit_and_learns_from_a_prefetched_stream() {
    use kiln::data::Pipeline;
    use kiln::training::FitOptions;
    let model = || Arc::new(Sequential::new().add(Dense::new(8).activation("relu").seed(1)).add(Dense::new(3).seed(2)));
    let (x, y) = blobs(60, 3);
    let table = Dataset::from_tensors(&[x.clone(), y.clone()]).unwrap().shuffle(0).batch(16, false);
    let quiet = |epochs| FitOptions { epochs, verbose: false, ..FitOptions::default() };
    let by_table = trainer(model()).fit_with(&table, quiet(3)).unwrap();
    let by_stream = trainer(model()).fit_stream(&table.pipeline(), table.batches_per_epoch(), quiet(3)).unwrap();
    assert_eq!(by_table.loss, by_stream.loss);

    // 3 steps per epoch from passes of 3 full batches of 20 (and the passes continue).
    let stream = Pipeline::from_tensor_slices(&[x, y]).unwrap().shuffle(60, 5).batch(20, true).prefetch(2);
    let h = trainer(model()).fit_stream(&stream, 2, quiet(12)).unwrap();
    assert_eq!(h.loss.len(), 12);
    assert!(h.loss[11] < 0.5 * h.loss[0], "loss {:?}", h.loss);

    let t = trainer(model());
    let split = FitOptions { validation_split: 0.2, ..quiet(1) };
    assert!(t.fit_stream(&stream, 2, split).unwrap_err().to_string().contains("validation_split"));
    assert!(t.fit_stream(&stream, 0, quiet(1)).is_err());
    let empty = Pipeline::range(0, 0);
    assert!(t.fit_stream(&empty, 2, quiet(1)).unwrap_err().to_string().contains("no batches"));
}
