//! [`run`]: executes a whole graph on concrete inputs and variable values, purely.

use std::collections::HashMap;

use super::region::VarState;
use crate::array::Array;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId};
use crate::infer::TensorType;
use crate::op::{Op, VarId};

/// What a graph run produced: the outputs, and the final value of every variable written
/// (sorted by [`VarId`]). The caller commits `writes` only if the run returned `Ok`.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub outputs: Vec<Array>,
    pub writes: Vec<(VarId, Array)>,
}

fn type_of(a: &Array) -> TensorType {
    TensorType::new(a.dtype(), a.shape())
}

/// Checks the bindings against the graph's inputs and variable table.
fn check_bindings(g: &Graph, inputs: &[Array], vars: &[Array]) -> Result<()> {
    let fail = |msg: String| Err(Error::Graph(format!("`{}`: {msg}", g.name())));
    if inputs.len() != g.inputs().len() {
        return fail(format!("expects {} input(s), got {}", g.inputs().len(), inputs.len()));
    }
    for (i, (a, &id)) in inputs.iter().zip(g.inputs()).enumerate() {
        let want = &g.node(id).ty;
        if &type_of(a) != want {
            return fail(format!("input {i} must be {want}, got {}", type_of(a)));
        }
    }
    if vars.len() != g.vars().len() {
        return fail(format!("declares {} variable(s), got {} value(s)", g.vars().len(), vars.len()));
    }
    for (v, decl) in vars.iter().zip(g.vars()) {
        if type_of(v) != decl.ty {
            return Err(Error::Variable {
                name: decl.name.clone(),
                msg: format!("the graph expects {}, got {}", decl.ty, type_of(v)),
            });
        }
    }
    Ok(())
}

/// Runs `g` on `inputs` (one per graph input, in order) and `vars` (one value per entry of
/// `g.vars()`), executing the [live](Graph::live_nodes) nodes in [`Graph::topo_order`]: a
/// dead op is pruned as the optimizer would, so its failure cannot fail the run. Nothing
/// outside is mutated:
/// variable writes go to a local copy, so a `ReadVar` ordered after an `AssignVar` sees the
/// written value, and the final values come back in [`Outcome::writes`].
///
/// ```
/// use kiln_ir::{interp, Array, BinaryOp, DType, Graph, Op, TensorType};
/// let mut g = Graph::new("step");
/// let t = TensorType::new(DType::F32, &[]);
/// let v = g.declare_var("w", t.clone());
/// let x = g.add_input(t);
/// let r = g.add_read_var(v).unwrap();
/// let s = g.add(Op::Binary(BinaryOp::Add), &[r, x]).unwrap();
/// let w = g.add(Op::AssignVar(v), &[s]).unwrap();
/// g.set_outputs(vec![s]);
/// let out = interp::run(&g, &[Array::scalar(2.0f32)], &[Array::scalar(1.0f32)]).unwrap();
/// assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), vec![3.0]);
/// assert_eq!(out.writes[0].0, v);
/// # let _ = w;
/// ```
pub fn run(g: &Graph, inputs: &[Array], vars: &[Array]) -> Result<Outcome> {
    check_bindings(g, inputs, vars)?;
    let mut state = VarState::new(vars.to_vec());
    let outputs = run_in(g, inputs, &mut state)?;
    let writes = state
        .current
        .into_iter()
        .enumerate()
        .filter(|(i, _)| state.written[*i])
        .map(|(i, a)| (i as VarId, a))
        .collect();
    Ok(Outcome { outputs, writes })
}

/// Runs `g` with its variables in `state` (written in place), returning its outputs.
fn run_in(g: &Graph, inputs: &[Array], state: &mut VarState) -> Result<Vec<Array>> {
    let mut values: HashMap<NodeId, Array> = HashMap::with_capacity(g.len());
    let mut results: HashMap<NodeId, Vec<Array>> = HashMap::new();
    let live = g.live_nodes();
    for id in g.topo_order()? {
        if !live.contains(&id) {
            continue;
        }
        let node = g.node(id);
        let args: Vec<&Array> = g.args(id).iter().map(|a| &values[a]).collect();
        let value =
            match &node.op {
                Op::Input(i) => inputs.get(*i).cloned().ok_or_else(|| Error::Graph(format!("no input {i}")))?,
                Op::ReadVar(v) => var(&state.current, *v)?.clone(),
                Op::AssignVar(v) => {
                    let [new] = args.as_slice() else {
                        return Err(Error::invalid("assign_var", format!("expects 1 operand, got {}", args.len())));
                    };
                    let slot = *v as usize;
                    if type_of(new) != type_of(var(&state.current, *v)?) {
                        return Err(Error::Variable {
                            name: g.vars()[slot].name.clone(),
                            msg: format!("cannot assign {} to a variable of type {}", type_of(new), g.vars()[slot].ty),
                        });
                    }
                    state.current[slot] = (*new).clone();
                    state.written[slot] = true;
                    (*new).clone()
                }
                Op::Case(_) | Op::While(_) | Op::Scan(_) | Op::WhileGrad(_) => {
                    let owned: Vec<Array> = args.iter().map(|&a| a.clone()).collect();
                    let regions = node.op.regions();
                    let out = super::region::run(&node.op, &owned, &mut |k, ins: &[Array], outs: &mut Vec<Array>| {
                        let r = regions[k];
                        let mut inner = VarState::new(state.enter(r)?);
                        *outs = run_in(&r.graph, ins, &mut inner)?;
                        let writes = inner.current.into_iter().enumerate().filter(|(i, _)| inner.written[*i]);
                        state.leave(r, writes.map(|(i, a)| (i as VarId, a)).collect());
                        Ok(())
                    })?;
                    results.insert(id, out);
                    Array::zeros(&[0], crate::DType::Bool)
                }
                Op::Get(i) => {
                    let region = g.args(id)[0];
                    results.get(&region).and_then(|r| r.get(*i)).cloned().ok_or_else(|| {
                        Error::Graph(format!("`get` {i} reads a region that did not produce result {i}"))
                    })?
                }
                op => super::eval(op, &args, &node.ty)?,
            };
        values.insert(id, value);
    }
    Ok(g.outputs().iter().map(|o| values[o].clone()).collect())
}

fn var(current: &[Array], v: VarId) -> Result<&Array> {
    current.get(v as usize).ok_or_else(|| Error::Graph(format!("variable @{v} is not declared")))
}
