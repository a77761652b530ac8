//! Deferred eager elementwise ops: eager code at fused-kernel speed.
//!
//! Outside a trace, a large elementwise op (unary, binary, select, cast; at least
//! `eager::MIN_ELEMENTS` elements) on concrete or deferred operands does not run: it returns a
//! tensor that records the op. The first time anything needs the value (`to_vec`, a reduction,
//! a matmul, printing, a Variable assignment), the whole chain of deferred ops behind it is
//! compiled as **one** fused kernel (cached by its identity, as one-op kernels are) and run:
//! `0.5 * x * (1 + tanh(...))` reads `x` once and writes once, where op-by-op eager mode
//! writes and re-reads ten intermediate tensors. Results are the ones op-by-op eager mode
//! gives, bit for bit: the fused kernel lowers each op as its one-op kernel does.
//!
//! What does not change: errors are reported by the op that caused them. Shape and dtype
//! errors are found when the op is written (its type is inferred before it is deferred), a
//! result the allocator refuses fails at its op (the size is probed), and ops on integers,
//! whose division and powers have runtime errors, run at once. Gradient tapes record the op
//! as before; small tensors, reductions and everything else run at once. Bounds keep the
//! cost visible: a chain holds at most [`MAX_OPS`] ops and [`MAX_LEAVES`] operands (beyond,
//! its operands are computed first), and a pending value held elsewhere too, or broadcast 16
//! times or more by the op reading it, is computed once, not inside every chain (or for
//! every element) that reads it. A value nobody observes is never computed.
//!
//! A reduction of a pending chain nothing else holds runs at once, as one kernel with the
//! chain (`sum(square(a - b))` reads `a` and `b` once and writes only the sum).
//!
//! On by default; [`set_lazy_eager`]`(false)` or `KILN_EAGER=immediate` runs every op at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use kiln_ir::{interp, Array, Graph, Kernel, NodeId, Op, TensorType};

use crate::tensor::{Tensor, Value};
use crate::{eager, Error, Result};

/// The most ops one deferred chain holds before its operands are computed.
pub const MAX_OPS: usize = 32;
/// The most operand tensors one deferred chain reads before its operands are computed.
pub const MAX_LEAVES: usize = 16;

/// A deferred op's result: its type, and the op with its operands until the value exists.
pub(crate) struct Deferred {
    pub(crate) ty: TensorType,
    /// Ops in the chain ending here (an op shared by two paths counts twice: an upper bound).
    ops: usize,
    /// Operand tensors the chain reads (upper bound, as `ops`).
    leaves: usize,
    pending: Mutex<Option<Pending>>,
    value: OnceLock<Result<Array>>,
}

/// The recorded op, dropped once its value is computed (releasing its operands).
#[derive(Clone)]
struct Pending {
    op: Op,
    args: Vec<Tensor>,
}

/// 0: not chosen yet (read `KILN_EAGER`); 1: on; 2: off.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Turns deferred eager elementwise ops on (the default) or off, process-wide. Off, every eager
/// op runs when it is written, as a one-op kernel or in the interpreter.
///
/// ```
/// use kiln::{DType, Tensor};
/// let x = Tensor::random_normal(&[1 << 14], DType::F32, 0);
/// let fused = (&x * 2.0 + 1.0).tanh().to_vec::<f32>().unwrap();
/// kiln::set_lazy_eager(false);
/// let op_by_op = (&x * 2.0 + 1.0).tanh().to_vec::<f32>().unwrap();
/// kiln::set_lazy_eager(true);
/// assert_eq!(fused, op_by_op);
/// ```
pub fn set_lazy_eager(on: bool) {
    MODE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// Whether large eager elementwise ops are deferred and fused ([`set_lazy_eager`]).
///
/// ```
/// // `KILN_EAGER=immediate` (or `interpreter`) turns it off for the whole process.
/// let _on: bool = kiln::lazy_eager();
/// ```
pub fn lazy_eager() -> bool {
    match MODE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = !kiln_ir::config::eager_is_immediate() && eager::compiled_enabled();
            MODE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
            on
        }
    }
}

