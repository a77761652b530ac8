//! Op attributes by name and value: what `op_attrs` prints and `build_op` parses back,
//! shared by the text and JSON forms.

use crate::dtype::DType;
use crate::op::{ArgOp, BinaryOp, Distribution, Op, OpKind, ReduceOp, SliceDim, UnaryOp};
use crate::shape::Shape;

use super::*;

/// One attribute value of an op.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Attr {
    Int(i128),
    Bool(bool),
    DType(DType),
    Ints(Vec<i128>),
    Dims(Vec<SliceDim>),
    Str(String),
}

pub(super) fn ints(v: impl IntoIterator<Item = usize>) -> Attr {
    Attr::Ints(v.into_iter().map(|x| x as i128).collect())
}

/// The attributes of `op` by name, in print order (operands, constants, variables and
/// fused bodies are not attributes).
pub(crate) fn op_attrs(op: &Op) -> Vec<(&'static str, Attr)> {
    match op {
        Op::Input(i) => vec![("index", Attr::Int(*i as i128))],
        Op::Random { seed, .. } => vec![("seed", Attr::Int(*seed as i128))],
        Op::Cast(d) => vec![("to", Attr::DType(*d))],
        Op::BroadcastTo(s) | Op::Reshape(s) => vec![("shape", ints(s.iter().copied()))],
        Op::Transpose(p) => vec![("perm", ints(p.iter().copied()))],
        Op::Slice(dims) => vec![("dims", Attr::Dims(dims.clone()))],
        Op::Unslice { dims, shape } => vec![("dims", Attr::Dims(dims.clone())), ("shape", ints(shape.iter().copied()))],
        Op::Concat { axis } | Op::Gather { axis } => vec![("axis", Attr::Int(*axis as i128))],
        Op::ScatterAdd { axis, shape } => {
            vec![("axis", Attr::Int(*axis as i128)), ("shape", ints(shape.iter().copied()))]
        }
        Op::Reduce { axes, keepdims, .. } => {
            vec![("axes", ints(axes.iter().copied())), ("keepdims", Attr::Bool(*keepdims))]
        }
        Op::ArgReduce { axis, keepdims, .. } => {
            vec![("axis", Attr::Int(*axis as i128)), ("keepdims", Attr::Bool(*keepdims))]
        }
        Op::While(w) => vec![("carries", Attr::Int(w.carries as i128))],
        Op::WhileGrad(w) => vec![("carries", Attr::Int(w.carries as i128))],
        Op::Scan(s) => vec![
            ("length", Attr::Int(s.length as i128)),
            ("carries", Attr::Int(s.carries as i128)),
            ("xs", Attr::Int(s.xs as i128)),
            ("reverse", Attr::Bool(s.reverse)),
        ],
        Op::Get(i) => vec![("index", Attr::Int(*i as i128))],
        Op::Print(m) => vec![("message", Attr::Str(m.clone()))],
        Op::AllReduce(r) => vec![("reduce", Attr::Str(r.name().to_string()))],
        Op::Broadcast(root) => vec![("root", Attr::Int(*root as i128))],
        Op::AllGather(ranks) => vec![("ranks", Attr::Int(*ranks as i128))],
        Op::Const(_)
        | Op::ReadVar(_)
        | Op::AssignVar(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
        | Op::MatMul
        | Op::Fused(_)
        | Op::Case(_) => Vec::new(),
    }
}

/// Named attributes being consumed by [`build_op`]; whatever is left over is an error.
#[derive(Default)]
pub(crate) struct AttrMap(pub(super) Vec<(String, Attr)>);

impl AttrMap {
    pub(crate) fn insert(&mut self, key: String, value: Attr) -> std::result::Result<(), String> {
        if self.0.iter().any(|(k, _)| *k == key) {
            return Err(format!("attribute `{key}` is given twice"));
        }
        self.0.push((key, value));
        Ok(())
    }

    fn take(&mut self, key: &str) -> std::result::Result<Attr, String> {
        let i = self.0.iter().position(|(k, _)| k == key).ok_or_else(|| format!("missing attribute `{key}`"))?;
        Ok(self.0.remove(i).1)
    }

    fn int(&mut self, key: &str, max: i128) -> std::result::Result<i128, String> {
        match self.take(key)? {
            Attr::Int(v) if (0..=max).contains(&v) => Ok(v),
            Attr::Int(v) => Err(format!("attribute `{key}` = {v} is out of range 0..={max}")),
            other => Err(format!("attribute `{key}` must be an integer, got {other:?}")),
        }
    }

    fn usize(&mut self, key: &str) -> std::result::Result<usize, String> {
        Ok(self.int(key, MAX_ELEMENTS as i128)? as usize)
    }

    fn bool(&mut self, key: &str) -> std::result::Result<bool, String> {
        match self.take(key)? {
            Attr::Bool(b) => Ok(b),
            other => Err(format!("attribute `{key}` must be true or false, got {other:?}")),
        }
    }

    fn dtype(&mut self, key: &str) -> std::result::Result<DType, String> {
        match self.take(key)? {
            Attr::DType(d) => Ok(d),
            other => Err(format!("attribute `{key}` must be a dtype, got {other:?}")),
        }
    }

    fn usizes(&mut self, key: &str) -> std::result::Result<Vec<usize>, String> {
        match self.take(key)? {
            Attr::Ints(v) => v
                .into_iter()
                .map(|x| {
                    if (0..=MAX_ELEMENTS as i128).contains(&x) {
                        Ok(x as usize)
                    } else {
                        Err(format!("attribute `{key}`: {x} is out of range"))
                    }
                })
                .collect(),
            other => Err(format!("attribute `{key}` must be a list of integers, got {other:?}")),
        }
    }

    fn shape(&mut self, key: &str) -> std::result::Result<Shape, String> {
        let dims = self.usizes(key)?;
        check_numel(&dims)?;
        Ok(dims.into_iter().collect())
    }

    fn string(&mut self, key: &str) -> std::result::Result<String, String> {
        match self.take(key)? {
            Attr::Str(s) => Ok(s),
            other => Err(format!("attribute `{key}` must be a string, got {other:?}")),
        }
    }

    fn dims(&mut self, key: &str) -> std::result::Result<Vec<SliceDim>, String> {
        match self.take(key)? {
            Attr::Dims(d) => Ok(d),
            Attr::Ints(v) if v.is_empty() => Ok(Vec::new()),
            other => Err(format!("attribute `{key}` must be a list of start:len:step, got {other:?}")),
        }
    }

    fn finish(self, op: &str) -> std::result::Result<(), String> {
        match self.0.first() {
            Some((k, _)) => Err(format!("`{op}` has no attribute `{k}`")),
            None => Ok(()),
        }
    }
}

/// Checks that a shape's element count neither overflows nor exceeds [`MAX_ELEMENTS`].
pub(crate) fn check_numel(dims: &[usize]) -> std::result::Result<(), String> {
    let mut n: usize = 1;
    for &d in dims {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| format!("shape {} has more than 2^40 elements", crate::shape::fmt_shape(dims)))?;
    }
    Ok(())
}

