//! Recurrent layers over [`crate::scan`]: [`SimpleRNN`], [`GRU`] and [`LSTM`], Keras 3's
//! cells with Keras's weight layout, so Keras weights load as they are.
//!
//! A call projects every time step's input at once (a matmul over `[time · batch,
//! features]` per gate), then scans the cell over time, so a traced training step holds one `scan`
//! node per layer whatever the sequence length, and its gradient is one reverse scan.
//!
//! The kernels keep Keras's layout (gate blocks side by side in the columns), but the cell
//! gets them already cut into one `[units, units]` matrix per gate, outside the loop: the
//! loop body then holds a few small matmuls and elementwise ops that fuse into one kernel,
//! with no column slices left inside it to copy on every step.

use std::sync::{Arc, OnceLock};

use kiln_ir::DType;

use super::initializers::{GlorotUniform, Initializer, Orthogonal, Zeros};
use super::{activations, Activation, Layer, LayerState, WeightSpec};
use crate::models::{no_config, Config, CustomObjects, ObjectConfig};
use crate::{s, Error, Result, SliceArg, Tensor, Variable};

/// Keras `SimpleRNN`: `h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`.
/// Weights: kernel `[features, units]`, recurrent_kernel `[units, units]`, bias `[units]`.
///
/// ```
/// use kiln::nn::{Layer, SimpleRNN};
/// use kiln::{DType, Tensor};
/// let rnn = SimpleRNN::new(4).return_sequences(true).seed(1);
/// let y = rnn.call(&Tensor::ones(&[2, 5, 3], DType::F32), false).unwrap();
/// assert_eq!(y.shape(), &[2, 5, 4]); // [batch, time, units]
/// assert_eq!(rnn.variables().len(), 3);
/// ```
pub type SimpleRNN = Recurrent<SimpleRnnCell>;

/// Keras 3 `GRU` with its defaults (`reset_after=True`, tanh, sigmoid gates). Weights: kernel
/// `[features, 3·units]`, recurrent_kernel `[units, 3·units]` (column blocks z, r, h), bias
/// `[2, 3·units]` (row 0 added to the input projection, row 1 to the recurrent one):
/// `z = σ(xz + hz)`, `r = σ(xr + hr)`, `ĥ = tanh(xh + r·hh)`, `h_t = z·h_{t-1} + (1-z)·ĥ`.
///
/// ```
/// use kiln::nn::{Layer, GRU};
/// use kiln::{DType, Tensor};
/// let gru = GRU::new(4).seed(1);
/// let y = gru.call(&Tensor::ones(&[2, 5, 3], DType::F32), false).unwrap();
/// assert_eq!(y.shape(), &[2, 4]); // the last step's output
/// assert_eq!(gru.bias().unwrap().shape(), &[2, 12]);
/// ```
pub type GRU = Recurrent<GruCell>;

/// Keras `LSTM` with its defaults (tanh, sigmoid gates, `unit_forget_bias=True`: the bias
/// starts with ones in the forget block). Weights: kernel `[features, 4·units]`,
/// recurrent_kernel `[units, 4·units]` (column blocks i, f, c, o), bias `[4·units]`:
/// `c_t = σ(f)·c_{t-1} + σ(i)·tanh(c)`, `h_t = σ(o)·tanh(c_t)`.
///
/// ```
/// use kiln::nn::{Layer, LSTM};
/// use kiln::{DType, Tensor};
/// let lstm = LSTM::new(2).seed(1);
/// lstm.call(&Tensor::ones(&[1, 3, 5], DType::F32), false).unwrap();
/// let bias = lstm.bias().unwrap().read().to_vec::<f32>().unwrap();
/// assert_eq!(bias, vec![0., 0., 1., 1., 0., 0., 0., 0.]);
/// ```
pub type LSTM = Recurrent<LstmCell>;

