//! ONNX model → kiln graph, for given input types.
//!
//! Each ONNX node becomes kiln ops added with [`Graph::add`], so shape inference checks every
//! one as it is built. Values every operand of which is constant are computed at once by the
//! reference interpreter: the `Shape → Gather → Concat → Reshape` chains exporters write
//! become constants, and the operands that must be known here (shapes, axes, pads) are.
//! Subgraphs (`If`, `Loop`, `Scan`) become region bodies; the outer values they read become
//! the region's captures.

use std::collections::{HashMap, HashSet};

use kiln_ir::shape::{broadcast_shapes, checked_numel};
use kiln_ir::{
    ArgOp, Array, BinaryOp, CaseOp, DType, Data, Graph, NodeId, Op, ReduceOp, Region, ScanOp, SliceDim, TensorType,
    UnaryOp, WhileOp,
};

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension, type_proto, AttributeProto,
    GraphProto, NodeProto, TensorProto, ValueInfoProto,
};
use crate::{Error, Result};

/// The most elements one tensor of a model may claim (2^31: a model, at most 2 GiB of protobuf,
/// holds no more one-byte elements): dims that claim more are refused before anything is allocated.
pub(super) const MAX_ELEMENTS: usize = 1 << 31;

/// The op types [`Builder::node`] imports (checked up front when input shapes are unknown).
#[rustfmt::skip]
pub(super) const SUPPORTED: &[&str] = &[
    "Identity", "Neg", "Abs", "Exp", "Log", "Sqrt", "Tanh", "Sigmoid", "Relu", "Softplus", "Sin", "Cos", "Sign",
    "Floor", "Ceil", "Round", "Not", "Reciprocal", "Add", "Sum", "Sub", "Mul", "Div", "Pow", "Max", "Min",
    "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Where", "Cast", "Constant",
    "Shape", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand", "Transpose", "Slice", "Concat", "Gather",
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ArgMax", "ArgMin", "MatMul", "Gemm",
    "Softmax", "LogSoftmax", "Pad", "ScatterND", "If", "Loop", "Scan",
];

pub(super) fn err(msg: impl Into<String>) -> Error {
    Error::invalid("onnx::load", msg)
}

/// `Err` naming the node, its op type and what is wrong.
fn node_err(n: &NodeProto, msg: impl std::fmt::Display) -> Error {
    err(format!("node `{}` ({}): {msg}", n.name(), n.op_type()))
}

pub(super) fn dtype_of(t: i32) -> Result<DType> {
    Ok(match DataType::try_from(t) {
        Ok(DataType::Float) => DType::F32,
        Ok(DataType::Double) => DType::F64,
        Ok(DataType::Int32) => DType::I32,
        Ok(DataType::Int64) => DType::I64,
        Ok(DataType::Bool) => DType::Bool,
        Ok(other) => return Err(err(format!("element type {} is not one of kiln's dtypes", other.as_str_name()))),
        Err(_) => return Err(err(format!("unknown element type {t}"))),
    })
}

/// A tensor's value, after checking that its dims are sane and its data holds them exactly.
pub(super) fn array_of(t: &TensorProto) -> Result<Array> {
    let what = || format!("tensor `{}`", t.name());
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err(err(format!("{}: external data is not supported", what())));
    }
    let dtype = dtype_of(t.data_type())?;
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err(format!("{}: negative dim {d}", what()))))
        .collect::<Result<_>>()?;
    let n = checked_numel(&dims)
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| err(format!("{}: dims {dims:?} claim too many elements", what())))?;
    let typed_len = match dtype {
        DType::F32 => t.float_data.len(),
        DType::F64 => t.double_data.len(),
        DType::I32 | DType::Bool => t.int32_data.len(),
        DType::I64 => t.int64_data.len(),
    };
    let data = if let Some(raw) = &t.raw_data {
        if raw.len() != n * dtype.size() {
            return Err(err(format!("{}: {} bytes of data for {n} {dtype} element(s)", what(), raw.len())));
        }
        Data::from_bytes(dtype, raw)?
    } else {
        if typed_len != n {
            return Err(err(format!("{}: {typed_len} value(s) for {n} element(s) of dims {dims:?}", what())));
        }
        match dtype {
            DType::F32 => Data::F32(t.float_data.clone()),
            DType::F64 => Data::F64(t.double_data.clone()),
            DType::I32 => Data::I32(t.int32_data.clone()),
            DType::I64 => Data::I64(t.int64_data.clone()),
            DType::Bool => Data::Bool(t.int32_data.iter().map(|&v| v != 0).collect()),
        }
    };
    Array::new(data, &dims)
}

/// The type a graph input or output declares: `Err` for non-tensors. Symbolic or missing
/// dims are `None`.
pub(super) fn declared_type(v: &ValueInfoProto) -> Result<(DType, Option<Vec<Option<usize>>>)> {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(err(format!("value `{}` is not a tensor", v.name())));
    };
    let dtype = dtype_of(t.elem_type())?;
    let shape = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(n)) => usize::try_from(n).ok(),
                _ => None,
            })
            .collect()
    });
    Ok((dtype, shape))
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}

fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_f(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).and_then(|a| a.f).unwrap_or(default)
}

