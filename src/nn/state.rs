//! `LayerState`: what Keras's `Layer` base class keeps for every layer — a unique name,
//! trainability, the weights it made (with their regularizers and constraints), the layers it
//! holds, whether it is built, and the losses its last call added — so a layer that embeds one
//! gets `variables`, `losses`, `apply_constraints` and trainability without writing them.
//!
//! Tracking is by registration, not by reflection: a layer registers each weight as it makes
//! it (`add_weight`, in `build`) and each sublayer as it stores it (`track`). Rust has no
//! attribute walk like Python's `__setattr__`, and a derive macro would have to know which
//! fields are layers, weights or neither; registration needs neither and cannot miss a field
//! that holds a layer made through `track`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kiln_ir::DType;

use super::initializers::{GlorotUniform, Initializer};
use super::{unique_name, Constraint, Layer, Regularizer};
use crate::models::{Config, ObjectConfig};
use crate::{Result, Tensor, Variable};
use kiln_ir::TensorType;

/// One weight and the rules that come with it.
struct Weight {
    var: Variable,
    regularizer: Option<Arc<dyn Regularizer>>,
    constraint: Option<Arc<dyn Constraint>>,
}

/// How to make a weight with [`LayerState::add_weight`] (Keras's `add_weight` arguments).
///
/// ```
/// use kiln::nn::{regularizers, WeightSpec};
/// let spec = WeightSpec::new("kernel", &[3, 2]).regularizer(regularizers::l2(0.01)).trainable(true);
/// assert_eq!(spec.shape, vec![3, 2]);
/// ```
pub struct WeightSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub initializer: Arc<dyn Initializer>,
    pub regularizer: Option<Arc<dyn Regularizer>>,
    pub constraint: Option<Arc<dyn Constraint>>,
    pub trainable: bool,
}

impl WeightSpec {
    /// An `f32` trainable weight, Glorot-uniform initialized (seed from
    /// [`crate::random::next_seed`]).
    pub fn new(name: &str, shape: &[usize]) -> WeightSpec {
        WeightSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            dtype: DType::F32,
            initializer: Arc::new(GlorotUniform::new(crate::random::next_seed())),
            regularizer: None,
            constraint: None,
            trainable: true,
        }
    }

    pub fn dtype(self, dtype: DType) -> WeightSpec {
        WeightSpec { dtype, ..self }
    }

    pub fn initializer(self, init: impl Initializer + 'static) -> WeightSpec {
        WeightSpec { initializer: Arc::new(init), ..self }
    }

    pub fn regularizer(self, r: impl Regularizer + 'static) -> WeightSpec {
        WeightSpec { regularizer: Some(Arc::new(r)), ..self }
    }

    pub fn constraint(self, c: impl Constraint + 'static) -> WeightSpec {
        WeightSpec { constraint: Some(Arc::new(c)), ..self }
    }

    pub fn trainable(self, trainable: bool) -> WeightSpec {
        WeightSpec { trainable, ..self }
    }
}

