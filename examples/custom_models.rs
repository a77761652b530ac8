//! "Custom Models and Training with TensorFlow", end to end, in kiln, on scikit-learn's
//! diabetes regression data (the chapter uses California housing, which scikit-learn only
//! downloads): a Huber loss with a threshold, custom activation/initializer/regularizer/
//! constraint functions, a streaming Huber metric, `MyDense` with `build`, a layer with two
//! inputs and three outputs, `MyGaussianNoise`, `ResidualBlock` + `ResidualRegressor` trained
//! by a custom loop with a status bar, and `ReconstructingRegressor` (`add_loss`) trained by
//! `fit` with callbacks and TensorBoard logs, then saved whole and loaded back with its custom
//! objects. Every training step is one compiled `kiln::function`. `docs/TRAINING.md` maps
//! each construct to the chapter's.
//! Run: `cargo run --release --example custom_models`.

#[path = "data/diabetes.rs"]
pub mod diabetes;

use std::sync::{Arc, OnceLock};

use kiln::losses::Loss;
use kiln::metrics::{LabelMetric, Mean, MeanMetricWrapper, Metric};
use kiln::models::{load_model, CustomObjects, ObjectConfig};
use kiln::nn::constraints::Constraint;
use kiln::nn::initializers::HeNormal;
use kiln::nn::regularizers::Regularizer;
use kiln::nn::{Dense, Layer, LayerState, WeightSpec};
use kiln::optim::{Nadam, Optimizer};
use kiln::random::Generator;
use kiln::training::{EarlyStopping, FitOptions, Mode, ModelCheckpoint, TensorBoard, Trainer};
use kiln::{DType, GradientTape, Result, Tensor, Variable};

/// The chapter's `HuberLoss(threshold)`: quadratic below the threshold, linear above.
#[derive(Clone, Copy)]
pub struct HuberLoss {
    pub threshold: f64,
}

impl Loss for HuberLoss {
    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let error = y_true.try_sub(y_pred)?;
        let small = error.abs().less(&error.scalar_like(self.threshold));
        let squared = error.square() / 2.0;
        let linear = error.abs() * self.threshold - self.threshold * self.threshold / 2.0;
        small.try_select(&squared, &linear)?.try_mean(-1, false)
    }

    /// What saving the model writes for the loss (the chapter's `get_config`).
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("HuberLoss").with("threshold", self.threshold))
    }
}

// The chapter's custom functions, as closures a layer takes.
fn my_softplus(z: &Tensor) -> Tensor {
    (z.exp() + 1.0).log()
}

fn my_glorot_initializer(shape: &[usize], dtype: DType) -> Tensor {
    let stddev = (2.0 / (shape[0] + shape[1]) as f64).sqrt();
    (Tensor::random_normal(shape, DType::F64, 42) * stddev).cast(dtype)
}

// The chapter's regularizer and constraint as types with a config, so a model holding them
// is saved whole (a closure works too, but cannot be saved).
pub struct MyL1Regularizer {
    pub factor: f64,
}

impl Regularizer for MyL1Regularizer {
    fn call(&self, weights: &Tensor) -> Tensor {
        (weights.abs() * self.factor).sum_all()
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("MyL1Regularizer").with("factor", self.factor))
    }
}

pub struct MyPositiveWeights;

impl Constraint for MyPositiveWeights {
    fn call(&self, weights: &Tensor) -> Tensor {
        weights.less(&weights.zeros_like()).select(&weights.zeros_like(), weights)
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("MyPositiveWeights"))
    }
}

/// The chapter's streaming `HuberMetric`: the running mean of the Huber loss.
pub struct HuberMetric {
    threshold: f64,
    mean: MeanMetricWrapper,
}

impl HuberMetric {
    pub fn new(threshold: f64) -> HuberMetric {
        let huber = move |t: &Tensor, p: &Tensor| HuberLoss { threshold }.per_sample(t, p);
        HuberMetric { threshold, mean: MeanMetricWrapper::new("huber_metric", huber) }
    }
}

impl Metric for HuberMetric {
    fn result(&self) -> Tensor {
        self.mean.result()
    }
    fn variables(&self) -> Vec<Variable> {
        self.mean.variables()
    }
    fn name(&self) -> String {
        self.mean.name()
    }
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("HuberMetric").with("threshold", self.threshold))
    }
}

impl LabelMetric for HuberMetric {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        self.mean.update_state(y_true, y_pred)
    }
}

/// The chapter's `MyDense`: its kernel's shape comes from the first input, in `build`.
pub struct MyDense {
    state: LayerState,
    units: usize,
    activation: fn(&Tensor) -> Tensor,
    weights: OnceLock<(Variable, Variable)>,
}