fn attr_ints<'a>(n: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    attr(n, name).filter(|a| a.r#type() == AttributeType::Ints).map(|a| a.ints.as_slice())
}

fn attr_graph<'a>(n: &'a NodeProto, name: &str) -> Result<&'a GraphProto> {
    attr(n, name).and_then(|a| a.g.as_ref()).ok_or_else(|| node_err(n, format!("no `{name}` subgraph")))
}

/// The names a subgraph reads from enclosing scopes (at any depth), in first-use order.
fn free_names(g: &GraphProto) -> Vec<String> {
    let mut defined: HashSet<&str> = g.input.iter().map(|v| v.name()).collect();
    defined.extend(g.initializer.iter().map(|t| t.name()));
    let mut free: Vec<String> = Vec::new();
    let note = |name: &str, defined: &HashSet<&str>, free: &mut Vec<String>| {
        if !name.is_empty() && !defined.contains(name) && !free.iter().any(|f| f == name) {
            free.push(name.to_string());
        }
    };
    for n in &g.node {
        for i in &n.input {
            note(i, &defined, &mut free);
        }
        for a in &n.attribute {
            for sub in a.g.iter().chain(&a.graphs) {
                for name in free_names(sub) {
                    note(&name, &defined, &mut free);
                }
            }
        }
        defined.extend(n.output.iter().map(String::as_str));
    }
    for o in &g.output {
        note(o.name(), &defined, &mut free);
    }
    free
}

/// One graph being built: the kiln graph and the ONNX names bound in it.
pub(super) struct Builder {
    pub(super) g: Graph,
    names: HashMap<String, NodeId>,
    opset: i64,
}

impl Builder {
    pub(super) fn new(name: &str, opset: i64) -> Builder {
        Builder { g: Graph::new(name), names: HashMap::new(), opset }
    }

    pub(super) fn bind(&mut self, name: &str, id: NodeId) {
        self.names.insert(name.to_string(), id);
    }

