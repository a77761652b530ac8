//! Gradients through traced control flow. Each rule builds the VJP as region ops, so the
//! backward pass is itself one compiled loop (and differentiable again):
//!
//! - `case`: a `case` on the same index whose branch `k` is the VJP of branch `k`;
//! - `scan` (and `fori_loop`): a forward scan that also stacks each step's incoming carries
//!   (the residuals), then a reverse scan of the body's VJP, whose carries are the carries'
//!   cotangents and the captures' accumulated cotangents (JAX's rule);
//! - `while`: `while_grad`, which reruns the loop keeping each iteration's carries (a history
//!   whose length is known only at run time) and walks it back with the body's VJP (TF's
//!   rule, which JAX refuses); `while_grad` itself has no VJP.
//!
//! A body's VJP is traced by replaying the body graph with kiln ops under a tape and taking
//! the gradient of `sum_j <out_j, ct_j>`. Values the loop does not change (captures,
//! cotangents of a case) are used as outer tensors and become captures of the VJP body.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_ir::{Graph, NodeId, Op, Region, ScanOp, TensorType, WhileGradOp};

use crate::autodiff::GradientTape;
use crate::context::body::{emit, emit_region, trace_body, Body};
use crate::context::{self, apply, trace};
use crate::variable::Variable;
use crate::{Error, Result, Tensor};

type Grads = Result<Vec<Option<Tensor>>>;

/// The gradients of region `op`'s operands `inputs`, given those of its results.
pub(crate) fn vjp(op: &Op, inputs: &[Tensor], outputs: &[Tensor], gs: &[Option<Tensor>]) -> Grads {
    let cts: Vec<Option<Tensor>> =
        outputs.iter().zip(gs).map(|(o, g)| g.clone().filter(|_| o.dtype().is_float())).collect();
    let grads = match op {
        Op::Case(c) => case(&c.branches, inputs, &cts)?,
        Op::Scan(s) => scan(s, inputs, outputs, &cts)?,
        Op::While(w) => while_loop(&w.cond, &w.body, w.carries, inputs, outputs, &cts)?,
        Op::WhileGrad(_) => {
            return Err(Error::Gradient(
                "a second derivative through while_loop is not supported (use fori_loop or scan, whose gradients are differentiable)"
                    .into(),
            ))
        }
        other => return Err(Error::Gradient(format!("`{}` is not a region op", other.name()))),
    };
    Ok(grads.into_iter().zip(inputs).map(|(g, x)| g.filter(|_| x.dtype().is_float())).collect())
}

fn vars_of(r: &Region) -> Result<Vec<Variable>> {
    trace::variables(&r.vars)
}

fn zeros_like(t: &Tensor) -> Result<Tensor> {
    Tensor::try_zeros(t.shape(), t.dtype())
}

/// A cotangent, or zeros where none reached.
fn or_zeros(ct: &Option<Tensor>, like: &Tensor) -> Result<Tensor> {
    ct.clone().map_or_else(|| zeros_like(like), Ok)
}

fn case(branches: &[Region], inputs: &[Tensor], cts: &[Option<Tensor>]) -> Grads {
    let (index, caps) = inputs.split_first().expect("a case has an index");
    let bodies = branches
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let vars = vars_of(r)?;
            trace_body(&format!("branch_{k}_vjp"), &[], |_| vjp_of_body(&r.graph, &vars, caps, cts, &HashMap::new()))
        })
        .collect::<Result<Vec<_>>>()?;
    let grads =
        emit_region(|branches| Op::Case(Arc::new(kiln_ir::CaseOp { branches })), bodies, std::slice::from_ref(index))?;
    let mut out = vec![None];
    out.extend(grads.into_iter().take(caps.len()).map(Some));
    Ok(out)
}