impl MyDense {
    pub fn new(units: usize, activation: fn(&Tensor) -> Tensor) -> MyDense {
        MyDense { state: LayerState::new("my_dense"), units, activation, weights: OnceLock::new() }
    }
}

impl Layer for MyDense {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn build(&self, shapes: &[&[usize]]) -> Result<()> {
        let inputs = *shapes[0].last().expect("a feature axis");
        let kernel = self
            .state
            .add_weight(WeightSpec::new("kernel", &[inputs, self.units]).initializer(my_glorot_initializer))?;
        let bias =
            self.state.add_weight(WeightSpec::new("bias", &[self.units]).initializer(kiln::nn::initializers::Zeros))?;
        let _ = self.weights.set((kernel, bias));
        Ok(())
    }

    fn forward(&self, x: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let (k, b) = self.weights.get().expect("built before forward");
        Ok(vec![(self.activation)(&x[0].try_matmul(&k.read())?.try_add(&b.read())?)])
    }
}

/// The chapter's `MyMultiLayer`: two inputs, three outputs.
pub struct MyMultiLayer(LayerState);

impl Layer for MyMultiLayer {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.0)
    }

    fn forward(&self, x: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        Ok(vec![x[0].try_add(&x[1])?, x[0].try_mul(&x[1])?, x[0].try_div(&x[1])?])
    }
}

/// The chapter's `MyGaussianNoise`: noise in training only, fresh on every call (a
/// `Generator`'s counter advances inside the compiled step).
pub struct MyGaussianNoise {
    state: LayerState,
    stddev: f64,
    noise: Generator,
}

impl MyGaussianNoise {
    pub fn new(stddev: f64) -> MyGaussianNoise {
        MyGaussianNoise { state: LayerState::new("my_gaussian_noise"), stddev, noise: Generator::new(7) }
    }
}

impl Layer for MyGaussianNoise {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn forward(&self, x: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        if !training {
            return Ok(x.to_vec());
        }
        let noise = self.noise.normal(x[0].shape(), x[0].dtype())? * self.stddev;
        Ok(vec![x[0].try_add(&noise)?])
    }
}

fn elu_he(units: usize, seed: u64) -> Dense {
    Dense::new(units).activation("elu").kernel_initializer(HeNormal::new(seed))
}

/// The chapter's `ResidualBlock`: `n_layers` Dense layers and a skip connection.
pub struct ResidualBlock {
    state: LayerState,
    hidden: Vec<Arc<Dense>>,
}

impl ResidualBlock {
    pub fn new(n_layers: usize, n_neurons: usize, seed: u64) -> ResidualBlock {
        let state = LayerState::new("residual_block");
        let hidden = (0..n_layers).map(|i| state.track(elu_he(n_neurons, seed + i as u64))).collect();
        ResidualBlock { state, hidden }
    }
}

impl Layer for ResidualBlock {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn forward(&self, x: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let mut z = x[0].clone();
        for layer in &self.hidden {
            z = layer.call(&z, training)?;
        }
        Ok(vec![x[0].try_add(&z)?])
    }
}

/// The chapter's `ResidualRegressor`: a Dense layer, one residual block three times, another
/// block, and the output layer.
pub struct ResidualRegressor {
    state: LayerState,
    hidden1: Arc<Dense>,
    block1: Arc<ResidualBlock>,
    block2: Arc<ResidualBlock>,
    out: Arc<Dense>,
}

impl ResidualRegressor {
    pub fn new(output_dim: usize) -> ResidualRegressor {
        let state = LayerState::new("residual_regressor");
        ResidualRegressor {
            hidden1: state.track(elu_he(30, 1)),
            block1: state.track(ResidualBlock::new(2, 30, 10)),
            block2: state.track(ResidualBlock::new(2, 30, 20)),
            out: state.track(Dense::new(output_dim).seed(30)),
            state,
        }
    }
}

impl Layer for ResidualRegressor {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn forward(&self, x: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let mut z = self.hidden1.call(&x[0], training)?;
        for _ in 0..3 {
            z = self.block1.call(&z, training)?;
        }
        z = self.block2.call(&z, training)?;
        Ok(vec![self.out.call(&z, training)?])
    }
}

/// The chapter's `ReconstructingRegressor`: five hidden layers, an output, and a
/// reconstruction of the inputs whose error, `0.05 · mse`, is added with `add_loss`.
pub struct ReconstructingRegressor {
    state: LayerState,
    shape: (usize, usize),
    hidden: Vec<Arc<Dense>>,
    out: Arc<Dense>,
    reconstruct: Arc<Dense>,
    noise: Arc<MyGaussianNoise>,
    first: Arc<MyDense>,
}