/// A slice axis from parsed numbers, rejected if its last index could overflow `isize`.
pub(crate) fn slice_dim(start: i128, len: i128, step: i128) -> std::result::Result<SliceDim, String> {
    let lim = MAX_ELEMENTS as i128;
    // Range-check the parts first so that computing the last index cannot overflow i128.
    let ok = (0..=lim).contains(&start)
        && (0..=lim).contains(&len)
        && (-lim..=lim).contains(&step)
        && (-(1i128 << 62)..(1i128 << 62)).contains(&(start + (len - 1) * step));
    if !ok {
        return Err(format!("slice {start}:{len}:{step} is out of range"));
    }
    Ok(SliceDim { start: start as usize, len: len as usize, step: step as isize })
}

/// Builds an op other than `input`, `const`, `read_var`, `assign_var`, `fused` and the
/// region ops from its name and attributes.
pub(crate) fn build_op(name: &str, mut a: AttrMap) -> std::result::Result<Op, String> {
    let op = if let Some(u) = UnaryOp::from_name(name) {
        Op::Unary(u)
    } else if let Some(b) = BinaryOp::from_name(name) {
        Op::Binary(b)
    } else if let Some(r) = ReduceOp::from_name(name) {
        Op::Reduce { op: r, axes: a.usizes("axes")?, keepdims: a.bool("keepdims")? }
    } else if let Some(r) = ArgOp::from_name(name) {
        Op::ArgReduce { op: r, axis: a.usize("axis")?, keepdims: a.bool("keepdims")? }
    } else if let Some(d) = Distribution::from_name(name) {
        Op::Random { dist: d, seed: a.int("seed", u64::MAX as i128)? as u64 }
    } else {
        let unknown = || format!("unknown op `{name}`");
        match OpKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(unknown)? {
            OpKind::Select => Op::Select,
            OpKind::MatMul => Op::MatMul,
            OpKind::Cast => Op::Cast(a.dtype("to")?),
            OpKind::BroadcastTo => Op::BroadcastTo(a.shape("shape")?),
            OpKind::Reshape => Op::Reshape(a.shape("shape")?),
            OpKind::Transpose => Op::Transpose(a.usizes("perm")?),
            OpKind::Slice => Op::Slice(a.dims("dims")?),
            OpKind::Unslice => Op::Unslice { dims: a.dims("dims")?, shape: a.shape("shape")? },
            OpKind::Concat => Op::Concat { axis: a.usize("axis")? },
            OpKind::Gather => Op::Gather { axis: a.usize("axis")? },
            OpKind::ScatterAdd => Op::ScatterAdd { axis: a.usize("axis")?, shape: a.shape("shape")? },
            OpKind::Get => Op::Get(a.usize("index")?),
            OpKind::Print => Op::Print(a.string("message")?),
            OpKind::AllReduce => {
                let r = a.string("reduce")?;
                Op::AllReduce(ReduceOp::from_name(&r).ok_or_else(|| format!("unknown reduction `{r}`"))?)
            }
            OpKind::Broadcast => Op::Broadcast(a.usize("root")?),
            OpKind::AllGather => Op::AllGather(a.usize("ranks")?),
            // Written with their operands or bodies, not built from attributes here.
            OpKind::Input
            | OpKind::Const
            | OpKind::ReadVar
            | OpKind::AssignVar
            | OpKind::Fused
            | OpKind::Case
            | OpKind::While
            | OpKind::Scan
            | OpKind::WhileGrad => return Err(format!("`{name}` cannot be built from attributes alone")),
            // Named by their sub-op (`tanh`, `add`, `sum`, `argmax`, `random_normal`).
            OpKind::Unary | OpKind::Binary | OpKind::Reduce | OpKind::ArgReduce | OpKind::Random => {
                return Err(unknown())
            }
        }
    };
    a.finish(name)?;
    Ok(op)
}

