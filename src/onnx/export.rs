//! kiln graph → ONNX model (opset [`super::OPSET`]).
//!
//! One walk over the graph in topological order; each node becomes one or a few ONNX nodes.
//! [`emit_op`] matches on every kind of [`Op`] with no catch-all arm: a new op is a compile
//! error here, the place that must decide whether ONNX can express it.

use std::collections::{HashMap, HashSet};

use kiln_ir::{Array, BinaryOp, DType, Graph, NodeId, Op, ReduceOp, Region, SliceDim, TensorType, UnaryOp};
use prost::Message;

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::{Error, Result};

fn unsupported(op: &Op, why: &str) -> Error {
    Error::invalid("onnx::save", format!("op `{}` cannot be expressed in ONNX: {why}", op.name()))
}

/// The ONNX element type of a kiln dtype.
pub(super) fn onnx_dtype(d: DType) -> DataType {
    match d {
        DType::F32 => DataType::Float,
        DType::F64 => DataType::Double,
        DType::I32 => DataType::Int32,
        DType::I64 => DataType::Int64,
        DType::Bool => DataType::Bool,
    }
}

/// A tensor initializer holding `a` (raw little-endian bytes, as ONNX stores them).
pub(super) fn tensor_proto(name: &str, a: &Array) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: a.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(onnx_dtype(a.dtype()) as i32),
        raw_data: Some(a.data().as_bytes().to_vec()),
        ..Default::default()
    }
}

fn value_info(name: &str, ty: &TensorType) -> ValueInfoProto {
    let dim = ty
        .shape
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(onnx_dtype(ty.dtype) as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_graph(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(g),
        ..Default::default()
    }
}

fn ints(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&d| d as i64).collect()
}

/// Model-wide state: fresh names (ONNX names are global across subgraphs) and initializers.
struct Exporter {
    next: usize,
    used: HashSet<String>,
    initializers: Vec<TensorProto>,
}

