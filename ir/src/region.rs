//! Region ops: control flow whose bodies are graphs. `case` (cond and switch_case), `while`,
//! `scan` (also fori_loop) and `while_grad` (the reverse pass of a while loop) compute several
//! results at once; a region node's own type is [`TensorType::unit`], and each result is a
//! `get` node reading it (XLA's tuple and get-tuple-element). The semantics are in
//! `docs/CONTROL_FLOW.md`; [`crate::interp::region`] runs them, once for every backend.
//!
//! A body is a [`Region`]: a graph plus the map from its variable table to the enclosing
//! graph's, so a body reads and writes the same Variables as the graph around it.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::infer::TensorType;
use crate::op::VarId;

/// A body graph and where its variables live in the enclosing graph.
#[derive(Clone, Debug)]
pub struct Region {
    pub graph: Graph,
    /// Body variable `i` is the enclosing graph's variable `vars[i]`.
    pub vars: Vec<VarId>,
}

/// Same variable map and structurally equal graphs ([`Graph::structurally_eq`]).
impl PartialEq for Region {
    fn eq(&self, other: &Region) -> bool {
        self.vars == other.vars && self.graph.structurally_eq(&other.graph)
    }
}

impl Region {
    /// A region with no variables.
    pub fn new(graph: Graph) -> Region {
        Region { graph, vars: Vec::new() }
    }

    /// The types of the body's inputs.
    pub fn input_types(&self) -> Vec<TensorType> {
        self.graph.inputs().iter().map(|&i| self.graph.node(i).ty.clone()).collect()
    }

    /// The types of the body's outputs.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.graph.outputs().iter().map(|&o| self.graph.node(o).ty.clone()).collect()
    }

    /// Whether running the body has an effect outside it (a variable write or a print,
    /// at any depth).
    pub fn has_effects(&self) -> bool {
        self.graph.node_ids().any(|id| self.graph.node(id).op.has_side_effect())
    }

    /// Whether the body's result depends only on its inputs (no variable, random number,
    /// print or effect at any depth).
    pub fn is_pure(&self) -> bool {
        self.graph.node_ids().all(|id| {
            let op = &self.graph.node(id).op;
            op.is_pure() || matches!(op, crate::Op::Input(_))
        })
    }
}

/// `cond` and `switch_case`: runs one branch, chosen by the first operand.
///
/// Operands: `index` then the captures. `index` is a `bool` scalar (two branches, `false`
/// runs branch 0 and `true` branch 1) or an `i32`/`i64` scalar (an index out of range runs
/// the last branch, as TF's `switch_case` runs its default). Every branch takes the
/// captures and returns results of the same types.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseOp {
    pub branches: Vec<Region>,
}

/// `while_loop`: operands are the carries then the captures. `cond` maps them to a `bool`
/// scalar; `body` maps them to new carries of the same types. The results are the carries
/// when `cond` is first false.
#[derive(Clone, Debug, PartialEq)]
pub struct WhileOp {
    pub cond: Region,
    pub body: Region,
    pub carries: usize,
}

/// `scan` (and `fori_loop`): `length` steps over the leading axis of the `xs`.
///
/// Operands: carries, xs (each `[length, ...]`), captures. The body takes the step's index
/// (an `i64` scalar), the carries, one slice of each x and the captures, and returns the
/// new carries and one `y` per step. Results: the final carries, then each `y` stacked into
/// `[length, ...]`. With `reverse`, steps run from `length - 1` down to 0 (step `i` still
/// reads `xs[i]` and writes `ys[i]`). Captures come last everywhere, as in every region op,
/// because tracing a body discovers them only as the body uses them.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanOp {
    pub body: Region,
    pub length: usize,
    pub carries: usize,
    pub xs: usize,
    pub reverse: bool,
}

/// The reverse pass of a `while` loop. Operands: the loop's initial carries, the cotangents
/// of its final carries, then its captures. It runs the loop forward again keeping every
/// iteration's carries (a history whose length is known only at run time), then runs
/// `body_vjp` from the last iteration back to the first. `body_vjp` takes one iteration's
/// carries, the cotangents of that iteration's results and the captures, and returns the
/// cotangents of its carries and of the captures. Results: the cotangents of the initial
/// carries, then of the captures (summed over iterations).
#[derive(Clone, Debug, PartialEq)]
pub struct WhileGradOp {
    pub cond: Region,
    pub body: Region,
    pub body_vjp: Region,
    pub carries: usize,
}

fn bad(op: &'static str, msg: String) -> Error {
    Error::invalid(op, msg)
}

/// `Err` unless `got` are exactly the types `want`, naming what they are.
fn check_types(op: &'static str, what: &str, got: &[TensorType], want: &[TensorType]) -> Result<()> {
    if got.len() != want.len() {
        return Err(bad(op, format!("{what}: expected {} value(s), got {}", want.len(), got.len())));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            return Err(bad(op, format!("{what}: value {i} must be {w}, got {g}")));
        }
    }
    Ok(())
}

