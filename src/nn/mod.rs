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

use crate::{Result, Tensor, Variable};

/// A differentiable building block with state in Variables (Keras's `Layer`/`Model`).
///
/// Implement [`Layer::call`], [`Layer::variables`] and the trainability pair; the rest
/// have defaults. A model made of other layers is a `Layer` too: it forwards `variables`,
/// `losses`, `apply_constraints` and `set_trainable` to its parts.
pub trait Layer: Send + Sync {
    /// The forward pass; `training` selects training behaviour (Dropout active,
    /// BatchNormalization using and updating batch statistics).
    fn call(&self, x: &Tensor, training: bool) -> Result<Tensor>;

    /// Every Variable, trainable or not (empty before the first call builds them).
    fn variables(&self) -> Vec<Variable>;

    /// Whether the layer's weights are trained (Keras's `trainable`).
    fn is_trainable(&self) -> bool;

    /// Freezes (`false`) or unfreezes the layer and, for a model, all its parts.
    fn set_trainable(&self, trainable: bool);

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
    /// computed from the current weights), to add to the training loss (Keras `add_loss`).
    fn losses(&self) -> Vec<Tensor> {
        Vec::new()
    }

    /// Projects constrained weights back onto their allowed set; call after each update.
    fn apply_constraints(&self) -> Result<()> {
        Ok(())
    }

    /// A name for messages and checkpoints.
    fn name(&self) -> String {
        "layer".to_string()
    }
}

impl<L: Layer + ?Sized> Layer for Arc<L> {
    fn call(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        (**self).call(x, training)
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