impl Exporter {
    fn fresh(&mut self, stem: &str) -> String {
        loop {
            let name = format!("{stem}_{}", self.next);
            self.next += 1;
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// `name`, or `name` with a suffix if it is taken.
    fn reserve(&mut self, name: &str) -> String {
        if self.used.insert(name.to_string()) {
            name.to_string()
        } else {
            self.fresh(name)
        }
    }

    fn constant(&mut self, a: &Array) -> String {
        let name = self.fresh("const");
        self.initializers.push(tensor_proto(&name, a));
        name
    }

    fn i64s(&mut self, v: &[i64]) -> String {
        self.constant(&Array::from_vec(v.to_vec(), &[v.len()]).expect("a vector's shape"))
    }

    fn scalar(&mut self, d: DType, v: f64) -> String {
        self.constant(&Array::scalar_f64(d, v))
    }
}

/// The ONNX nodes of one graph scope (the model's graph or a subgraph).
struct Scope<'e> {
    ex: &'e mut Exporter,
    nodes: Vec<NodeProto>,
}

impl Scope<'_> {
    /// Appends `op_type(inputs) -> outputs` and returns the outputs' names.
    fn node_n(&mut self, op_type: &str, inputs: &[&str], n: usize, attrs: Vec<AttributeProto>) -> Vec<String> {
        let outputs: Vec<String> = (0..n).map(|_| self.ex.fresh(&op_type.to_lowercase())).collect();
        self.nodes.push(NodeProto {
            name: Some(format!("{op_type}_{}", self.nodes.len())),
            op_type: Some(op_type.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.clone(),
            attribute: attrs,
            ..Default::default()
        });
        outputs
    }

    fn node(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.node_n(op_type, inputs, 1, attrs).remove(0)
    }
}

/// `g` as an ONNX graph body: `inputs[i]` names the value of `Input(i)`, `vars[v]` that of
/// variable `v`. Returns the names of the graph's outputs (each made by an `Identity`, so
/// every output is a fresh name produced inside this scope, as subgraphs require).
fn emit_graph(s: &mut Scope, g: &Graph, inputs: &[String], vars: &[String]) -> Result<Vec<String>> {
    let mut values: HashMap<NodeId, Vec<String>> = HashMap::new();
    for id in g.topo_order()? {
        let node = g.node(id);
        let args = g.args(id);
        let arg_names: Vec<&str> = args.iter().map(|a| values[a][0].as_str()).collect();
        let arg_types: Vec<&TensorType> = args.iter().map(|&a| &g.node(a).ty).collect();
        let out = match &node.op {
            Op::Input(i) => vec![inputs
                .get(*i)
                .cloned()
                .ok_or_else(|| Error::invalid("onnx::save", format!("input {i} is not bound")))?],
            Op::Const(a) => vec![s.ex.constant(a)],
            Op::ReadVar(v) => vec![vars
                .get(*v as usize)
                .cloned()
                .ok_or_else(|| Error::invalid("onnx::save", format!("variable {v} is not bound")))?],
            Op::Get(i) => {
                let results = &values[&args[0]];
                vec![results.get(*i).cloned().ok_or_else(|| {
                    Error::invalid("onnx::save", format!("get {i} of a region op with {} results", results.len()))
                })?]
            }
            op => emit_op(s, op, &arg_names, &arg_types, &node.ty, vars)?,
        };
        values.insert(id, out);
    }
    Ok(g.outputs().iter().map(|o| s.node("Identity", &[&values[o][0]], vec![])).collect())
}

/// A region body as an ONNX subgraph: `formal` are the subgraph's own inputs (named and
/// typed), `bound` the names of the body's inputs in order (formal ones and outer-scope
/// values), `vars` the enclosing scope's variable names.
fn subgraph(
    ex: &mut Exporter,
    name: &str,
    region: &Region,
    formal: &[(String, TensorType)],
    bound: &[String],
    vars: &[String],
) -> Result<GraphProto> {
    let body_vars: Vec<String> = region.vars.iter().map(|&v| vars[v as usize].clone()).collect();
    let mut s = Scope { ex, nodes: Vec::new() };
    let outs = emit_graph(&mut s, &region.graph, bound, &body_vars)?;
    let outputs: Vec<(String, TensorType)> = outs.iter().cloned().zip(region.output_types()).collect();
    Ok(GraphProto {
        name: Some(name.to_string()),
        node: s.nodes,
        input: formal.iter().map(|(n, t)| value_info(n, t)).collect(),
        output: outputs.iter().map(|(n, t)| value_info(n, t)).collect(),
        ..Default::default()
    })
}

/// Emits one op; returns its result names (several for a region op).
fn emit_op(
    s: &mut Scope,
    op: &Op,
    args: &[&str],
    arg_types: &[&TensorType],
    ty: &TensorType,
    vars: &[String],
) -> Result<Vec<String>> {
    let one = |v: String| Ok(vec![v]);
    match op {
        Op::Input(_) | Op::Const(_) | Op::ReadVar(_) | Op::Get(_) => {
            unreachable!("sources and `get` are bound by emit_graph")
        }
        Op::Random { .. } => Err(unsupported(op, "ONNX's random ops do not promise kiln's stateless, seeded numbers")),
        Op::AssignVar(_) => {
            Err(unsupported(op, "an ONNX model has no mutable state (export a function without Variable writes)"))
        }
        Op::Print(_) => Err(unsupported(op, "ONNX has no printing op")),
        Op::AllReduce(_) | Op::Broadcast(_) | Op::AllGather(_) => {
            Err(unsupported(op, "collectives need other processes, which an ONNX model has no notion of"))
        }
        Op::WhileGrad(_) => {
            Err(unsupported(op, "the reverse pass of a while loop keeps a history whose length only the run knows"))
        }
        Op::Unary(u) => one(unary(s, *u, args[0], ty.dtype)),
        Op::Binary(b) => one(binary(s, *b, args)),
        Op::Select => one(s.node("Where", args, vec![])),
        Op::Cast(d) => one(s.node("Cast", args, vec![attr_int("to", onnx_dtype(*d) as i64)])),
        Op::BroadcastTo(shape) => {
            let shape = s.ex.i64s(&ints(shape));
            one(s.node("Expand", &[args[0], &shape], vec![]))
        }
        Op::Reshape(shape) => {
            let shape = s.ex.i64s(&ints(shape));
            one(s.node("Reshape", &[args[0], &shape], vec![]))
        }
        Op::Transpose(perm) => one(s.node("Transpose", args, vec![attr_ints("perm", &ints(perm))])),
        Op::Slice(dims) => one(slice(s, args[0], dims)),
        Op::Unslice { dims, shape } => {
            if dims.iter().any(|d| d.step != 1 && d.len > 1) {
                return Err(unsupported(op, "only unit-step unslices map onto ONNX `Pad`"));
            }
            let before: Vec<i64> = dims.iter().map(|d| d.start as i64).collect();
            let after: Vec<i64> = dims.iter().zip(shape).map(|(d, &n)| (n - d.start - d.len) as i64).collect();
            let pads = s.ex.i64s(&[before, after].concat());
            one(s.node("Pad", &[args[0], &pads], vec![]))
        }
        Op::Concat { axis } => one(s.node("Concat", args, vec![attr_int("axis", *axis as i64)])),
        Op::Gather { axis } => one(s.node("Gather", args, vec![attr_int("axis", *axis as i64)])),
        Op::ScatterAdd { axis, shape } => one(scatter_add(s, args, arg_types, *axis, shape, ty.dtype)),
        Op::Reduce { op: r, axes, keepdims } => one(reduce(s, *r, args[0], axes, *keepdims)),
        Op::ArgReduce { op: a, axis, keepdims } => {
            let name = match a {
                kiln_ir::ArgOp::ArgMax => "ArgMax",
                kiln_ir::ArgOp::ArgMin => "ArgMin",
            };
            one(s.node(name, args, vec![attr_int("axis", *axis as i64), attr_int("keepdims", *keepdims as i64)]))
        }
        Op::MatMul => one(s.node("MatMul", args, vec![])),
        Op::Fused(k) => {
            // The body's inputs are the node's operands; its one output is the node's value.
            let inputs: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            emit_graph(s, &k.body, &inputs, &[])
        }
        Op::Case(c) => case(s, &c.branches, args, arg_types[0].dtype, vars),
        Op::While(w) => while_loop(s, w, args, arg_types, vars),
        Op::Scan(sc) => scan(s, sc, args, arg_types, vars),
    }
}

fn unary(s: &mut Scope, u: UnaryOp, x: &str, d: DType) -> String {
    let direct = match u {
        UnaryOp::Neg => "Neg",
        UnaryOp::Abs => "Abs",
        UnaryOp::Exp => "Exp",
        UnaryOp::Log => "Log",
        UnaryOp::Sqrt => "Sqrt",
        UnaryOp::Tanh => "Tanh",
        UnaryOp::Sigmoid => "Sigmoid",
        UnaryOp::Relu => "Relu",
        UnaryOp::Softplus => "Softplus",
        UnaryOp::Sin => "Sin",
        UnaryOp::Cos => "Cos",
        UnaryOp::Sign => "Sign",
        UnaryOp::Floor => "Floor",
        UnaryOp::Ceil => "Ceil",
        UnaryOp::Round => "Round",
        UnaryOp::LogicalNot => "Not",
        // No ONNX op of their own: their definitions.
        UnaryOp::Log1p => {
            let one = s.ex.scalar(d, 1.0);
            let y = s.node("Add", &[x, &one], vec![]);
            return s.node("Log", &[&y], vec![]);
        }
        UnaryOp::Expm1 => {
            let one = s.ex.scalar(d, 1.0);
            let y = s.node("Exp", &[x], vec![]);
            return s.node("Sub", &[&y, &one], vec![]);
        }
        UnaryOp::Rsqrt => {
            let y = s.node("Sqrt", &[x], vec![]);
            return s.node("Reciprocal", &[&y], vec![]);
        }
        UnaryOp::Square => return s.node("Mul", &[x, x], vec![]),
    };
    s.node(direct, &[x], vec![])
}

fn binary(s: &mut Scope, b: BinaryOp, args: &[&str]) -> String {
    let name = match b {
        BinaryOp::Add => "Add",
        BinaryOp::Sub => "Sub",
        BinaryOp::Mul => "Mul",
        BinaryOp::Div => "Div",
        BinaryOp::Pow => "Pow",
        BinaryOp::Maximum => "Max",
        BinaryOp::Minimum => "Min",
        BinaryOp::Equal => "Equal",
        BinaryOp::Less => "Less",
        BinaryOp::LessEqual => "LessOrEqual",
        BinaryOp::Greater => "Greater",
        BinaryOp::GreaterEqual => "GreaterOrEqual",
        BinaryOp::LogicalAnd => "And",
        BinaryOp::LogicalOr => "Or",
        BinaryOp::NotEqual => {
            let eq = s.node("Equal", args, vec![]);
            return s.node("Not", &[&eq], vec![]);
        }
    };
    s.node(name, args, vec![])
}

fn slice(s: &mut Scope, x: &str, dims: &[SliceDim]) -> String {
    let (mut starts, mut ends, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    for d in dims {
        let start = d.start as i64;
        let end = start + d.step as i64 * d.len as i64;
        starts.push(if d.len == 0 { 0 } else { start });
        // A negative step ending before index 0: ONNX reads a negative end as counted from
        // the back, so "before the first element" is spelled as the smallest i64 (clamped to -1).
        ends.push(if d.len == 0 {
            0
        } else if end < 0 {
            i64::MIN
        } else {
            end
        });
        steps.push(d.step as i64);
    }
    let axes: Vec<i64> = (0..dims.len() as i64).collect();
    let names = [s.ex.i64s(&starts), s.ex.i64s(&ends), s.ex.i64s(&axes), s.ex.i64s(&steps)];
    s.node("Slice", &[x, &names[0], &names[1], &names[2], &names[3]], vec![])
}

fn reduce(s: &mut Scope, r: ReduceOp, x: &str, axes: &[usize], keepdims: bool) -> String {
    if axes.is_empty() {
        // kiln reduces over no axis (the identity); ONNX reads empty axes as "all".
        return s.node("Identity", &[x], vec![]);
    }
    let name = match r {
        ReduceOp::Sum => "ReduceSum",
        ReduceOp::Mean => "ReduceMean",
        ReduceOp::Max => "ReduceMax",
        ReduceOp::Min => "ReduceMin",
        ReduceOp::Prod => "ReduceProd",
    };
    let keep = attr_int("keepdims", keepdims as i64);
    // Opset 17: only ReduceSum takes its axes as an input (the others from opset 18).
    if r == ReduceOp::Sum {
        let axes = s.ex.i64s(&ints(axes));
        s.node(name, &[x, &axes], vec![keep])
    } else {
        s.node(name, &[x], vec![attr_ints("axes", &ints(axes)), keep])
    }
}

/// `ScatterAdd` as a masked sum, exact and NaN-safe (a one-hot matmul would spread a NaN
/// update to every row): with the dims before the axis flattened to `P`, the indices to `M`
/// and the dims after to `Q`, `out[p, j, q] = sum_m where(indices[m] == j, updates[p, m, q], 0)`.
/// (`ScatterND` with `reduction="add"` says the same, but runtimes differ on repeated indices.)
fn scatter_add(s: &mut Scope, args: &[&str], types: &[&TensorType], axis: usize, shape: &[usize], d: DType) -> String {
    let (updates, indices) = (args[0], args[1]);
    let m: usize = types[1].shape.iter().product();
    let p: usize = shape[..axis].iter().product();
    let q: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let index_type = types[1].dtype;
    let u_shape = s.ex.i64s(&ints(&[p, m, 1, q]));
    let updates = s.node("Reshape", &[updates, &u_shape], vec![]);
    let i_shape = s.ex.i64s(&ints(&[1, m, 1, 1]));
    let idx = s.node("Reshape", &[indices, &i_shape], vec![]);
    let positions: Vec<f64> = (0..n).map(|j| j as f64).collect();
    let positions = s.ex.constant(
        &Array::new(
            match index_type {
                DType::I32 => kiln_ir::Data::I32(positions.iter().map(|&v| v as i32).collect()),
                _ => kiln_ir::Data::I64(positions.iter().map(|&v| v as i64).collect()),
            },
            &[1, 1, n, 1],
        )
        .expect("a [1, 1, n, 1] vector"),
    );
    let mask = s.node("Equal", &[&idx, &positions], vec![]);
    let zero = s.ex.scalar(d, 0.0);
    let picked = s.node("Where", &[&mask, &updates, &zero], vec![]);
    let summed = reduce(s, ReduceOp::Sum, &picked, &[1], false);
    let out_shape = s.ex.i64s(&ints(shape));
    s.node("Reshape", &[&summed, &out_shape], vec![])
}

/// `case` as `If`: a bool predicate picks branch 1 when true; an integer index becomes a
/// chain of `If`s on `index == k`, the last branch taking every other index (as kiln does).
fn case(s: &mut Scope, branches: &[Region], args: &[&str], index: DType, vars: &[String]) -> Result<Vec<String>> {
    let captures: Vec<String> = args[1..].iter().map(|a| a.to_string()).collect();
    let types = branches[0].output_types();
    let branch = |ex: &mut Exporter, b: &Region| subgraph(ex, "branch", b, &[], &captures, vars);
    let if_attrs = |then_g, else_g| vec![attr_graph("then_branch", then_g), attr_graph("else_branch", else_g)];
    let pred = args[0];
    if index == DType::Bool {
        let (then_g, else_g) = (branch(s.ex, &branches[1])?, branch(s.ex, &branches[0])?);
        return Ok(s.node_n("If", &[pred], types.len(), if_attrs(then_g, else_g)));
    }
    let Some((last, rest)) = branches.split_last() else {
        return Err(Error::invalid("onnx::save", "a case without branches".to_string()));
    };
    if rest.is_empty() {
        // One branch always runs.
        let always = s.ex.constant(&Array::scalar(true));
        let (a, b) = (branch(s.ex, last)?, branch(s.ex, last)?);
        return Ok(s.node_n("If", &[&always], types.len(), if_attrs(a, b)));
    }
    // The conditions are computed in this scope; the nested `If`s read them from outside.
    let conds: Vec<String> = (0..rest.len())
        .map(|k| {
            let kk = s.ex.scalar(index, k as f64);
            s.node("Equal", &[pred, &kk], vec![])
        })
        .collect();
    // From the innermost `If` out: the else of `If(index == k)` runs branches k+1.. .
    let mut else_g = branch(s.ex, last)?;
    for k in (1..rest.len()).rev() {
        let then_g = branch(s.ex, &rest[k])?;
        let mut inner = Scope { ex: s.ex, nodes: Vec::new() };
        let outs = inner.node_n("If", &[&conds[k]], types.len(), if_attrs(then_g, else_g));
        else_g = GraphProto {
            name: Some("branch".into()),
            node: inner.nodes,
            output: outs.iter().zip(&types).map(|(n, t)| value_info(n, t)).collect(),
            ..Default::default()
        };
    }
    let then_g = branch(s.ex, &rest[0])?;
    Ok(s.node_n("If", &[&conds[0]], types.len(), if_attrs(then_g, else_g)))
}

/// `while` as `Loop` with no trip count: the condition runs once before the loop (ONNX's
/// initial `cond`) and again at the end of each iteration on the new carries.
fn while_loop(
    s: &mut Scope,
    w: &kiln_ir::WhileOp,
    args: &[&str],
    arg_types: &[&TensorType],
    vars: &[String],
) -> Result<Vec<String>> {
    let all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let captures = &all[w.carries..];
    let cond_vars: Vec<String> = w.cond.vars.iter().map(|&v| vars[v as usize].clone()).collect();
    let first = emit_graph(s, &w.cond.graph, &all, &cond_vars)?;
    let counter = (s.ex.fresh("iter"), TensorType::new(DType::I64, &[]));
    let cond_in = (s.ex.fresh("cond_in"), TensorType::new(DType::Bool, &[]));
    let carries: Vec<(String, TensorType)> =
        arg_types[..w.carries].iter().map(|&t| (s.ex.fresh("carry"), t.clone())).collect();
    let mut formal = vec![counter, cond_in];
    formal.extend(carries.iter().cloned());
    let mut bound: Vec<String> = carries.iter().map(|(n, _)| n.clone()).collect();
    bound.extend_from_slice(captures);
    // Body: new carries, then the condition on them (the first output, as ONNX wants it).
    let body_vars: Vec<String> = w.body.vars.iter().map(|&v| vars[v as usize].clone()).collect();
    let mut inner = Scope { ex: s.ex, nodes: Vec::new() };
    let new = emit_graph(&mut inner, &w.body.graph, &bound, &body_vars)?;
    let mut next = new.clone();
    next.extend_from_slice(captures);
    let cond_out = emit_graph(&mut inner, &w.cond.graph, &next, &cond_vars)?;
    let mut outputs = vec![value_info(&cond_out[0], &TensorType::new(DType::Bool, &[]))];
    outputs.extend(new.iter().zip(&carries).map(|(n, (_, t))| value_info(n, t)));
    let body = GraphProto {
        name: Some("while_body".into()),
        node: inner.nodes,
        input: formal.iter().map(|(n, t)| value_info(n, t)).collect(),
        output: outputs,
        ..Default::default()
    };
    let mut inputs: Vec<&str> = vec!["", &first[0]];
    inputs.extend(args[..w.carries].iter().copied());
    Ok(s.node_n("Loop", &inputs, w.carries, vec![attr_graph("body", body)]))
}

/// `scan` as ONNX `Scan`. kiln's body also takes the step index: it comes in as one more
/// scanned input, `0..length`, read in the same direction as the xs, so step `i` sees `i`.
fn scan(
    s: &mut Scope,
    sc: &kiln_ir::ScanOp,
    args: &[&str],
    arg_types: &[&TensorType],
    vars: &[String],
) -> Result<Vec<String>> {
    let fixed = sc.carries + sc.xs;
    let captures: Vec<String> = args[fixed..].iter().map(|a| a.to_string()).collect();
    let steps: Vec<i64> = (0..sc.length as i64).collect();
    let steps = s.ex.i64s(&steps);
    let index = (s.ex.fresh("step"), TensorType::new(DType::I64, &[]));
    let carries: Vec<(String, TensorType)> =
        arg_types[..sc.carries].iter().map(|&t| (s.ex.fresh("carry"), t.clone())).collect();
    let slices: Vec<(String, TensorType)> = arg_types[sc.carries..fixed]
        .iter()
        .map(|&t| (s.ex.fresh("x"), TensorType::new(t.dtype, &t.shape[1..])))
        .collect();
    // ONNX's order: state variables, then the scanned inputs.
    let mut formal = carries.clone();
    formal.push(index.clone());
    formal.extend(slices.iter().cloned());
    let mut bound = vec![index.0.clone()];
    bound.extend(carries.iter().map(|(n, _)| n.clone()));
    bound.extend(slices.iter().map(|(n, _)| n.clone()));
    bound.extend(captures);
    let body = subgraph(s.ex, "scan_body", &sc.body, &formal, &bound, vars)?;
    let direction = sc.reverse as i64;
    let n_ys = sc.body.output_types().len() - sc.carries;
    let mut inputs: Vec<&str> = args[..sc.carries].to_vec();
    inputs.push(&steps);
    inputs.extend(&args[sc.carries..fixed]);
    let attrs = vec![
        attr_graph("body", body),
        attr_int("num_scan_inputs", 1 + sc.xs as i64),
        attr_ints("scan_input_directions", &vec![direction; 1 + sc.xs]),
        attr_ints("scan_output_directions", &vec![direction; n_ys]),
    ];
    Ok(s.node_n("Scan", &inputs, sc.carries + n_ys, attrs))
}

/// The model of graph `g` whose variable `v` holds `vars[v]` (an initializer named after
/// the variable).
pub(super) fn model(g: &Graph, vars: &[Array]) -> Result<ModelProto> {
    if vars.len() != g.vars().len() {
        return Err(Error::invalid(
            "onnx::save",
            format!("the graph declares {} variable(s), {} value(s) given", g.vars().len(), vars.len()),
        ));
    }
    let mut ex = Exporter { next: 0, used: HashSet::new(), initializers: Vec::new() };
    let inputs: Vec<String> = (0..g.inputs().len()).map(|i| ex.reserve(&format!("input_{i}"))).collect();
    let var_names: Vec<String> = g.vars().iter().map(|d| ex.reserve(&d.name)).collect();
    for (name, value) in var_names.iter().zip(vars) {
        ex.initializers.push(tensor_proto(name, value));
    }
    let mut s = Scope { ex: &mut ex, nodes: Vec::new() };
    let outs = emit_graph(&mut s, g, &inputs, &var_names)?;
    let mut nodes = s.nodes;
    // Name the outputs `output_i` (the Identity nodes emit_graph ends with).
    let mut outputs = Vec::new();
    for (i, (out, &id)) in outs.iter().zip(g.outputs()).enumerate() {
        let name = ex.reserve(&format!("output_{i}"));
        let node = nodes.iter_mut().rev().find(|n| n.output.first() == Some(out)).expect("emit_graph's Identity");
        node.output[0] = name.clone();
        outputs.push(value_info(&name, &g.node(id).ty));
    }
    let graph = GraphProto {
        name: Some(g.name().to_string()),
        node: nodes,
        initializer: ex.initializers,
        input: inputs.iter().zip(g.inputs()).map(|(n, &id)| value_info(n, &g.node(id).ty)).collect(),
        output: outputs,
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: Some(super::IR_VERSION),
        producer_name: Some("kiln".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(super::OPSET) }],
        graph: Some(graph),
        ..Default::default()
    })
}

/// The encoded model (see [`model`]).
pub(super) fn model_bytes(g: &Graph, vars: &[Array]) -> Result<Vec<u8>> {
    Ok(model(g, vars)?.encode_to_vec())
}