/// The state every layer shares (see the module docs). Embed one, return it from
/// [`Layer::state`], make weights in [`Layer::build`] with [`LayerState::add_weight`], hold
/// sublayers made with [`LayerState::track`], and implement [`Layer::forward`]; the rest of
/// [`Layer`] comes from here.
///
/// ```
/// use std::sync::OnceLock;
/// use kiln::nn::{Dense, Layer, LayerState, WeightSpec, regularizers};
/// use kiln::{DType, Result, Tensor, Variable};
/// /// The chapter's `MyDense`: no input size at construction; `build` makes the weights.
/// struct MyDense { state: LayerState, units: usize, kernel: OnceLock<Variable> }
/// impl Layer for MyDense {
///     fn state(&self) -> Option<&LayerState> { Some(&self.state) }
///     fn build(&self, shapes: &[&[usize]]) -> Result<()> {
///         let spec = WeightSpec::new("kernel", &[shapes[0][1], self.units]).regularizer(regularizers::l2(0.1));
///         let _ = self.kernel.set(self.state.add_weight(spec)?);
///         Ok(())
///     }
///     fn forward(&self, x: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
///         Ok(vec![x[0].try_matmul(&self.kernel.get().unwrap().read())?])
///     }
/// }
/// let layer = MyDense { state: LayerState::new("my_dense"), units: 2, kernel: OnceLock::new() };
/// let y = layer.call(&Tensor::ones(&[4, 3], DType::F32), false).unwrap();
/// assert_eq!(y.shape(), &[4, 2]);
/// assert_eq!(layer.variables().len(), 1);
/// assert_eq!(layer.losses().len(), 1); // the L2 penalty, without a `losses` method
/// ```
pub struct LayerState {
    name: String,
    trainable: AtomicBool,
    built: Mutex<bool>,
    inputs: Mutex<Option<Vec<TensorType>>>,
    weights: Mutex<Vec<Weight>>,
    layers: Mutex<Vec<Arc<dyn Layer>>>,
    added: Mutex<Vec<Tensor>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LayerState {
    /// State for a layer named from `base` ([`unique_name`]: `base`, `base_1`, …).
    pub fn new(base: &str) -> LayerState {
        LayerState::named(unique_name(base))
    }

    /// State for a layer with exactly this name.
    pub fn named(name: String) -> LayerState {
        LayerState {
            name,
            trainable: AtomicBool::new(true),
            built: Mutex::new(false),
            inputs: Mutex::new(None),
            weights: Mutex::new(Vec::new()),
            layers: Mutex::new(Vec::new()),
            added: Mutex::new(Vec::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The start of a layer's config (Keras's base `get_config`): `class_name`, the layer's
    /// name and trainability. Add the layer's own settings with [`ObjectConfig::with`].
    ///
    /// ```
    /// let state = kiln::nn::LayerState::new("my_layer");
    /// let c = state.config("MyLayer").with("units", 3);
    /// let back = kiln::nn::LayerState::from_config(&c.config).unwrap();
    /// assert_eq!(back.name(), state.name());
    /// ```
    pub fn config(&self, class_name: &str) -> ObjectConfig {
        ObjectConfig::new(class_name).with("name", &self.name).with("trainable", self.is_trainable())
    }

    /// The state of a config [`LayerState::config`] began: the same name and trainability.
    pub fn from_config(c: &Config) -> Result<LayerState> {
        let state = LayerState::named(c.get("name")?);
        state.set_trainable(c.get_or("trainable", true)?);
        Ok(state)
    }

    /// Makes a weight Variable named `<layer>/<spec.name>` (outside any trace, so `build` may
    /// run from inside a traced step) and registers it with its regularizer and constraint.
    pub fn add_weight(&self, spec: WeightSpec) -> Result<Variable> {
        let var = crate::init_scope(|| -> Result<Variable> {
            let value = spec.initializer.init(&spec.shape, spec.dtype)?;
            Variable::try_with_options(value, Some(&format!("{}/{}", self.name, spec.name)), spec.trainable)
        })?;
        lock(&self.weights).push(Weight {
            var: var.clone(),
            regularizer: spec.regularizer,
            constraint: spec.constraint,
        });
        Ok(var)
    }

    /// Registers a Variable made elsewhere (a random generator's counter, say) as part of
    /// this layer's state, without a regularizer or constraint.
    pub fn track_variable(&self, var: Variable) {
        lock(&self.weights).push(Weight { var, regularizer: None, constraint: None });
    }

    /// Registers `layer` as a part of this one (its Variables, losses, constraints and
    /// trainability follow this layer's) and hands it back to be stored.
    pub fn track<L: Layer + 'static>(&self, layer: L) -> Arc<L> {
        let layer = Arc::new(layer);
        lock(&self.layers).push(layer.clone());
        layer
    }

    /// Adds a loss computed during this call (Keras's `add_loss`, e.g. a reconstruction
    /// loss from activations). A layer's added losses are replaced at its next call, and a
    /// loss added inside a traced function is returned by [`Layer::losses`] only inside that
    /// trace, never afterwards as a stale symbolic tensor.
    pub fn add_loss(&self, loss: Tensor) {
        lock(&self.added).push(loss);
    }

    /// Runs `build` once, the first time (later calls do nothing; a failed build runs again),
    /// and remembers the types of the inputs it was built for.
    pub(crate) fn build_once(&self, inputs: &[Tensor], build: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut built = lock(&self.built);
        if !*built {
            build()?;
            *built = true;
            *lock(&self.inputs) = Some(inputs.iter().map(Tensor::tensor_type).collect());
        }
        Ok(())
    }

    /// The types of the inputs the layer was built for (`None` before its first call).
    pub fn build_inputs(&self) -> Option<Vec<TensorType>> {
        lock(&self.inputs).clone()
    }

    /// Whether `build` has run.
    pub fn is_built(&self) -> bool {
        *lock(&self.built)
    }

    pub(crate) fn clear_added(&self) {
        lock(&self.added).clear();
    }

    fn sublayers(&self) -> Vec<Arc<dyn Layer>> {
        lock(&self.layers).clone()
    }

    pub(crate) fn variables(&self) -> Vec<Variable> {
        let mut out: Vec<Variable> = lock(&self.weights).iter().map(|w| w.var.clone()).collect();
        for l in self.sublayers() {
            out.extend(l.variables());
        }
        super::unique_variables(out)
    }

    pub(crate) fn losses(&self) -> Vec<Tensor> {
        let mut out: Vec<Tensor> =
            lock(&self.weights).iter().filter_map(|w| w.regularizer.as_ref().map(|r| r.call(&w.var.read()))).collect();
        out.extend(lock(&self.added).iter().filter(|t| crate::context::trace::is_live(t)).cloned());
        for l in self.sublayers() {
            out.extend(l.losses());
        }
        out
    }

    pub(crate) fn apply_constraints(&self) -> Result<()> {
        let constrained: Vec<(Variable, Arc<dyn Constraint>)> =
            lock(&self.weights).iter().filter_map(|w| w.constraint.clone().map(|c| (w.var.clone(), c))).collect();
        for (v, c) in constrained {
            v.assign(&c.call(&v.read()))?;
        }
        self.sublayers().iter().try_for_each(|l| l.apply_constraints())
    }

    pub(crate) fn is_trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    pub(crate) fn set_trainable(&self, trainable: bool) {
        self.trainable.store(trainable, Ordering::Relaxed);
        self.sublayers().iter().for_each(|l| l.set_trainable(trainable));
    }
}
