//! `kiln::function`: TensorFlow's `tf.function`. The closure runs once per input signature
//! with symbolic tensors; what it does becomes a graph that is optimized, compiled and
//! then called with concrete tensors. Semantics: `docs/SEMANTICS.md`.

mod concrete;
mod signature;

use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use kiln_ir::{Graph, TensorType};

pub use concrete::{Backend, ConcreteFunction};
use concrete::{Dump, PipelineFactory};

/// The passes a traced function gets by default (`Pipeline::default`).
pub(crate) fn default_pipeline() -> PipelineFactory {
    Arc::new(kiln_passes::Pipeline::default)
}

/// No dump of the graphs a function makes.
pub(crate) fn no_dump() -> Dump<'static> {
    Dump { dir: None, stem: "" }
}
pub use signature::{CallArgs, Outputs, TraceFn};

use crate::context::trace::{self, run_in_trace, TraceState};
use crate::{Error, Result, Tensor};

/// The dtype and shape a function argument must have (`function_with_signature`).
pub type TensorSpec = TensorType;

/// A traced, compiled function. Cheap to clone; safe to call from many threads.
///
/// ```
/// use kiln::Tensor;
/// let f = kiln::function(|x: &Tensor, y: &Tensor| (x * y + 1.0).tanh());
/// let (a, b) = (Tensor::new(&[0.5f32, 1.0]), Tensor::new(&[2.0f32, -1.0]));
/// let out = f.call((&a, &b)).unwrap();
/// assert_eq!(f.trace_count(), 1);
/// f.call((&b, &a)).unwrap();                      // same signature: no retrace
/// assert_eq!(f.trace_count(), 1);
/// assert!(f.graph((&a, &b)).unwrap().to_text().contains("tanh"));
/// # let _ = out;
/// ```
pub struct Function<O: Outputs> {
    inner: Arc<FnInner>,
    _out: PhantomData<fn() -> O>,
}

impl<O: Outputs> Clone for Function<O> {
    fn clone(&self) -> Self {
        Function { inner: self.inner.clone(), _out: PhantomData }
    }
}

type Body = Box<dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + Send + Sync>;

/// How many traced signatures a [`Function`] keeps. Past this, tracing a new signature
/// drops the least recently called one (its graph and compiled code are freed; calling it
/// again traces again), so a function fed ever new shapes runs in bounded memory. TF keeps
/// every trace and only warns; kiln warns too (after 5 retraces in a row).
///
/// ```
/// use kiln::Tensor;
/// let f = kiln::function(|x: &Tensor| x * 2.0);
/// for n in 1..=kiln::MAX_SIGNATURES + 1 {
///     f.call(&Tensor::zeros(&[n], kiln::DType::F32)).unwrap();
/// }
/// f.call(&Tensor::zeros(&[1], kiln::DType::F32)).unwrap(); // evicted: traced again
/// assert_eq!(f.trace_count(), kiln::MAX_SIGNATURES + 2);
/// ```
pub const MAX_SIGNATURES: usize = 64;

/// One traced signature and when it was last called (a tick of `FnInner::clock`).
struct CacheEntry {
    sig: Vec<TensorType>,
    concrete: Arc<ConcreteFunction>,
    last_used: AtomicU64,
}

struct FnInner {
    name: String,
    arity: Option<usize>,
    body: Body,
    backend: Backend,
    /// Where to write dumps (`KILN_DUMP` by default).
    dump_dir: Option<std::path::PathBuf>,
    pipeline: PipelineFactory,
    input_signature: Option<Vec<TensorSpec>>,
    /// Traced signatures, searched linearly: a call compares its arguments' types in place
    /// instead of building and hashing a key (functions see a handful of signatures).
    /// At most [`MAX_SIGNATURES`] entries; the least recently used one goes first.
    cache: RwLock<Vec<CacheEntry>>,
    clock: AtomicU64,
    /// Serializes tracing so two threads never trace (or create Variables) at once.
    trace_lock: Mutex<()>,
    trace_count: AtomicUsize,
    traced_once: AtomicBool,
    /// Signatures traced since the last cache hit, for the retracing warning.
    recent_traces: Mutex<Vec<String>>,
    /// Whether `recent_traces` is non-empty, so a cache hit clears it without locking.
    retracing: AtomicBool,
}

/// Traces `f` into a [`Function`]: see the module docs and `docs/SEMANTICS.md`.
///
/// ```
/// use kiln::Tensor;
/// let square_sum = kiln::function(|x: &Tensor| x.square().sum_all());
/// let s = square_sum.call(&Tensor::new(&[1.0f32, 2.0])).unwrap();
/// assert_eq!(s.to_scalar::<f32>().unwrap(), 5.0);
/// ```
pub fn function<A, F: TraceFn<A>>(f: F) -> Function<F::Output> {
    Function::build(f, default_name::<F>(), None)
}

