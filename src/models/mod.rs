//! Whole-model saving (Keras's `model.save` / `keras.models.load_model`): the architecture,
//! every weight, and — for a compiled [`Model`] or a [`crate::training::Trainer`] — the loss,
//! the metrics and the optimizer with its state, in one file.
//!
//! The architecture is each layer's [`crate::nn::Layer::get_config`]: a class name and a
//! [`Config`]. Loading maps each class name to a constructor: the [`CustomObjects`] passed to
//! [`load_model`] first, then the built-ins. The rebuilt model is called once on zeros of the
//! types it was first called with (so it makes its weights), then every weight is set from
//! the file, in order, checked by dtype and shape.
//!
//! ```
//! use std::sync::Arc;
//! use kiln::losses::MeanSquaredError;
//! use kiln::models::{load_model, CustomObjects, Model};
//! use kiln::nn::{Dense, Layer, Sequential};
//! use kiln::optim::Adam;
//! use kiln::{DType, Tensor};
//! let net = Sequential::new().add(Dense::new(3).activation("tanh").seed(1)).add(Dense::new(1).seed(2));
//! let model = Model::new(Arc::new(net)).compile(Arc::new(MeanSquaredError), Arc::new(Adam::new(0.01)), vec![]);
//! let x = Tensor::random_normal(&[8, 2], DType::F32, 3);
//! let y = x.sum(&[1], true);
//! model.train_step(&x, &y).unwrap();                     // Adam's slots now hold state
//! let path = std::env::temp_dir().join(format!("kiln-models-doc-{}.kiln", std::process::id()));
//! model.save(&path).unwrap();
//! let loaded = load_model(&path, &CustomObjects::new()).unwrap();
//! assert_eq!(loaded.call(&x, false).unwrap().to_vec::<f32>().unwrap(),
//!            model.call(&x, false).unwrap().to_vec::<f32>().unwrap());
//! // One more step on each: the same weights, bit for bit.
//! assert_eq!(loaded.train_step(&x, &y).unwrap().to_scalar::<f32>().unwrap(),
//!            model.train_step(&x, &y).unwrap().to_scalar::<f32>().unwrap());
//! std::fs::remove_file(&path).unwrap();
//! ```

mod config;
mod file;
mod registry;

use std::path::Path;
use std::sync::Arc;

pub(crate) use config::no_config;
pub use config::{Config, ObjectConfig};
pub use file::{FORMAT, VERSION};
pub use registry::CustomObjects;

use crate::losses::Loss;
use crate::metrics::LabelMetric;
use crate::nn::{Layer, LayerState};
use crate::optim::Optimizer;
use crate::{Error, GradientTape, Result, Tensor, Variable};
use kiln_ir::TensorType;

/// A layer with what Keras's `compile` adds — a loss, an optimizer and metrics — saved and
/// loaded as one. Calling it calls the layer.
pub struct Model {
    layer: Arc<dyn Layer>,
    loss: Option<Arc<dyn Loss>>,
    optimizer: Option<Arc<dyn Optimizer>>,
    metrics: Vec<Arc<dyn LabelMetric>>,
}

impl Model {
    /// An uncompiled model: saving it saves the architecture and weights only.
    pub fn new(layer: Arc<dyn Layer>) -> Model {
        Model { layer, loss: None, optimizer: None, metrics: Vec::new() }
    }

    /// Keras's `compile`: the loss, optimizer and metrics saved with the model.
    pub fn compile(
        self,
        loss: Arc<dyn Loss>,
        optimizer: Arc<dyn Optimizer>,
        metrics: Vec<Arc<dyn LabelMetric>>,
    ) -> Model {
        Model { loss: Some(loss), optimizer: Some(optimizer), metrics, ..self }
    }

    pub fn layer(&self) -> &Arc<dyn Layer> {
        &self.layer
    }

    pub fn loss(&self) -> Option<&Arc<dyn Loss>> {
        self.loss.as_ref()
    }

    pub fn optimizer(&self) -> Option<&Arc<dyn Optimizer>> {
        self.optimizer.as_ref()
    }

    pub fn metrics(&self) -> &[Arc<dyn LabelMetric>] {
        &self.metrics
    }

