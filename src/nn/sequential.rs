//! `Sequential`: layers applied one after another.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::Layer;
use crate::models::{Config, CustomObjects, ObjectConfig};
use crate::{Result, Tensor, Variable};
use kiln_ir::TensorType;

/// Keras's `Sequential` model: each layer's output feeds the next.
///
/// Its variables are its layers' (each listed once, in order). Freezing the model freezes
/// every layer; a single layer can be frozen through [`Sequential::layers`].
pub struct Sequential {
    layers: Vec<Arc<dyn Layer>>,
    trainable: AtomicBool,
    /// The type of the first input, for saving ([`Layer::build_inputs`]).
    input: OnceLock<TensorType>,
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential::new()
    }
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential { layers: Vec::new(), trainable: AtomicBool::new(true), input: OnceLock::new() }
    }

    /// The model of a config written by [`Layer::get_config`]: each layer rebuilt through
    /// `objects` (custom first, then built-in).
    pub fn from_config(c: &Config, objects: &CustomObjects) -> Result<Sequential> {
        let mut model = Sequential::new();
        for layer in c.get::<Vec<ObjectConfig>>("layers")? {
            model = model.add_shared(objects.make_layer(&layer)?);
        }
        model.trainable = AtomicBool::new(c.get_or("trainable", true)?);
        Ok(model)
    }

    /// Appends a layer (Keras's `model.add`; the name is kept on purpose).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Sequential {
        self.layers.push(Arc::new(layer));
        self
    }

    /// Appends a shared layer (the same weights may then appear in several models).
    pub fn add_shared(mut self, layer: Arc<dyn Layer>) -> Sequential {
        self.layers.push(layer);
        self
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Arc<dyn Layer>] {
        &self.layers
    }
}

/// The union of several layers' variables, each once, in order of first appearance.
pub fn unique_variables(vars: impl IntoIterator<Item = Variable>) -> Vec<Variable> {
    let mut out: Vec<Variable> = Vec::new();
    for v in vars {
        if !out.iter().any(|o| o.same_as(&v)) {
            out.push(v);
        }
    }
    out
}

impl Layer for Sequential {
    fn call(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let _ = self.input.get_or_init(|| x.tensor_type());
        let mut h = x.clone();
        for l in &self.layers {
            h = l.call(&h, training)?;
        }
        Ok(h)
    }

    fn variables(&self) -> Vec<Variable> {
        unique_variables(self.layers.iter().flat_map(|l| l.variables()))
    }

    fn trainable_variables(&self) -> Vec<Variable> {
        if !self.is_trainable() {
            return Vec::new();
        }
        unique_variables(self.layers.iter().flat_map(|l| l.trainable_variables()))
    }

    fn is_trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    fn set_trainable(&self, trainable: bool) {
        self.trainable.store(trainable, Ordering::Relaxed);
        for l in &self.layers {
            l.set_trainable(trainable);
        }
    }

    fn losses(&self) -> Vec<Tensor> {
        self.layers.iter().flat_map(|l| l.losses()).collect()
    }

    fn apply_constraints(&self) -> Result<()> {
        self.layers.iter().try_for_each(|l| l.apply_constraints())
    }

    fn name(&self) -> String {
        "sequential".to_string()
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        let layers = self.layers.iter().map(|l| l.get_config()).collect::<Result<Vec<_>>>()?;
        Ok(ObjectConfig::new("Sequential").with("trainable", self.is_trainable()).with("layers", layers))
    }

    fn build_inputs(&self) -> Option<Vec<TensorType>> {
        self.input.get().map(|t| vec![t.clone()])
    }
}