/// The per-step rule of one kind of recurrent layer (implemented by [`SimpleRnnCell`],
/// [`GruCell`] and [`LstmCell`]).
pub trait RecurrentCell: Send + Sync {
    /// The layer's default name (Keras's).
    const NAME: &'static str;
    /// The layer's class name in saved configs (Keras's: `"GRU"`).
    const CLASS: &'static str;
    /// Blocks of `units` columns in the kernels.
    const GATES: usize;
    /// State tensors carried between steps; the first is the output `h`.
    const STATES: usize;

    /// The cell's own settings, added to the layer's config.
    fn add_config(&self, c: ObjectConfig) -> ObjectConfig {
        c
    }

    /// The cell of a saved config's settings.
    fn from_config(_c: &Config) -> Result<Self>
    where
        Self: Sized + Default,
    {
        Ok(Self::default())
    }

    /// The bias shape for `units`.
    fn bias_shape(&self, units: usize) -> Vec<usize> {
        vec![Self::GATES * units]
    }

    /// The initial bias from the layer's bias initializer.
    fn initial_bias(&self, init: &dyn Initializer, units: usize, dtype: DType) -> Result<Tensor> {
        init.init(&self.bias_shape(units), dtype)
    }

    /// Splits the bias into the part added to the input projection (outside the loop) and
    /// the part added to the recurrent projection (inside it, if any).
    fn split_bias(&self, bias: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        Ok((bias.clone(), None))
    }

    /// One time step. `x[g]` is gate `g`'s input projection `[batch, units]` (input bias
    /// included), `rec[g]` its `[units, units]` recurrent kernel, `rec_bias[g]` its recurrent
    /// bias when the cell has one; returns the new states.
    fn step(
        &self,
        f: &CellFns,
        x: &[Tensor],
        rec: &[Tensor],
        rec_bias: &[Tensor],
        states: &[Tensor],
    ) -> Result<Vec<Tensor>>;
}

/// The activations a cell step applies.
pub struct CellFns {
    /// The output/candidate activation (Keras `activation`).
    pub activation: Activation,
    /// The gates' activation (Keras `recurrent_activation`).
    pub recurrent_activation: Activation,
}

/// `h @ rec + bias` for one gate (`bias` absent for cells without a recurrent bias).
fn recurrent_projection(h: &Tensor, rec: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let p = h.try_matmul(rec)?;
    match bias {
        Some(b) => p.try_add(b),
        None => Ok(p),
    }
}

/// The [`SimpleRNN`] step (one block; the recurrent activation is unused).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimpleRnnCell;

impl RecurrentCell for SimpleRnnCell {
    const NAME: &'static str = "simple_rnn";
    const CLASS: &'static str = "SimpleRNN";
    const GATES: usize = 1;
    const STATES: usize = 1;

    fn step(&self, f: &CellFns, x: &[Tensor], rec: &[Tensor], _: &[Tensor], states: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![(f.activation)(&x[0].try_add(&states[0].try_matmul(&rec[0])?)?)])
    }
}

/// The [`GRU`] step with `reset_after=True` (the reset gate scales the recurrent projection).
#[derive(Clone, Copy, Debug, Default)]
pub struct GruCell;

impl RecurrentCell for GruCell {
    const NAME: &'static str = "gru";
    const CLASS: &'static str = "GRU";
    const GATES: usize = 3;
    const STATES: usize = 1;

    fn bias_shape(&self, units: usize) -> Vec<usize> {
        vec![2, 3 * units]
    }

    fn split_bias(&self, bias: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        Ok((bias.try_slice(&s![0])?, Some(bias.try_slice(&s![1])?)))
    }

    fn step(&self, f: &CellFns, x: &[Tensor], rec: &[Tensor], rb: &[Tensor], states: &[Tensor]) -> Result<Vec<Tensor>> {
        let h = &states[0];
        let hp = |g: usize| recurrent_projection(h, &rec[g], rb.get(g));
        let z = (f.recurrent_activation)(&x[0].try_add(&hp(0)?)?);
        let r = (f.recurrent_activation)(&x[1].try_add(&hp(1)?)?);
        let candidate = (f.activation)(&x[2].try_add(&r.try_mul(&hp(2)?)?)?);
        // Keras's form, so the rounding matches it.
        let one_minus_z = z.try_scalar_like(1.0)?.try_sub(&z)?;
        Ok(vec![z.try_mul(h)?.try_add(&one_minus_z.try_mul(&candidate)?)?])
    }
}