impl ReconstructingRegressor {
    pub fn new(inputs: usize, output_dim: usize) -> ReconstructingRegressor {
        let state = LayerState::new("reconstructing_regressor");
        ReconstructingRegressor {
            noise: state.track(MyGaussianNoise::new(0.05)),
            first: state.track(MyDense::new(30, my_softplus)),
            hidden: (0..4).map(|i| state.track(elu_he(30, 40 + i))).collect(),
            out: state.track(
                Dense::new(output_dim)
                    .kernel_initializer(my_glorot_initializer)
                    .kernel_regularizer(MyL1Regularizer { factor: 0.01 })
                    .kernel_constraint(MyPositiveWeights),
            ),
            reconstruct: state.track(Dense::new(inputs).seed(50)),
            state,
            shape: (inputs, output_dim),
        }
    }
}

impl Layer for ReconstructingRegressor {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn forward(&self, x: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let mut z = self.noise.call(&x[0], training)?;
        z = self.first.call(&z, training)?;
        for layer in &self.hidden {
            z = layer.call(&z, training)?;
        }
        let reconstruction = self.reconstruct.call(&z, training)?;
        let recon_loss = reconstruction.try_sub(&x[0])?.try_square()?.mean_all();
        self.state.add_loss(recon_loss * 0.05);
        Ok(vec![self.out.call(&z, training)?])
    }

    /// The settings the constructor needs; loading calls it again (see [`custom_objects`]).
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(self.state.config("ReconstructingRegressor").with("inputs", self.shape.0).with("output_dim", self.shape.1))
    }
}

/// The chapter's `custom_objects`: each custom class's name and how to build it from its config.
pub fn custom_objects() -> CustomObjects {
    CustomObjects::new()
        .layer("ReconstructingRegressor", |c, _| {
            Ok(ReconstructingRegressor::new(c.get("inputs")?, c.get("output_dim")?))
        })
        .loss("HuberLoss", |c, _| Ok(HuberLoss { threshold: c.get("threshold")? }))
        .metric("HuberMetric", |c, _| Ok(HuberMetric::new(c.get("threshold")?)))
        .regularizer("MyL1Regularizer", |c, _| Ok(MyL1Regularizer { factor: c.get("factor")? }))
        .constraint("MyPositiveWeights", |_, _| Ok(MyPositiveWeights))
}

/// Per-epoch losses of the two trainings.
pub struct Report {
    pub custom_loop: Vec<f64>,
    pub fit: Vec<f64>,
    pub fit_val: Vec<f64>,
    pub held_out_mae: f64,
    /// Whether the model saved whole and loaded back predicts the held-out set bit for bit.
    pub reload_matches: bool,
}