/// Like [`function`], but only accepts arguments of exactly these dtypes and shapes;
/// anything else is an `Err` (never a retrace).
///
/// ```
/// use kiln::{DType, Tensor, TensorSpec};
/// let f = kiln::function_with_signature(&[TensorSpec::new(DType::F32, &[2])], |x: &Tensor| x * 2.0);
/// assert!(f.call(&Tensor::new(&[1.0f32, 2.0])).is_ok());
/// assert!(f.call(&Tensor::new(&[1.0f32, 2.0, 3.0])).is_err());
/// ```
pub fn function_with_signature<A, F: TraceFn<A>>(signature: &[TensorSpec], f: F) -> Function<F::Output> {
    Function::build(f, default_name::<F>(), Some(signature.to_vec()))
}

/// A file-name-safe name from the closure's type (`quickstart.main.closure`).
fn default_name<F>() -> String {
    let n = std::any::type_name::<F>().replace("{{closure}}", "closure").replace("::", ".");
    n.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '_' }).collect()
}

impl<O: Outputs> Function<O> {
    fn build<A, F: TraceFn<A, Output = O>>(f: F, name: String, input_signature: Option<Vec<TensorSpec>>) -> Self {
        let body: Body = Box::new(move |args: &[Tensor]| f.invoke(args).flatten());
        Function {
            inner: Arc::new(FnInner {
                name,
                arity: F::ARITY,
                body,
                backend: Backend::from_env(),
                dump_dir: kiln_ir::config::dump_dir(),
                pipeline: default_pipeline(),
                input_signature,
                cache: RwLock::new(Vec::new()),
                clock: AtomicU64::new(0),
                trace_lock: Mutex::new(()),
                trace_count: AtomicUsize::new(0),
                traced_once: AtomicBool::new(false),
                recent_traces: Mutex::new(Vec::new()),
                retracing: AtomicBool::new(false),
            }),
            _out: PhantomData,
        }
    }

    fn inner_mut(&mut self) -> &mut FnInner {
        Arc::get_mut(&mut self.inner).expect("configure a Function before cloning or calling it")
    }

    /// Names the function in dumps and errors.
    pub fn with_name(mut self, name: &str) -> Self {
        self.inner_mut().name = name.to_string();
        self
    }