/// `op` on `args` (none symbolic) with result type `ty`, deferred if lazy eager mode takes it;
/// `None` when it must run now.
pub(crate) fn defer(op: &Op, args: &[&Tensor], ty: &TensorType) -> Result<Option<Tensor>> {
    let elementwise = matches!(op, Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast(_));
    // Integer arithmetic has runtime errors (division by zero, negative powers), which must
    // come from the op that caused them: it runs now.
    let no_int_operand = args.iter().all(|a| !a.dtype().is_int());
    if !elementwise
        || !no_int_operand
        || ty.numel() < eager::MIN_ELEMENTS
        || !eager::compilable(op, ty)
        || !lazy_eager()
    {
        return Ok(None);
    }
    probe_result(op, ty)?;
    // A pending operand held elsewhere too (another chain, a gradient tape, a second
    // binding) is computed now, once, rather than inside each chain that reads it; so is
    // one this op broadcasts, which inside the chain would be computed once per element of
    // the result (log-softmax's `log` of the row sums, 1,024 times a row).
    for a in args {
        let broadcast = || a.numel().saturating_mul(kiln_passes::MAX_REPEATS) <= ty.numel();
        if a.is_deferred() && (Arc::strong_count(&a.0) > 1 || broadcast()) {
            a.try_array("a shared deferred value")?;
        }
    }
    let (mut ops, mut leaves) = (1, 0);
    for a in args {
        let (o, l) = a.chain_size();
        ops += o;
        leaves += l;
    }
    if ops > MAX_OPS || leaves > MAX_LEAVES {
        for a in args {
            a.try_array("a long deferred chain")?;
        }
        (ops, leaves) = (1, args.len());
    }
    let pending = Pending { op: op.clone(), args: args.iter().map(|a| (*a).clone()).collect() };
    let d = Deferred { ty: ty.clone(), ops, leaves, pending: Mutex::new(Some(pending)), value: OnceLock::new() };
    Ok(Some(Tensor::from_value(Value::Deferred(Arc::new(d)))))
}

impl Tensor {
    /// True while this is an eager value whose op is recorded but not computed yet
    /// ([`set_lazy_eager`](crate::set_lazy_eager)); reading the value computes it.
    ///
    /// ```
    /// use kiln::{DType, Tensor};
    /// let x = Tensor::random_normal(&[1 << 14], DType::F32, 0);
    /// let y = (&x * 2.0).tanh();
    /// assert_eq!(y.is_deferred(), kiln::lazy_eager());
    /// let _ = y.to_vec::<f32>().unwrap();
    /// assert!(!y.is_deferred());
    /// ```
    pub fn is_deferred(&self) -> bool {
        // The operands are cleared only after the value is set: no need to look at them.
        matches!(&self.0.value, Value::Deferred(d) if d.value.get().is_none())
    }

    /// The recorded op and operands, if this is a deferred tensor whose value is not computed.
    fn pending(&self) -> Option<Pending> {
        match &self.0.value {
            Value::Deferred(d) if d.value.get().is_none() => {
                d.pending.lock().unwrap_or_else(|e| e.into_inner()).clone()
            }
            _ => None,
        }
    }

    /// (ops, operand tensors) of the pending chain ending here: (0, 1) for a value.
    fn chain_size(&self) -> (usize, usize) {
        match &self.0.value {
            Value::Deferred(d) if d.value.get().is_none() => (d.ops, d.leaves),
            _ => (0, 1),
        }
    }
}

/// The value of the deferred tensor `t` (whose state is `d`), computed on first use.
pub(crate) fn value<'a>(t: &Tensor, d: &'a Deferred) -> &'a Result<Array> {
    d.value.get_or_init(|| {
        let v = compute(t);
        // The operands are no longer needed: free them (and the chain behind them).
        *d.pending.lock().unwrap_or_else(|e| e.into_inner()) = None;
        v
    })
}