/// The [`LSTM`] step; `unit_forget_bias` adds one to the forget block of the initial bias.
#[derive(Clone, Copy, Debug)]
pub struct LstmCell {
    pub unit_forget_bias: bool,
}

impl Default for LstmCell {
    fn default() -> LstmCell {
        LstmCell { unit_forget_bias: true }
    }
}

impl RecurrentCell for LstmCell {
    const NAME: &'static str = "lstm";
    const CLASS: &'static str = "LSTM";
    const GATES: usize = 4;
    const STATES: usize = 2;

    fn add_config(&self, c: ObjectConfig) -> ObjectConfig {
        c.with("unit_forget_bias", self.unit_forget_bias)
    }

    fn from_config(c: &Config) -> Result<LstmCell> {
        Ok(LstmCell { unit_forget_bias: c.get_or("unit_forget_bias", true)? })
    }

    fn initial_bias(&self, init: &dyn Initializer, units: usize, dtype: DType) -> Result<Tensor> {
        if !self.unit_forget_bias {
            return init.init(&[4 * units], dtype);
        }
        // Keras: the initializer's values for i, then ones for f, then its values for c and o.
        let i = init.init(&[units], dtype)?;
        let co = init.init(&[2 * units], dtype)?;
        Tensor::try_concat(&[&i, &Tensor::ones(&[units], dtype), &co], 0)
    }

    fn step(&self, f: &CellFns, x: &[Tensor], rec: &[Tensor], _: &[Tensor], states: &[Tensor]) -> Result<Vec<Tensor>> {
        let (h, c) = (&states[0], &states[1]);
        let pre = |g: usize| x[g].try_add(&h.try_matmul(&rec[g])?);
        let gate = |g: usize| pre(g).map(|p| (f.recurrent_activation)(&p));
        let (i, fg, o) = (gate(0)?, gate(1)?, gate(3)?);
        let candidate = (f.activation)(&pre(2)?);
        let c = fg.try_mul(c)?.try_add(&i.try_mul(&candidate)?)?;
        let h = o.try_mul(&(f.activation)(&c))?;
        Ok(vec![h, c])
    }
}

/// The weights of a built layer.
struct Weights {
    kernel: Variable,
    recurrent_kernel: Variable,
    bias: Option<Variable>,
}

/// A recurrent layer over inputs `[batch, time, features]` from a zero initial state,
/// returning the last step's output `[batch, units]` or, with
/// [`Recurrent::return_sequences`], every step's `[batch, time, units]`. Use it through
/// [`SimpleRNN`], [`GRU`] and [`LSTM`]. Weights are made on the first call: kernel
/// Glorot-uniform, recurrent kernel [`Orthogonal`], bias zeros (plus the LSTM's forget ones).
///
/// ```
/// use kiln::nn::{Layer, GRU};
/// use kiln::{DType, Tensor};
/// let gru = std::sync::Arc::new(GRU::new(3).return_sequences(true).seed(5));
/// let x = Tensor::random_normal(&[2, 4, 6], DType::F32, 1);
/// let g = gru.clone();
/// let f = kiln::function(move |x: &Tensor| g.call(x, false));
/// let (eager, compiled) = (gru.call(&x, false).unwrap(), f.call(&x).unwrap());
/// assert!((&eager - &compiled).abs().max_all().to_scalar::<f32>().unwrap() < 1e-6);
/// assert!(f.graph(&x).unwrap().to_text().contains("scan")); // one loop, whatever the length
/// ```
pub struct Recurrent<C: RecurrentCell> {
    cell: C,
    units: usize,
    return_sequences: bool,
    activation: Activation,
    recurrent_activation: Activation,
    /// The activations' names, for saving (`None` for an unnamed closure).
    activation_names: (Option<String>, Option<String>),
    use_bias: bool,
    kernel_initializer: Arc<dyn Initializer>,
    recurrent_initializer: Arc<dyn Initializer>,
    bias_initializer: Arc<dyn Initializer>,
    dtype: DType,
    state: LayerState,
    built: OnceLock<Weights>,
}

