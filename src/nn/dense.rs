//! `Dense`: `activation(x @ kernel + bias)`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use kiln_ir::DType;

use super::initializers::{GlorotUniform, Initializer, Zeros};
use super::{activations, Activation, Constraint, Layer, Regularizer};
use crate::models::{no_config, Config, CustomObjects, ObjectConfig};
use crate::{Error, Result, Tensor, Variable};

/// A fully connected layer (Keras `Dense`): `activation(x @ kernel + bias)` over the last
/// axis. The kernel `[in, units]` and bias `[units]` are created on the first call.
///
/// ```
/// use kiln::nn::{Dense, Layer};
/// use kiln::{DType, Tensor};
/// let my_glorot_initializer = |shape: &[usize], dtype: DType| {
///     let stddev = (2.0 / (shape[0] + shape[1]) as f64).sqrt();
///     (Tensor::random_normal(shape, DType::F64, 7) * stddev).cast(dtype)
/// };
/// let layer = Dense::new(2).activation("softplus").kernel_initializer(my_glorot_initializer);
/// let y = layer.call(&Tensor::ones(&[3, 4], DType::F32), false).unwrap();
/// assert_eq!(y.shape(), &[3, 2]);
/// assert!(y.to_vec::<f32>().unwrap().iter().all(|&v| v > 0.0));
/// ```
pub struct Dense {
    units: usize,
    activation: Activation,
    /// The activation's name, for saving (`None` for an unnamed closure).
    activation_name: Option<String>,
    use_bias: bool,
    kernel_initializer: Arc<dyn Initializer>,
    bias_initializer: Arc<dyn Initializer>,
    kernel_regularizer: Option<Arc<dyn Regularizer>>,
    bias_regularizer: Option<Arc<dyn Regularizer>>,
    kernel_constraint: Option<Arc<dyn Constraint>>,
    bias_constraint: Option<Arc<dyn Constraint>>,
    dtype: DType,
    name: String,
    trainable: AtomicBool,
    built: OnceLock<(Variable, Option<Variable>)>,
}

impl Dense {
    /// `units` outputs, no activation, Glorot-uniform kernel (seed from
    /// [`crate::random::next_seed`]), zero bias, `f32`.
    pub fn new(units: usize) -> Dense {
        Dense {
            units,
            activation: Arc::new(activations::linear),
            activation_name: Some("linear".to_string()),
            use_bias: true,
            kernel_initializer: Arc::new(GlorotUniform::new(crate::random::next_seed())),
            bias_initializer: Arc::new(Zeros),
            kernel_regularizer: None,
            bias_regularizer: None,
            kernel_constraint: None,
            bias_constraint: None,
            dtype: DType::F32,
            name: super::unique_name("dense"),
            trainable: AtomicBool::new(true),
            built: OnceLock::new(),
        }
    }

    /// A built-in activation by Keras name (`"relu"`, `"softmax"`, ...). Panics on an
    /// unknown name (a programming error); use [`Dense::activation_fn`] for closures.
    #[track_caller]
    pub fn activation(self, name: &str) -> Dense {
        let f = activations::by_name(name).unwrap_or_else(|| panic!("unknown activation `{name}`"));
        Dense { activation: f, activation_name: Some(name.to_string()), ..self }
    }

    /// Any closure as the activation (e.g. the seed's `my_softplus`). A model holding it cannot
    /// be saved whole; [`Dense::activation_named`] can.
    pub fn activation_fn(self, f: impl Fn(&Tensor) -> Tensor + Send + Sync + 'static) -> Dense {
        Dense { activation: Arc::new(f), activation_name: None, ..self }
    }

    /// A closure as the activation, saved by `name` (register it under that name with
    /// [`CustomObjects::activation`] to load the model).
    pub fn activation_named(self, name: &str, f: impl Fn(&Tensor) -> Tensor + Send + Sync + 'static) -> Dense {
        Dense { activation: Arc::new(f), activation_name: Some(name.to_string()), ..self }
    }

