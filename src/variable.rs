//! `Variable`: mutable state with an identity. Eagerly, reads and writes act at once;
//! inside a traced function they become ordered graph nodes bound at call time, and the
//! writes of a call commit together only if the call succeeds.

use std::fmt;
use std::sync::{Arc, RwLock, RwLockWriteGuard, TryLockError};

use kiln_ir::{Array, DType, TensorType};

use crate::context::{self, trace};
use crate::tensor::{fresh_id, Tensor};
use crate::{Error, Result};

/// Mutable, shared tensor state (weights, optimizer slots, metric totals).
///
/// Its dtype and shape are fixed at creation: an assignment of another shape or dtype is
/// an `Err` and leaves the value unchanged. Clones share the same state; a `Variable` is
/// `Send + Sync` and concurrent writers never tear a value. A compiled call that writes the
/// new value over the old buffer (docs/JIT.md, *Variables updated in place*) holds the
/// Variable for the call: a read on another thread waits for it, and a tensor already read
/// keeps its value (the call then writes a new buffer).
///
/// ```
/// use kiln::{DType, Tensor, Variable};
/// let v = Variable::new(Tensor::zeros(&[2], DType::F32));
/// v.assign_add(&Tensor::new(&[1.0f32, 2.0])).unwrap();
/// assert_eq!(v.read().to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
/// assert!(v.assign(&Tensor::zeros(&[3], DType::F32)).is_err());
/// ```
#[derive(Clone)]
pub struct Variable(Arc<VarInner>);

struct VarInner {
    uid: u64,
    name: String,
    trainable: bool,
    ty: TensorType,
    value: RwLock<Array>,
}

impl Variable {
    /// A trainable variable named `Variable:<n>`.
    ///
    /// Panics if `initial` is symbolic (create variables from concrete values: inside a
    /// traced function, wrap the initializer in [`crate::init_scope`]). Called while
    /// retracing a function (variables may be created on a function's first trace only), it
    /// returns a Variable the graph does not keep, and that trace fails with an `Err`.
    #[track_caller]
    pub fn new(initial: Tensor) -> Variable {
        Variable::create(initial, None, true)
    }

    /// A variable with a name and trainability.
    ///
    /// ```
    /// use kiln::{DType, Tensor, Variable};
    /// let steps = Variable::with_options(Tensor::zeros(&[], DType::I64), "steps", false);
    /// assert_eq!(steps.name(), "steps");
    /// assert!(!steps.trainable());
    /// ```
    #[track_caller]
    pub fn with_options(initial: Tensor, name: &str, trainable: bool) -> Variable {
        Variable::create(initial, Some(name), trainable)
    }

    /// [`Variable::new`]'s rules: a creation the trace refuses fails that trace when the
    /// closure returns, rather than panicking through it (which would print to stderr).
    #[track_caller]
    fn create(initial: Tensor, name: Option<&str>, trainable: bool) -> Variable {
        let v = Variable::unregistered(initial, name, trainable).unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = trace::on_variable_created(&v).or_else(trace::fail_trace_later) {
            panic!("{e}");
        }
        v
    }

    /// The fallible form of [`Variable::with_options`] (`name: None` picks a unique one).
    pub fn try_with_options(initial: Tensor, name: Option<&str>, trainable: bool) -> Result<Variable> {
        let v = Variable::unregistered(initial, name, trainable)?;
        trace::on_variable_created(&v)?;
        Ok(v)
    }

    /// A new Variable, not yet shown to the trace (if any).
    fn unregistered(initial: Tensor, name: Option<&str>, trainable: bool) -> Result<Variable> {
        let value = initial
            .array()
            .ok_or_else(|| Error::Variable {
                name: name.unwrap_or("Variable").to_string(),
                msg: "the initial value is symbolic; compute it eagerly (wrap it in kiln::init_scope inside a traced function)".into(),
            })?
            .clone();
        let uid = fresh_id();
        let name = name.map(str::to_string).unwrap_or_else(|| format!("Variable:{uid}"));
        let ty = TensorType::new(value.dtype(), value.shape());
        Ok(Variable(Arc::new(VarInner { uid, name, trainable, ty, value: RwLock::new(value) })))
    }

