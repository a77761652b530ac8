//! Layers and models: the [`Layer`] trait, built-in layers, and the closures that customize
//! them (activations, initializers, regularizers, constraints). The recurrent layers
//! ([`SimpleRNN`], [`GRU`], [`LSTM`]) run their cell in one [`crate::scan`] over time.
//!
//! A layer creates its Variables lazily on its first call (when the input's last dimension
//! is known), in [`crate::init_scope`], so the first call may come from inside a traced
//! training step. Everything else a layer does is tensor ops, so a whole model traces into
//! one graph.
//!
//! ```
//! use kiln::nn::{Dense, Dropout, Layer, Sequential};
//! use kiln::{DType, Tensor};
//! let model = Sequential::new()
//!     .add(Dense::new(8).activation("relu").seed(1))
//!     .add(Dropout::new(0.5).seed(2))
//!     .add(Dense::new(3).seed(3));
//! let x = Tensor::ones(&[4, 5], DType::F32);
//! let y = model.call(&x, false).unwrap();
//! assert_eq!(y.shape(), &[4, 3]);
//! assert_eq!(model.trainable_variables().len(), 4);
//! model.layers()[0].set_trainable(false);                // freeze the first Dense
//! assert_eq!(model.trainable_variables().len(), 2);
//! ```

pub mod activations;
mod batch_norm;
pub mod constraints;
mod dense;
mod dropout;
mod flatten;
pub mod initializers;
mod lambda;
mod noise;
mod recurrent;
pub mod regularizers;
mod sequential;
mod state;

use std::sync::Arc;

pub use activations::Activation;
pub use batch_norm::BatchNormalization;
pub use constraints::Constraint;
pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use initializers::Initializer;
pub use lambda::Lambda;
pub use noise::GaussianNoise;
pub use recurrent::{CellFns, GruCell, LstmCell, Recurrent, RecurrentCell, SimpleRNN, SimpleRnnCell, GRU, LSTM};
pub use regularizers::Regularizer;
pub use sequential::{unique_variables, Sequential};
pub use state::{LayerState, WeightSpec};

use crate::models::ObjectConfig;
use crate::{Result, Tensor, Variable};
use kiln_ir::TensorType;

/// A differentiable building block with state in Variables (Keras's `Layer`/`Model`).
///
/// Two ways to write one:
/// - **Keras's way**: embed a [`LayerState`], return it from [`Layer::state`], make weights
///   in [`Layer::build`] (called once, with the first inputs' shapes) and implement
///   [`Layer::forward`] over any number of inputs and outputs. Variables, regularization
///   losses, `add_loss` losses, constraints and trainability of the layer and of the
///   sublayers it [tracks](LayerState::track) come with no more code.
/// - **By hand**: implement [`Layer::call`] (one tensor in, one out) and whichever of
///   `variables`, `losses`, `apply_constraints`, the trainability pair and `name` apply, as
///   the built-in layers do.
pub trait Layer: Send + Sync {
    /// The forward pass on one input; `training` selects training behaviour (Dropout active,
    /// BatchNormalization using and updating batch statistics). By default,
    /// [`Layer::call_many`] on `[x]`, which must give one output.
    fn call(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let mut out = self.call_many(std::slice::from_ref(x), training)?;
        if out.len() != 1 {
            let msg = format!("layer `{}` returns {} outputs; use call_many", self.name(), out.len());
            return Err(crate::Error::invalid("call", msg));
        }
        Ok(out.remove(0))
    }

    /// Keras's `__call__` on several inputs: builds the layer on its first call (with the
    /// inputs' shapes), clears the losses its last call added, then runs
    /// [`Layer::forward`].
    fn call_many(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        if let Some(state) = self.state() {
            let shapes: Vec<&[usize]> = inputs.iter().map(Tensor::shape).collect();
            state.build_once(inputs, || self.build(&shapes))?;
            state.clear_added();
        }
        self.forward(inputs, training)
    }

    /// The computation (Keras's `call`), for layers written Keras's way.
    fn forward(&self, _inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        Err(crate::Error::invalid("call", format!("layer `{}` implements neither `forward` nor `call`", self.name())))
    }

    /// Creates the weights for inputs of these shapes (Keras's `build`); runs once, before
    /// the first [`Layer::forward`]. Weights made with [`LayerState::add_weight`] are created
    /// outside any trace, so the first call may come from a traced step.
    fn build(&self, _input_shapes: &[&[usize]]) -> Result<()> {
        Ok(())
    }

    /// The layer's tracked state, for layers written Keras's way (`None`: written by hand).
    fn state(&self) -> Option<&LayerState> {
        None
    }

    /// Every Variable, trainable or not (empty before the first call builds them).
    fn variables(&self) -> Vec<Variable> {
        self.state().map(LayerState::variables).unwrap_or_default()
    }

    /// Whether the layer's weights are trained (Keras's `trainable`).
    fn is_trainable(&self) -> bool {
        self.state().is_none_or(LayerState::is_trainable)
    }

    /// Freezes (`false`) or unfreezes the layer and, for a model, all its parts.
    fn set_trainable(&self, trainable: bool) {
        if let Some(state) = self.state() {
            state.set_trainable(trainable)
        }
    }

    /// The Variables an optimizer should update: none when frozen, else the trainable ones.
    fn trainable_variables(&self) -> Vec<Variable> {
        if !self.is_trainable() {
            return Vec::new();
        }
        self.variables().into_iter().filter(Variable::trainable).collect()
    }