fn is_scalar_bool(t: &TensorType) -> bool {
    t.dtype == DType::Bool && t.shape.is_empty()
}

fn counter_type() -> TensorType {
    TensorType::new(DType::I64, &[])
}

impl CaseOp {
    /// The results' types, after checking the operands.
    pub fn result_types(&self, operands: &[TensorType]) -> Result<Vec<TensorType>> {
        let op = "case";
        let (index, captures) = operands.split_first().ok_or_else(|| bad(op, "expects an index operand".into()))?;
        let first = self.branches.first().ok_or_else(|| bad(op, "has no branch".into()))?;
        match index.dtype {
            DType::Bool if index.shape.is_empty() => {
                if self.branches.len() != 2 {
                    return Err(bad(op, format!("a bool predicate needs 2 branches, got {}", self.branches.len())));
                }
            }
            DType::I32 | DType::I64 if index.shape.is_empty() => {}
            _ => return Err(bad(op, format!("the index must be a bool, i32 or i64 scalar, got {index}"))),
        }
        let outs = first.output_types();
        for (b, br) in self.branches.iter().enumerate() {
            check_types(op, &format!("branch {b}'s inputs"), &br.input_types(), captures)?;
            check_types(op, &format!("branch {b}'s results (branch 0 gives their types)"), &br.output_types(), &outs)?;
        }
        Ok(outs)
    }
}

impl WhileOp {
    pub fn result_types(&self, operands: &[TensorType]) -> Result<Vec<TensorType>> {
        while_types("while", &self.cond, &self.body, self.carries, operands)
    }
}

/// The carries' types of a while loop with these bodies, after checking the operands.
fn while_types(
    op: &'static str,
    cond: &Region,
    body: &Region,
    carries: usize,
    operands: &[TensorType],
) -> Result<Vec<TensorType>> {
    if operands.len() < carries {
        return Err(bad(op, format!("expects {carries} carries, got {} operand(s)", operands.len())));
    }
    check_types(op, "the condition's inputs", &cond.input_types(), operands)?;
    let c = cond.output_types();
    if c.len() != 1 || !is_scalar_bool(&c[0]) {
        return Err(bad(op, format!("the condition must return one bool scalar, got {c:?}")));
    }
    check_types(op, "the body's inputs", &body.input_types(), operands)?;
    let carries = &operands[..carries];
    check_types(op, "the body's results (the loop variables keep their types)", &body.output_types(), carries)?;
    Ok(carries.to_vec())
}

impl ScanOp {
    pub fn result_types(&self, operands: &[TensorType]) -> Result<Vec<TensorType>> {
        let op = "scan";
        let fixed = self.carries + self.xs;
        if operands.len() < fixed {
            return Err(bad(op, format!("expects at least {fixed} operand(s), got {}", operands.len())));
        }
        let (carries, xs, captures) = (&operands[..self.carries], &operands[self.carries..fixed], &operands[fixed..]);
        let mut want = vec![counter_type()];
        want.extend_from_slice(carries);
        for (i, x) in xs.iter().enumerate() {
            if x.shape.first() != Some(&self.length) {
                return Err(bad(op, format!("x {i} is {x}; its leading axis must be the length {}", self.length)));
            }
            want.push(TensorType::new(x.dtype, &x.shape[1..]));
        }
        want.extend_from_slice(captures);
        check_types(op, "the body's inputs (index, carries, x slices, captures)", &self.body.input_types(), &want)?;
        let outs = self.body.output_types();
        if outs.len() < self.carries {
            return Err(bad(
                op,
                format!("the body returns {} value(s), fewer than the {} carries", outs.len(), self.carries),
            ));
        }
        check_types(op, "the body's new carries (they keep their types)", &outs[..self.carries], carries)?;
        let mut results = carries.to_vec();
        for y in &outs[self.carries..] {
            let mut shape = vec![self.length];
            shape.extend_from_slice(&y.shape);
            let t = TensorType::new(y.dtype, &shape);
            t.check_size(op)?;
            results.push(t);
        }
        Ok(results)
    }
}

impl WhileGradOp {
    pub fn result_types(&self, operands: &[TensorType]) -> Result<Vec<TensorType>> {
        let op = "while_grad";
        let n = self.carries;
        if operands.len() < 2 * n {
            return Err(bad(op, format!("expects at least {} operand(s), got {}", 2 * n, operands.len())));
        }
        let (carries, rest) = operands.split_at(n);
        let (cts, captures) = rest.split_at(n);
        let mut state = carries.to_vec();
        state.extend_from_slice(captures);
        let carry_types = while_types(op, &self.cond, &self.body, n, &state)?;
        check_types(op, "the cotangents of the final carries", cts, &carry_types)?;
        check_types(
            op,
            "the body VJP's inputs (carries, cotangents, captures)",
            &self.body_vjp.input_types(),
            operands,
        )?;
        check_types(
            op,
            "the body VJP's results (cotangents of carries and captures)",
            &self.body_vjp.output_types(),
            &state,
        )?;
        Ok(state)
    }
}
