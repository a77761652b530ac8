//! The trace being built on this thread, and the traces `init_scope` set aside.
//!
//! Inside a trace, an op on a symbolic tensor becomes a graph node (concrete operands become
//! constants), and Variable reads and writes become ordered `read_var`/`assign_var` nodes.
//! Tracers and traces are kept apart as in JAX's `core.py`: a symbolic tensor names its
//! trace, and using it in another one is an error rather than a silent mix-up.

use std::cell::RefCell;
use std::collections::HashMap;

use kiln_ir::{interp, Array, Distribution, Graph, NodeId, Op, TensorType, VarId};

use crate::tensor::{fresh_id, Tensor};
use crate::variable::Variable;
use crate::{Error, Result};

/// The graph under construction and what it has captured.
pub(crate) struct TraceState {
    pub(crate) id: u64,
    pub(crate) graph: Graph,
    /// The Variables the graph reads or writes, indexed by `VarId`.
    pub(crate) vars: Vec<Variable>,
    var_ids: HashMap<u64, VarId>,
    /// Per variable: the last write and the reads since it, for side-effect ordering.
    pub(super) last_write: HashMap<VarId, NodeId>,
    pub(super) reads_since_write: HashMap<VarId, Vec<NodeId>>,
    /// Concrete tensors captured as constants, by tensor id (one node per tensor).
    consts: HashMap<u64, NodeId>,
    /// TF allows creating Variables only in a function's first trace.
    pub(crate) allow_var_creation: bool,
    pub(crate) created_vars: Vec<Variable>,
    /// A Variable creation this trace refused: the trace fails with it once the closure
    /// returns (reported here rather than by a panic, which would print to stderr).
    pub(crate) refused: Option<Error>,
    /// For a region body (`body.rs`): the enclosing traces, whose tensors the body may use,
    /// and the ones it used, each with the body input that stands for it.
    pub(super) outer: Vec<u64>,
    pub(super) captures: Vec<(Tensor, NodeId)>,
    capture_ids: HashMap<u64, NodeId>,
    /// The last `print`, so prints run in the order they were traced.
    last_effect: Option<NodeId>,
}

thread_local! {
    pub(super) static CURRENT: RefCell<Option<TraceState>> = const { RefCell::new(None) };
    /// Traces set aside by `init_scope` (innermost last): code there runs eagerly, but
    /// Variables it creates still obey the rules of the trace it interrupted.
    static SUSPENDED: RefCell<Vec<TraceState>> = const { RefCell::new(Vec::new()) };
}

impl TraceState {
    pub(crate) fn new(name: &str, allow_var_creation: bool) -> TraceState {
        TraceState {
            id: fresh_id(),
            graph: Graph::new(name),
            vars: Vec::new(),
            var_ids: HashMap::new(),
            last_write: HashMap::new(),
            reads_since_write: HashMap::new(),
            consts: HashMap::new(),
            allow_var_creation,
            created_vars: Vec::new(),
            refused: None,
            outer: Vec::new(),
            captures: Vec::new(),
            capture_ids: HashMap::new(),
            last_effect: None,
        }
    }

    /// The node for `t` in this trace: its own node if symbolic here, a constant if concrete,
    /// a new body input if it belongs to a trace enclosing this body (a capture).
    pub(crate) fn node_of(&mut self, t: &Tensor) -> Result<NodeId> {
        if let Some(s) = t.symbol() {
            if s.trace == self.id {
                return Ok(s.node);
            }
            if !self.outer.contains(&s.trace) {
                return Err(leaked());
            }
            if let Some(&n) = self.capture_ids.get(&t.id()) {
                return Ok(n);
            }
            let n = self.graph.add_input(t.tensor_type());
            self.capture_ids.insert(t.id(), n);
            self.captures.push((t.clone(), n));
            return Ok(n);
        }
        if let Some(&n) = self.consts.get(&t.id()) {
            return Ok(n);
        }
        let n = self.graph.add_const(t.try_array("a captured tensor")?.clone());
        self.consts.insert(t.id(), n);
        Ok(n)
    }