    /// The Variables left alone by training (frozen weights, moving statistics).
    fn non_trainable_variables(&self) -> Vec<Variable> {
        let trainable = self.trainable_variables();
        self.variables().into_iter().filter(|v| !trainable.iter().any(|t| t.same_as(v))).collect()
    }

    /// Extra scalar losses from the layer's internals (weight regularization penalties,
    /// computed from the current weights, and what its last call added with
    /// [`LayerState::add_loss`]), to add to the training loss (Keras's `losses`).
    fn losses(&self) -> Vec<Tensor> {
        self.state().map(LayerState::losses).unwrap_or_default()
    }

    /// Projects constrained weights back onto their allowed set; call after each update.
    fn apply_constraints(&self) -> Result<()> {
        self.state().map_or(Ok(()), LayerState::apply_constraints)
    }

    /// A name for messages and checkpoints.
    fn name(&self) -> String {
        self.state().map_or_else(|| "layer".to_string(), |s| s.name().to_string())
    }

    /// Keras's `get_config`: the class name and settings that rebuild this layer, for
    /// whole-model saving ([`Layer::save`]); the rebuilt layer is made by the constructor
    /// registered under that class name ([`crate::models::CustomObjects`]). Built-in layers
    /// implement it; by default it is an `Err` naming the layer.
    fn get_config(&self) -> Result<ObjectConfig> {
        Err(crate::models::no_config("layer", &self.name(), "implement Layer::get_config and register a constructor"))
    }

    /// The types of the inputs the layer was first called with (its weights' shapes follow
    /// from them); `None` before the first call. Loading a saved model calls the rebuilt
    /// model once on zeros of these types to create its weights.
    fn build_inputs(&self) -> Option<Vec<TensorType>> {
        self.state().and_then(LayerState::build_inputs)
    }

    /// Keras's `model.save(path)`: the architecture (every layer's [`Layer::get_config`]) and
    /// every Variable's value, in one file written atomically; see [`crate::models`]. Read it
    /// back with [`crate::models::load_model`]. To save an optimizer's state, a loss and
    /// metrics with it, save a [`crate::models::Model`] or a [`crate::training::Trainer`].
    ///
    /// ```
    /// use kiln::models::{load_model, CustomObjects};
    /// use kiln::nn::{Dense, Layer, Sequential};
    /// use kiln::{DType, Tensor};
    /// let model = Sequential::new().add(Dense::new(2).activation("relu").seed(1));
    /// let x = Tensor::ones(&[3, 4], DType::F32);
    /// let y = model.call(&x, false).unwrap();
    /// let path = std::env::temp_dir().join(format!("kiln-layer-save-doc-{}.kiln", std::process::id()));
    /// model.save(&path).unwrap();
    /// let loaded = load_model(&path, &CustomObjects::new()).unwrap();
    /// assert_eq!(loaded.call(&x, false).unwrap().to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()>
    where
        Self: Sized,
    {
        crate::models::save_parts(self, None, None, &[], path.as_ref())
    }
}

impl<L: Layer + ?Sized> Layer for Arc<L> {
    fn call(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        (**self).call(x, training)
    }
    fn call_many(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        (**self).call_many(inputs, training)
    }
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        (**self).forward(inputs, training)
    }
    fn build(&self, input_shapes: &[&[usize]]) -> Result<()> {
        (**self).build(input_shapes)
    }
    fn state(&self) -> Option<&LayerState> {
        (**self).state()
    }
    fn variables(&self) -> Vec<Variable> {
        (**self).variables()
    }
    fn is_trainable(&self) -> bool {
        (**self).is_trainable()
    }
    fn set_trainable(&self, trainable: bool) {
        (**self).set_trainable(trainable)
    }
    fn trainable_variables(&self) -> Vec<Variable> {
        (**self).trainable_variables()
    }
    fn non_trainable_variables(&self) -> Vec<Variable> {
        (**self).non_trainable_variables()
    }
    fn losses(&self) -> Vec<Tensor> {
        (**self).losses()
    }
    fn apply_constraints(&self) -> Result<()> {
        (**self).apply_constraints()
    }
    fn name(&self) -> String {
        (**self).name()
    }
    fn get_config(&self) -> Result<ObjectConfig> {
        (**self).get_config()
    }
    fn build_inputs(&self) -> Option<Vec<TensorType>> {
        (**self).build_inputs()
    }
}

/// A fresh layer name from `base`, as Keras numbers them: `dense`, then `dense_1`,
/// `dense_2`, … (one count per base name, for the whole process). Built-in layers take their
/// default names from here, so two `Dense` in one model name their Variables `dense/kernel`
/// and `dense_1/kernel`.
///
/// ```
/// let a = kiln::nn::unique_name("my_block");
/// let b = kiln::nn::unique_name("my_block");
/// assert_eq!((a.as_str(), b.as_str()), ("my_block", "my_block_1"));
/// ```
pub fn unique_name(base: &str) -> String {
    static COUNTS: std::sync::Mutex<Option<std::collections::HashMap<String, usize>>> = std::sync::Mutex::new(None);
    let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let n = counts.get_or_insert_with(Default::default).entry(base.to_string()).or_insert(0);
    let name = if *n == 0 { base.to_string() } else { format!("{base}_{n}") };
    *n += 1;
    name
}

/// The sum of a layer's extra losses as a scalar of `dtype` (zero when there are none).
pub fn total_loss(layer: &dyn Layer, dtype: kiln_ir::DType) -> Result<Tensor> {
    let mut total = Tensor::zeros(&[], dtype);
    for l in layer.losses() {
        total = total.try_add(&l.try_cast(dtype)?)?;
    }
    Ok(total)
}