impl<C: RecurrentCell + Default> Recurrent<C> {
    /// The layer of a config written by [`Layer::get_config`].
    pub fn from_config(c: &Config, objects: &CustomObjects) -> Result<Recurrent<C>> {
        let mut r = Recurrent::<C>::new(c.get("units")?);
        r.state = LayerState::from_config(c)?;
        r.cell = C::from_config(c)?;
        r.return_sequences = c.get_or("return_sequences", false)?;
        let names: (String, String) =
            (c.get_or("activation", "tanh".into())?, c.get_or("recurrent_activation", "sigmoid".into())?);
        r.activation = objects.make_activation(&names.0)?;
        r.recurrent_activation = objects.make_activation(&names.1)?;
        r.activation_names = (Some(names.0), Some(names.1));
        r.use_bias = c.get_or("use_bias", true)?;
        r.dtype = c.dtype_or("dtype", DType::F32)?;
        for (key, slot) in [
            ("kernel_initializer", &mut r.kernel_initializer),
            ("recurrent_initializer", &mut r.recurrent_initializer),
            ("bias_initializer", &mut r.bias_initializer),
        ] {
            if let Some(i) = c.object(key)? {
                *slot = objects.make_initializer(&i)?;
            }
        }
        Ok(r)
    }

    /// `units` outputs with Keras's defaults; the initializers take seeds from
    /// [`crate::random::next_seed`] (see [`Recurrent::seed`]).
    pub fn new(units: usize) -> Recurrent<C> {
        Recurrent {
            cell: C::default(),
            units,
            return_sequences: false,
            activation: Arc::new(activations::tanh),
            recurrent_activation: Arc::new(activations::sigmoid),
            activation_names: (Some("tanh".into()), Some("sigmoid".into())),
            use_bias: true,
            kernel_initializer: Arc::new(GlorotUniform::new(crate::random::next_seed())),
            recurrent_initializer: Arc::new(Orthogonal::new(crate::random::next_seed())),
            bias_initializer: Arc::new(Zeros),
            dtype: DType::F32,
            state: LayerState::new(C::NAME),
            built: OnceLock::new(),
        }
    }
}

impl Recurrent<LstmCell> {
    /// Whether the initial bias has ones in the forget block (Keras's default `true`).
    pub fn unit_forget_bias(self, unit_forget_bias: bool) -> Recurrent<LstmCell> {
        Recurrent { cell: LstmCell { unit_forget_bias }, ..self }
    }
}

impl<C: RecurrentCell> Recurrent<C> {
    /// Return every step's output `[batch, time, units]` instead of the last `[batch, units]`.
    pub fn return_sequences(self, return_sequences: bool) -> Recurrent<C> {
        Recurrent { return_sequences, ..self }
    }

    /// A built-in activation by Keras name for the output/candidate (default `"tanh"`).
    /// Panics on an unknown name; see [`Recurrent::activation_fn`].
    #[track_caller]
    pub fn activation(self, name: &str) -> Recurrent<C> {
        let names = (Some(name.to_string()), self.activation_names.1.clone());
        Recurrent { activation: activation_by_name(name), activation_names: names, ..self }
    }

    /// Any closure as the output/candidate activation (a layer holding one cannot be saved
    /// whole).
    pub fn activation_fn(self, f: impl Fn(&Tensor) -> Tensor + Send + Sync + 'static) -> Recurrent<C> {
        let names = (None, self.activation_names.1.clone());
        Recurrent { activation: Arc::new(f), activation_names: names, ..self }
    }