/// Builds a region op from its name, attributes and bodies (in print order: a case's
/// branches; a while's condition and body; a scan's body; a while_grad's condition, body
/// and body VJP).
pub(crate) fn build_region(
    name: &str,
    mut a: AttrMap,
    bodies: Vec<crate::region::Region>,
) -> std::result::Result<Op, String> {
    use crate::region::{CaseOp, ScanOp, WhileGradOp, WhileOp};
    use std::sync::Arc;
    let want = match name {
        "case" => bodies.len().max(1),
        "while" => 2,
        "scan" => 1,
        "while_grad" => 3,
        _ => return Err(format!("`{name}` has no bodies")),
    };
    if bodies.len() != want {
        return Err(format!("`{name}` has {want} bodies, got {}", bodies.len()));
    }
    if name == "case" {
        a.finish(name)?;
        return Ok(Op::Case(Arc::new(CaseOp { branches: bodies })));
    }
    let mut b = bodies.into_iter();
    let mut next = || b.next().expect("counted above");
    let op = match name {
        "while" => {
            let carries = a.usize("carries")?;
            Op::While(Arc::new(WhileOp { cond: next(), body: next(), carries }))
        }
        "scan" => Op::Scan(Arc::new(ScanOp {
            length: a.usize("length")?,
            carries: a.usize("carries")?,
            xs: a.usize("xs")?,
            reverse: a.bool("reverse")?,
            body: next(),
        })),
        _ => {
            let carries = a.usize("carries")?;
            Op::WhileGrad(Arc::new(WhileGradOp { cond: next(), body: next(), body_vjp: next(), carries }))
        }
    };
    a.finish(name)?;
    Ok(op)
}
