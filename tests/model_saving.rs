//! Whole-model saving (`kiln::models`): the chapter's custom objects round-trip with their
//! configs; a loaded model predicts, scores and trains on exactly as the original; what
//! cannot be saved, a missing custom object and hostile files are errors, never panics.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use kiln::data::Dataset;
use kiln::losses::{Loss, MeanSquaredError};
use kiln::metrics::MeanAbsoluteError;
use kiln::models::{load_model, Config, CustomObjects, Model, ObjectConfig};
use kiln::nn::regularizers::Regularizer;
use kiln::nn::{
    constraints, regularizers, BatchNormalization, Dense, Dropout, GaussianNoise, Lambda, Layer, LayerState,
    Sequential, WeightSpec, GRU, LSTM,
};
use kiln::optim::{Adam, Nadam, Optimizer, RMSprop, SGD};
use kiln::{DType, Result, Tensor, Variable};

fn path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kiln-model-saving-{name}-{}.kiln", std::process::id()))
}

/// The chapter's `HuberLoss(threshold)`, with its config.
struct HuberLoss {
    threshold: f64,
}

impl Loss for HuberLoss {
    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let error = y_true.try_sub(y_pred)?;
        let small = error.abs().less(&error.scalar_like(self.threshold));
        let linear = error.abs() * self.threshold - self.threshold * self.threshold / 2.0;
        small.try_select(&(error.square() / 2.0), &linear)?.try_mean(-1, false)
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("HuberLoss").with("threshold", self.threshold))
    }
}

/// The chapter's `MyL1Regularizer(factor)`.
struct MyL1Regularizer {
    factor: f64,
}

impl Regularizer for MyL1Regularizer {
    fn call(&self, w: &Tensor) -> Tensor {
        (w * self.factor).abs().sum_all()
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("MyL1Regularizer").with("factor", self.factor))
    }
}

fn my_softplus(z: &Tensor) -> Tensor {
    (z.exp() + 1.0).log()
}

/// The chapter's `MyDense`, with an activation saved by name and a custom regularizer.
struct MyDense {
    state: LayerState,
    units: usize,
    activation: String,
    act: kiln::nn::Activation,
    weights: OnceLock<(Variable, Variable)>,
}

impl MyDense {
    fn new(state: LayerState, units: usize, activation: &str, objects: &CustomObjects) -> Result<MyDense> {
        let act = objects.make_activation(activation)?;
        Ok(MyDense { state, units, activation: activation.to_string(), act, weights: OnceLock::new() })
    }

    fn from_config(c: &Config, objects: &CustomObjects) -> Result<MyDense> {
        MyDense::new(LayerState::from_config(c)?, c.get("units")?, &c.get::<String>("activation")?, objects)
    }
}

impl Layer for MyDense {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn build(&self, shapes: &[&[usize]]) -> Result<()> {
        let inputs = shapes[0][shapes[0].len() - 1];
        let kernel = WeightSpec::new("kernel", &[inputs, self.units]).regularizer(MyL1Regularizer { factor: 0.01 });
        let kernel = self.state.add_weight(kernel)?;
        let bias =
            self.state.add_weight(WeightSpec::new("bias", &[self.units]).initializer(kiln::nn::initializers::Zeros))?;
        let _ = self.weights.set((kernel, bias));
        Ok(())
    }

    fn forward(&self, x: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let (k, b) = self.weights.get().expect("built");
        Ok(vec![(self.act)(&x[0].try_matmul(&k.read())?.try_add(&b.read())?)])
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(self.state.config("MyDense").with("units", self.units).with("activation", &self.activation))
    }
}

/// The chapter's residual regressor, rebuilt from its one setting.
struct Residual {
    state: LayerState,
    output_dim: usize,
    hidden: Arc<Dense>,
    block: Vec<Arc<Dense>>,
    out: Arc<Dense>,
}

impl Residual {
    fn new(output_dim: usize) -> Residual {
        let state = LayerState::new("residual");
        let hidden = state.track(Dense::new(16).activation("elu").seed(1));
        let block = (0..2).map(|i| state.track(Dense::new(16).activation("elu").seed(10 + i))).collect();
        let out = state.track(Dense::new(output_dim).seed(3));
        Residual { state, output_dim, hidden, block, out }
    }
}