/// The custom loop with a status bar: a compiled step (forward, Huber loss plus the model's
/// losses, gradients, Nadam, constraints, metrics), then per epoch the running metrics.
fn custom_loop(
    model: Arc<ResidualRegressor>,
    train: &kiln::data::Dataset,
    epochs: u64,
    verbose: bool,
) -> Result<Vec<f64>> {
    let optimizer = Arc::new(Nadam::new(0.005));
    let mean_loss = Arc::new(Mean::new("mean_loss"));
    let mae = Arc::new(kiln::metrics::MeanAbsoluteError::new());
    let step = {
        let (model, optimizer, mean_loss, mae) = (model.clone(), optimizer.clone(), mean_loss.clone(), mae.clone());
        kiln::function(move |x: &Tensor, y: &Tensor| -> Result<Tensor> {
            let tape = GradientTape::new();
            let pred = model.call(x, true)?;
            let main = HuberLoss { threshold: 2.0 }.call(y, &pred)?;
            let loss = main.try_add(&kiln::nn::total_loss(model.as_ref(), DType::F32)?)?;
            optimizer.minimize(&loss, &model.trainable_variables(), &tape)?;
            model.apply_constraints()?;
            mean_loss.update_state(&loss)?;
            mae.update_state(y, &pred)?;
            Ok(loss)
        })
    };
    let mut losses = Vec::new();
    for epoch in 0..epochs {
        let bar = if verbose {
            indicatif::ProgressBar::new(train.batches_per_epoch() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_prefix(format!("Epoch {}/{epochs}", epoch + 1));
        for batch in train.epoch(epoch) {
            let batch = batch?;
            step.call((&batch[0], &batch[1]))?;
            bar.set_message(format!("mean_loss: {:.4} - mae: {:.4}", mean_loss.result().item()?, mae.result().item()?));
            bar.inc(1);
        }
        bar.finish();
        losses.push(mean_loss.result().item()?);
        if verbose {
            println!(
                "  epoch {:>2}: mean_loss {:.4}  mae {:.4}",
                epoch + 1,
                losses[epoch as usize],
                mae.result().item()?
            );
        }
        mean_loss.reset()?;
        mae.reset()?;
    }
    Ok(losses)
}

/// Runs both trainings; TensorBoard logs and the best checkpoint go to `logdir`.
pub fn run(epochs: u64, logdir: &std::path::Path, verbose: bool) -> Result<Report> {
    let (x, y) = diabetes::load()?;
    let (train, test) = diabetes::split(&x, &y, 0.2, 0)?;
    let (train, test) = (train.shuffle(1).batch(32, false), test.batch(256, false));

    // The layer with two inputs and three outputs, on two feature columns.
    let multi = MyMultiLayer(LayerState::new("my_multi_layer"));
    let cols = |i: isize| x.slice(&kiln::s![.., i..i + 1]);
    let outs = multi.call_many(&[cols(0), cols(1).abs() + 1.0], false)?;
    if verbose {
        println!("MyMultiLayer: {} inputs -> {} outputs of shape {:?}", 2, outs.len(), outs[0].shape());
        println!("ResidualRegressor, custom training loop (Nadam, HuberLoss(2.0)):");
    }
    let residual = Arc::new(ResidualRegressor::new(1));
    let custom_loop = custom_loop(residual, &train, epochs, verbose)?;

    if verbose {
        println!(
            "ReconstructingRegressor (add_loss), fit with callbacks and TensorBoard logs in {}:",
            logdir.display()
        );
    }
    let model = Arc::new(ReconstructingRegressor::new(10, 1));
    let trainer = Trainer::new(
        model.clone(),
        Arc::new(HuberLoss { threshold: 2.0 }),
        Arc::new(Nadam::new(0.005)),
        vec![Arc::new(HuberMetric::new(2.0))],
    );
    let options = FitOptions {
        epochs,
        validation_split: 0.2,
        verbose,
        callbacks: vec![
            Box::new(EarlyStopping::new("val_loss", Mode::Min, 10).restore_best_weights(true)),
            Box::new(ModelCheckpoint::new(logdir.join("best.safetensors"), "val_loss", Mode::Min).save_best_only(true)),
            Box::new(TensorBoard::new(logdir)),
        ],
        ..FitOptions::default()
    };
    let h = trainer.fit_with(&train, options)?;
    let (test_loss, test_metrics) = trainer.evaluate(&test)?;
    let mae = kiln::metrics::MeanAbsoluteError::new();
    for batch in test.epoch(0) {
        let batch = batch?;
        mae.update_state(&batch[1], &model.call(&batch[0], false)?)?;
    }
    if verbose {
        println!(
            "held-out Huber loss {test_loss:.4}, huber_metric {:.4}, mae {:.4} (standardized target)",
            test_metrics[0],
            mae.result().item()?
        );
        let positive = model.out.kernel().map(|k| k.read().min_all().item()).transpose()?.unwrap_or(0.0);
        println!("the output kernel's smallest weight after MyPositiveWeights: {positive:.4}");
    }
    // Saved whole (architecture, weights, loss, metric, Nadam's state) and loaded back.
    let saved = logdir.join("reconstructing_regressor.kiln");
    trainer.save(&saved)?;
    let loaded = load_model(&saved, &custom_objects())?;
    let mut reload_matches = true;
    for batch in test.epoch(0) {
        let x = &batch?[0];
        reload_matches &= loaded.call(x, false)?.to_vec::<f32>()? == model.call(x, false)?.to_vec::<f32>()?;
    }
    if verbose {
        println!("saved whole to {} and loaded back: predictions equal: {reload_matches}", saved.display());
    }
    Ok(Report { custom_loop, fit: h.loss, fit_val: h.val_loss, held_out_mae: mae.result().item()?, reload_matches })
}

#[allow(dead_code)]
fn main() -> Result<()> {
    let logdir = std::env::temp_dir().join("kiln-custom-models");
    let r = run(30, &logdir, true)?;
    println!(
        "custom loop: loss {:.4} -> {:.4}; fit: loss {:.4} -> {:.4}, val_loss {:.4} -> {:.4}; held-out mae {:.4}",
        r.custom_loop[0],
        r.custom_loop.last().unwrap(),
        r.fit[0],
        r.fit.last().unwrap(),
        r.fit_val[0],
        r.fit_val.last().unwrap(),
        r.held_out_mae
    );
    println!("tensorboard --logdir {}", logdir.display());
    Ok(())
}
