//! The text form of a graph: a stable, diff-able printer ([`Graph::to_text`]) and its
//! parser ([`Graph::from_text`]). `docs/DEBUGGING.md` describes the format.
//!
//! The op attribute codec (`Attr`, [`op_attrs`], [`build_op`]) and the size limits live here
//! too: the JSON form uses the same attribute names and values.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;

use crate::array::{Array, Data};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId};
use crate::infer::TensorType;
use crate::op::{ArgOp, BinaryOp, Distribution, Kernel, Op, OpKind, ReduceOp, SliceDim, UnaryOp, VarId};
use crate::plan::MemoryPlan;
use crate::shape::Shape;

/// Largest element count a parsed type or shape attribute may have (2^40): anything
/// bigger is rejected before a buffer is sized from it or a product can overflow.
pub(crate) const MAX_ELEMENTS: usize = 1 << 40;
/// Deepest nesting of fused bodies a parser accepts.
pub(crate) const MAX_DEPTH: usize = 8;
/// Constants with more elements than this are printed as base64 bytes.
const FULL_CONST_LIMIT: usize = 64;

// ---------------------------------------------------------------------------------------
// Numbering
// ---------------------------------------------------------------------------------------

/// The print order of a graph's nodes and each node's number: `topo_order()` (index
/// order if the graph has a cycle, so printing never fails).
pub(crate) fn numbering(g: &Graph) -> (Vec<NodeId>, HashMap<NodeId, usize>) {
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids().collect());
    let num = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    (order, num)
}

fn node_ref(num: &HashMap<NodeId, usize>, id: NodeId) -> String {
    match num.get(&id) {
        Some(n) => format!("%{n}"),
        None => "%?".to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Attributes, shared with the JSON form
// ---------------------------------------------------------------------------------------

/// One attribute value of an op.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Attr {
    Int(i128),
    Bool(bool),
    DType(DType),
    Ints(Vec<i128>),
    Dims(Vec<SliceDim>),
}

fn ints(v: impl IntoIterator<Item = usize>) -> Attr {
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
        Op::Const(_)
        | Op::ReadVar(_)
        | Op::AssignVar(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
        | Op::MatMul
        | Op::Fused(_) => Vec::new(),
    }
}

/// Named attributes being consumed by [`build_op`]; whatever is left over is an error.
#[derive(Default)]
pub(crate) struct AttrMap(Vec<(String, Attr)>);

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

/// Builds an op other than `input`, `const`, `read_var`, `assign_var` and `fused` from
/// its name and attributes.
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
            // Written with their operands or bodies, not built from attributes here.
            OpKind::Input | OpKind::Const | OpKind::ReadVar | OpKind::AssignVar | OpKind::Fused => {
                return Err(format!("`{name}` cannot be built from attributes alone"))
            }
            // Named by their sub-op (`tanh`, `add`, `sum`, `argmax`, `random_normal`).
            OpKind::Unary | OpKind::Binary | OpKind::Reduce | OpKind::ArgReduce | OpKind::Random => {
                return Err(unknown())
            }
        }
    };
    a.finish(name)?;
    Ok(op)
}

// ---------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------

/// A name as printed after `@`: bare if it is a plain identifier, quoted otherwise.
fn fmt_name(name: &str) -> String {
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if plain {
        name.to_string()
    } else {
        quote(name)
    }
}