impl Layer for Residual {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn forward(&self, x: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let h = self.hidden.call(&x[0], training)?;
        let mut z = h.clone();
        for l in &self.block {
            z = l.call(&z, training)?;
        }
        Ok(vec![self.out.call(&h.try_add(&z)?, training)?])
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(self.state.config("Residual").with("output_dim", self.output_dim))
    }
}

fn objects() -> CustomObjects {
    CustomObjects::new()
        .layer("MyDense", MyDense::from_config)
        .layer("Residual", |c, _| Ok(Residual::new(c.get("output_dim")?)))
        .loss("HuberLoss", |c, _| Ok(HuberLoss { threshold: c.get("threshold")? }))
        .regularizer("MyL1Regularizer", |c, _| Ok(MyL1Regularizer { factor: c.get("factor")? }))
        .activation("my_softplus", my_softplus)
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

fn all_bits(layer: &dyn Layer) -> Vec<Vec<u32>> {
    layer.variables().iter().filter(|v| v.dtype() == DType::F32).map(|v| bits(&v.read())).collect()
}

fn regression_data() -> (Tensor, Tensor, Dataset) {
    let x = Tensor::random_normal(&[32, 5], DType::F32, 11);
    let y = (x.sum(&[1], true) * 0.5).tanh();
    let data = Dataset::from_tensors(&[x.clone(), y.clone()]).unwrap().shuffle(3).batch(8, false);
    (x, y, data)
}

/// Every part of the chapter in one model: a custom layer with a custom regularizer and a
/// custom activation, built-ins with a regularizer, a constraint, moving statistics and random
/// streams, a custom loss, a metric, and each optimizer with its state.
fn chapter_model(optimizer: Arc<dyn Optimizer>) -> Model {
    let objects = objects();
    let net = Sequential::new()
        .add(MyDense::new(LayerState::new("my_dense"), 8, "my_softplus", &objects).unwrap())
        .add(
            Dense::new(8)
                .activation("relu")
                .seed(2)
                .kernel_regularizer(regularizers::l2(1e-3))
                .kernel_constraint(constraints::max_norm(2.0, 0)),
        )
        .add(BatchNormalization::new())
        .add(Dropout::new(0.2).seed(4))
        .add(GaussianNoise::new(0.05).seed(5))
        .add(Dense::new(1).seed(6));
    Model::new(Arc::new(net)).compile(
        Arc::new(HuberLoss { threshold: 1.5 }),
        optimizer,
        vec![Arc::new(MeanAbsoluteError::new())],
    )
}

#[test]
fn a_loaded_model_predicts_scores_and_trains_exactly_as_the_original() {
    let optimizers: Vec<Arc<dyn Optimizer>> = vec![
        Arc::new(SGD::new(0.05).momentum(0.9).nesterov(true)),
        Arc::new(RMSprop::new(0.01).momentum(0.5).centered(true)),
        Arc::new(Adam::new(0.01).amsgrad(true)),
        Arc::new(Nadam::new(0.01)),
    ];
    let (x, y, data) = regression_data();
    for optimizer in optimizers {
        let name = optimizer.base().name().to_string();
        let model = chapter_model(optimizer);
        let trainer = model.trainer().unwrap();
        trainer.fit(&data, 2, None).unwrap();
        let p = path(&format!("chapter-{name}"));
        model.save(&p).unwrap();
        let loaded = load_model(&p, &objects()).unwrap();
        std::fs::remove_file(&p).unwrap();

        assert_eq!(bits(&loaded.call(&x, false).unwrap()), bits(&model.call(&x, false).unwrap()), "{name}");
        let loss = |m: &Model| m.loss().unwrap().call(&y, &m.call(&x, false).unwrap()).unwrap();
        assert_eq!(bits(&loss(&loaded)), bits(&loss(&model)), "{name}");
        assert_eq!(
            loaded.optimizer().unwrap().iterations().read().to_scalar::<i64>().unwrap(),
            model.optimizer().unwrap().iterations().read().to_scalar::<i64>().unwrap()
        );
        // Training on: the same losses, and every weight and statistic equal bit for bit.
        let again = trainer.fit(&data, 1, None).unwrap();
        let resumed = loaded.trainer().unwrap().fit(&data, 1, None).unwrap();
        assert_eq!(again.loss, resumed.loss, "{name}");
        assert_eq!(all_bits(&loaded), all_bits(&model), "{name}: weights after a further epoch");
    }
}

#[test]
fn a_custom_model_and_its_tracked_layers_round_trip() {
    let model = Residual::new(2);
    let x = Tensor::random_normal(&[6, 4], DType::F32, 1);
    let want = model.call(&x, false).unwrap();
    // Move the weights off their seeded initial values, so loading must restore them.
    for v in model.variables() {
        v.assign(&(v.read() * 1.5)).unwrap();
    }
    let want_moved = model.call(&x, false).unwrap();
    assert_ne!(bits(&want), bits(&want_moved));
    let p = path("residual");
    model.save(&p).unwrap();
    let loaded = load_model(&p, &objects()).unwrap();
    std::fs::remove_file(&p).unwrap();
    assert!(loaded.optimizer().is_none() && loaded.loss().is_none());
    assert_eq!(bits(&loaded.call(&x, false).unwrap()), bits(&want_moved));
    assert_eq!(loaded.variables().len(), model.variables().len());
    let (a, b) = (loaded.get_config().unwrap(), model.get_config().unwrap());
    assert_eq!((a.class_name, a.config.get::<usize>("output_dim").unwrap()), (b.class_name, 2));
}

#[test]
fn recurrent_layers_round_trip() {
    let model = Sequential::new()
        .add(GRU::new(6).return_sequences(true).seed(1))
        .add(LSTM::new(5).unit_forget_bias(false).recurrent_activation("tanh").seed(2))
        .add(Dense::new(1).seed(3));
    let x = Tensor::random_normal(&[3, 7, 4], DType::F32, 9);
    let want = model.call(&x, false).unwrap();
    let p = path("recurrent");
    let trainer = Model::new(Arc::new(model)).compile(Arc::new(MeanSquaredError), Arc::new(Adam::new(0.01)), vec![]);
    let y = Tensor::zeros(&[3, 1], DType::F32);
    trainer.train_step(&x, &y).unwrap();
    trainer.save(&p).unwrap();
    let loaded = load_model(&p, &CustomObjects::new()).unwrap();
    std::fs::remove_file(&p).unwrap();
    assert_ne!(bits(&want), bits(&trainer.call(&x, false).unwrap()), "the step moved the weights");
    assert_eq!(bits(&loaded.call(&x, false).unwrap()), bits(&trainer.call(&x, false).unwrap()));
    assert_eq!(
        loaded.train_step(&x, &y).unwrap().to_scalar::<f32>().unwrap(),
        trainer.train_step(&x, &y).unwrap().to_scalar::<f32>().unwrap()
    );
    assert_eq!(all_bits(&loaded), all_bits(&trainer));
}

#[test]
fn a_missing_custom_object_is_an_error_naming_it_and_the_known_ones() {
    let model = chapter_model(Arc::new(Adam::new(0.01)));
    model.call(&Tensor::ones(&[2, 5], DType::F32), false).unwrap();
    let p = path("missing");
    model.save(&p).unwrap();
    let e = load_model(&p, &CustomObjects::new()).unwrap_err().to_string();
    assert!(e.contains("unknown layer `MyDense`") && e.contains("Dense, Dropout"), "{e}");
    let partial = CustomObjects::new().layer("MyDense", MyDense::from_config);
    let e = load_model(&p, &partial).unwrap_err().to_string();
    assert!(e.contains("unknown activation `my_softplus`") && e.contains("relu"), "{e}");
    let no_loss = partial
        .activation("my_softplus", my_softplus)
        .regularizer("MyL1Regularizer", |c, _| Ok(MyL1Regularizer { factor: c.get("factor")? }));
    let e = load_model(&p, &no_loss).unwrap_err().to_string();
    assert!(e.contains("unknown loss `HuberLoss`") && e.contains("MeanSquaredError"), "{e}");
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn what_has_no_config_cannot_be_saved_and_the_error_says_why() {
    let p = path("unsavable");
    let x = Tensor::ones(&[2, 3], DType::F32);
    let unbuilt = Sequential::new().add(Dense::new(2));
    assert!(unbuilt.save(&p).unwrap_err().to_string().contains("has not been called yet"));
    let closure = Sequential::new().add(Dense::new(2).activation_fn(|z: &Tensor| z.abs()).with_name("abs_dense"));
    closure.call(&x, false).unwrap();
    let e = closure.save(&p).unwrap_err().to_string();
    assert!(e.contains("activation of layer `abs_dense`") && e.contains("activation_named"), "{e}");
    let regularized = Sequential::new().add(Dense::new(2).kernel_regularizer(|w: &Tensor| w.abs().sum_all()));
    regularized.call(&x, false).unwrap();
    assert!(regularized.save(&p).unwrap_err().to_string().contains("regularizer"));
    let lambda = Sequential::new().add(Lambda::new(|z: &Tensor| z * 2.0));
    lambda.call(&x, false).unwrap();
    assert!(lambda.save(&p).unwrap_err().to_string().contains("has no config"));
    assert!(!p.exists(), "a failed save writes nothing");
    // A named closure activation saves, and loads where the name is registered.
    let named = Sequential::new().add(Dense::new(2).activation_named("my_softplus", my_softplus).seed(1));
    let want = named.call(&x, false).unwrap();
    named.save(&p).unwrap();
    assert!(load_model(&p, &CustomObjects::new()).is_err());
    assert_eq!(bits(&load_model(&p, &objects()).unwrap().call(&x, false).unwrap()), bits(&want));
    std::fs::remove_file(&p).unwrap();
}

/// A deterministic byte stream for the mutations.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

#[test]
fn hostile_files_are_errors_never_panics() {
    let model = chapter_model(Arc::new(Adam::new(0.01)));
    let (x, _, data) = regression_data();
    model.trainer().unwrap().fit(&data, 1, None).unwrap();
    let p = path("hostile");
    model.save(&p).unwrap();
    let good = std::fs::read(&p).unwrap();
    let objects = objects();
    let load = |bytes: &[u8]| -> std::result::Result<kiln::Result<Model>, String> {
        std::fs::write(&p, bytes).unwrap();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load_model(&p, &objects)))
            .map_err(|_| format!("panicked on a {}-byte file", bytes.len()))
    };
    // Another format version is refused, never misread.
    let text = String::from_utf8_lossy(&good).into_owned();
    let at = text.find("\"version\":\"1\"").expect("the version in the header");
    let mut v2 = good.clone();
    v2[at + 11] = b'2';
    let e = load(&v2).unwrap().unwrap_err().to_string();
    assert!(e.contains("not a kiln.model version 1 file"), "{e}");
    // Truncations.
    for len in (0..good.len()).step_by(good.len() / 97 + 1) {
        assert!(load(&good[..len]).unwrap().is_err(), "a file truncated to {len} bytes loaded");
    }
    // Byte flips, mostly in the header (where the structure is), some in the data.
    let header_len = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut rng = Lcg(7);
    let mut refused = 0;
    for _ in 0..400 {
        let mut bad = good.clone();
        for _ in 0..1 + rng.next() % 3 {
            let i = if rng.next() % 4 == 0 { rng.next() % bad.len() } else { rng.next() % header_len };
            bad[i] = match rng.next() % 3 {
                0 => bad[i] ^ (1 << (rng.next() % 8)),
                1 => b"{}[]\",:0-9e"[rng.next() % 11],
                _ => rng.next() as u8,
            };
        }
        if load(&bad).unwrap().is_err() {
            refused += 1;
        }
    }
    assert!(refused > 100, "only {refused} of 400 corrupted files were refused");
    // The good file still loads.
    assert_eq!(bits(&load(&good).unwrap().unwrap().call(&x, false).unwrap()), bits(&model.call(&x, false).unwrap()));
    std::fs::remove_file(&p).unwrap();
}

/// A model saved here loads in a new process (this test binary run again) that has only the
/// file and the custom objects' constructors.
#[test]
fn a_saved_model_loads_in_a_fresh_process() {
    let x = Tensor::random_normal(&[4, 5], DType::F32, 21);
    if let Some(p) = std::env::var_os("KILN_TEST_MODEL") {
        let loaded = load_model(&p, &objects()).unwrap();
        let want: Vec<u32> = std::env::var("KILN_TEST_WANT").unwrap().split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(bits(&loaded.call(&x, false).unwrap()), want);
        return;
    }
    let model = chapter_model(Arc::new(Adam::new(0.01)));
    let (_, _, data) = regression_data();
    model.trainer().unwrap().fit(&data, 1, None).unwrap();
    let p = path("fresh-process");
    model.save(&p).unwrap();
    let want: Vec<String> = bits(&model.call(&x, false).unwrap()).iter().map(u32::to_string).collect();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_saved_model_loads_in_a_fresh_process", "--test-threads=1"])
        .env("KILN_TEST_MODEL", &p)
        .env("KILN_TEST_WANT", want.join(","))
        .status()
        .unwrap();
    std::fs::remove_file(&p).unwrap();
    assert!(status.success(), "the child process failed");
}
