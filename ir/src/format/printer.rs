//! Writing a graph as text.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::array::{Array, Data};
use crate::graph::Graph;
use crate::op::Op;
use crate::plan::MemoryPlan;

use super::attrs::*;
use super::*;

/// A name as printed after `@`: bare if it is a plain identifier, quoted otherwise.
pub(super) fn fmt_name(name: &str) -> String {
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
        Attr::Str(s) => quote(s),
    }
}

/// A float as Rust's shortest round-trip form; NaNs other than the canonical one as hex bits.
pub(super) fn fmt_f32(v: f32) -> String {
    if v.is_nan() && v.to_bits() != f32::NAN.to_bits() {
        format!("0x{:08x}", v.to_bits())
    } else {
        format!("{v:?}")
    }
}

pub(super) fn fmt_f64(v: f64) -> String {
    if v.is_nan() && v.to_bits() != f64::NAN.to_bits() {
        format!("0x{:016x}", v.to_bits())
    } else {
        format!("{v:?}")
    }
}

/// A constant's value: `[1.0, 2.5]` when small, `[0.0]` when every element is the same (a
/// splat, whatever its size), `b64"..."` of its little-endian bytes otherwise.
pub(crate) fn fmt_const(a: &Array) -> String {
    if a.len() > 1 && is_splat(a) {
        let first = &a.data().as_bytes()[..a.dtype().size()];
        let one = Data::from_bytes(a.dtype(), first).expect("one element's bytes");
        return fmt_const(&Array::new(one, &[]).expect("a scalar"));
    }
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

/// Whether every element has the same bits as the first.
fn is_splat(a: &Array) -> bool {
    let bytes = a.data().as_bytes();
    let size = bytes.len() / a.len();
    bytes.chunks_exact(size).all(|c| c == &bytes[..size])
}

/// Writes `g` at `indent`. For a region body, `outer` maps its variables to the enclosing
/// graph's (printed `var @0 "w" : f32[] = @3`).
pub(super) fn write_graph(out: &mut String, g: &Graph, indent: usize, outer: &[crate::op::VarId]) {
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
        let _ = write!(out, "{pad}  var @{i} {} : {}", quote(&v.name), v.ty);
        match outer.get(i) {
            Some(o) => {
                let _ = writeln!(out, " = @{o}");
            }
            None => out.push('\n'),
        }
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
            write_graph(out, &k.body, indent + 4, &[]);
            let _ = writeln!(out, "{pad}  }}");
        } else if !node.op.regions().is_empty() {
            // Bodies one after another: `{ graph ... } { graph ... }`.
            for r in node.op.regions() {
                out.push_str(" {\n");
                write_graph(out, &r.graph, indent + 4, &r.vars);
                let _ = write!(out, "{pad}  }}");
            }
            out.push('\n');
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
        write_graph(&mut out, self, 0, &[]);
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
}

pub(super) fn plan_lines(g: &Graph, plan: &MemoryPlan) -> Vec<String> {
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
