//! `CustomObjects`: the names a saved model's configs are rebuilt from (Keras's
//! `custom_objects`). A user type registers by name with one line; the built-in layers,
//! losses, metrics, optimizers, activations, initializers, regularizers and constraints are
//! listed in the tables below, each row pointing at the type's own `from_config`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Config, ObjectConfig};
use crate::losses::{self, Loss};
use crate::metrics::{self, LabelMetric};
use crate::nn::constraints::{self, Constraint};
use crate::nn::initializers::{self, Initializer};
use crate::nn::regularizers::{self, Regularizer};
use crate::nn::{self, activations, Activation, Layer};
use crate::optim::{self, Optimizer};
use crate::{Error, Result, Tensor};

type Make<T> = Arc<dyn Fn(&Config, &CustomObjects) -> Result<T> + Send + Sync>;
type Builtin<T> = (&'static str, fn(&Config, &CustomObjects) -> Result<T>);

/// Name → constructor-from-config for the objects of a saved model that are not built in.
/// A name registered here wins over a built-in of the same name.
///
/// ```
/// use kiln::losses::Huber;
/// use kiln::models::CustomObjects;
/// let objects = CustomObjects::new()
///     .loss("HuberLoss", |c, _| Ok(Huber::new(c.get("threshold")?)))
///     .activation("my_softplus", |z: &kiln::Tensor| (z.exp() + 1.0).log());
/// assert!(objects.names("loss").contains(&"HuberLoss".to_string()));
/// ```
#[derive(Clone, Default)]
pub struct CustomObjects {
    layers: BTreeMap<String, Make<Arc<dyn Layer>>>,
    losses: BTreeMap<String, Make<Arc<dyn Loss>>>,
    metrics: BTreeMap<String, Make<Arc<dyn LabelMetric>>>,
    optimizers: BTreeMap<String, Make<Arc<dyn Optimizer>>>,
    initializers: BTreeMap<String, Make<Arc<dyn Initializer>>>,
    regularizers: BTreeMap<String, Make<Arc<dyn Regularizer>>>,
    constraints: BTreeMap<String, Make<Arc<dyn Constraint>>>,
    activations: BTreeMap<String, Activation>,
}

/// Registers `$make` (config, objects → a concrete value) under `name` in `$map`.
macro_rules! register {
    ($self:ident, $map:ident, $name:expr, $make:expr, $dyn:ty) => {{
        let make = $make;
        $self.$map.insert(
            $name.to_string(),
            Arc::new(move |c: &Config, o: &CustomObjects| Ok(Arc::new(make(c, o)?) as $dyn)),
        );
        $self
    }};
}

impl CustomObjects {
    /// No custom objects: only built-ins load.
    pub fn new() -> CustomObjects {
        CustomObjects::default()
    }

    /// A layer type: `make` gets its config (and these objects, to rebuild what it holds).
    pub fn layer<L: Layer + 'static>(
        mut self,
        name: &str,
        make: impl Fn(&Config, &CustomObjects) -> Result<L> + Send + Sync + 'static,
    ) -> CustomObjects {
        register!(self, layers, name, make, Arc<dyn Layer>)
    }

    pub fn loss<L: Loss + 'static>(
        mut self,
        name: &str,
        make: impl Fn(&Config, &CustomObjects) -> Result<L> + Send + Sync + 'static,
    ) -> CustomObjects {
        register!(self, losses, name, make, Arc<dyn Loss>)
    }

    pub fn metric<M: LabelMetric + 'static>(
        mut self,
        name: &str,
        make: impl Fn(&Config, &CustomObjects) -> Result<M> + Send + Sync + 'static,
    ) -> CustomObjects {
        register!(self, metrics, name, make, Arc<dyn LabelMetric>)
    }

    pub fn optimizer<O: Optimizer>(
        mut self,
        name: &str,
        make: impl Fn(&Config, &CustomObjects) -> Result<O> + Send + Sync + 'static,
    ) -> CustomObjects {
        register!(self, optimizers, name, make, Arc<dyn Optimizer>)
    }

    pub fn initializer<I: Initializer + 'static>(
        mut self,
        name: &str,
        make: impl Fn(&Config, &CustomObjects) -> Result<I> + Send + Sync + 'static,
    ) -> CustomObjects {
        register!(self, initializers, name, make, Arc<dyn Initializer>)
    }

    pub fn regularizer<R: Regularizer + 'static>(
        mut self,
        name: &str,
        make: impl Fn(&Config, &CustomObjects) -> Result<R> + Send + Sync + 'static,
    ) -> CustomObjects {
        register!(self, regularizers, name, make, Arc<dyn Regularizer>)
    }

    pub fn constraint<C: Constraint + 'static>(
        mut self,
        name: &str,
        make: impl Fn(&Config, &CustomObjects) -> Result<C> + Send + Sync + 'static,
    ) -> CustomObjects {
        register!(self, constraints, name, make, Arc<dyn Constraint>)
    }

    /// An activation function, saved by name (see `Dense::activation_named`).
    pub fn activation(mut self, name: &str, f: impl Fn(&Tensor) -> Tensor + Send + Sync + 'static) -> CustomObjects {
        self.activations.insert(name.to_string(), Arc::new(f));
        self
    }

    /// Every name that rebuilds an object of `kind` (`"layer"`, `"loss"`, `"metric"`,
    /// `"optimizer"`, `"initializer"`, `"regularizer"`, `"constraint"`, `"activation"`):
    /// the registered ones, then the built-ins.
    pub fn names(&self, kind: &str) -> Vec<String> {
        fn both<T, U>(custom: &BTreeMap<String, T>, builtin: &[(&str, U)]) -> Vec<String> {
            custom.keys().cloned().chain(builtin.iter().map(|(n, _)| n.to_string())).collect()
        }
        match kind {
            "layer" => both(&self.layers, LAYERS),
            "loss" => both(&self.losses, LOSSES),
            "metric" => both(&self.metrics, METRICS),
            "optimizer" => both(&self.optimizers, OPTIMIZERS),
            "initializer" => both(&self.initializers, INITIALIZERS),
            "regularizer" => both(&self.regularizers, REGULARIZERS),
            "constraint" => both(&self.constraints, CONSTRAINTS),
            "activation" => self.activations.keys().cloned().chain(activations::names().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }

    fn unknown(&self, kind: &str, name: &str) -> Error {
        Error::invalid(
            "load_model",
            format!(
                "unknown {kind} `{name}`: register it in the CustomObjects passed to load_model; known: {}",
                self.names(kind).join(", ")
            ),
        )
    }

    fn make<T>(
        &self,
        kind: &str,
        custom: &BTreeMap<String, Make<T>>,
        builtin: &[Builtin<T>],
        c: &ObjectConfig,
    ) -> Result<T> {
        let context = |e: Error| Error::invalid("load_model", format!("{kind} `{}`: {e}", c.class_name));
        if let Some(make) = custom.get(&c.class_name) {
            return make(&c.config, self).map_err(context);
        }
        match builtin.iter().find(|(n, _)| *n == c.class_name) {
            Some((_, make)) => make(&c.config, self).map_err(context),
            None => Err(self.unknown(kind, &c.class_name)),
        }
    }

    /// The layer `c` describes (custom or built-in).
    pub fn make_layer(&self, c: &ObjectConfig) -> Result<Arc<dyn Layer>> {
        self.make("layer", &self.layers, LAYERS, c)
    }

    pub fn make_loss(&self, c: &ObjectConfig) -> Result<Arc<dyn Loss>> {
        self.make("loss", &self.losses, LOSSES, c)
    }

    pub fn make_metric(&self, c: &ObjectConfig) -> Result<Arc<dyn LabelMetric>> {
        self.make("metric", &self.metrics, METRICS, c)
    }

    pub fn make_optimizer(&self, c: &ObjectConfig) -> Result<Arc<dyn Optimizer>> {
        self.make("optimizer", &self.optimizers, OPTIMIZERS, c)
    }

    pub fn make_initializer(&self, c: &ObjectConfig) -> Result<Arc<dyn Initializer>> {
        self.make("initializer", &self.initializers, INITIALIZERS, c)
    }

    pub fn make_regularizer(&self, c: &ObjectConfig) -> Result<Arc<dyn Regularizer>> {
        self.make("regularizer", &self.regularizers, REGULARIZERS, c)
    }

    pub fn make_constraint(&self, c: &ObjectConfig) -> Result<Arc<dyn Constraint>> {
        self.make("constraint", &self.constraints, CONSTRAINTS, c)
    }

    /// The activation called `name` (registered, else built-in).
    pub fn make_activation(&self, name: &str) -> Result<Activation> {
        match self.activations.get(name) {
            Some(f) => Ok(f.clone()),
            None => activations::by_name(name).ok_or_else(|| self.unknown("activation", name)),
        }
    }
}

const LAYERS: &[Builtin<Arc<dyn Layer>>] = &[
    ("Dense", |c, o| Ok(Arc::new(nn::Dense::from_config(c, o)?))),
    ("Dropout", |c, _| Ok(Arc::new(nn::Dropout::from_config(c)?))),
    ("Flatten", |_, _| Ok(Arc::new(nn::Flatten))),
    ("BatchNormalization", |c, _| Ok(Arc::new(nn::BatchNormalization::from_config(c)?))),
    ("GaussianNoise", |c, _| Ok(Arc::new(nn::GaussianNoise::from_config(c)?))),
    ("SimpleRNN", |c, o| Ok(Arc::new(nn::SimpleRNN::from_config(c, o)?))),
    ("GRU", |c, o| Ok(Arc::new(nn::GRU::from_config(c, o)?))),
    ("LSTM", |c, o| Ok(Arc::new(nn::LSTM::from_config(c, o)?))),
    ("Sequential", |c, o| Ok(Arc::new(nn::Sequential::from_config(c, o)?))),
];

const LOSSES: &[Builtin<Arc<dyn Loss>>] = &[
    ("MeanSquaredError", |c, _| losses::with_saved_reduction(losses::MeanSquaredError, c)),
    ("MeanAbsoluteError", |c, _| losses::with_saved_reduction(losses::MeanAbsoluteError, c)),
    ("Huber", |c, _| losses::with_saved_reduction(losses::Huber::new(c.get_or("delta", 1.0)?), c)),
    ("BinaryCrossentropy", |c, _| {
        losses::with_saved_reduction(losses::BinaryCrossentropy::new(c.get_or("from_logits", false)?), c)
    }),
    ("CategoricalCrossentropy", |c, _| {
        losses::with_saved_reduction(losses::CategoricalCrossentropy::new(c.get_or("from_logits", false)?), c)
    }),
    ("SparseCategoricalCrossentropy", |c, _| {
        losses::with_saved_reduction(losses::SparseCategoricalCrossentropy::new(c.get_or("from_logits", false)?), c)
    }),
];

const METRICS: &[Builtin<Arc<dyn LabelMetric>>] = &[
    ("Accuracy", |_, _| Ok(Arc::new(metrics::Accuracy::new()))),
    ("BinaryAccuracy", |_, _| Ok(Arc::new(metrics::BinaryAccuracy::new()))),
    ("CategoricalAccuracy", |_, _| Ok(Arc::new(metrics::CategoricalAccuracy::new()))),
    ("SparseCategoricalAccuracy", |_, _| Ok(Arc::new(metrics::SparseCategoricalAccuracy::new()))),
    ("MeanAbsoluteError", |_, _| Ok(Arc::new(metrics::MeanAbsoluteError::new()))),
    ("MeanSquaredError", |_, _| Ok(Arc::new(metrics::MeanSquaredError::new()))),
    ("RootMeanSquaredError", |_, _| Ok(Arc::new(metrics::RootMeanSquaredError::new()))),
    ("Precision", |c, _| Ok(Arc::new(metrics::Precision::with_threshold(c.get_or("threshold", 0.5)?)))),
    ("Recall", |c, _| Ok(Arc::new(metrics::Recall::with_threshold(c.get_or("threshold", 0.5)?)))),
    ("AUC", |c, _| Ok(Arc::new(metrics::AUC::from_config(c)?))),
    ("F1Score", |c, _| Ok(Arc::new(metrics::F1Score::from_config(c)?))),
];

const OPTIMIZERS: &[Builtin<Arc<dyn Optimizer>>] = &[
    ("SGD", |c, _| Ok(Arc::new(optim::SGD::from_config(c)?))),
    ("RMSprop", |c, _| Ok(Arc::new(optim::RMSprop::from_config(c)?))),
    ("Adam", |c, _| Ok(Arc::new(optim::Adam::from_config(c)?))),
    ("Nadam", |c, _| Ok(Arc::new(optim::Nadam::from_config(c)?))),
];

const INITIALIZERS: &[Builtin<Arc<dyn Initializer>>] = &[
    ("Zeros", |_, _| Ok(Arc::new(initializers::Zeros))),
    ("Ones", |_, _| Ok(Arc::new(initializers::Ones))),
    ("GlorotUniform", |c, _| Ok(Arc::new(initializers::GlorotUniform::new(c.get("seed")?)))),
    ("GlorotNormal", |c, _| Ok(Arc::new(initializers::GlorotNormal::new(c.get("seed")?)))),
    ("HeUniform", |c, _| Ok(Arc::new(initializers::HeUniform::new(c.get("seed")?)))),
    ("HeNormal", |c, _| Ok(Arc::new(initializers::HeNormal::new(c.get("seed")?)))),
    ("LecunUniform", |c, _| Ok(Arc::new(initializers::LecunUniform::new(c.get("seed")?)))),
    ("LecunNormal", |c, _| Ok(Arc::new(initializers::LecunNormal::new(c.get("seed")?)))),
    ("Orthogonal", |c, _| {
        Ok(Arc::new(initializers::Orthogonal { gain: c.get_or("gain", 1.0)?, seed: c.get("seed")? }))
    }),
];

const REGULARIZERS: &[Builtin<Arc<dyn Regularizer>>] = &[
    ("L1L2", |c, _| Ok(Arc::new(regularizers::L1L2::from_config(c)?))),
    ("L1", |c, _| Ok(Arc::new(regularizers::l1(c.get("l1")?)))),
    ("L2", |c, _| Ok(Arc::new(regularizers::l2(c.get("l2")?)))),
];

const CONSTRAINTS: &[Builtin<Arc<dyn Constraint>>] = &[
    ("NonNeg", |_, _| Ok(Arc::new(constraints::NonNeg))),
    ("MaxNorm", |c, _| Ok(Arc::new(constraints::MaxNorm::from_config(c)?))),
];