fn scan(s: &ScanOp, inputs: &[Tensor], outputs: &[Tensor], cts: &[Option<Tensor>]) -> Grads {
    let (n, k) = (s.carries, s.xs);
    let (c0, rest) = inputs.split_at(n);
    let (xs, caps) = rest.split_at(k);
    let vars = vars_of(&s.body)?;
    let body_outs = s.body.graph.outputs();
    // The forward saved its incoming carries (its last outputs are its carry inputs), or it
    // did not and runs again here, stacking them.
    let saved = body_outs.len() >= 2 * n && body_outs[body_outs.len() - n..] == s.body.graph.inputs()[1..1 + n];
    let residuals;
    let carried: &[Tensor] = if saved {
        &outputs[outputs.len() - n..]
    } else {
        let mut res = s.body.graph.clone();
        let mut outs = res.outputs().to_vec();
        outs.extend_from_slice(&res.inputs()[1..1 + n]);
        res.set_outputs(outs);
        let forward = Body::from_graph(res, vars.clone(), 1 + n + k, caps.to_vec());
        let mut operands: Vec<Tensor> = c0.to_vec();
        operands.extend_from_slice(xs);
        let fwd = s.clone();
        residuals = emit_region(
            |mut r| Op::Scan(Arc::new(ScanOp { body: r.pop().expect("one body"), ..fwd })),
            vec![forward],
            &operands,
        )?;
        &residuals[outputs.len()..]
    };
    // Only the ys a cotangent reached are scanned; the others contribute none. (The saved
    // residuals have none in a first derivative.)
    let with_ct: Vec<usize> = (n..outputs.len()).filter(|&j| cts[j].is_some()).collect();
    // Products the forward stacked (`Body::save_variant_products`, or a user's ys) are read
    // in the backward pass, not computed again.
    let mut products: Vec<(NodeId, Tensor)> = Vec::new();
    for j in n..outputs.len() {
        let node = body_outs[j];
        if matches!(s.body.graph.node(node).op, Op::MatMul) && !products.iter().any(|(p, _)| *p == node) {
            products.push((node, outputs[j].clone()));
        }
    }
    // Backward: carries are the carries' cotangents and the captures' sums; xs are the
    // residuals, the xs, the ys' cotangents and the saved products.
    let ct_c: Vec<Tensor> = (0..n).map(|j| or_zeros(&cts[j], &outputs[j])).collect::<Result<_>>()?;
    let acc: Vec<Tensor> = caps.iter().map(zeros_like).collect::<Result<_>>()?;
    let ct_y: Vec<Tensor> = with_ct.iter().map(|&j| cts[j].clone().expect("filtered")).collect();
    let row = |t: &Tensor| TensorType::new(t.dtype(), &t.shape()[1..]);
    let mut declared: Vec<TensorType> = vec![TensorType::new(kiln_ir::DType::I64, &[])];
    declared.extend(ct_c.iter().chain(&acc).map(Tensor::tensor_type));
    declared.extend(carried.iter().chain(xs).chain(&ct_y).chain(products.iter().map(|(_, t)| t)).map(row));
    let m = caps.len();
    let body = trace_body("body_vjp", &declared, |ins| {
        let (i, rest) = ins.split_first().expect("an index");
        let (ct_c, rest) = rest.split_at(n);
        let (acc, rest) = rest.split_at(m);
        let (c_i, rest) = rest.split_at(n);
        let (x_i, rest) = rest.split_at(k);
        let (cty, saved_rows) = rest.split_at(with_ct.len());
        let mut at: Vec<Tensor> = vec![i.clone()];
        at.extend_from_slice(c_i);
        at.extend_from_slice(x_i);
        at.extend_from_slice(caps);
        let mut step_cts: Vec<Option<Tensor>> = ct_c.iter().cloned().map(Some).collect();
        step_cts.extend((n..outputs.len()).map(|j| with_ct.iter().position(|&w| w == j).map(|p| cty[p].clone())));
        let saved: HashMap<NodeId, Tensor> = products.iter().map(|(p, _)| *p).zip(saved_rows.iter().cloned()).collect();
        let g = vjp_of_body(&s.body.graph, &vars, &at, &step_cts, &saved)?;
        let (g_c, rest) = g[1..].split_at(n);
        let (g_x, g_caps) = rest.split_at(k);
        let mut out: Vec<Tensor> = g_c.to_vec();
        for (a, gc) in acc.iter().zip(g_caps) {
            out.push(if a.dtype().is_float() { a.try_add(gc)? } else { a.clone() });
        }
        out.extend_from_slice(g_x);
        Ok(out)
    })?;
    let mut operands: Vec<Tensor> = ct_c;
    operands.extend(acc);
    operands.extend(carried.iter().cloned());
    operands.extend_from_slice(xs);
    operands.extend(ct_y);
    operands.extend(products.into_iter().map(|(_, t)| t));
    // The steps run in the other direction (a reverse scan's VJP runs forward).
    let (length, xs_count, reverse) = (s.length, operands.len() - n - m, !s.reverse);
    let back = emit_region(
        |mut r| {
            Op::Scan(Arc::new(ScanOp {
                body: r.pop().expect("one body"),
                length,
                carries: n + m,
                xs: xs_count,
                reverse,
            }))
        },
        vec![body],
        &operands,
    )?;
    // Results: carries' cotangents, captures' sums, then the xs' cotangents stacked.
    let mut grads: Vec<Option<Tensor>> = back[..n].iter().cloned().map(Some).collect();
    grads.extend(back[n + m..n + m + k].iter().cloned().map(Some));
    grads.extend(back[n..n + m].iter().cloned().map(Some));
    Ok(grads)
}