    /// The gates' activation by Keras name (default `"sigmoid"`; SimpleRNN has no gates).
    #[track_caller]
    pub fn recurrent_activation(self, name: &str) -> Recurrent<C> {
        let names = (self.activation_names.0.clone(), Some(name.to_string()));
        Recurrent { recurrent_activation: activation_by_name(name), activation_names: names, ..self }
    }

    /// Seeds the default kernel (with `seed`) and recurrent kernel (with `seed + 1`) initializers.
    pub fn seed(self, seed: u64) -> Recurrent<C> {
        Recurrent {
            kernel_initializer: Arc::new(GlorotUniform::new(seed)),
            recurrent_initializer: Arc::new(Orthogonal::new(seed.wrapping_add(1))),
            ..self
        }
    }

    pub fn kernel_initializer(self, init: impl Initializer + 'static) -> Recurrent<C> {
        Recurrent { kernel_initializer: Arc::new(init), ..self }
    }

    pub fn recurrent_initializer(self, init: impl Initializer + 'static) -> Recurrent<C> {
        Recurrent { recurrent_initializer: Arc::new(init), ..self }
    }

    pub fn bias_initializer(self, init: impl Initializer + 'static) -> Recurrent<C> {
        Recurrent { bias_initializer: Arc::new(init), ..self }
    }

    /// Without bias terms.
    pub fn use_bias(self, use_bias: bool) -> Recurrent<C> {
        Recurrent { use_bias, ..self }
    }

    /// The dtype of the weights (and of the inputs it accepts); default `f32`.
    pub fn dtype(self, dtype: DType) -> Recurrent<C> {
        Recurrent { dtype, ..self }
    }

    pub fn with_name(self, name: &str) -> Recurrent<C> {
        Recurrent { state: LayerState::named(name.to_string()), ..self }
    }

    pub fn units(&self) -> usize {
        self.units
    }

    /// Keras's config of the layer (see [`Layer::get_config`]).
    fn config(&self) -> Result<ObjectConfig> {
        let name = |n: &Option<String>| {
            n.clone().ok_or_else(|| no_config("an activation of layer", self.state.name(), "use a built-in by name"))
        };
        let c = self
            .state
            .config(C::CLASS)
            .with("dtype", self.dtype.to_string())
            .with("units", self.units)
            .with("return_sequences", self.return_sequences)
            .with("activation", name(&self.activation_names.0)?)
            .with("recurrent_activation", name(&self.activation_names.1)?)
            .with("use_bias", self.use_bias)
            .with("kernel_initializer", self.kernel_initializer.get_config())
            .with("recurrent_initializer", self.recurrent_initializer.get_config())
            .with("bias_initializer", self.bias_initializer.get_config());
        Ok(self.cell.add_config(c))
    }

    /// The kernel Variable `[features, gates·units]`, once built.
    pub fn kernel(&self) -> Option<&Variable> {
        self.built.get().map(|w| &w.kernel)
    }

    /// The recurrent kernel Variable `[units, gates·units]`, once built.
    pub fn recurrent_kernel(&self) -> Option<&Variable> {
        self.built.get().map(|w| &w.recurrent_kernel)
    }

    /// The bias Variable, once built (and if used).
    pub fn bias(&self) -> Option<&Variable> {
        self.built.get().and_then(|w| w.bias.as_ref())
    }

    /// A trainable weight of this layer made by `init`.
    fn weight(&self, name: &str, shape: &[usize], init: Arc<dyn Initializer>) -> Result<Variable> {
        let spec = WeightSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            dtype: self.dtype,
            initializer: init,
            regularizer: None,
            constraint: None,
            trainable: true,
        };
        self.state.add_weight(spec)
    }

    /// The `GATES` column blocks of `t`'s last axis, each `units` wide.
    fn gate_blocks(&self, t: &Tensor) -> Result<Vec<Tensor>> {
        let u = self.units as isize;
        let lead = vec![SliceArg::all(1); t.rank() - 1];
        let block = |g: isize| [lead.clone(), vec![SliceArg::from(g * u..(g + 1) * u)]].concat();
        (0..C::GATES as isize).map(|g| t.try_slice(&block(g))).collect()
    }
}