/// A reduction (`op`, result type `ty`) of a pending chain that nothing else holds, run now
/// as one kernel with the chain, so the chain's values never reach memory (a mean squared
/// error reads its two operands once); `None` when that does not apply. A chain something
/// else still holds is computed and stored first, as any operand is.
pub(crate) fn reduce_chain(op: &Op, args: &[&Tensor], ty: &TensorType) -> Result<Option<Tensor>> {
    let &[x] = args else { return Ok(None) };
    if !matches!(op, Op::Reduce { .. }) || !x.is_deferred() || Arc::strong_count(&x.0) > 1 || !lazy_eager() {
        return Ok(None);
    }
    probe_result(op, ty)?;
    let mut b = Builder::new();
    let input = b.node(x)?;
    let root = b.body.add(op.clone(), &[input])?;
    Ok(Some(Tensor::from_array(b.run(root)?)))
}

/// A result no allocator would give fails here, at the op that asks for it, as it would op
/// by op.
fn probe_result(op: &Op, ty: &TensorType) -> Result<()> {
    kiln_ir::array::probe_alloc(op.name(), ty.bytes(), || format!("the result {ty}"))
}

/// Builds the chain ending at `t` as one kernel body and runs it.
fn compute(t: &Tensor) -> Result<Array> {
    let mut b = Builder::new();
    let root = b.node(t)?;
    b.run(root)
}

/// A kernel body under construction: one input per distinct operand tensor, one node per
/// distinct pending tensor.
struct Builder {
    body: Graph,
    nodes: HashMap<u64, NodeId>,
    leaves: Vec<Array>,
}

/// A step of the depth-first walk: visit a tensor, or add the node of one whose operands
/// have their nodes.
enum Visit {
    Enter(Tensor),
    Exit(u64, Pending),
}

impl Builder {
    fn new() -> Builder {
        Builder { body: Graph::new("deferred"), nodes: HashMap::new(), leaves: Vec::new() }
    }

    /// Runs the body with `root` as its output: the cached kernel, or the reference
    /// interpreter for a body the JIT refuses.
    fn run(mut self, root: NodeId) -> Result<Array> {
        self.body.set_outputs(vec![root]);
        let mut out = match eager::kernel_executable(Kernel { body: self.body.clone() }) {
            Some(exe) => exe.run(&self.leaves, &[])?,
            None => interp::run(&self.body, &self.leaves, &[])?,
        };
        out.outputs.pop().ok_or_else(|| Error::Graph("a deferred chain produced no value".into()))
    }

    /// The node computing `t`, adding the nodes of its pending chain first. Iterative, so a
    /// chain never uses the stack (it is bounded anyway, by `MAX_OPS`).
    fn node(&mut self, t: &Tensor) -> Result<NodeId> {
        let mut stack = vec![Visit::Enter(t.clone())];
        while let Some(v) = stack.pop() {
            match v {
                Visit::Enter(u) if self.nodes.contains_key(&u.id()) => {}
                Visit::Enter(u) => match u.pending() {
                    Some(p) => {
                        let args = p.args.clone();
                        stack.push(Visit::Exit(u.id(), p));
                        stack.extend(args.into_iter().rev().map(Visit::Enter));
                    }
                    None => {
                        let a = u.try_array("a deferred op's operand")?.clone();
                        let n = self.body.add_input(TensorType::new(a.dtype(), a.shape()));
                        self.leaves.push(a);
                        self.nodes.insert(u.id(), n);
                    }
                },
                Visit::Exit(id, _) if self.nodes.contains_key(&id) => {}
                Visit::Exit(id, p) => {
                    let args: Vec<NodeId> = p.args.iter().map(|a| self.nodes[&a.id()]).collect();
                    let n = self.body.add(p.op, &args)?;
                    self.nodes.insert(id, n);
                }
            }
        }
        Ok(self.nodes[&t.id()])
    }
}
