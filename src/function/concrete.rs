//! One traced signature of a function: its graph as traced, the optimized graph, the
//! Variables it binds, and how it runs.

use std::cell::RefCell;
use std::sync::Arc;

use kiln_ir::interp::Outcome;
use kiln_ir::{interp, Array, Graph};
use kiln_passes::Pipeline;
use smallvec::SmallVec;

use crate::context::trace::TraceState;
use crate::function::Outputs;
use crate::tensor::{fresh_id, Inner, Value};
use crate::variable::Variable;
use crate::{Result, Tensor};

/// Call arguments or Variable values.
type Arrays = Vec<Array>;

/// How a traced graph runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter on the graph as traced (no passes): slow, obviously right.
    Interpreter,
    /// The optimized graph, compiled by the Cranelift JIT.
    Compiled,
}

impl Backend {
    /// `KILN_BACKEND=interpreter` selects the interpreter for every function by default.
    pub(crate) fn from_env() -> Backend {
        if kiln_ir::config::backend_is_interpreter() {
            Backend::Interpreter
        } else {
            Backend::Compiled
        }
    }
}

/// Where and under which name a trace writes its dumps.
pub(crate) struct Dump<'a> {
    pub(crate) dir: Option<&'a std::path::Path>,
    pub(crate) stem: &'a str,
}

/// Builds the pass pipeline for a trace (`Pipeline::default` unless the user gave one).
pub(crate) type PipelineFactory = std::sync::Arc<dyn Fn() -> Pipeline + Send + Sync>;

/// A function specialized to one input signature.
pub struct ConcreteFunction {
    traced: Graph,
    vars: Vec<Variable>,
    run: Runner,
}

enum Runner {
    /// The traced graph by the reference interpreter, and the optimized graph for `graph()`.
    Interpreter {
        optimized: Graph,
    },
    Compiled(kiln_jit::Executable),
}

impl ConcreteFunction {
    pub(crate) fn new(
        mut state: TraceState,
        outputs: Vec<Tensor>,
        backend: Backend,
        pipeline: &PipelineFactory,
        dump: Dump,
    ) -> Result<ConcreteFunction> {
        let nodes = outputs.iter().map(|t| state.node_of(t)).collect::<Result<Vec<_>>>()?;
        state.graph.set_outputs(nodes);
        ConcreteFunction::from_graph(state.graph, state.vars, backend, pipeline, dump)
    }

    /// A function from a traced graph and the Variables its `VarId`s name (a loaded bundle's).
    pub(crate) fn from_graph(
        traced: Graph,
        vars: Vec<Variable>,
        backend: Backend,
        pipeline: &PipelineFactory,
        dump: Dump,
    ) -> Result<ConcreteFunction> {
        traced.verify()?;
        let mut optimized = traced.clone();
        pipeline().dump_dir(dump.dir.map(Into::into)).dump_stem(Some(dump.stem.to_string())).run(&mut optimized)?;
        let run = match backend {
            Backend::Interpreter => Runner::Interpreter { optimized },
            Backend::Compiled => {
                let exe = kiln_jit::Executable::new(optimized)?;
                if let Some(dir) = dump.dir {
                    exe.dump(dir, dump.stem)?;
                }
                Runner::Compiled(exe)
            }
        };
        Ok(ConcreteFunction { traced, vars, run })
    }

    /// The graph exactly as traced.
    pub fn traced(&self) -> &Graph {
        &self.traced
    }

    /// The graph after the optimization passes.
    pub fn optimized(&self) -> &Graph {
        match &self.run {
            Runner::Interpreter { optimized } => optimized,
            Runner::Compiled(exe) => exe.graph(),
        }
    }

    /// The compiled executable (`None` with `Backend::Interpreter`): its schedule, kernels
    /// and any interpreter fallbacks.
    pub fn executable(&self) -> Option<&kiln_jit::Executable> {
        match &self.run {
            Runner::Compiled(exe) => Some(exe),
            Runner::Interpreter { .. } => None,
        }
    }