    /// A [`crate::training::Trainer`] over the compiled parts (an `Err` if uncompiled).
    pub fn trainer(&self) -> Result<crate::training::Trainer> {
        let (loss, optimizer) = self.compiled()?;
        Ok(crate::training::Trainer::new(self.layer.clone(), loss, optimizer, self.metrics.clone()))
    }

    /// One eager training step (forward in training mode, the loss plus the layers' losses,
    /// gradients, update, constraints); returns the loss. Wrap it in `kiln::function` to
    /// compile it, or use [`Model::trainer`].
    pub fn train_step(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let (loss, optimizer) = self.compiled()?;
        let tape = GradientTape::new();
        let pred = self.layer.call(x, true)?;
        let l = loss.call(y, &pred)?;
        let l = l.try_add(&crate::nn::total_loss(self.layer.as_ref(), l.dtype())?)?;
        optimizer.minimize(&l, &self.layer.trainable_variables(), &tape)?;
        self.layer.apply_constraints()?;
        Ok(l)
    }

    fn compiled(&self) -> Result<(Arc<dyn Loss>, Arc<dyn Optimizer>)> {
        match (&self.loss, &self.optimizer) {
            (Some(l), Some(o)) => Ok((l.clone(), o.clone())),
            _ => {
                Err(Error::invalid("Model", format!("model `{}` is not compiled (no loss or optimizer)", self.name())))
            }
        }
    }

    /// Writes the model, compiled parts and optimizer state included, to `path` (one file,
    /// replaced atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_parts(self.layer.as_ref(), self.loss.as_deref(), self.optimizer.as_deref(), &self.metrics, path.as_ref())
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("layer", &self.layer.name())
            .field("variables", &self.layer.variables().len())
            .field("optimizer", &self.optimizer.as_ref().map(|o| o.base().name().to_string()))
            .field("metrics", &self.metrics.iter().map(|m| m.name()).collect::<Vec<_>>())
            .finish()
    }
}

impl Layer for Model {
    fn call(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        self.layer.call(x, training)
    }
    fn call_many(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        self.layer.call_many(inputs, training)
    }
    fn state(&self) -> Option<&LayerState> {
        self.layer.state()
    }
    fn variables(&self) -> Vec<Variable> {
        self.layer.variables()
    }
    fn is_trainable(&self) -> bool {
        self.layer.is_trainable()
    }
    fn set_trainable(&self, trainable: bool) {
        self.layer.set_trainable(trainable)
    }
    fn trainable_variables(&self) -> Vec<Variable> {
        self.layer.trainable_variables()
    }
    fn non_trainable_variables(&self) -> Vec<Variable> {
        self.layer.non_trainable_variables()
    }
    fn losses(&self) -> Vec<Tensor> {
        self.layer.losses()
    }
    fn apply_constraints(&self) -> Result<()> {
        self.layer.apply_constraints()
    }
    fn name(&self) -> String {
        self.layer.name()
    }
    fn get_config(&self) -> Result<ObjectConfig> {
        self.layer.get_config()
    }
    fn build_inputs(&self) -> Option<Vec<TensorType>> {
        self.layer.build_inputs()
    }
}

/// Saves a layer with optional compiled parts (what [`Model::save`], [`Layer::save`] and
/// `Trainer::save` share).
pub(crate) fn save_parts(
    layer: &dyn Layer,
    loss: Option<&dyn Loss>,
    optimizer: Option<&dyn Optimizer>,
    metrics: &[Arc<dyn LabelMetric>],
    path: &Path,
) -> Result<()> {
    file::write(path, &file::Snapshot::capture(layer, loss, optimizer, metrics)?)
}

/// Keras's `load_model(path, custom_objects=...)`: rebuilds the model saved at `path`,
/// its weights, and its loss, metrics and optimizer (with its state) when it was compiled.
/// A class name neither registered in `objects` nor built in is an `Err` naming it and the
/// names that are known; so is a file that is not a kiln model of this format version, or
/// whose weights do not fit the rebuilt model.
pub fn load_model(path: impl AsRef<Path>, objects: &CustomObjects) -> Result<Model> {
    file::read(path.as_ref(), objects)
}
