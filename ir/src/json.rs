//! The JSON form of a graph: [`Graph::to_json`] and [`Graph::from_json`], for tools.
//! Same node numbering and attribute names as the text form; constants are base64 of
//! their little-endian bytes.

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::format::{
    build_op, build_region, check_numel, const_from_b64, numbering, op_attrs, slice_dim, Attr, AttrMap, MAX_DEPTH,
};
use crate::graph::{Graph, NodeId};
use crate::infer::TensorType;
use crate::op::{Kernel, Op};
use crate::region::Region;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JGraph {
    name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vars: Vec<JVar>,
    nodes: Vec<JNode>,
    outputs: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JVar {
    name: String,
    dtype: String,
    shape: Vec<u64>,
}

/// One node; its id is its position in `nodes`. Inputs are nodes with `"op": "input"`,
/// numbered in the order they appear.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JNode {
    op: String,
    dtype: String,
    shape: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<usize>,
    /// Order-edge predecessors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    after: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    var: Option<u32>,
    /// A constant's value: base64 of its little-endian bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attrs: Map<String, Value>,
    /// A fused kernel's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<Box<JGraph>>,
    /// A region op's bodies, in print order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bodies: Vec<JRegion>,
}

/// A region op's body and where its variables live in the enclosing graph.
#[derive(Serialize, Deserialize)]
struct JRegion {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vars: Vec<u32>,
    graph: JGraph,
}

fn attr_to_json(a: &Attr) -> Value {
    let int = |i: i128| -> Value {
        if i >= 0 {
            Value::Number(Number::from(i as u64))
        } else {
            Value::Number(Number::from(i as i64))
        }
    };
    match a {
        Attr::Int(i) => int(*i),
        Attr::Bool(b) => Value::Bool(*b),
        Attr::DType(d) => Value::String(d.name().into()),
        Attr::Ints(v) => Value::Array(v.iter().map(|&i| int(i)).collect()),
        Attr::Dims(d) => Value::Array(
            d.iter()
                .map(|d| Value::Array(vec![int(d.start as i128), int(d.len as i128), int(d.step as i128)]))
                .collect(),
        ),
        // An object, so a message is never mistaken for a dtype name.
        Attr::Str(s) => Value::Object([("text".to_string(), Value::String(s.clone()))].into_iter().collect()),
    }
}

fn json_int(v: &Value) -> Option<i128> {
    v.as_u64().map(i128::from).or_else(|| v.as_i64().map(i128::from))
}

fn attr_from_json(v: &Value) -> std::result::Result<Attr, String> {
    match v {
        Value::Bool(b) => Ok(Attr::Bool(*b)),
        Value::Number(_) => json_int(v).map(Attr::Int).ok_or_else(|| format!("{v} is not an integer")),
        Value::String(s) => s.parse::<DType>().map(Attr::DType),
        Value::Object(o) if o.len() == 1 && o.get("text").is_some_and(Value::is_string) => {
            Ok(Attr::Str(o["text"].as_str().expect("checked").to_string()))
        }
        Value::Array(items) if items.iter().all(|i| i.is_number()) => items
            .iter()
            .map(|i| json_int(i).ok_or_else(|| format!("{i} is not an integer")))
            .collect::<Result<_, _>>()
            .map(Attr::Ints),
        Value::Array(items) => items
            .iter()
            .map(|i| match i.as_array().map(|a| a.iter().map(json_int).collect::<Option<Vec<_>>>()) {
                Some(Some(t)) if t.len() == 3 => slice_dim(t[0], t[1], t[2]),
                _ => Err(format!("{i} is not a slice [start, len, step]")),
            })
            .collect::<Result<_, _>>()
            .map(Attr::Dims),
        _ => Err(format!("{v} is not an attribute value")),
    }
}

fn type_to_json(t: &TensorType) -> (String, Vec<u64>) {
    (t.dtype.name().to_string(), t.shape.iter().map(|&d| d as u64).collect())
}