    /// Seeds the default Glorot-uniform kernel initializer.
    pub fn seed(self, seed: u64) -> Dense {
        Dense { kernel_initializer: Arc::new(GlorotUniform::new(seed)), ..self }
    }

    pub fn kernel_initializer(self, init: impl Initializer + 'static) -> Dense {
        Dense { kernel_initializer: Arc::new(init), ..self }
    }

    pub fn bias_initializer(self, init: impl Initializer + 'static) -> Dense {
        Dense { bias_initializer: Arc::new(init), ..self }
    }

    pub fn kernel_regularizer(self, r: impl Regularizer + 'static) -> Dense {
        Dense { kernel_regularizer: Some(Arc::new(r)), ..self }
    }

    pub fn bias_regularizer(self, r: impl Regularizer + 'static) -> Dense {
        Dense { bias_regularizer: Some(Arc::new(r)), ..self }
    }

    /// A constraint on the kernel, applied by [`Layer::apply_constraints`] after each update.
    pub fn kernel_constraint(self, c: impl Constraint + 'static) -> Dense {
        Dense { kernel_constraint: Some(Arc::new(c)), ..self }
    }

    pub fn bias_constraint(self, c: impl Constraint + 'static) -> Dense {
        Dense { bias_constraint: Some(Arc::new(c)), ..self }
    }

    /// Without a bias term.
    pub fn use_bias(self, use_bias: bool) -> Dense {
        Dense { use_bias, ..self }
    }

    /// The dtype of the weights (and of the inputs it accepts); default `f32`.
    pub fn dtype(self, dtype: DType) -> Dense {
        Dense { dtype, ..self }
    }

    pub fn with_name(self, name: &str) -> Dense {
        Dense { name: name.to_string(), ..self }
    }

    /// The layer of a config written by [`Layer::get_config`]; activations, initializers,
    /// regularizers and constraints are found by name in `objects`, then among the built-ins.
    pub fn from_config(c: &Config, objects: &CustomObjects) -> Result<Dense> {
        let mut d = Dense::new(c.get("units")?).with_name(&c.get::<String>("name")?);
        let activation: String = c.get_or("activation", "linear".to_string())?;
        d.activation = objects.make_activation(&activation)?;
        d.activation_name = Some(activation);
        d.use_bias = c.get_or("use_bias", true)?;
        d.dtype = c.dtype_or("dtype", DType::F32)?;
        d.trainable = AtomicBool::new(c.get_or("trainable", true)?);
        if let Some(i) = c.object("kernel_initializer")? {
            d.kernel_initializer = objects.make_initializer(&i)?;
        }
        if let Some(i) = c.object("bias_initializer")? {
            d.bias_initializer = objects.make_initializer(&i)?;
        }
        let regularizer = |key| c.object(key)?.map(|r| objects.make_regularizer(&r)).transpose();
        d.kernel_regularizer = regularizer("kernel_regularizer")?;
        d.bias_regularizer = regularizer("bias_regularizer")?;
        let constraint = |key| c.object(key)?.map(|r| objects.make_constraint(&r)).transpose();
        d.kernel_constraint = constraint("kernel_constraint")?;
        d.bias_constraint = constraint("bias_constraint")?;
        Ok(d)
    }

    /// The kernel Variable, once built.
    pub fn kernel(&self) -> Option<&Variable> {
        self.built.get().map(|(k, _)| k)
    }

    /// The bias Variable, once built (and if used).
    pub fn bias(&self) -> Option<&Variable> {
        self.built.get().and_then(|(_, b)| b.as_ref())
    }