    fn value(&self, n: &NodeProto, name: &str) -> Result<NodeId> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| node_err(n, format!("reads `{name}`, which nothing defines before it")))
    }

    fn ty(&self, id: NodeId) -> &TensorType {
        &self.g.node(id).ty
    }

    fn constant_of(&self, id: NodeId) -> Option<&Array> {
        match &self.g.node(id).op {
            Op::Const(a) => Some(a),
            _ => None,
        }
    }

    /// Adds `op`; a pure op on constants is computed now and added as a constant.
    fn add(&mut self, n: &NodeProto, op: Op, args: &[NodeId]) -> Result<NodeId> {
        let consts: Option<Vec<&Array>> = args.iter().map(|&a| self.constant_of(a)).collect();
        if let (Some(consts), true) = (consts, op.is_pure() && !matches!(op, Op::Const(_))) {
            let types: Vec<TensorType> = args.iter().map(|&a| self.ty(a).clone()).collect();
            let ty = kiln_ir::infer(&op, &types).map_err(|e| node_err(n, e))?;
            let value = kiln_ir::interp::eval(&op, &consts, &ty).map_err(|e| node_err(n, e))?;
            return Ok(self.g.add_const(value));
        }
        self.g.add(op, args).map_err(|e| node_err(n, e))
    }

    fn constant(&mut self, a: Array) -> NodeId {
        self.g.add_const(a)
    }

    fn scalar(&mut self, d: DType, v: f64) -> NodeId {
        self.g.add_const(Array::scalar_f64(d, v))
    }

    /// Operand `i` as a list of integers (shapes, axes, pads): it must be a constant.
    fn ints_input(&self, n: &NodeProto, i: usize) -> Result<Option<Vec<i64>>> {
        let Some(name) = n.input.get(i).filter(|s| !s.is_empty()) else { return Ok(None) };
        let id = self.value(n, name)?;
        let a = self
            .constant_of(id)
            .ok_or_else(|| node_err(n, format!("operand `{name}` must be a constant (kiln's shapes are static)")))?;
        if !a.dtype().is_int() {
            return Err(node_err(n, format!("operand `{name}` must hold integers, not {}", a.dtype())));
        }
        Ok(Some((0..a.len()).map(|k| a.get_f64(k) as i64).collect()))
    }

    fn axis(&self, n: &NodeProto, axis: i64, rank: usize) -> Result<usize> {
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if (0..rank as i64).contains(&a) {
            Ok(a as usize)
        } else {
            Err(node_err(n, format!("axis {axis} is out of range for rank {rank}")))
        }
    }

    fn axes(&self, n: &NodeProto, axes: &[i64], rank: usize) -> Result<Vec<usize>> {
        let mut v: Vec<usize> = axes.iter().map(|&a| self.axis(n, a, rank)).collect::<Result<_>>()?;
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    /// Imports the nodes of `gp` (its inputs and initializers must be bound already) and
    /// returns its outputs.
    pub(super) fn nodes(&mut self, gp: &GraphProto) -> Result<Vec<NodeId>> {
        for n in &gp.node {
            if !matches!(n.domain(), "" | "ai.onnx") {
                return Err(node_err(n, format!("operator domain `{}` is not supported", n.domain())));
            }
            let outs = self.node(n)?;
            if outs.len() < n.output.iter().filter(|o| !o.is_empty()).count() {
                return Err(node_err(
                    n,
                    format!("kiln computes {} output(s) of this op, not {}", outs.len(), n.output.len()),
                ));
            }
            for (name, id) in n.output.iter().zip(outs) {
                if !name.is_empty() {
                    self.bind(name, id);
                }
            }
        }
        gp.output
            .iter()
            .map(|o| {
                self.names.get(o.name()).copied().ok_or_else(|| err(format!("output `{}` is never computed", o.name())))
            })
            .collect()
    }

    /// One ONNX node's results.
    fn node(&mut self, n: &NodeProto) -> Result<Vec<NodeId>> {
        let ins: Vec<NodeId> =
            n.input.iter().filter(|s| !s.is_empty()).map(|s| self.value(n, s)).collect::<Result<_>>()?;
        let arg = |i: usize| ins.get(i).copied().ok_or_else(|| node_err(n, format!("needs operand {i}")));
        let one = |id: NodeId| Ok(vec![id]);
        let unary = |b: &mut Builder, u: UnaryOp| -> Result<Vec<NodeId>> { one(b.add(n, Op::Unary(u), &[arg(0)?])?) };
        let binary = |b: &mut Builder, op: BinaryOp| -> Result<Vec<NodeId>> {
            // Variadic Max/Min/Sum/Mean fold left; the rest have exactly two operands.
            let mut acc = arg(0)?;
            for &next in ins.iter().skip(1) {
                acc = b.add(n, Op::Binary(op), &[acc, next])?;
            }
            if ins.len() < 2 && !matches!(n.op_type(), "Max" | "Min" | "Sum") {
                return Err(node_err(n, "needs two operands"));
            }
            one(acc)
        };
        match n.op_type() {
            "Identity" => one(arg(0)?),
            "Neg" => unary(self, UnaryOp::Neg),
            "Abs" => unary(self, UnaryOp::Abs),
            "Exp" => unary(self, UnaryOp::Exp),
            "Log" => unary(self, UnaryOp::Log),
            "Sqrt" => unary(self, UnaryOp::Sqrt),
            "Tanh" => unary(self, UnaryOp::Tanh),
            "Sigmoid" => unary(self, UnaryOp::Sigmoid),
            "Relu" => unary(self, UnaryOp::Relu),
            "Softplus" => unary(self, UnaryOp::Softplus),
            "Sin" => unary(self, UnaryOp::Sin),
            "Cos" => unary(self, UnaryOp::Cos),
            "Sign" => unary(self, UnaryOp::Sign),
            "Floor" => unary(self, UnaryOp::Floor),
            "Ceil" => unary(self, UnaryOp::Ceil),
            "Round" => unary(self, UnaryOp::Round),
            "Not" => unary(self, UnaryOp::LogicalNot),
            "Reciprocal" => {
                let x = arg(0)?;
                let one_ = self.scalar(self.ty(x).dtype, 1.0);
                one(self.add(n, Op::Binary(BinaryOp::Div), &[one_, x])?)
            }
            "Add" | "Sum" => binary(self, BinaryOp::Add),
            "Sub" => binary(self, BinaryOp::Sub),
            "Mul" => binary(self, BinaryOp::Mul),
            "Div" => binary(self, BinaryOp::Div),
            "Pow" => binary(self, BinaryOp::Pow),
            "Max" => binary(self, BinaryOp::Maximum),
            "Min" => binary(self, BinaryOp::Minimum),
            "Equal" => binary(self, BinaryOp::Equal),
            "Less" => binary(self, BinaryOp::Less),
            "LessOrEqual" => binary(self, BinaryOp::LessEqual),
            "Greater" => binary(self, BinaryOp::Greater),
            "GreaterOrEqual" => binary(self, BinaryOp::GreaterEqual),
            "And" => binary(self, BinaryOp::LogicalAnd),
            "Or" => binary(self, BinaryOp::LogicalOr),
            "Where" => one(self.add(n, Op::Select, &[arg(0)?, arg(1)?, arg(2)?])?),
            "Cast" => one(self.add(n, Op::Cast(dtype_of(attr_i(n, "to", 0) as i32)?), &[arg(0)?])?),
            "Constant" => one(self.constant_node(n)?),
            "Shape" => {
                let shape: Vec<i64> = self.ty(arg(0)?).shape.iter().map(|&d| d as i64).collect();
                let r = shape.len() as i64;
                let clip = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (start, end) = (clip(attr_i(n, "start", 0)), clip(attr_i(n, "end", r)));
                let part = shape[start..end.max(start)].to_vec();
                let len = part.len();
                one(self.constant(Array::from_vec(part, &[len])?))
            }
            "Reshape" => {
                let x = arg(0)?;
                let spec = self.ints_input(n, 1)?.ok_or_else(|| node_err(n, "needs a shape"))?;
                let shape = self.reshape_target(n, x, &spec, attr_i(n, "allowzero", 0) != 0)?;
                one(self.add(n, Op::Reshape(shape.into()), &[x])?)
            }
            "Flatten" => {
                let x = arg(0)?;
                let shape = self.ty(x).shape.clone();
                let axis = attr_i(n, "axis", 1);
                let axis = if axis == shape.len() as i64 { shape.len() } else { self.axis(n, axis, shape.len())? };
                let (a, b) = shape.split_at(axis);
                let target = [a.iter().product::<usize>(), b.iter().product()];
                one(self.add(n, Op::Reshape(target.as_slice().into()), &[x])?)
            }
            "Squeeze" | "Unsqueeze" => one(self.squeeze(n, arg(0)?)?),
            "Expand" => {
                let x = arg(0)?;
                let spec = self.ints_input(n, 1)?.ok_or_else(|| node_err(n, "needs a shape"))?;
                let spec: Vec<usize> = spec.iter().map(|&d| d.max(0) as usize).collect();
                let shape = broadcast_shapes(&self.ty(x).shape, &spec)
                    .ok_or_else(|| node_err(n, format!("{:?} does not broadcast with {spec:?}", self.ty(x).shape)))?;
                one(self.add(n, Op::BroadcastTo(shape), &[x])?)
            }
            "Transpose" => {
                let x = arg(0)?;
                let rank = self.ty(x).shape.len();
                let perm: Vec<usize> = match attr_ints(n, "perm") {
                    Some(p) => p.iter().map(|&a| self.axis(n, a, rank)).collect::<Result<_>>()?,
                    None => (0..rank).rev().collect(),
                };
                one(self.add(n, Op::Transpose(perm), &[x])?)
            }
            "Slice" => one(self.slice(n, arg(0)?)?),
            "Concat" => {
                let rank = self.ty(arg(0)?).shape.len();
                let axis = self.axis(n, attr_i(n, "axis", 0), rank)?;
                one(self.add(n, Op::Concat { axis }, &ins)?)
            }
            "Gather" => {
                let rank = self.ty(arg(0)?).shape.len();
                let axis = self.axis(n, attr_i(n, "axis", 0), rank)?;
                one(self.add(n, Op::Gather { axis }, &[arg(0)?, arg(1)?])?)
            }
            "ReduceSum" => one(self.reduce(n, ReduceOp::Sum, arg(0)?, 13)?),
            "ReduceMean" => one(self.reduce(n, ReduceOp::Mean, arg(0)?, 18)?),
            "ReduceMax" => one(self.reduce(n, ReduceOp::Max, arg(0)?, 18)?),
            "ReduceMin" => one(self.reduce(n, ReduceOp::Min, arg(0)?, 18)?),
            "ReduceProd" => one(self.reduce(n, ReduceOp::Prod, arg(0)?, 18)?),
            "ArgMax" | "ArgMin" => {
                if attr_i(n, "select_last_index", 0) != 0 {
                    return Err(node_err(n, "select_last_index=1 is not supported (kiln ties to the first index)"));
                }
                let x = arg(0)?;
                let axis = self.axis(n, attr_i(n, "axis", 0), self.ty(x).shape.len())?;
                let op = if n.op_type() == "ArgMax" { ArgOp::ArgMax } else { ArgOp::ArgMin };
                one(self.add(n, Op::ArgReduce { op, axis, keepdims: attr_i(n, "keepdims", 1) != 0 }, &[x])?)
            }
            "MatMul" => one(self.matmul(n, arg(0)?, arg(1)?)?),
            "Gemm" => one(self.gemm(n, &ins)?),
            "Softmax" | "LogSoftmax" => one(self.softmax(n, arg(0)?)?),
            "Pad" => one(self.pad(n, arg(0)?)?),
            "ScatterND" => one(self.scatter_nd(n, &ins)?),
            "If" => self.if_(n, arg(0)?),
            "Loop" => self.loop_(n),
            "Scan" => self.scan(n, &ins),
            other => Err(node_err(n, format!("ONNX op `{other}` is not supported by kiln's importer"))),
        }
    }

    fn constant_node(&mut self, n: &NodeProto) -> Result<NodeId> {
        let a = n.attribute.first().ok_or_else(|| node_err(n, "has no value"))?;
        let value = match a.name() {
            "value" => array_of(a.t.as_ref().ok_or_else(|| node_err(n, "`value` holds no tensor"))?),
            "value_float" => Ok(Array::scalar(a.f())),
            "value_int" => Ok(Array::scalar(a.i())),
            "value_floats" => Array::from_vec(a.floats.clone(), &[a.floats.len()]),
            "value_ints" => Array::from_vec(a.ints.clone(), &[a.ints.len()]),
            other => Err(node_err(n, format!("a `{other}` constant is not supported"))),
        }
        .map_err(|e| node_err(n, e))?;
        Ok(self.constant(value))
    }

    fn reshape_target(&self, n: &NodeProto, x: NodeId, spec: &[i64], allowzero: bool) -> Result<Vec<usize>> {
        let from = &self.ty(x).shape;
        let total: usize = from.iter().product();
        let mut shape = Vec::with_capacity(spec.len());
        let mut infer_at = None;
        for (i, &d) in spec.iter().enumerate() {
            match d {
                -1 if infer_at.is_none() => {
                    infer_at = Some(i);
                    shape.push(1);
                }
                0 if !allowzero => shape.push(
                    *from.get(i).ok_or_else(|| node_err(n, format!("dim 0 at {i} copies a dim {from:?} lacks")))?,
                ),
                d if d >= 0 => shape.push(d as usize),
                d => return Err(node_err(n, format!("bad dim {d} in shape {spec:?}"))),
            }
        }
        if let Some(i) = infer_at {
            let known: usize = shape.iter().product();
            if known == 0 || total % known != 0 {
                return Err(node_err(n, format!("cannot reshape {from:?} to {spec:?}")));
            }
            shape[i] = total / known;
        }
        Ok(shape)
    }

    fn squeeze(&mut self, n: &NodeProto, x: NodeId) -> Result<NodeId> {
        let from = self.ty(x).shape.clone();
        let axes = match self.ints_input(n, 1)? {
            Some(a) => Some(a),
            None => attr_ints(n, "axes").map(<[i64]>::to_vec),
        };
        let shape: Vec<usize> = if n.op_type() == "Unsqueeze" {
            let axes = axes.ok_or_else(|| node_err(n, "needs axes"))?;
            let rank = from.len() + axes.len();
            let axes = self.axes(n, &axes, rank)?;
            let mut rest = from.iter();
            (0..rank).map(|i| if axes.contains(&i) { 1 } else { *rest.next().unwrap_or(&1) }).collect()
        } else {
            let axes = match axes {
                Some(a) => self.axes(n, &a, from.len())?,
                None => (0..from.len()).filter(|&i| from[i] == 1).collect(),
            };
            if let Some(&a) = axes.iter().find(|&&a| from[a] != 1) {
                return Err(node_err(n, format!("cannot squeeze axis {a} of {from:?}")));
            }
            from.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
        };
        self.add(n, Op::Reshape(shape.as_slice().into()), &[x])
    }

    fn slice(&mut self, n: &NodeProto, x: NodeId) -> Result<NodeId> {
        let shape = self.ty(x).shape.clone();
        let starts = self.ints_input(n, 1)?.ok_or_else(|| node_err(n, "needs starts"))?;
        let ends = self.ints_input(n, 2)?.ok_or_else(|| node_err(n, "needs ends"))?;
        let axes = self.ints_input(n, 3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = self.ints_input(n, 4)?.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(node_err(n, "starts, ends, axes and steps differ in length"));
        }
        let mut dims: Vec<SliceDim> = shape.iter().map(|&d| SliceDim::full(d)).collect();
        for k in 0..starts.len() {
            let a = self.axis(n, axes[k], shape.len())?;
            let clamp = |v: i64| v.clamp(isize::MIN as i64, isize::MAX as i64) as isize;
            dims[a] = SliceDim::from_python(Some(clamp(starts[k])), Some(clamp(ends[k])), clamp(steps[k]), shape[a])
                .ok_or_else(|| node_err(n, "a step of 0"))?;
        }
        self.add(n, Op::Slice(dims), &[x])
    }

    fn reduce(&mut self, n: &NodeProto, op: ReduceOp, x: NodeId, axes_input_since: i64) -> Result<NodeId> {
        let rank = self.ty(x).shape.len();
        let axes = if self.opset >= axes_input_since { self.ints_input(n, 1)? } else { None }
            .or_else(|| attr_ints(n, "axes").map(<[i64]>::to_vec));
        let axes = match axes {
            Some(a) if !a.is_empty() => self.axes(n, &a, rank)?,
            _ if attr_i(n, "noop_with_empty_axes", 0) != 0 => return Ok(x),
            _ => (0..rank).collect(),
        };
        self.add(n, Op::Reduce { op, axes, keepdims: attr_i(n, "keepdims", 1) != 0 }, &[x])
    }

    /// numpy's matmul, vectors included (kiln's `MatMul` wants rank 2 or more).
    fn matmul(&mut self, n: &NodeProto, a: NodeId, b: NodeId) -> Result<NodeId> {
        let (ra, rb) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
        let a2 = if ra.len() == 1 { self.add(n, Op::Reshape([1, ra[0]].as_slice().into()), &[a])? } else { a };
        let b2 = if rb.len() == 1 { self.add(n, Op::Reshape([rb[0], 1].as_slice().into()), &[b])? } else { b };
        let y = self.add(n, Op::MatMul, &[a2, b2])?;
        if ra.len() > 1 && rb.len() > 1 {
            return Ok(y);
        }
        let mut shape = self.ty(y).shape.clone();
        let r = shape.len();
        if rb.len() == 1 {
            shape.remove(r - 1);
        }
        if ra.len() == 1 {
            shape.remove(r - 2);
        }
        self.add(n, Op::Reshape(shape.as_slice().into()), &[y])
    }

    /// `alpha * A' @ B' + beta * C`.
    fn gemm(&mut self, n: &NodeProto, ins: &[NodeId]) -> Result<NodeId> {
        if ins.len() < 2 {
            return Err(node_err(n, "needs A and B"));
        }
        let t = |b: &mut Builder, x: NodeId, flag: &str| -> Result<NodeId> {
            if attr_i(n, flag, 0) != 0 {
                b.add(n, Op::Transpose(vec![1, 0]), &[x])
            } else {
                Ok(x)
            }
        };
        let a = t(self, ins[0], "transA")?;
        let b = t(self, ins[1], "transB")?;
        let d = self.ty(a).dtype;
        let mut y = self.add(n, Op::MatMul, &[a, b])?;
        let alpha = attr_f(n, "alpha", 1.0);
        if alpha != 1.0 {
            let k = self.scalar(d, alpha as f64);
            y = self.add(n, Op::Binary(BinaryOp::Mul), &[y, k])?;
        }
        if let Some(&c) = ins.get(2) {
            let beta = attr_f(n, "beta", 1.0);
            let c = if beta != 1.0 {
                let k = self.scalar(d, beta as f64);
                self.add(n, Op::Binary(BinaryOp::Mul), &[c, k])?
            } else {
                c
            };
            y = self.add(n, Op::Binary(BinaryOp::Add), &[y, c])?;
        }
        Ok(y)
    }

    /// `Softmax` and `LogSoftmax` over one axis (opset 13's semantics; before 13 the input was
    /// flattened to 2-D at `axis`, which is the same for the common `axis = rank - 1`).
    fn softmax(&mut self, n: &NodeProto, x: NodeId) -> Result<NodeId> {
        let rank = self.ty(x).shape.len();
        let default = if self.opset >= 13 { -1 } else { 1 };
        let axis = self.axis(n, attr_i(n, "axis", default), rank)?;
        if self.opset < 13 && axis != rank - 1 {
            return Err(node_err(n, "opset < 13 Softmax over a middle axis (flattening semantics) is not supported"));
        }
        let reduce = |op| Op::Reduce { op, axes: vec![axis], keepdims: true };
        let max = self.add(n, reduce(ReduceOp::Max), &[x])?;
        let shifted = self.add(n, Op::Binary(BinaryOp::Sub), &[x, max])?;
        let e = self.add(n, Op::Unary(UnaryOp::Exp), &[shifted])?;
        let sum = self.add(n, reduce(ReduceOp::Sum), &[e])?;
        if n.op_type() == "Softmax" {
            self.add(n, Op::Binary(BinaryOp::Div), &[e, sum])
        } else {
            let log = self.add(n, Op::Unary(UnaryOp::Log), &[sum])?;
            self.add(n, Op::Binary(BinaryOp::Sub), &[shifted, log])
        }
    }

    /// Constant-mode padding with zeros and non-negative pads: kiln's `Unslice`.
    fn pad(&mut self, n: &NodeProto, x: NodeId) -> Result<NodeId> {
        let mode = attr(n, "mode").and_then(|a| a.s.as_deref()).unwrap_or(b"constant");
        if mode != b"constant" {
            return Err(node_err(n, "only mode=constant is supported"));
        }
        if let Some(name) = n.input.get(2).filter(|s| !s.is_empty()) {
            let id = self.value(n, name)?;
            let zero = self.constant_of(id).is_some_and(|a| a.len() == 1 && a.get_f64(0) == 0.0);
            if !zero {
                return Err(node_err(n, "only a constant value of 0 is supported"));
            }
        }
        if n.input.get(3).is_some_and(|s| !s.is_empty()) {
            return Err(node_err(n, "the `axes` operand is not supported"));
        }
        let from = self.ty(x).shape.clone();
        let pads = self.ints_input(n, 1)?.ok_or_else(|| node_err(n, "needs pads"))?;
        if pads.len() != 2 * from.len() || pads.iter().any(|&p| p < 0) {
            return Err(node_err(n, format!("pads {pads:?} must be 2 x rank non-negative values")));
        }
        let r = from.len();
        let dims: Vec<SliceDim> =
            from.iter().enumerate().map(|(i, &d)| SliceDim { start: pads[i] as usize, step: 1, len: d }).collect();
        let shape: Vec<usize> = (0..r).map(|i| from[i] + pads[i] as usize + pads[r + i] as usize).collect();
        self.add(n, Op::Unslice { dims, shape: shape.as_slice().into() }, &[x])
    }

    /// `ScatterND` with `reduction="add"` and one index per update row: `data` plus kiln's
    /// `ScatterAdd` along axis 0.
    fn scatter_nd(&mut self, n: &NodeProto, ins: &[NodeId]) -> Result<NodeId> {
        let reduction = attr(n, "reduction").and_then(|a| a.s.as_deref()).unwrap_or(b"none");
        if reduction != b"add" || ins.len() != 3 {
            return Err(node_err(n, "only reduction=add is supported"));
        }
        let (data, indices, updates) = (ins[0], ins[1], ins[2]);
        let ishape = self.ty(indices).shape.clone();
        if ishape.last() != Some(&1) {
            return Err(node_err(n, format!("indices {ishape:?} must end in a dim of 1")));
        }
        let idx = self.add(n, Op::Reshape(ishape[..ishape.len() - 1].into()), &[indices])?;
        let shape = self.ty(data).shape.clone();
        let scattered = self.add(n, Op::ScatterAdd { axis: 0, shape }, &[updates, idx])?;
        self.add(n, Op::Binary(BinaryOp::Add), &[data, scattered])
    }

    /// A region body from subgraph `gp`: inputs are `formal` (typed by the caller), then one
    /// per non-constant name in `captures` (outer values the body reads). Constants are
    /// copied in rather than captured, so they stay constants inside.
    fn region(&self, gp: &GraphProto, formal: &[TensorType], captures: &[String]) -> Result<Region> {
        let mut b = Builder::new(gp.name(), self.opset);
        for (v, t) in gp.input.iter().zip(formal) {
            let id = b.g.add_input(t.clone());
            b.bind(v.name(), id);
        }
        if gp.input.len() != formal.len() {
            return Err(err(format!("subgraph `{}` has {} input(s), not {}", gp.name(), gp.input.len(), formal.len())));
        }
        for name in captures {
            let outer = self.names[name];
            let id = match self.constant_of(outer) {
                Some(a) => b.g.add_const(a.clone()),
                None => b.g.add_input(self.ty(outer).clone()),
            };
            b.bind(name, id);
        }
        for t in &gp.initializer {
            let id = b.g.add_const(array_of(t)?);
            b.bind(t.name(), id);
        }
        let outs = b.nodes(gp)?;
        b.g.set_outputs(outs);
        Ok(Region::new(b.g))
    }

    /// The non-constant outer values `graphs` read, in order, and their nodes.
    fn captures(&self, n: &NodeProto, graphs: &[&GraphProto]) -> Result<(Vec<String>, Vec<NodeId>)> {
        let mut names: Vec<String> = Vec::new();
        for g in graphs {
            for f in free_names(g) {
                if !names.contains(&f) {
                    names.push(f);
                }
            }
        }
        let mut ids = Vec::new();
        for name in &names {
            ids.push(self.value(n, name)?);
        }
        Ok((names, ids))
    }

    /// The operands for `captures`: the non-constant ones ([`Builder::region`] copies constants in).
    fn capture_operands(&self, ids: &[NodeId]) -> Vec<NodeId> {
        ids.iter().copied().filter(|&id| self.constant_of(id).is_none()).collect()
    }

    fn if_(&mut self, n: &NodeProto, cond: NodeId) -> Result<Vec<NodeId>> {
        let (then_g, else_g) = (attr_graph(n, "then_branch")?, attr_graph(n, "else_branch")?);
        let (names, ids) = self.captures(n, &[then_g, else_g])?;
        let ids = self.capture_operands(&ids);
        // ONNX allows a one-element predicate of any rank; kiln's is a scalar.
        let cond =
            if self.ty(cond).shape.is_empty() { cond } else { self.add(n, Op::Reshape(Default::default()), &[cond])? };
        let branches = vec![self.region(else_g, &[], &names)?, self.region(then_g, &[], &names)?];
        let mut operands = vec![cond];
        operands.extend(ids);
        let (_, gets) =
            self.g.add_region(Op::Case(CaseOp { branches }.into()), &operands).map_err(|e| node_err(n, e))?;
        Ok(gets)
    }

    /// A `Loop` without scan outputs as kiln's `while`: the carries are the iteration count,
    /// the condition and the loop variables; the trip count `M`, if any, is a capture.
    fn loop_(&mut self, n: &NodeProto) -> Result<Vec<NodeId>> {
        let body = attr_graph(n, "body")?;
        let vars: Vec<NodeId> = n.input.iter().skip(2).map(|s| self.value(n, s)).collect::<Result<_>>()?;
        if body.output.len() != 1 + vars.len() {
            return Err(node_err(n, "Loop with scan outputs is not supported (kiln's while loops keep static shapes)"));
        }
        let i64_t = TensorType::new(DType::I64, &[]);
        let bool_t = TensorType::new(DType::Bool, &[]);
        let trip = n.input.first().filter(|s| !s.is_empty()).map(|s| self.value(n, s)).transpose()?;
        let first = match n.input.get(1).filter(|s| !s.is_empty()) {
            Some(s) => self.value(n, s)?,
            None => self.constant(Array::scalar(true)),
        };
        let (names, ids) = self.captures(n, &[body])?;
        let mut ids = self.capture_operands(&ids);
        let mut carry_types = vec![i64_t.clone(), bool_t.clone()];
        carry_types.extend(vars.iter().map(|&v| self.ty(v).clone()));
        // Captures: the body's outer values, then the trip count.
        let mut cap_types: Vec<TensorType> = ids.iter().map(|&i| self.ty(i).clone()).collect();
        if let Some(m) = trip {
            ids.push(m);
            cap_types.push(self.ty(m).clone());
        }
        let mut all_types = carry_types.clone();
        all_types.extend(cap_types);
        // cond: c && i < M.
        let mut c = Graph::new("loop_cond");
        let ins: Vec<NodeId> = all_types.iter().map(|t| c.add_input(t.clone())).collect();
        let mut keep = ins[1];
        if trip.is_some() {
            let m = *ins.last().expect("the trip count");
            let m = if c.node(m).ty.dtype == DType::I64 { m } else { c.add(Op::Cast(DType::I64), &[m])? };
            let below = c.add(Op::Binary(BinaryOp::Less), &[ins[0], m])?;
            keep = c.add(Op::Binary(BinaryOp::LogicalAnd), &[keep, below])?;
        }
        c.set_outputs(vec![keep]);
        // body: (i, c, v..., captures) → (i + 1, c', v'...), the ONNX body inlined.
        let mut formal = vec![i64_t, bool_t];
        formal.extend(carry_types[2..].iter().cloned());
        let inner = self.region(body, &formal, &names)?.graph;
        let mut b = Graph::new("loop_body");
        let bins: Vec<NodeId> = all_types.iter().map(|t| b.add_input(t.clone())).collect();
        let n_inner_in = inner.inputs().len();
        let outs = inline(&mut b, &inner, &bins[..n_inner_in])?;
        let one = b.add_const(Array::scalar(1i64));
        let next = b.add(Op::Binary(BinaryOp::Add), &[bins[0], one])?;
        let mut results = vec![next];
        results.extend(outs);
        b.set_outputs(results);
        let w = WhileOp { cond: Region::new(c), body: Region::new(b), carries: carry_types.len() };
        let zero = self.constant(Array::scalar(0i64));
        let mut operands = vec![zero, first];
        operands.extend(vars);
        operands.extend(ids);
        let (_, gets) = self.g.add_region(Op::While(w.into()), &operands).map_err(|e| node_err(n, e))?;
        Ok(gets[2..].to_vec())
    }

    /// ONNX `Scan` (scanned axis 0, one direction for every input and output) as kiln's `scan`.
    fn scan(&mut self, n: &NodeProto, ins: &[NodeId]) -> Result<Vec<NodeId>> {
        let body = attr_graph(n, "body")?;
        let m = attr_i(n, "num_scan_inputs", 0);
        let m = usize::try_from(m)
            .ok()
            .filter(|&m| m >= 1 && m <= ins.len())
            .ok_or_else(|| node_err(n, "bad num_scan_inputs"))?;
        let carries = ins.len() - m;
        let dirs: Vec<i64> = [attr_ints(n, "scan_input_directions"), attr_ints(n, "scan_output_directions")]
            .into_iter()
            .flatten()
            .flatten()
            .copied()
            .collect();
        let axes_nonzero = [attr_ints(n, "scan_input_axes"), attr_ints(n, "scan_output_axes")]
            .into_iter()
            .flatten()
            .flatten()
            .any(|&a| a != 0);
        if axes_nonzero || dirs.windows(2).any(|w| w[0] != w[1]) {
            return Err(node_err(n, "kiln imports scans along axis 0 with one direction for all inputs and outputs"));
        }
        let reverse = dirs.first().is_some_and(|&d| d == 1);
        let xs = &ins[carries..];
        let length =
            *self.ty(xs[0]).shape.first().ok_or_else(|| node_err(n, "a scanned input must have rank 1 or more"))?;
        let (names, ids) = self.captures(n, &[body])?;
        let ids = self.capture_operands(&ids);
        // kiln's body takes the step index first; the ONNX body does not read it.
        let mut formal: Vec<TensorType> = ins[..carries].iter().map(|&c| self.ty(c).clone()).collect();
        formal.extend(xs.iter().map(|&x| {
            let t = self.ty(x);
            TensorType::new(t.dtype, &t.shape[1..])
        }));
        let inner = self.region(body, &formal, &names)?.graph;
        let mut b = Graph::new("scan_body");
        b.add_input(TensorType::new(DType::I64, &[]));
        let mut bins: Vec<NodeId> = formal.iter().map(|t| b.add_input(t.clone())).collect();
        bins.extend(ids.iter().map(|&i| b.add_input(self.ty(i).clone())));
        let outs = inline(&mut b, &inner, &bins)?;
        b.set_outputs(outs);
        let s = ScanOp { body: Region::new(b), length, carries, xs: m, reverse };
        let mut operands = ins.to_vec();
        operands.extend(ids);
        let (_, gets) = self.g.add_region(Op::Scan(s.into()), &operands).map_err(|e| node_err(n, e))?;
        Ok(gets)
    }
}