fn type_from_json(dtype: &str, shape: &[u64]) -> std::result::Result<TensorType, String> {
    let d: DType = dtype.parse()?;
    let dims: Vec<usize> = shape
        .iter()
        .map(|&x| usize::try_from(x).map_err(|_| format!("dimension {x} is out of range")))
        .collect::<Result<_, _>>()?;
    check_numel(&dims)?;
    Ok(TensorType::new(d, &dims))
}

fn graph_to_json(g: &Graph) -> JGraph {
    let (order, num) = numbering(g);
    let vars = g
        .vars()
        .iter()
        .map(|v| {
            let (dtype, shape) = type_to_json(&v.ty);
            JVar { name: v.name.clone(), dtype, shape }
        })
        .collect();
    // References to nodes that are not in the graph (a broken graph) print as an
    // out-of-range id, which `from_json` rejects.
    let id = |n: NodeId| num.get(&n).copied().unwrap_or(usize::MAX);
    let nodes = order
        .iter()
        .map(|&n| {
            let node = g.node(n);
            let (dtype, shape) = type_to_json(&node.ty);
            let mut attrs: Map<String, Value> =
                op_attrs(&node.op).iter().map(|(k, v)| (k.to_string(), attr_to_json(v))).collect();
            if matches!(node.op, Op::Input(i) if g.inputs().get(i) == Some(&n)) {
                attrs.clear(); // the index is the node's position among inputs
            }
            JNode {
                op: node.op.name().to_string(),
                dtype,
                shape,
                args: g.args(n).into_iter().map(id).collect(),
                after: g.order_preds(n).into_iter().map(id).collect(),
                var: node.op.var(),
                data: match &node.op {
                    Op::Const(a) => Some(base64::engine::general_purpose::STANDARD.encode(a.data().as_bytes())),
                    _ => None,
                },
                attrs,
                body: match &node.op {
                    Op::Fused(k) => Some(Box::new(graph_to_json(&k.body))),
                    _ => None,
                },
                bodies: node
                    .op
                    .regions()
                    .into_iter()
                    .map(|r| JRegion { vars: r.vars.clone(), graph: graph_to_json(&r.graph) })
                    .collect(),
            }
        })
        .collect();
    JGraph { name: g.name().to_string(), vars, nodes, outputs: g.outputs().iter().map(|&o| id(o)).collect() }
}