/// A double-quoted string with `\\`, `\"`, `\n`, `\r`, `\t` and `\u{..}` escapes.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn fmt_attr(v: &Attr) -> String {
    match v {
        Attr::Int(i) => i.to_string(),
        Attr::Bool(b) => b.to_string(),
        Attr::DType(d) => d.name().to_string(),
        Attr::Ints(v) => format!("[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")),
        Attr::Dims(d) => {
            format!(
                "[{}]",
                d.iter().map(|d| format!("{}:{}:{}", d.start, d.len, d.step)).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// A float as Rust's shortest round-trip form; NaNs other than the canonical one as hex bits.
fn fmt_f32(v: f32) -> String {
    if v.is_nan() && v.to_bits() != f32::NAN.to_bits() {
        format!("0x{:08x}", v.to_bits())
    } else {
        format!("{v:?}")
    }
}

fn fmt_f64(v: f64) -> String {
    if v.is_nan() && v.to_bits() != f64::NAN.to_bits() {
        format!("0x{:016x}", v.to_bits())
    } else {
        format!("{v:?}")
    }
}

/// A constant's value: `[1.0, 2.5]` when small, `b64"..."` of its little-endian bytes otherwise.
pub(crate) fn fmt_const(a: &Array) -> String {
    if a.len() > FULL_CONST_LIMIT {
        return format!("b64\"{}\"", base64::engine::general_purpose::STANDARD.encode(a.data().as_bytes()));
    }
    let items: Vec<String> = match a.data() {
        Data::F32(v) => v.iter().map(|&x| fmt_f32(x)).collect(),
        Data::F64(v) => v.iter().map(|&x| fmt_f64(x)).collect(),
        Data::I32(v) => v.iter().map(|x| x.to_string()).collect(),
        Data::I64(v) => v.iter().map(|x| x.to_string()).collect(),
        Data::Bool(v) => v.iter().map(|x| x.to_string()).collect(),
    };
    format!("[{}]", items.join(", "))
}

fn write_graph(out: &mut String, g: &Graph, indent: usize) {
    let pad = " ".repeat(indent);
    let (order, num) = numbering(g);
    let ins: Vec<String> = g
        .inputs()
        .iter()
        .map(|&i| if g.contains(i) { format!("{}: {}", node_ref(&num, i), g.node(i).ty) } else { "%?".to_string() })
        .collect();
    let outs: Vec<String> = g.outputs().iter().map(|&o| node_ref(&num, o)).collect();
    let _ = writeln!(out, "{pad}graph @{}({}) -> ({})", fmt_name(g.name()), ins.join(", "), outs.join(", "));
    for (i, v) in g.vars().iter().enumerate() {
        let _ = writeln!(out, "{pad}  var @{i} {} : {}", quote(&v.name), v.ty);
    }
    for id in order {
        let node = g.node(id);
        let after: Vec<String> = g.order_preds(id).into_iter().map(|p| node_ref(&num, p)).collect();
        if matches!(node.op, Op::Input(i) if g.inputs().get(i) == Some(&id)) {
            if !after.is_empty() {
                // Not expressible (and rejected by the verifier); shown so the dump hides nothing.
                let _ = writeln!(out, "{pad}  # invalid: input {} is ordered after {}", num[&id], after.join(", "));
            }
            continue;
        }
        let mut items: Vec<String> = Vec::new();
        match &node.op {
            Op::Const(a) => items.push(fmt_const(a)),
            Op::ReadVar(v) | Op::AssignVar(v) => items.push(format!("@{v}")),
            _ => {}
        }
        items.extend(g.args(id).into_iter().map(|a| node_ref(&num, a)));
        let _ = write!(out, "{pad}  %{} = {}", num[&id], node.op.name());
        if !items.is_empty() {
            let _ = write!(out, " {}", items.join(", "));
        }
        let attrs = op_attrs(&node.op);
        if !attrs.is_empty() {
            let a: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={}", fmt_attr(v))).collect();
            let _ = write!(out, " {{{}}}", a.join(", "));
        }
        let _ = write!(out, " : {}", node.ty);
        if !after.is_empty() {
            let _ = write!(out, " after {}", after.join(", "));
        }
        if let Op::Fused(k) = &node.op {
            out.push_str(" {\n");
            write_graph(out, &k.body, indent + 4);
            let _ = writeln!(out, "{pad}  }}");
        } else {
            out.push('\n');
        }
    }
}

impl Graph {
    /// The graph as text: one line per node, numbered in topological order (inputs, which
    /// come first in traced graphs, are declared in the header). `docs/DEBUGGING.md`
    /// describes the format; [`Graph::from_text`] parses it back.
    ///
    /// ```
    /// use kiln_ir::{BinaryOp, DType, Graph, Op, TensorType, UnaryOp};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[2, 3]));
    /// let y = g.add_input(TensorType::new(DType::F32, &[3]));
    /// let s = g.add(Op::Binary(BinaryOp::Add), &[x, y]).unwrap();
    /// let t = g.add(Op::Unary(UnaryOp::Tanh), &[s]).unwrap();
    /// g.set_outputs(vec![t]);
    /// let text = g.to_text();
    /// assert_eq!(
    ///     text,
    ///     "graph @f(%0: f32[2,3], %1: f32[3]) -> (%3)\n  %2 = add %0, %1 : f32[2,3]\n  %3 = tanh %2 : f32[2,3]\n"
    /// );
    /// assert!(Graph::from_text(&text).unwrap().structurally_eq(&g));
    /// ```
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        write_graph(&mut out, self, 0);
        out
    }

    /// The memory plan, if any, as text: arena and naive sizes, the schedule, and
    /// `%N -> [offset, bytes]` per slot (node numbers as in [`Graph::to_text`]).
    /// Empty if the graph has no plan.
    ///
    /// ```
    /// use kiln_ir::{DType, Graph, MemoryPlan, Op, Slot, TensorType, UnaryOp};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[4]));
    /// let e = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    /// let n = g.add(Op::Unary(UnaryOp::Neg), &[e]).unwrap();
    /// g.set_outputs(vec![n]);
    /// let slots = [(e, Slot { offset: 0, bytes: 16 })].into_iter().collect();
    /// g.plan = Some(MemoryPlan { schedule: vec![x, e, n], slots, arena_bytes: 16, naive_bytes: 16, ..Default::default() });
    /// assert_eq!(
    ///     g.plan_text(),
    ///     "plan: arena 16 bytes, naive 16 bytes (100.0% of naive)\nschedule: %0 %1 %2\n%1 -> [0, 16]\n"
    /// );
    /// ```
    pub fn plan_text(&self) -> String {
        let Some(plan) = &self.plan else { return String::new() };
        plan_lines(self, plan).join("\n") + "\n"
    }

    /// [`Graph::to_text`] followed by [`Graph::plan_text`] as `#` comment lines, so the
    /// result still parses with [`Graph::from_text`].
    pub fn to_text_with_plan(&self) -> String {
        let mut out = self.to_text();
        if let Some(plan) = &self.plan {
            for l in plan_lines(self, plan) {
                let _ = writeln!(out, "# {l}");
            }
        }
        out
    }

    /// Parses the text form and verifies the result. Syntax errors are
    /// `Error::Parse { line, .. }`; a graph that parses but breaks a rule of
    /// [`Graph::verify`] is also reported as `Error::Parse` at the offending node's line.
    ///
    /// ```
    /// use kiln_ir::{Error, Graph};
    /// let g = Graph::from_text("graph @f(%0: f32[3]) -> (%1)\n  %1 = exp %0 : f32[3]\n").unwrap();
    /// assert_eq!(g.len(), 2);
    /// let bad = Graph::from_text("graph @f(%0: f32[3]) -> (%1)\n  %1 = exp %0 : i32[3]\n");
    /// assert!(matches!(bad, Err(Error::Parse { line: 2, .. })));
    /// ```
    pub fn from_text(text: &str) -> Result<Graph> {
        let (g, lines) = parse(text)?;
        g.verify_located().map_err(|(node, msg)| Error::Parse {
            line: node.and_then(|n| lines.get(n.index()).copied()).unwrap_or(1),
            msg,
        })?;
        Ok(g)
    }

    /// Parses the text form without verifying it (for tests of the verifier and passes
    /// that want to see a broken graph). Still never panics and still bounds sizes.
    pub fn from_text_unverified(text: &str) -> Result<Graph> {
        parse(text).map(|(g, _)| g)
    }
}

fn plan_lines(g: &Graph, plan: &MemoryPlan) -> Vec<String> {
    let (_, num) = numbering(g);
    let pct = if plan.naive_bytes == 0 { 100.0 } else { 100.0 * plan.arena_bytes as f64 / plan.naive_bytes as f64 };
    let mut lines =
        vec![format!("plan: arena {} bytes, naive {} bytes ({pct:.1}% of naive)", plan.arena_bytes, plan.naive_bytes)];
    let sched: Vec<String> = plan.schedule.iter().map(|&n| node_ref(&num, n)).collect();
    lines.push(format!("schedule: {}", sched.join(" ")));
    let mut slots: Vec<(usize, String, crate::plan::Slot)> =
        plan.slots.iter().map(|(&n, &s)| (num.get(&n).copied().unwrap_or(usize::MAX), node_ref(&num, n), s)).collect();
    slots.sort_by_key(|s| (s.0, s.2.offset));
    for (_, r, s) in slots {
        lines.push(format!("{r} -> [{}, {}]", s.offset, s.bytes));
    }
    lines
}

// ---------------------------------------------------------------------------------------
// Lexing
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// `%12`
    Node(String),
    /// `@0`, `@name`, `@"quoted name"`
    At(String),
    Str(String),
    /// Identifiers and numbers: `[A-Za-z0-9_.+-]+`.
    Word(String),
    Arrow,
    Punct(char),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Node(n) => write!(f, "`%{n}`"),
            Tok::At(n) => write!(f, "`@{n}`"),
            Tok::Str(s) => write!(f, "string {}", quote(s)),
            Tok::Word(w) => write!(f, "`{w}`"),
            Tok::Arrow => write!(f, "`->`"),
            Tok::Punct(c) => write!(f, "`{c}`"),
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')
}