fn while_loop(
    cond: &Region,
    body: &Region,
    n: usize,
    inputs: &[Tensor],
    outputs: &[Tensor],
    cts: &[Option<Tensor>],
) -> Grads {
    let (c0, caps) = inputs.split_at(n);
    let vars = vars_of(body)?;
    let types: Vec<TensorType> = c0.iter().map(Tensor::tensor_type).collect();
    let mut declared = types.clone();
    declared.extend(types.iter().cloned());
    let m = caps.len();
    let vjp_body = trace_body("body_vjp", &declared, |ins| {
        let (c_k, ct) = ins.split_at(n);
        let mut at: Vec<Tensor> = c_k.to_vec();
        at.extend_from_slice(caps);
        let step_cts: Vec<Option<Tensor>> = ct.iter().cloned().map(Some).collect();
        vjp_of_body(&body.graph, &vars, &at, &step_cts, &HashMap::new())
    })?;
    let bodies = vec![
        Body::from_graph(cond.graph.clone(), vars_of(cond)?, n, caps.to_vec()),
        Body::from_graph(body.graph.clone(), vars, n, caps.to_vec()),
        vjp_body,
    ];
    let mut operands: Vec<Tensor> = c0.to_vec();
    for (j, o) in outputs.iter().enumerate() {
        operands.push(or_zeros(&cts[j], o)?);
    }
    let grads = emit_region(
        |mut r| {
            let body_vjp = r.pop().expect("three bodies");
            let body = r.pop().expect("three bodies");
            let cond = r.pop().expect("three bodies");
            Op::WhileGrad(Arc::new(WhileGradOp { cond, body, body_vjp, carries: n }))
        },
        bodies,
        &operands,
    )?;
    Ok(grads.into_iter().take(n + m).map(Some).collect())
}

/// The cotangents of `ins` for a body run on them whose outputs have cotangents `cts`
/// (`None`: none), as the gradient of `sum_j <out_j, ct_j>`; zeros where no gradient flows.
/// Nodes in `saved` take the given values instead of being computed again; they are still
/// recorded as their op on their operands, so gradients flow through them.
fn vjp_of_body(
    g: &Graph,
    vars: &[Variable],
    ins: &[Tensor],
    cts: &[Option<Tensor>],
    saved: &HashMap<NodeId, Tensor>,
) -> Result<Vec<Tensor>> {
    let tape = GradientTape::new();
    for x in ins {
        tape.watch(x);
    }
    let outs = replay(g, vars, ins, saved)?;
    let mut loss: Option<Tensor> = None;
    for (o, ct) in outs.iter().zip(cts) {
        if let Some(ct) = ct.as_ref().filter(|_| o.dtype().is_float()) {
            let term = o.try_mul(ct)?.sum_all();
            loss = Some(match loss {
                None => term,
                Some(l) => l.try_add(&term)?,
            });
        }
    }
    let grads = match loss {
        Some(l) => tape.gradient_tensors(&l, &ins.iter().collect::<Vec<_>>())?,
        None => vec![None; ins.len()],
    };
    grads.into_iter().zip(ins).map(|(g, x)| g.map_or_else(|| zeros_like(x), Ok)).collect()
}

/// Runs graph `g` again as kiln ops on `inputs` (in the current trace, recorded on its
/// tapes). Variable writes are dropped: a VJP must not repeat the body's effects. A node in
/// `saved` is not computed: it takes the saved value, recorded on the tapes as its op.
pub(crate) fn replay(
    g: &Graph,
    vars: &[Variable],
    inputs: &[Tensor],
    saved: &HashMap<NodeId, Tensor>,
) -> Result<Vec<Tensor>> {
    let live = g.live_nodes();
    let mut vals: HashMap<NodeId, Tensor> = HashMap::new();
    let mut tuples: HashMap<NodeId, Vec<Tensor>> = HashMap::new();
    for n in g.topo_order()? {
        if !live.contains(&n) {
            continue;
        }
        let node = g.node(n);
        let args: Vec<Tensor> = g.args(n).iter().filter_map(|a| vals.get(a).cloned()).collect();
        let refs: Vec<&Tensor> = args.iter().collect();
        if let Some(value) = saved.get(&n) {
            context::recording::record(context::recording::Recorded::Op(node.op.clone()), &refs, value);
            vals.insert(n, value.clone());
            continue;
        }
        let var = |v: u32| vars.get(v as usize).ok_or_else(|| Error::Graph(format!("variable @{v} is not bound")));
        let value = match &node.op {
            Op::Input(i) => inputs[*i].clone(),
            Op::Const(a) => Tensor::from_array(a.clone()),
            Op::ReadVar(v) => var(*v)?.read(),
            Op::AssignVar(_) => args[0].clone(),
            Op::Random { dist, seed } => context::random(*dist, *seed, node.ty.clone(), args.first())?,
            Op::Print(_) => continue,
            Op::Case(_) | Op::While(_) | Op::Scan(_) | Op::WhileGrad(_) => {
                let body_vars = node
                    .op
                    .regions()
                    .iter()
                    .map(|r| r.vars.iter().map(|&v| var(v).cloned()).collect::<Result<Vec<_>>>())
                    .collect::<Result<Vec<_>>>()?;
                tuples.insert(n, emit(node.op.clone(), &body_vars, &args)?);
                continue;
            }
            Op::Get(i) => tuples[&g.args(n)[0]][*i].clone(),
            Op::Fused(_) => {
                return Err(Error::Gradient(
                    "a fused kernel cannot be replayed (bodies are replayed before optimization)".into(),
                ))
            }
            // Collectives run again in order on every process, as the forward pass ran them.
            Op::AllReduce(_) | Op::Broadcast(_) | Op::AllGather(_) => context::apply_effect(node.op.clone(), &refs)?,
            op => apply(op.clone(), &refs)?,
        };
        vals.insert(n, value);
    }
    Ok(g.outputs().iter().map(|o| vals[o].clone()).collect())
}