fn graph_from_json(j: JGraph, depth: usize, path: &str) -> Result<Graph> {
    let err = |p: String, msg: String| Error::Parse { line: 0, msg: format!("{p}: {msg}") };
    if depth > MAX_DEPTH {
        return Err(err(path.to_string(), format!("fused bodies nest deeper than {MAX_DEPTH}")));
    }
    let mut g = Graph::new(j.name);
    for (i, v) in j.vars.into_iter().enumerate() {
        let ty = type_from_json(&v.dtype, &v.shape).map_err(|m| err(format!("{path}vars[{i}]"), m))?;
        g.declare_var(v.name, ty);
    }
    let mut ids: Vec<NodeId> = Vec::with_capacity(j.nodes.len());
    for (i, n) in j.nodes.into_iter().enumerate() {
        let here = format!("{path}nodes[{i}]");
        let e = |m: String| err(here.clone(), m);
        let ty = type_from_json(&n.dtype, &n.shape).map_err(e)?;
        let resolve = |r: usize| -> Result<NodeId> {
            if r < i {
                Ok(ids[r])
            } else {
                Err(err(here.clone(), format!("refers to node {r}, which does not come before it")))
            }
        };
        let args: Vec<NodeId> = n.args.iter().map(|&r| resolve(r)).collect::<Result<_>>()?;
        let after: Vec<NodeId> = n.after.iter().map(|&r| resolve(r)).collect::<Result<_>>()?;
        let takes_var = matches!(n.op.as_str(), "read_var" | "assign_var");
        if n.var.is_some() != takes_var {
            return Err(e(format!("`var` is given {}", if takes_var { "nowhere" } else { "to a non-variable op" })));
        }
        let region = matches!(n.op.as_str(), "case" | "while" | "scan" | "while_grad");
        if n.data.is_some() != (n.op == "const")
            || n.body.is_some() != (n.op == "fused")
            || (!n.bodies.is_empty() && !region)
        {
            return Err(e(
                "`data` belongs to const nodes only, `body` to fused nodes only and `bodies` to region ops only".into(),
            ));
        }
        let no_attrs = || if n.attrs.is_empty() { Ok(()) } else { Err(e(format!("`{}` takes no attributes", n.op))) };
        let op = match n.op.as_str() {
            "input" => {
                no_attrs()?;
                if !args.is_empty() || !after.is_empty() {
                    return Err(e("an input has no operands and no order edges".into()));
                }
                ids.push(g.add_input(ty));
                continue;
            }
            "const" => {
                no_attrs()?;
                Op::Const(const_from_b64(n.data.as_deref().unwrap_or_default(), &ty).map_err(e)?)
            }
            "read_var" => {
                no_attrs()?;
                Op::ReadVar(n.var.unwrap_or_default())
            }
            "assign_var" => {
                no_attrs()?;
                Op::AssignVar(n.var.unwrap_or_default())
            }
            "fused" => {
                no_attrs()?;
                let body = graph_from_json(*n.body.expect("checked above"), depth + 1, &format!("{here}.body."))?;
                Op::Fused(Arc::new(Kernel { body }))
            }
            name => {
                let mut attrs = AttrMap::default();
                for (k, v) in &n.attrs {
                    let a = attr_from_json(v).map_err(|m| err(format!("{here}.attrs.{k}"), m))?;
                    attrs.insert(k.clone(), a).map_err(e)?;
                }
                if region {
                    let mut bodies = Vec::with_capacity(n.bodies.len());
                    for (b, r) in n.bodies.into_iter().enumerate() {
                        let graph = graph_from_json(r.graph, depth + 1, &format!("{here}.bodies[{b}]."))?;
                        bodies.push(Region { graph, vars: r.vars });
                    }
                    build_region(name, attrs, bodies).map_err(e)?
                } else {
                    build_op(name, attrs).map_err(e)?
                }
            }
        };
        let id = g.add_unchecked(op, ty, &args);
        for a in after {
            g.add_order(a, id);
        }
        ids.push(id);
    }
    let outs = j
        .outputs
        .iter()
        .map(|&o| ids.get(o).copied().ok_or_else(|| err(format!("{path}outputs"), format!("node {o} does not exist"))))
        .collect::<Result<_>>()?;
    g.set_outputs(outs);
    Ok(g)
}

impl Graph {
    /// The graph as pretty-printed JSON: `{"name", "vars", "nodes", "outputs"}`, where
    /// each node is `{"op", "dtype", "shape", "args", "after", "var", "data", "attrs",
    /// "body"}` (empty fields omitted) and a node's id is its position in `nodes`
    /// (the numbering of [`Graph::to_text`]). Constants are base64 of little-endian bytes.
    ///
    /// ```
    /// use kiln_ir::{DType, Graph, Op, TensorType, UnaryOp};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[3]));
    /// let y = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    /// g.set_outputs(vec![y]);
    /// let json = g.to_json();
    /// let back = Graph::from_json(&json).unwrap();
    /// assert!(back.structurally_eq(&g));
    /// assert_eq!(back.to_json(), json);
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&graph_to_json(self)).expect("a JSON tree of strings and integers serializes")
    }

    /// Parses the JSON form and verifies the result. Malformed JSON and bad fields are
    /// `Error::Parse` (with the JSON line for syntax errors, 0 and a path like
    /// `nodes[3].attrs.axes` otherwise); a graph breaking a verifier rule is `Error::Graph`.
    pub fn from_json(json: &str) -> Result<Graph> {
        let j: JGraph =
            serde_json::from_str(json).map_err(|e| Error::Parse { line: e.line(), msg: format!("json: {e}") })?;
        let g = graph_from_json(j, 0, "")?;
        g.verify()?;
        Ok(g)
    }
}