    pub(super) fn var_id(&mut self, v: &Variable) -> VarId {
        if let Some(&id) = self.var_ids.get(&v.uid()) {
            return id;
        }
        let id = self.graph.declare_var(v.name(), v.tensor_type());
        self.var_ids.insert(v.uid(), id);
        self.vars.push(v.clone());
        id
    }

    pub(super) fn symbolic(&self, node: NodeId) -> Tensor {
        Tensor::symbolic(self.id, node, self.graph.node(node).ty.clone())
    }
}

fn leaked() -> Error {
    Error::Symbolic(
        "a symbolic tensor escaped the function that traced it (return it from the function instead of storing it)"
            .into(),
    )
}

/// Runs `f` with the current trace, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&mut TraceState>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow_mut().as_mut()))
}

/// Whether `t` can be used here: concrete, or a value of the trace running now (or of one
/// enclosing it). A symbolic tensor kept from a finished trace is not.
pub(crate) fn is_live(t: &Tensor) -> bool {
    match t.symbol() {
        None => true,
        Some(s) => with_current(|cur| cur.is_some_and(|c| c.id == s.trace || c.outer.contains(&s.trace))),
    }
}

/// True while this thread is tracing a function.
pub fn is_tracing() -> bool {
    with_current(|t| t.is_some())
}

/// Installs `state` as this thread's trace for the duration of `f`, then returns it.
pub(crate) fn run_in_trace<R>(state: TraceState, f: impl FnOnce() -> R) -> (R, TraceState) {
    // Restores the outer trace even if `f` panics (the caller catches the panic).
    struct Restore(Option<Option<TraceState>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(prev) = self.0.take() {
                CURRENT.with(|c| *c.borrow_mut() = prev);
            }
        }
    }
    let guard = Restore(Some(CURRENT.with(|c| c.borrow_mut().replace(state))));
    let r = f();
    let state = CURRENT.with(|c| c.borrow_mut().take()).expect("the trace is still installed");
    drop(guard);
    (r, state)
}

/// Runs `f` with the trace stack set aside (the trace half of [`super::init_scope`]).
pub(crate) fn without_trace<R>(f: impl FnOnce() -> R) -> R {
    let suspended = CURRENT.with(|c| c.borrow_mut().take()).map(|s| SUSPENDED.with(|v| v.borrow_mut().push(s)));
    // Reinstalls the interrupted trace even if `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            if self.0 {
                let s = SUSPENDED.with(|v| v.borrow_mut().pop());
                CURRENT.with(|c| *c.borrow_mut() = s);
            }
        }
    }
    let _guard = Restore(suspended.is_some());
    f()
}

/// Runs `f` with the trace whose rules govern creating a Variable now: the current one,
/// else the innermost one interrupted by `init_scope`.
fn with_creating_trace<R>(f: impl FnOnce(Option<&mut TraceState>) -> R) -> R {
    CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(t) => f(Some(t)),
        None => SUSPENDED.with(|v| f(v.borrow_mut().last_mut())),
    })
}

/// A new graph argument of type `ty` in the current trace.
pub(crate) fn add_input(ty: TensorType) -> Tensor {
    with_current(|t| {
        let t = t.expect("add_input is called while tracing");
        let n = t.graph.add_input(ty);
        t.symbolic(n)
    })
}

/// `op` applied to `args` as a node of the current trace (the symbolic half of
/// [`super::apply`]); an error if no trace is running or an operand belongs to another one.
pub(crate) fn add_node(op: &Op, args: &[&Tensor]) -> Result<Tensor> {
    with_current(|t| {
        let t = t.ok_or_else(leaked)?;
        let nodes = args.iter().map(|a| t.node_of(a)).collect::<Result<Vec<_>>>()?;
        let n = t.graph.add(op.clone(), &nodes)?;
        Ok::<_, Error>(t.symbolic(n))
    })
}

/// The Variables behind variable numbers of the current trace.
pub(crate) fn variables(ids: &[VarId]) -> Result<Vec<Variable>> {
    with_current(|t| {
        let t = t.ok_or_else(leaked)?;
        ids.iter()
            .map(|&v| {
                t.vars
                    .get(v as usize)
                    .cloned()
                    .ok_or_else(|| Error::Graph(format!("variable @{v} is not in this trace")))
            })
            .collect()
    })
}