    /// Creates the weights for inputs with last dimension `input_dim` (done by the first call).
    pub fn build(&self, input_dim: usize) -> Result<()> {
        if let Some((k, _)) = self.built.get() {
            if k.shape()[0] != input_dim {
                return Err(Error::invalid(
                    "Dense",
                    format!("layer `{}` was built for inputs of width {}, got {input_dim}", self.name, k.shape()[0]),
                ));
            }
            return Ok(());
        }
        let vars = crate::init_scope(|| -> Result<_> {
            let k = self.kernel_initializer.init(&[input_dim, self.units], self.dtype)?;
            let kernel = Variable::try_with_options(k, Some(&format!("{}/kernel", self.name)), true)?;
            let bias = if self.use_bias {
                let b = self.bias_initializer.init(&[self.units], self.dtype)?;
                Some(Variable::try_with_options(b, Some(&format!("{}/bias", self.name)), true)?)
            } else {
                None
            };
            Ok((kernel, bias))
        })?;
        let _ = self.built.set(vars);
        Ok(())
    }
}

impl Layer for Dense {
    fn call(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        if x.rank() < 2 || x.dtype() != self.dtype {
            return Err(Error::invalid(
                "Dense",
                format!("layer `{}` takes {} inputs of rank >= 2, got {}", self.name, self.dtype, x.tensor_type()),
            ));
        }
        self.build(x.shape()[x.rank() - 1])?;
        let (kernel, bias) = self.built.get().expect("built above");
        let mut y = x.try_matmul(&kernel.read())?;
        if let Some(b) = bias {
            y = y.try_add(&b.read())?;
        }
        Ok((self.activation)(&y))
    }

    fn variables(&self) -> Vec<Variable> {
        match self.built.get() {
            Some((k, b)) => std::iter::once(k.clone()).chain(b.clone()).collect(),
            None => Vec::new(),
        }
    }

    fn is_trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    fn set_trainable(&self, trainable: bool) {
        self.trainable.store(trainable, Ordering::Relaxed)
    }

    fn losses(&self) -> Vec<Tensor> {
        let mut out = Vec::new();
        if let Some((k, b)) = self.built.get() {
            if let Some(r) = &self.kernel_regularizer {
                out.push(r.call(&k.read()));
            }
            if let (Some(r), Some(b)) = (&self.bias_regularizer, b) {
                out.push(r.call(&b.read()));
            }
        }
        out
    }

    fn apply_constraints(&self) -> Result<()> {
        if let Some((k, b)) = self.built.get() {
            if let Some(c) = &self.kernel_constraint {
                k.assign(&c.call(&k.read()))?;
            }
            if let (Some(c), Some(b)) = (&self.bias_constraint, b) {
                b.assign(&c.call(&b.read()))?;
            }
        }
        Ok(())
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        let activation = self.activation_name.clone().ok_or_else(|| {
            no_config("the activation of layer", &self.name, "use `activation_named` and CustomObjects::activation")
        })?;
        let regularizer = |r: &Option<Arc<dyn Regularizer>>| r.as_ref().map(|r| r.get_config()).transpose();
        let constraint = |c: &Option<Arc<dyn Constraint>>| c.as_ref().map(|c| c.get_config()).transpose();
        Ok(ObjectConfig::new("Dense")
            .with("name", &self.name)
            .with("trainable", self.is_trainable())
            .with("dtype", self.dtype.to_string())
            .with("units", self.units)
            .with("activation", activation)
            .with("use_bias", self.use_bias)
            .with("kernel_initializer", self.kernel_initializer.get_config())
            .with("bias_initializer", self.bias_initializer.get_config())
            .with("kernel_regularizer", regularizer(&self.kernel_regularizer)?)
            .with("bias_regularizer", regularizer(&self.bias_regularizer)?)
            .with("kernel_constraint", constraint(&self.kernel_constraint)?)
            .with("bias_constraint", constraint(&self.bias_constraint)?))
    }

    fn build_inputs(&self) -> Option<Vec<kiln_ir::TensorType>> {
        // Any rank-2 input of the kernel's width builds the same weights.
        self.built.get().map(|(k, _)| vec![kiln_ir::TensorType::new(self.dtype, &[1, k.shape()[0]])])
    }
}