#[track_caller]
fn activation_by_name(name: &str) -> Activation {
    activations::by_name(name).unwrap_or_else(|| panic!("unknown activation `{name}`"))
}

impl<C: RecurrentCell> Layer for Recurrent<C> {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        self.config()
    }

    /// Creates the weights for the first input's `features` (Keras's layout).
    fn build(&self, shapes: &[&[usize]]) -> Result<()> {
        let &[_, _, features] = shapes[0] else {
            return Err(self.bad_input(&format!("shape {:?}", shapes[0])));
        };
        let width = C::GATES * self.units;
        let kernel = self.weight("kernel", &[features, width], self.kernel_initializer.clone())?;
        let recurrent_kernel =
            self.weight("recurrent_kernel", &[self.units, width], self.recurrent_initializer.clone())?;
        let bias = match self.use_bias {
            true => {
                let b = crate::init_scope(|| {
                    self.cell.initial_bias(self.bias_initializer.as_ref(), self.units, self.dtype)
                })?;
                let shape = b.shape().to_vec();
                Some(self.weight("bias", &shape, Arc::new(move |_: &[usize], _: DType| b.clone()))?)
            }
            false => None,
        };
        let _ = self.built.set(Weights { kernel, recurrent_kernel, bias });
        Ok(())
    }

    fn forward(&self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        if x.rank() != 3 || x.dtype() != self.dtype {
            return Err(self.bad_input(&x.tensor_type().to_string()));
        }
        let (batch, time, features) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let w = self.built.get().expect("built before forward");
        let built_for = w.kernel.shape()[0];
        if built_for != features {
            let msg = format!("layer `{}` was built for {built_for} features, got {features}", self.state.name());
            return Err(Error::invalid(C::NAME, msg));
        }
        // Every step's input projection at once, time-major for the scan, one matmul per
        // gate (so the gradient needs no slicing of a [time, batch, gates·units] tensor).
        let flat = x.try_transpose([1, 0, 2])?.try_reshape([(time * batch) as i64, features as i64])?;
        let mut xs = Vec::with_capacity(C::GATES);
        for k in self.gate_blocks(&w.kernel.read())? {
            xs.push(flat.try_matmul(&k)?);
        }
        let mut rec_bias = Vec::new();
        if let Some(b) = &w.bias {
            let (input_bias, recurrent_bias) = self.cell.split_bias(&b.read())?;
            for (x, b) in xs.iter_mut().zip(self.gate_blocks(&input_bias)?) {
                *x = x.try_add(&b)?;
            }
            if let Some(rb) = recurrent_bias {
                rec_bias = self.gate_blocks(&rb)?;
            }
        }
        let xs = xs
            .iter()
            .map(|x| x.try_reshape([time as i64, batch as i64, self.units as i64]))
            .collect::<Result<Vec<_>>>()?;
        let rec = self.gate_blocks(&w.recurrent_kernel.read())?;
        let fns =
            CellFns { activation: self.activation.clone(), recurrent_activation: self.recurrent_activation.clone() };
        let init: Vec<Tensor> = (0..C::STATES).map(|_| Tensor::zeros(&[batch, self.units], self.dtype)).collect();
        let (last, ys) = crate::scan(
            |states: &[Tensor], x: &[Tensor]| {
                let next = self.cell.step(&fns, x, &rec, &rec_bias, states)?;
                let ys = if self.return_sequences { vec![next[0].clone()] } else { Vec::new() };
                Ok((next, ys))
            },
            &init,
            &xs,
        )?;
        Ok(vec![match self.return_sequences {
            true => ys[0].try_transpose([1, 0, 2])?,
            false => last[0].clone(),
        }])
    }
}

impl<C: RecurrentCell> Recurrent<C> {
    fn bad_input(&self, got: &str) -> Error {
        let msg =
            format!("layer `{}` takes {} inputs [batch, time, features], got {got}", self.state.name(), self.dtype);
        Error::invalid(C::NAME, msg)
    }
}