    /// Chooses how graphs run: compiled (default) or by the reference interpreter.
    ///
    /// ```
    /// use kiln::{Backend, Tensor};
    /// let f = kiln::function(|x: &Tensor| x.exp()).with_backend(Backend::Interpreter);
    /// assert_eq!(f.call(&Tensor::scalar(0.0f64)).unwrap().to_scalar::<f64>().unwrap(), 1.0);
    /// ```
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.inner_mut().backend = backend;
        self
    }

    /// Writes every traced graph (and, later in the pipeline, every pass's output and
    /// kernel) under `dir`, as `KILN_DUMP=<dir>` does.
    pub fn with_dump_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.inner_mut().dump_dir = Some(dir.into());
        self
    }

    /// Optimizes traced graphs with the pipeline `make` builds instead of the default one
    /// (add, remove or reorder passes; see `kiln_passes::Pipeline`).
    ///
    /// ```
    /// use kiln::Tensor;
    /// use kiln::passes::{Dce, Pipeline};
    /// let f = kiln::function(|x: &Tensor| x * 1.0).with_pipeline(|| {
    ///     let mut p = Pipeline::empty();
    ///     p.push(Dce);
    ///     p
    /// });
    /// let g = f.graph(&Tensor::scalar(2.0f32)).unwrap();
    /// assert!(g.to_text().contains("mul"));                 // no simplification ran
    /// ```
    pub fn with_pipeline(mut self, make: impl Fn() -> kiln_passes::Pipeline + Send + Sync + 'static) -> Self {
        self.inner_mut().pipeline = Arc::new(make);
        self
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many times the closure has been traced (once per new signature).
    pub fn trace_count(&self) -> usize {
        self.inner.trace_count.load(Ordering::SeqCst)
    }

    /// Calls the function: traces on the first call for a new signature, then runs the
    /// graph. Variable writes commit only if the whole call succeeds.
    pub fn call(&self, args: impl CallArgs) -> Result<O::Value> {
        args.with_refs(|args| self.call_refs(args))
    }

    /// [`Function::call`], storing the outputs in `out` (what an earlier call returned): a
    /// tiny compiled call (a few small kernels, no Variables) writes into the buffers of
    /// `out`'s tensors in place, so a loop of such calls allocates nothing. Each output is a
    /// new tensor all the same, with a new [`Tensor::id`]. Where that cannot be done (a tensor
    /// of `out` held elsewhere too, or of another type; a larger graph; a call inside a
    /// trace or under a tape) `out` gets new tensors, as `*out = f.call(args)?` would give.
    /// On `Err`, `out` is unchanged.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let f = kiln::function(|a: &Tensor, b: &Tensor| 3.0 * a.square() + 2.0 * a * b);
    /// let (a, b) = (Tensor::scalar(5.0f32), Tensor::scalar(3.0f32));
    /// let mut y = f.call((&a, &b)).unwrap();
    /// for i in 0..3 {
    ///     f.call_into((&Tensor::scalar(i as f32), &b), &mut y).unwrap();
    ///     assert_eq!(y.to_scalar::<f32>().unwrap(), (3 * i * i + 6 * i) as f32);
    /// }
    /// ```
    pub fn call_into(&self, args: impl CallArgs, out: &mut O::Value) -> Result<()> {
        args.with_refs(|args| {
            if !self.runs_graph(args)? {
                *out = self.run_closure(args)?;
                return Ok(());
            }
            if let Some(outs) = O::tensors_mut(out) {
                if self.with_cached(args, |c| c.call_in_place(args, outs)) == Some(true) {
                    return Ok(());
                }
            }
            *out = self.run_graph(args)?;
            Ok(())
        })
    }

    /// Checks `args` (arity, input signature); `false` if the call must run the closure
    /// itself instead of a graph: inside another trace, or under a recording tape, its ops
    /// then join the outer graph or the tape (TF inlines nested functions the same way).
    fn runs_graph(&self, args: &[&Tensor]) -> Result<bool> {
        self.check_arity(args)?;
        if trace::is_tracing() || args.iter().any(|t| t.is_symbolic()) || crate::context::is_recording() {
            return Ok(false);
        }
        self.check_input_signature(args)?;
        Ok(true)
    }

    fn call_refs(&self, args: &[&Tensor]) -> Result<O::Value> {
        match self.runs_graph(args)? {
            true => self.run_graph(args),
            false => self.run_closure(args),
        }
    }

    /// The closure itself on `args` (inside a trace or under a tape).
    fn run_closure(&self, args: &[&Tensor]) -> Result<O::Value> {
        let args: Vec<Tensor> = args.iter().map(|&t| t.clone()).collect();
        Ok(O::unflatten((self.inner.body)(&args)?))
    }

    /// The graph for `args`' signature (traced now if new) on `args`, already checked by
    /// [`Function::runs_graph`].
    fn run_graph(&self, args: &[&Tensor]) -> Result<O::Value> {
        // A tiny call runs under the cache's read lock (it holds it for well under a µs);
        // any other takes its own reference and releases the lock first.
        let hit = self.with_cached(args, |c| match c.is_tiny() {
            true => Ok(c.call::<O>(args)),
            false => Err(c.clone()),
        });
        match hit {
            Some(Ok(ran)) => ran,
            Some(Err(c)) => c.call::<O>(args),
            None => self.trace_signature(args)?.call::<O>(args),
        }
    }

    /// The optimized graph for these arguments' signature (tracing it if needed).
    pub fn graph(&self, args: impl CallArgs) -> Result<Graph> {
        Ok(self.concrete_function(args)?.optimized().clone())
    }

    /// The traced, optimized and compiled function for these arguments' signature.
    pub fn concrete_function(&self, args: impl CallArgs) -> Result<Arc<ConcreteFunction>> {
        args.with_refs(|args| {
            self.check_arity(args)?;
            self.concrete(args)
        })
    }

    fn check_arity(&self, args: &[&Tensor]) -> Result<()> {
        match self.inner.arity {
            Some(n) if n != args.len() => Err(Error::Signature {
                function: self.inner.name.clone(),
                msg: format!("takes {n} arguments, got {}", args.len()),
            }),
            _ => Ok(()),
        }
    }

    fn concrete(&self, args: &[&Tensor]) -> Result<Arc<ConcreteFunction>> {
        self.check_input_signature(args)?;
        match self.with_cached(args, Arc::clone) {
            Some(c) => Ok(c),
            None => self.trace_signature(args),
        }
    }

    /// `Err` if the function has an input signature and `args` do not match it.
    fn check_input_signature(&self, args: &[&Tensor]) -> Result<()> {
        if let Some(expected) = &self.inner.input_signature {
            if !same_types(expected, args) {
                let sig: Vec<TensorType> = args.iter().map(|t| t.tensor_type()).collect();
                return Err(Error::Signature {
                    function: self.inner.name.clone(),
                    msg: format!("expects ({}), got ({})", fmt_sig(expected), fmt_sig(&sig)),
                });
            }
        }
        Ok(())
    }

    /// The function for `args`' signature, traced now unless another thread just did.
    fn trace_signature(&self, args: &[&Tensor]) -> Result<Arc<ConcreteFunction>> {
        let _tracing = self.inner.trace_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = self.with_cached(args, Arc::clone) {
            return Ok(c);
        }
        let sig: Vec<TensorType> = args.iter().map(|t| t.tensor_type()).collect();
        let c = Arc::new(self.trace(&sig)?);
        let mut cache = self.inner.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_SIGNATURES {
            let lru = (0..cache.len()).min_by_key(|&i| cache[i].last_used.load(Ordering::Relaxed));
            cache.swap_remove(lru.expect("a full cache is not empty"));
        }
        let last_used = AtomicU64::new(self.inner.clock.fetch_add(1, Ordering::Relaxed));
        cache.push(CacheEntry { sig, concrete: c.clone(), last_used });
        Ok(c)
    }

    /// Every signature traced so far (at most the cache's size), oldest first: what
    /// `saved_model::save` writes.
    pub fn concrete_functions(&self) -> Vec<Arc<ConcreteFunction>> {
        let cache = self.inner.cache.read().unwrap_or_else(|e| e.into_inner());
        let mut entries: Vec<&CacheEntry> = cache.iter().collect();
        entries.sort_by_key(|e| e.last_used.load(Ordering::Relaxed));
        entries.into_iter().map(|e| e.concrete.clone()).collect()
    }

    /// `f` of the cached function for `args`' signature, run under the cache's read lock;
    /// `None` if that signature is not traced. A hit marks the entry used and ends a run of
    /// retraces.
    fn with_cached<R>(&self, args: &[&Tensor], f: impl FnOnce(&Arc<ConcreteFunction>) -> R) -> Option<R> {
        let r = {
            let cache = self.inner.cache.read().unwrap_or_else(|e| e.into_inner());
            let e = cache.iter().find(|e| same_types(&e.sig, args))?;
            // Restamping the most recently stamped entry changes no order: skipped, so calls
            // to one signature do not all write (and bounce between cores) the shared clock.
            if e.last_used.load(Ordering::Relaxed) + 1 != self.inner.clock.load(Ordering::Relaxed) {
                e.last_used.store(self.inner.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            }
            f(&e.concrete)
        };
        // A load first: the steady state then never writes the shared flag.
        if self.inner.retracing.load(Ordering::Relaxed) && self.inner.retracing.swap(false, Ordering::Relaxed) {
            self.inner.recent_traces.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        Some(r)
    }

    fn trace(&self, sig: &[TensorType]) -> Result<ConcreteFunction> {
        let name = self.inner.name.clone();
        let first = !self.inner.traced_once.load(Ordering::SeqCst);
        let state = TraceState::new(&name, first);
        let (result, mut state) = run_in_trace(state, || {
            let inputs: Vec<Tensor> = sig.iter().map(|ty| trace::add_input(ty.clone())).collect();
            catch_unwind(AssertUnwindSafe(|| (self.inner.body)(&inputs)))
        });
        if let Some(refused) = state.refused.take() {
            return Err(refused);
        }
        let outputs = match result {
            Ok(r) => r.map_err(|e| Error::Trace { function: name.clone(), msg: e.to_string() })?,
            Err(panic) => return Err(Error::Trace { function: name, msg: panic_message(&panic) }),
        };
        self.inner.traced_once.store(true, Ordering::SeqCst);
        let n = self.inner.trace_count.fetch_add(1, Ordering::SeqCst);
        self.warn_on_retracing(sig);
        // Each signature's dumps get their own stem so a listing groups them.
        let stem = if n == 0 { name } else { format!("{name}.sig{n}") };
        let dump = concrete::Dump { dir: self.inner.dump_dir.as_deref(), stem: &stem };
        ConcreteFunction::new(state, outputs, self.inner.backend, &self.inner.pipeline, dump)
    }

    fn warn_on_retracing(&self, sig: &[TensorType]) {
        let mut recent = self.inner.recent_traces.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.retracing.store(true, Ordering::Relaxed);
        recent.push(format!("({})", fmt_sig(sig)));
        if recent.len() > 5 {
            tracing::warn!(
                function = %self.inner.name,
                signatures = %recent.join(", "),
                "`{}` was retraced {} times in a row; each new argument signature (dtype and shape) traces and compiles again. Pass tensors of one shape, or use function_with_signature",
                self.inner.name,
                recent.len()
            );
        }
    }
}

/// Whether `args` have exactly the dtypes and shapes of `sig`.
fn same_types(sig: &[TensorType], args: &[&Tensor]) -> bool {
    sig.len() == args.len()
        && sig.iter().zip(args).all(|(t, a)| t.dtype == a.dtype() && t.shape.as_slice() == a.shape())
}

fn fmt_sig(sig: &[TensorType]) -> String {
    sig.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked while tracing: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked while tracing: {s}")
    } else {
        "panicked while tracing".to_string()
    }
}