    /// Whether a call is short enough to run under the signature cache's read lock: a
    /// compiled graph on the executor's direct path (a few small kernels) and no Variables.
    pub(crate) fn is_tiny(&self) -> bool {
        self.vars.is_empty() && matches!(&self.run, Runner::Compiled(exe) if exe.is_direct())
    }

    /// The Variables the graph reads or writes, in `VarId` order.
    pub fn variables(&self) -> &[Variable] {
        &self.vars
    }

    /// Runs the compiled graph once on `args` and reports each node's time, slowest first
    /// (see [`kiln_jit::Executable::profile`]). Variable writes are not committed.
    /// `None` with `Backend::Interpreter`.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let f = kiln::function(|x: &Tensor| (x * 2.0).exp().sum_all());
    /// let x = Tensor::new(&[1.0f32, 2.0]);
    /// let report = f.concrete_function(&x).unwrap().profile(&[x]).unwrap().unwrap();
    /// assert!(report.contains("ms in"));
    /// ```
    pub fn profile(&self, args: &[Tensor]) -> Result<Option<String>> {
        let Some(exe) = self.executable() else { return Ok(None) };
        let (inputs, values) = self.bind(args)?;
        Ok(Some(exe.profile(&inputs, &values)?))
    }

    /// The arrays of the arguments and of the Variables' current values.
    fn bind(&self, args: &[Tensor]) -> Result<(Arrays, Arrays)> {
        let inputs = args.iter().map(|t| t.try_array("call").cloned()).collect::<Result<_>>()?;
        Ok((inputs, self.vars.iter().map(Variable::value).collect()))
    }

    /// Runs with concrete arguments; commits Variable writes only on success.
    pub(crate) fn run(&self, args: &[Tensor]) -> Result<Vec<Tensor>> {
        let args: SmallVec<[&Tensor; 8]> = args.iter().collect();
        self.call::<Vec<Tensor>>(&args)
    }