fn lex_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> std::result::Result<String, String> {
    let mut s = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated string".into()),
            Some('"') => return Ok(s),
            Some('\\') => match chars.next() {
                Some('\\') => s.push('\\'),
                Some('"') => s.push('"'),
                Some('n') => s.push('\n'),
                Some('r') => s.push('\r'),
                Some('t') => s.push('\t'),
                Some('u') => {
                    if chars.next() != Some('{') {
                        return Err("expected `{` after `\\u`".into());
                    }
                    let mut hex = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_hexdigit() && hex.len() < 6 => hex.push(c),
                            _ => return Err("bad `\\u{..}` escape".into()),
                        }
                    }
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("`\\u{{{hex}}}` is not a character"))?;
                    s.push(c);
                }
                other => return Err(format!("unknown escape `\\{}`", other.map(String::from).unwrap_or_default())),
            },
            Some(c) => s.push(c),
        }
    }
}

fn lex(line: &str) -> std::result::Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == '"' {
            chars.next();
            toks.push(Tok::Str(lex_string(&mut chars)?));
        } else if c == '%' || c == '@' {
            chars.next();
            let name = if chars.peek() == Some(&'"') && c == '@' {
                chars.next();
                lex_string(&mut chars)?
            } else {
                let mut w = String::new();
                while let Some(&d) = chars.peek().filter(|d| is_word(**d)) {
                    w.push(d);
                    chars.next();
                }
                w
            };
            if name.is_empty() && c == '%' {
                return Err("expected a node number after `%`".into());
            }
            toks.push(if c == '%' { Tok::Node(name) } else { Tok::At(name) });
        } else if c == '-' && {
            let mut look = chars.clone();
            look.next();
            look.peek() == Some(&'>')
        } {
            chars.next();
            chars.next();
            toks.push(Tok::Arrow);
        } else if is_word(c) {
            let mut w = String::new();
            while let Some(&d) = chars.peek().filter(|d| is_word(**d)) {
                w.push(d);
                chars.next();
            }
            toks.push(Tok::Word(w));
        } else if "()[]{},:=".contains(c) {
            chars.next();
            toks.push(Tok::Punct(c));
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------
// Parsing one line
// ---------------------------------------------------------------------------------------

/// Tokens of one line and the line's number, for errors.
struct Line {
    toks: Vec<Tok>,
    pos: usize,
    no: usize,
}

impl Line {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T> {
        Err(Error::Parse { line: self.no, msg: msg.into() })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Result<Tok> {
        match self.toks.get(self.pos).cloned() {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => self.err("unexpected end of line"),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        match self.next()? {
            Tok::Punct(d) if d == c => Ok(()),
            t => self.err(format!("expected `{c}`, found {t}")),
        }
    }

    fn word(&mut self) -> Result<String> {
        match self.next()? {
            Tok::Word(w) => Ok(w),
            t => self.err(format!("expected a word or number, found {t}")),
        }
    }

    fn end(&self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => self.err(format!("unexpected {t} at end of line")),
        }
    }

    fn int(&mut self) -> Result<i128> {
        let w = self.word()?;
        match w.parse::<i128>() {
            Ok(v) if v.unsigned_abs() <= u64::MAX as u128 => Ok(v),
            _ => self.err(format!("`{w}` is not an integer in range")),
        }
    }

    fn node_num(&mut self) -> Result<usize> {
        match self.next()? {
            Tok::Node(n) => match n.parse::<usize>() {
                Ok(v) => Ok(v),
                Err(_) => self.err(format!("`%{n}` is not a node number")),
            },
            t => self.err(format!("expected a node `%N`, found {t}")),
        }
    }

    fn index_at(&mut self) -> Result<u32> {
        match self.next()? {
            Tok::At(n) => match n.parse::<u32>() {
                Ok(v) => Ok(v),
                Err(_) => self.err(format!("`@{n}` is not a variable number")),
            },
            t => self.err(format!("expected a variable `@N`, found {t}")),
        }
    }

    /// `f32[2,3]`, `bool[]`.
    fn ty(&mut self) -> Result<TensorType> {
        let w = self.word()?;
        let dtype: DType = match w.parse() {
            Ok(d) => d,
            Err(e) => return self.err(e),
        };
        self.expect('[')?;
        let mut dims = Vec::new();
        if !self.eat(']') {
            loop {
                let d = self.int()?;
                if !(0..=MAX_ELEMENTS as i128).contains(&d) {
                    return self.err(format!("dimension {d} is out of range"));
                }
                dims.push(d as usize);
                if self.eat(']') {
                    break;
                }
                self.expect(',')?;
            }
        }
        if let Err(e) = check_numel(&dims) {
            return self.err(e);
        }
        Ok(TensorType::new(dtype, &dims))
    }

    /// `(%0, %1)` or `(%0: f32[2], %1: f32[3])`.
    fn ref_list(&mut self, typed: bool) -> Result<Vec<(usize, Option<TensorType>)>> {
        self.expect('(')?;
        let mut v = Vec::new();
        if self.eat(')') {
            return Ok(v);
        }
        loop {
            let n = self.node_num()?;
            let ty = if typed {
                self.expect(':')?;
                Some(self.ty()?)
            } else {
                None
            };
            v.push((n, ty));
            if self.eat(')') {
                return Ok(v);
            }
            self.expect(',')?;
        }
    }

    fn attr_value(&mut self) -> Result<Attr> {
        if self.eat('[') {
            if self.eat(']') {
                return Ok(Attr::Ints(Vec::new()));
            }
            let mut ints = Vec::new();
            let mut dims = Vec::new();
            loop {
                let a = self.int()?;
                if self.eat(':') {
                    let len = self.int()?;
                    self.expect(':')?;
                    let step = self.int()?;
                    match slice_dim(a, len, step) {
                        Ok(d) => dims.push(d),
                        Err(e) => return self.err(e),
                    }
                } else {
                    ints.push(a);
                }
                if self.eat(']') {
                    break;
                }
                self.expect(',')?;
            }
            return match (ints.is_empty(), dims.is_empty()) {
                (false, true) => Ok(Attr::Ints(ints)),
                (true, false) => Ok(Attr::Dims(dims)),
                _ => self.err("a list mixes integers and start:len:step slices"),
            };
        }
        let w = self.word()?;
        Ok(match w.as_str() {
            "true" => Attr::Bool(true),
            "false" => Attr::Bool(false),
            _ => {
                if let Ok(d) = w.parse::<DType>() {
                    Attr::DType(d)
                } else if let Ok(v) = w.parse::<i128>() {
                    Attr::Int(v)
                } else {
                    return self.err(format!("`{w}` is not an attribute value"));
                }
            }
        })
    }

    /// `{key=value, ...}` (the `{` already consumed).
    fn attrs(&mut self) -> Result<AttrMap> {
        let mut map = AttrMap::default();
        if self.eat('}') {
            return Ok(map);
        }
        loop {
            let key = self.word()?;
            self.expect('=')?;
            let v = self.attr_value()?;
            if let Err(e) = map.insert(key, v) {
                return self.err(e);
            }
            if self.eat('}') {
                return Ok(map);
            }
            self.expect(',')?;
        }
    }
}

fn parse_f32(w: &str) -> Option<f32> {
    match w.strip_prefix("0x") {
        Some(h) if h.len() == 8 => u32::from_str_radix(h, 16).ok().map(f32::from_bits),
        Some(_) => None,
        None if w == "NaN" => Some(f32::NAN),
        None => w.parse().ok(),
    }
}

fn parse_f64(w: &str) -> Option<f64> {
    match w.strip_prefix("0x") {
        Some(h) if h.len() == 16 => u64::from_str_radix(h, 16).ok().map(f64::from_bits),
        Some(_) => None,
        None if w == "NaN" => Some(f64::NAN),
        None => w.parse().ok(),
    }
}

/// A constant of type `ty` from its printed elements.
fn const_from_words(words: &[String], ty: &TensorType) -> std::result::Result<Array, String> {
    if words.len() != ty.numel() {
        return Err(format!("{} values for a constant of type {ty} ({} elements)", words.len(), ty.numel()));
    }
    fn all<T>(words: &[String], f: impl Fn(&str) -> Option<T>, what: &str) -> std::result::Result<Vec<T>, String> {
        words.iter().map(|w| f(w).ok_or_else(|| format!("`{w}` is not {what}"))).collect()
    }
    let data = match ty.dtype {
        DType::F32 => Data::F32(all(words, parse_f32, "an f32")?),
        DType::F64 => Data::F64(all(words, parse_f64, "an f64")?),
        DType::I32 => Data::I32(all(words, |w| w.parse().ok(), "an i32")?),
        DType::I64 => Data::I64(all(words, |w| w.parse().ok(), "an i64")?),
        DType::Bool => Data::Bool(all(
            words,
            |w| match w {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            "a bool",
        )?),
    };
    Array::new(data, &ty.shape).map_err(|e| e.to_string())
}

/// A constant of type `ty` from base64 of its little-endian bytes.
pub(crate) fn const_from_b64(b64: &str, ty: &TensorType) -> std::result::Result<Array, String> {
    // The type was size-checked, so this product cannot overflow.
    let want = ty.numel() * ty.dtype.size();
    if b64.len() / 4 * 3 > want + 3 {
        return Err(format!("base64 data is longer than the {want} bytes of {ty}"));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("bad base64: {e}"))?;
    if bytes.len() != want {
        return Err(format!("{} bytes of data for a constant of type {ty} ({want} bytes)", bytes.len()));
    }
    let data = Data::from_bytes(ty.dtype, &bytes).map_err(|e| e.to_string())?;
    Array::new(data, &ty.shape).map_err(|e| e.to_string())
}

/// What a node line lists before its attributes.
enum Item {
    Node(usize),
    Var(u32),
    List(Vec<String>),
    B64(String),
}

/// One parsed node line, before the graph is built.
struct NodeRec {
    num: usize,
    line: usize,
    name: String,
    items: Vec<Item>,
    attrs: AttrMap,
    ty: TensorType,
    after: Vec<usize>,
    body: Option<Graph>,
}

fn parse_node_line(l: &mut Line) -> Result<(NodeRec, bool)> {
    let num = l.node_num()?;
    l.expect('=')?;
    let name = l.word()?;
    let mut items = Vec::new();
    loop {
        match l.peek() {
            Some(Tok::Node(_)) => items.push(Item::Node(l.node_num()?)),
            Some(Tok::At(_)) => items.push(Item::Var(l.index_at()?)),
            Some(Tok::Punct('[')) => {
                l.pos += 1;
                let mut words = Vec::new();
                if !l.eat(']') {
                    loop {
                        words.push(l.word()?);
                        if l.eat(']') {
                            break;
                        }
                        l.expect(',')?;
                    }
                }
                items.push(Item::List(words));
            }
            Some(Tok::Word(w)) if w == "b64" => {
                l.pos += 1;
                match l.next()? {
                    Tok::Str(s) => items.push(Item::B64(s)),
                    t => return l.err(format!("expected a string after `b64`, found {t}")),
                }
            }
            _ => break,
        }
        if !l.eat(',') {
            break;
        }
    }
    let attrs = if l.eat('{') { l.attrs()? } else { AttrMap::default() };
    l.expect(':')?;
    let ty = l.ty()?;
    let mut after = Vec::new();
    if l.peek() == Some(&Tok::Word("after".into())) {
        l.pos += 1;
        loop {
            after.push(l.node_num()?);
            if !l.eat(',') {
                break;
            }
        }
    }
    let opens_body = l.eat('{');
    l.end()?;
    Ok((NodeRec { num, line: l.no, name, items, attrs, ty, after, body: None }, opens_body))
}

// ---------------------------------------------------------------------------------------
// Parsing a graph
// ---------------------------------------------------------------------------------------

struct Parser<'a> {
    /// Non-blank, non-comment lines with their 1-based numbers.
    lines: Vec<(usize, &'a str)>,
    pos: usize,
    last_line: usize,
}

/// Parses text into a graph (unverified) and, per node index, its line number.
fn parse(text: &str) -> Result<(Graph, Vec<usize>)> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut p = Parser { lines, pos: 0, last_line: text.lines().count().max(1) };
    let (g, node_lines) = p.graph(0)?;
    if let Some(&(no, _)) = p.lines.get(p.pos) {
        return Err(Error::Parse { line: no, msg: "unexpected line after the end of the graph".into() });
    }
    Ok((g, node_lines))
}

impl Parser<'_> {
    fn line(&self) -> Result<Line> {
        let &(no, text) = self
            .lines
            .get(self.pos)
            .ok_or_else(|| Error::Parse { line: self.last_line, msg: "unexpected end of input".into() })?;
        let toks = lex(text).map_err(|msg| Error::Parse { line: no, msg })?;
        Ok(Line { toks, pos: 0, no })
    }

    /// A graph from its header line to the end of input (`depth` 0) or to the `}` closing
    /// a fused body (the `}` consumed).
    fn graph(&mut self, depth: usize) -> Result<(Graph, Vec<usize>)> {
        let mut l = self.line()?;
        self.pos += 1;
        if l.word().ok().as_deref() != Some("graph") {
            return l.err("expected `graph @name(...) -> (...)`");
        }
        let name = match l.next()? {
            Tok::At(n) => n,
            t => return l.err(format!("expected the graph name `@name`, found {t}")),
        };
        let inputs = l.ref_list(true)?;
        match l.next()? {
            Tok::Arrow => {}
            t => return l.err(format!("expected `->`, found {t}")),
        }
        let outputs = l.ref_list(false)?;
        l.end()?;
        let header_line = l.no;

        let mut vars: Vec<(String, TensorType)> = Vec::new();
        let mut recs: Vec<NodeRec> = Vec::new();
        loop {
            if self.pos == self.lines.len() {
                if depth == 0 {
                    break;
                }
                return Err(Error::Parse { line: self.last_line, msg: "unclosed fused body: missing `}`".into() });
            }
            let mut l = self.line()?;
            match l.peek() {
                Some(Tok::Punct('}')) if depth > 0 => {
                    l.pos += 1;
                    l.end()?;
                    self.pos += 1;
                    break;
                }
                Some(Tok::Word(w)) if w == "var" => {
                    l.pos += 1;
                    let idx = l.index_at()?;
                    if idx as usize != vars.len() {
                        return l.err(format!("expected variable @{}, found @{idx}", vars.len()));
                    }
                    let name = match l.next()? {
                        Tok::Str(s) => s,
                        t => return l.err(format!("expected the variable's quoted name, found {t}")),
                    };
                    l.expect(':')?;
                    let ty = l.ty()?;
                    l.end()?;
                    vars.push((name, ty));
                    self.pos += 1;
                }
                Some(Tok::Node(_)) => {
                    let (mut rec, opens_body) = parse_node_line(&mut l)?;
                    self.pos += 1;
                    if opens_body {
                        if depth + 1 > MAX_DEPTH {
                            return l.err(format!("fused bodies nest deeper than {MAX_DEPTH}"));
                        }
                        rec.body = Some(self.graph(depth + 1)?.0);
                    }
                    recs.push(rec);
                }
                _ => return l.err("expected a node line `%N = ...`, `var @N ...` or `}`"),
            }
        }
        build(name, header_line, inputs, outputs, vars, recs)
    }
}

enum Def {
    Input(TensorType),
    Node(Box<NodeRec>),
}

fn perr<T>(line: usize, msg: impl Into<String>) -> Result<T> {
    Err(Error::Parse { line, msg: msg.into() })
}

/// Builds the graph, creating nodes in number order so that node indices equal the
/// printed numbers; every reference must be to a smaller number.
fn build(
    name: String,
    header_line: usize,
    inputs: Vec<(usize, Option<TensorType>)>,
    outputs: Vec<(usize, Option<TensorType>)>,
    vars: Vec<(String, TensorType)>,
    recs: Vec<NodeRec>,
) -> Result<(Graph, Vec<usize>)> {
    let total = inputs.len() + recs.len();
    let mut defs: Vec<Option<(usize, Def)>> = (0..total).map(|_| None).collect();
    let mut last_input = None;
    for (n, ty) in inputs {
        if last_input.is_some_and(|l| n <= l) {
            return perr(header_line, "inputs must be listed in increasing node order");
        }
        last_input = Some(n);
        let slot = defs.get_mut(n).ok_or_else(|| Error::Parse {
            line: header_line,
            msg: format!("%{n} is out of range: the graph has {total} nodes"),
        })?;
        *slot = Some((header_line, Def::Input(ty.expect("typed list"))));
    }
    for rec in recs {
        let (n, line) = (rec.num, rec.line);
        match defs.get_mut(n) {
            None => return perr(line, format!("%{n} is out of range: the graph has {total} nodes")),
            Some(Some((prev, _))) => return perr(line, format!("%{n} is already defined on line {prev}")),
            Some(slot) => *slot = Some((line, Def::Node(Box::new(rec)))),
        }
    }
    let mut g = Graph::new(name);
    for (v, ty) in vars {
        g.declare_var(v, ty);
    }
    let mut ids: Vec<NodeId> = Vec::with_capacity(total);
    let mut lines = Vec::with_capacity(total);
    for (n, def) in defs.into_iter().enumerate() {
        let Some((line, def)) = def else {
            return perr(header_line, format!("node %{n} is never defined (nodes are numbered 0..{total})"));
        };
        let id = match def {
            Def::Input(ty) => g.add_input(ty),
            Def::Node(rec) => add_node(&mut g, &ids, *rec)?,
        };
        ids.push(id);
        lines.push(line);
    }
    let mut outs = Vec::with_capacity(outputs.len());
    for (n, _) in outputs {
        match ids.get(n) {
            Some(&id) => outs.push(id),
            None => return perr(header_line, format!("output %{n} is not a node")),
        }
    }
    g.set_outputs(outs);
    Ok((g, lines))
}

fn add_node(g: &mut Graph, ids: &[NodeId], rec: NodeRec) -> Result<NodeId> {
    let line = rec.line;
    let resolve = |n: usize| -> Result<NodeId> {
        if n >= rec.num {
            return perr(line, format!("%{} refers to %{n}, which is not defined before it", rec.num));
        }
        Ok(ids[n])
    };
    let mut args = Vec::new();
    let mut var = None;
    let mut value = None;
    for (k, item) in rec.items.into_iter().enumerate() {
        match item {
            Item::Node(n) => args.push(resolve(n)?),
            Item::Var(v) if k == 0 && matches!(rec.name.as_str(), "read_var" | "assign_var") => var = Some(v),
            Item::List(w) if k == 0 && rec.name == "const" => value = Some(const_from_words(&w, &rec.ty)),
            Item::B64(s) if k == 0 && rec.name == "const" => value = Some(const_from_b64(&s, &rec.ty)),
            _ => return perr(line, format!("unexpected operand {} of `{}`", k + 1, rec.name)),
        }
    }
    let after: Vec<NodeId> = rec.after.iter().map(|&n| resolve(n)).collect::<Result<_>>()?;
    let no_attrs =
        |a: &AttrMap| if a.0.is_empty() { Ok(()) } else { perr(line, format!("`{}` takes no attributes", rec.name)) };
    if rec.body.is_some() != (rec.name == "fused") {
        return perr(line, "only `fused` nodes have a `{ ... }` body, and they must have one");
    }
    let op = match rec.name.as_str() {
        "input" => return perr(line, "inputs are declared in the graph header, not as nodes"),
        "const" => {
            no_attrs(&rec.attrs)?;
            match value {
                Some(Ok(a)) => Op::Const(a),
                Some(Err(e)) => return perr(line, e),
                None => return perr(line, "`const` needs a value: `[...]` or `b64\"...\"`"),
            }
        }
        "read_var" | "assign_var" => {
            no_attrs(&rec.attrs)?;
            let Some(v) = var else { return perr(line, format!("`{}` needs a variable `@N`", rec.name)) };
            if rec.name == "read_var" {
                Op::ReadVar(v as VarId)
            } else {
                Op::AssignVar(v as VarId)
            }
        }
        "fused" => {
            no_attrs(&rec.attrs)?;
            Op::Fused(Arc::new(Kernel { body: rec.body.expect("checked above") }))
        }
        name => build_op(name, rec.attrs).or_else(|e| perr(line, e))?,
    };
    let id = g.add_unchecked(op, rec.ty, &args);
    for a in after {
        g.add_order(a, id);
    }
    Ok(id)
}
