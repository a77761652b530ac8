//! Graphviz output: [`Graph::to_dot`].

use std::fmt::Write as _;

use crate::format::{fmt_attr, fmt_const, numbering, op_attrs};
use crate::graph::Graph;
use crate::op::Op;

/// Escapes text for a double-quoted DOT string (newlines are added by the caller).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Node styling by role, so inputs, constants, variables, randomness, side effects and
/// kernels are told apart at a glance.
fn style(op: &Op) -> &'static str {
    match op {
        Op::Input(_) => "shape=invhouse, style=filled, fillcolor=\"#cfe2ff\"",
        Op::Const(_) => "shape=note, style=filled, fillcolor=\"#e9ecef\"",
        Op::ReadVar(_) => "shape=cylinder, style=filled, fillcolor=\"#fff3bf\"",
        Op::AssignVar(_) => "shape=box, style=\"filled,bold\", penwidth=2, color=\"#c92a2a\", fillcolor=\"#ffc9c9\"",
        Op::Random { .. } => "shape=box, style=\"filled,rounded\", fillcolor=\"#e5dbff\"",
        Op::Fused(_) => "shape=box, style=filled, fillcolor=\"#d3f9d8\"",
        _ => "shape=box",
    }
}

impl Graph {
    /// The graph in Graphviz DOT: one box per op labelled `%N op {attrs}` (numbers as in
    /// [`Graph::to_text`]); inputs, outputs, constants, variable reads, random ops and
    /// `assign_var` (bold red) each have their own shape and colour; data edges carry the
    /// value's type (and the operand position when there are several); order edges are
    /// dashed red; a fused node lists its body's ops. Render with `dot -Tsvg f.dot`.
    ///
    /// ```
    /// use kiln_ir::{DType, Graph, Op, TensorType, UnaryOp};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[3]));
    /// let y = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    /// g.set_outputs(vec![y]);
    /// let dot = g.to_dot();
    /// assert!(dot.starts_with("digraph \"f\" {"));
    /// assert!(dot.contains("n0 -> n1 [label=\"f32[3]\"]"));
    /// ```
    pub fn to_dot(&self) -> String {
        let (order, num) = numbering(self);
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", esc(self.name()));
        out.push_str("  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n");
        out.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
        for &id in &order {
            let node = self.node(id);
            let n = num[&id];
            let mut head = format!("%{n} {}", node.op.name());
            match &node.op {
                Op::Input(i) => {
                    let _ = write!(head, " {i}");
                }
                Op::ReadVar(v) | Op::AssignVar(v) => {
                    let name = self.vars().get(*v as usize).map_or("<undeclared>", |d| d.name.as_str());
                    let _ = write!(head, " @{v} \"{name}\"");
                }
                _ => {}
            }
            let attrs: Vec<String> = op_attrs(&node.op)
                .iter()
                .filter(|(k, _)| *k != "index")
                .map(|(k, v)| format!("{k}={}", fmt_attr(v)))
                .collect();
            if !attrs.is_empty() {
                let _ = write!(head, " {{{}}}", attrs.join(", "));
            }
            let mut label = format!("{}\\n{}", esc(&head), esc(&node.ty.to_string()));
            match &node.op {
                Op::Const(a) if a.len() <= 8 => {
                    let _ = write!(label, "\\n{}", esc(&fmt_const(a)));
                }
                Op::Fused(k) => {
                    // The body as text, left-justified, one op per line.
                    label.push_str("\\l");
                    for line in k.body.to_text().lines().skip(1) {
                        let _ = write!(label, "{}\\l", esc(line));
                    }
                }
                _ => {}
            }
            let _ = writeln!(out, "  n{} [label=\"{label}\", {}];", id.index(), style(&node.op));
        }
        for &id in &order {
            let args = self.args(id);
            for (pos, &a) in args.iter().enumerate() {
                let ty = esc(&self.node(a).ty.to_string());
                let label = if args.len() > 1 { format!("#{pos} {ty}") } else { ty };
                let _ = writeln!(out, "  n{} -> n{} [label=\"{label}\"];", a.index(), id.index());
            }
            for p in self.order_preds(id) {
                let _ = writeln!(out, "  n{} -> n{} [style=dashed, color=red];", p.index(), id.index());
            }
        }
        for (i, &o) in self.outputs().iter().enumerate() {
            let _ = writeln!(
                out,
                "  out{i} [label=\"output {i}\", shape=house, style=filled, fillcolor=\"#b2f2bb\"];\n  n{} -> out{i};",
                o.index()
            );
        }
        out.push_str("}\n");
        out
    }
}