    /// [`ConcreteFunction::run`] on borrowed arguments, its outputs rebuilt as `O`: the
    /// path of every compiled `Function::call`. The arguments' arrays are bound in place
    /// and the outcome's vectors are this thread's, reused call after call, so a call
    /// allocates only its output tensors.
    pub(crate) fn call<O: Outputs>(&self, args: &[&Tensor]) -> Result<O::Value> {
        let mut inputs: SmallVec<[&Array; 8]> = SmallVec::new();
        for t in args {
            inputs.push(t.try_array("call")?);
        }
        // Most calls bind no Variable: nothing to bind or commit.
        let mut values = if self.vars.is_empty() { SmallVec::new() } else { self.bind_vars() };
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut out) => self.call_into::<O>(&inputs, &mut values, &mut out),
            // A call nested in this thread's call (none today) gets vectors of its own.
            Err(_) => {
                self.call_into::<O>(&inputs, &mut values, &mut Outcome { outputs: Vec::new(), writes: Vec::new() })
            }
        })
    }

    /// The Variables' values for a call: those the executable may update in place
    /// ([`kiln_jit::Executable::updates_in_place`]) held under their write locks if every
    /// one of them is free now, the others (and all of them otherwise) read. Locks are only
    /// tried once the reads are done, so a call never waits for a lock while holding one.
    fn bind_vars(&self) -> SmallVec<[Bound<'_>; 4]> {
        let mut values: SmallVec<[Bound<'_>; 4]> = SmallVec::new();
        let in_place = self.executable().map_or(&[][..], |exe| exe.updates_in_place());
        for (k, v) in self.vars.iter().enumerate() {
            values.push(if in_place.contains(&k) { Bound::Later } else { Bound::Read(v.value()) });
        }
        for &k in in_place {
            match self.vars[k].try_hold() {
                Some(guard) => values[k] = Bound::Held(guard),
                None => {
                    // Release the held locks before reading (which may wait).
                    values.iter_mut().filter(|b| !matches!(b, Bound::Read(_))).for_each(|b| *b = Bound::Later);
                    for (b, v) in values.iter_mut().zip(&self.vars) {
                        if matches!(b, Bound::Later) {
                            *b = Bound::Read(v.value());
                        }
                    }
                    break;
                }
            }
        }
        values
    }

    /// A tiny call (see [`ConcreteFunction::is_tiny`]) writing each output into the tensor
    /// of `outs` in its place, which then holds a new tensor (a new id); a computed output
    /// is written into the tensor's buffer ([`kiln_jit::Executable::run_in_place`]). `false`,
    /// with nothing run and `outs` untouched, unless every tensor of `outs` is unshared and
    /// concrete, those of computed outputs also of their output's type with a buffer of their
    /// own, and every argument's value can be read (the caller's ordinary call then runs, and
    /// reports any error).
    pub(crate) fn call_in_place(&self, args: &[&Tensor], outs: SmallVec<[&mut Tensor; 8]>) -> bool {
        let Runner::Compiled(exe) = &self.run else { return false };
        if !self.is_tiny() {
            return false;
        }
        let mut arrays: SmallVec<[&mut Array; 8]> = SmallVec::new();
        let mut ids: SmallVec<[&mut u64; 8]> = SmallVec::new();
        for t in outs {
            let Some(Inner { id, value }) = Arc::get_mut(&mut t.0) else { return false };
            let Value::Concrete(a) = value else { return false };
            arrays.push(a);
            ids.push(id);
        }
        let mut inputs: SmallVec<[&Array; 8]> = SmallVec::new();
        for t in args {
            let Ok(a) = t.try_array("call") else { return false };
            inputs.push(a);
        }
        let done = matches!(exe.run_in_place(&inputs, &mut arrays), Ok(true));
        if done {
            ids.into_iter().for_each(|id| *id = fresh_id());
        }
        done
    }

    /// Runs into `out` (empty, and left empty: the kept vectors hold no array alive
    /// between calls), then commits the writes and wraps the outputs.
    fn call_into<O: Outputs>(
        &self,
        inputs: &[&Array],
        values: &mut [Bound<'_>],
        out: &mut Outcome,
    ) -> Result<O::Value> {
        let ran = match &self.run {
            Runner::Interpreter { .. } => {
                let owned: Arrays = inputs.iter().map(|&a| a.clone()).collect();
                let values: Arrays = values.iter_mut().map(|b| b.array().clone()).collect();
                interp::run(&self.traced, &owned, &values).map(|o| *out = o)
            }
            Runner::Compiled(exe) => {
                let mut arrays: SmallVec<[&mut Array; 4]> = values.iter_mut().map(Bound::array).collect();
                exe.run_updating(inputs, &mut arrays, out)
            }
        };
        let result = ran.map(|()| {
            if !out.writes.is_empty() {
                self.commit(values, out);
            }
            O::unflatten_iter(out.outputs.drain(..).map(Tensor::from_array))
        });
        out.outputs.clear();
        out.writes.clear();
        result
    }

    /// Commits a call's Variable writes: the held Variables first, then, with their locks
    /// released, the others.
    fn commit(&self, values: &mut [Bound<'_>], out: &mut Outcome) {
        let mut rest: SmallVec<[(u32, Array); 4]> = SmallVec::new();
        for (id, value) in out.writes.drain(..) {
            match &mut values[id as usize] {
                Bound::Held(guard) => **guard = value,
                _ => rest.push((id, value)),
            }
        }
        values.iter_mut().filter(|b| matches!(b, Bound::Held(_))).for_each(|b| *b = Bound::Later);
        for (id, value) in rest {
            self.vars[id as usize].commit(value);
        }
    }
}

/// A Variable's value bound for a call.
enum Bound<'a> {
    /// Read (shared with the Variable, so never written in place).
    Read(Array),
    /// Held under the Variable's write lock: the executor may write over it.
    Held(std::sync::RwLockWriteGuard<'a, Array>),
    /// Not bound yet (only while binding).
    Later,
}

impl Bound<'_> {
    fn array(&mut self) -> &mut Array {
        match self {
            Bound::Read(a) => a,
            Bound::Held(guard) => guard,
            Bound::Later => unreachable!("`bind_vars` binds every Variable"),
        }
    }
}

thread_local! {
    /// The vectors of this thread's call outcomes, empty between calls.
    static SCRATCH: RefCell<Outcome> = const { RefCell::new(Outcome { outputs: Vec::new(), writes: Vec::new() }) };
}