/// Copies graph `inner` into `g` with `inner`'s inputs bound to `args`; returns its outputs.
fn inline(g: &mut Graph, inner: &Graph, args: &[NodeId]) -> Result<Vec<NodeId>> {
    let mut map: HashMap<NodeId, NodeId> = HashMap::new();
    for id in inner.topo_order()? {
        let node = inner.node(id);
        let new = match &node.op {
            Op::Input(i) => *args.get(*i).ok_or_else(|| err(format!("subgraph input {i} is not bound")))?,
            op => {
                let a: Vec<NodeId> = inner.args(id).iter().map(|x| map[x]).collect();
                g.add_unchecked(op.clone(), node.ty.clone(), &a)
            }
        };
        map.insert(id, new);
    }
    Ok(inner.outputs().iter().map(|o| map[o]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SUPPORTED` (what a model with symbolic dims is checked against at load) names only
    /// op types `Builder::node` has an arm for: each fails here on its missing operands or
    /// attributes, never as an unsupported op.
    #[test]
    fn every_listed_op_has_an_arm() {
        let unsupported = |op: &str| {
            let mut b = Builder::new("g", super::super::OPSET);
            let n = NodeProto { op_type: Some(op.to_string()), name: Some("n".into()), ..Default::default() };
            matches!(b.node(&n), Err(e) if e.to_string().contains("is not supported by kiln's importer"))
        };
        for op in SUPPORTED {
            assert!(!unsupported(op), "{op} is listed but has no arm");
        }
        assert!(unsupported("Elu"));
    }
}