    pub(crate) fn uid(&self) -> u64 {
        self.0.uid
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether gradient tapes watch it automatically and optimizers update it.
    pub fn trainable(&self) -> bool {
        self.0.trainable
    }

    pub fn dtype(&self) -> DType {
        self.0.ty.dtype
    }

    pub fn shape(&self) -> &[usize] {
        &self.0.ty.shape
    }

    pub(crate) fn tensor_type(&self) -> TensorType {
        self.0.ty.clone()
    }

    /// Whether two handles are the same variable.
    pub fn same_as(&self, other: &Variable) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The current value. Inside a traced function: the value when the graph runs, after
    /// the writes that precede this read in program order.
    pub fn read(&self) -> Tensor {
        let t = trace::read_var(self).unwrap_or_else(|| Tensor::from_array(self.value()));
        context::record_read(self, &t);
        t
    }

    /// The concrete value now (never symbolic), ignoring any trace.
    pub fn value(&self) -> Array {
        self.0.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn check(&self, op: &'static str, t: &Tensor) -> Result<()> {
        if t.dtype() != self.0.ty.dtype || t.shape() != &self.0.ty.shape[..] {
            return Err(Error::Variable {
                name: self.0.name.clone(),
                msg: format!("{op}: the variable is {} but the value is {}", self.0.ty, t.tensor_type()),
            });
        }
        Ok(())
    }

    /// Replaces the value; `Err` (value unchanged) if dtype or shape differ.
    pub fn assign(&self, value: &Tensor) -> Result<()> {
        self.check("assign", value)?;
        if let Some(r) = trace::assign_var(self, value) {
            return r;
        }
        let a = value.try_array("assign")?.clone();
        *self.0.value.write().unwrap_or_else(|e| e.into_inner()) = a;
        Ok(())
    }

    /// `self += delta`, atomically with respect to other writers.
    pub fn assign_add(&self, delta: &Tensor) -> Result<()> {
        self.update("assign_add", delta, |v, d| v.try_add(d))
    }

    /// `self -= delta`, atomically with respect to other writers.
    pub fn assign_sub(&self, delta: &Tensor) -> Result<()> {
        self.update("assign_sub", delta, |v, d| v.try_sub(d))
    }

    /// Writes `value` (broadcast) over the slice `args` of the variable (numpy's
    /// `v[0, 1] = 42`, `v[:, 2] = [0, 1]`); the rest keeps its value. Eager and traced; a
    /// read of the variable before the write gets no gradient through the overwritten part.
    ///
    /// ```
    /// use kiln::{s, Tensor, Variable};
    /// let v = Variable::new(Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]));
    /// v.assign_slice(&s![0, 1], &Tensor::scalar(42.0f32)).unwrap();
    /// v.assign_slice(&s![.., 2], &Tensor::new(&[0.0f32, 1.0])).unwrap();
    /// assert_eq!(v.read().to_vec::<f32>().unwrap(), vec![1.0, 42.0, 0.0, 4.0, 5.0, 1.0]);
    /// ```
    pub fn assign_slice(&self, args: &[crate::SliceArg], value: &Tensor) -> Result<()> {
        self.rewrite("assign_slice", |v| v.with_slice(args, value))
    }

    /// Replaces the slabs at n-dimensional `indices` with `updates` (TF's
    /// `Variable.scatter_nd_update`; see [`Tensor::tensor_scatter_nd_update`]).
    ///
    /// ```
    /// use kiln::{Tensor, Variable};
    /// let v = Variable::new(Tensor::new(&[1i64, 2, 3, 4]));
    /// v.scatter_nd_update(&Tensor::new(&[[0i64], [2]]), &Tensor::new(&[9i64, 8])).unwrap();
    /// assert_eq!(v.read().to_vec::<i64>().unwrap(), vec![9, 2, 8, 4]);
    /// ```
    pub fn scatter_nd_update(&self, indices: &Tensor, updates: &Tensor) -> Result<()> {
        self.rewrite("scatter_nd_update", |v| v.try_tensor_scatter_nd_update(indices, updates))
    }

    /// Adds `updates` at n-dimensional `indices` (TF's `Variable.scatter_nd_add`; repeated
    /// indices add up).
    ///
    /// ```
    /// use kiln::{Tensor, Variable};
    /// let v = Variable::new(Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]]));
    /// v.scatter_nd_add(&Tensor::new(&[[1i64, 1]]), &Tensor::new(&[10.0f32])).unwrap();
    /// assert_eq!(v.read().to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 14.0]);
    /// ```
    pub fn scatter_nd_add(&self, indices: &Tensor, updates: &Tensor) -> Result<()> {
        self.rewrite("scatter_nd_add", |v| v.try_tensor_scatter_nd_add(indices, updates))
    }

    fn update(&self, op: &'static str, delta: &Tensor, f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>) -> Result<()> {
        self.check(op, delta)?;
        self.rewrite(op, |v| f(v, delta))
    }

    /// `self = f(self)`; `Err` (value unchanged) if `f` fails or changes the type.
    fn rewrite(&self, op: &'static str, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<()> {
        if context::is_tracing() {
            let new = f(&self.read())?;
            self.check(op, &new)?;
            return self.assign(&new);
        }
        // Hold the write lock across read-modify-write so concurrent updates never lose one.
        let mut guard = self.0.value.write().unwrap_or_else(|e| e.into_inner());
        let current = Tensor::from_array(guard.clone());
        let new = f(&current)?;
        self.check(op, &new)?;
        *guard = new.try_array(op)?.clone();
        Ok(())
    }

    /// The value under the write lock, if no other thread holds the lock now: a compiled
    /// call that updates the Variable in place holds it for the whole call, so no reader
    /// sees a half-written value (it waits for the call instead). Never waits itself.
    pub(crate) fn try_hold(&self) -> Option<RwLockWriteGuard<'_, Array>> {
        match self.0.value.try_write() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Sets the value without checks or tracing: the commit step of a compiled call.
    pub(crate) fn commit(&self, value: Array) {
        debug_assert_eq!(value.dtype(), self.0.ty.dtype);
        *self.0.value.write().unwrap_or_else(|e| e.into_inner()) = value;
    }
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Variable({:?}, {}, {})", self.0.name, self.0.ty, Tensor::from_array(self.value()))
    }
}