/// An effect op (`print`) applied to `args` in the current trace, after the previous one.
pub(crate) fn add_effect(op: Op, args: &[&Tensor]) -> Result<()> {
    add_effect_value(op, args).map(|_| ())
}

/// [`add_effect`], giving the node's value (a collective's result).
pub(crate) fn add_effect_value(op: Op, args: &[&Tensor]) -> Result<Tensor> {
    with_current(|t| {
        let t = t.ok_or_else(leaked)?;
        let nodes = args.iter().map(|a| t.node_of(a)).collect::<Result<Vec<_>>>()?;
        let n = t.graph.add(op, &nodes)?;
        if let Some(prev) = t.last_effect.replace(n) {
            t.graph.add_order(prev, n);
        }
        Ok(t.symbolic(n))
    })
}

/// A seeded random tensor: a graph node when tracing (never folded), else computed now.
pub(crate) fn random(dist: Distribution, seed: u64, ty: TensorType, counter: Option<&Tensor>) -> Result<Tensor> {
    let tracing = is_tracing();
    if tracing {
        return with_current(|t| {
            let t = t.expect("tracing");
            let c = counter.map(|c| t.node_of(c)).transpose()?;
            let n = t.graph.add_random(dist, seed, ty, c)?;
            Ok(t.symbolic(n))
        });
    }
    let op = Op::Random { dist, seed };
    let args: Vec<&Array> = counter.map(|c| c.try_array("random")).transpose()?.into_iter().collect();
    Ok(Tensor::from_array(interp::eval(&op, &args, &ty)?))
}

/// Inside a trace: a `read_var` node ordered after the variable's last write.
pub(crate) fn read_var(v: &Variable) -> Option<Tensor> {
    with_current(|t| {
        let t = t?;
        let id = t.var_id(v);
        let n = t.graph.add_read_var(id).expect("a declared variable");
        if let Some(&w) = t.last_write.get(&id) {
            t.graph.add_order(w, n);
        }
        t.reads_since_write.entry(id).or_default().push(n);
        Some(t.symbolic(n))
    })
}

/// Inside a trace: an `assign_var` node ordered after the variable's earlier reads and
/// writes. Returns `None` when not tracing.
pub(crate) fn assign_var(v: &Variable, value: &Tensor) -> Option<Result<()>> {
    with_current(|t| {
        let t = t?;
        Some((|| {
            let id = t.var_id(v);
            let src = t.node_of(value)?;
            let n = t.graph.add(Op::AssignVar(id), &[src])?;
            if let Some(w) = t.last_write.insert(id, n) {
                t.graph.add_order(w, n);
            }
            for r in t.reads_since_write.remove(&id).unwrap_or_default() {
                t.graph.add_order(r, n);
            }
            Ok(())
        })())
    })
}

/// Called by `Variable::new`: inside a trace (`init_scope` included), creation is allowed
/// on the first trace only.
pub(crate) fn on_variable_created(v: &Variable) -> Result<()> {
    with_creating_trace(|t| {
        match t {
        None => Ok(()),
        Some(t) if t.allow_var_creation => {
            t.created_vars.push(v.clone());
            Ok(())
        }
        // A body's trace never allows it: the body may run any number of times.
        Some(t) if !t.outer.is_empty() => Err(Error::Trace {
            function: t.graph.name().to_string(),
            msg: format!(
                "creating Variable `{}` inside a control-flow body (cond, switch_case, while_loop, fori_loop, scan) is not supported; create it before the construct (build a layer used in a body by calling it once outside)",
                v.name()
            ),
        }),
        Some(t) => Err(Error::Trace {
            function: t.graph.name().to_string(),
            msg: format!(
                "creating Variable `{}` inside a traced function is allowed only on its first trace (as in TF); create it outside, or build the layer before calling with a new signature",
                v.name()
            ),
        }),
    }
    })
}

/// Records a refused Variable creation on the trace that refused it, which then fails
/// with `e` (the caller, a non-`try_` constructor, carries on instead of panicking).
/// Returns `e` back if no trace is running.
pub(crate) fn fail_trace_later(e: Error) -> std::result::Result<(), Error> {
    with_creating_trace(|t| match t {
        Some(t) => {
            t.refused.get_or_insert(e);
            Ok(())
        }
        None => Err(e),
    })
}
