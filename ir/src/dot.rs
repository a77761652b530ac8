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
        Op::Case(_) | Op::While(_) | Op::Scan(_) | Op::WhileGrad(_) => {
            "shape=box3d, style=filled, fillcolor=\"#ffe8cc\""
        }
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
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", esc(self.name()));
        out.push_str("  rankdir=TB;\n  compound=true;\n  node [fontname=\"monospace\", fontsize=10];\n");
        out.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
        write_body(&mut out, self, "n", 1);
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

/// The nodes and edges of `g`, DOT ids `{prefix}{index}`; a region op's bodies follow as
/// clusters (ids prefixed with the region node's), joined to the region node by a dotted
/// edge.
fn write_body(out: &mut String, g: &Graph, prefix: &str, depth: usize) {
    let pad = "  ".repeat(depth);
    let (order, num) = numbering(g);
    for &id in &order {
        let node = g.node(id);
        let n = num[&id];
        let mut head = format!("%{n} {}", node.op.name());
        match &node.op {
            Op::Input(i) => {
                let _ = write!(head, " {i}");
            }
            Op::ReadVar(v) | Op::AssignVar(v) => {
                let name = g.vars().get(*v as usize).map_or("<undeclared>", |d| d.name.as_str());
                let _ = write!(head, " @{v} \"{name}\"");
            }
            _ => {}
        }
        let attrs: Vec<String> = op_attrs(&node.op)
            .iter()
            .filter(|(k, _)| *k != "index" || matches!(node.op, Op::Get(_)))
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
        let _ = writeln!(out, "{pad}{prefix}{} [label=\"{label}\", {}];", id.index(), style(&node.op));
        for (b, r) in node.op.regions().into_iter().enumerate() {
            let inner = format!("{prefix}{}_{b}_", id.index());
            let title = format!("%{n} {} body {b}: {}", node.op.name(), r.graph.name());
            let _ = writeln!(out, "{pad}subgraph cluster_{inner} {{");
            let _ = writeln!(out, "{pad}  label=\"{}\"; style=rounded; color=\"#868e96\";", esc(&title));
            write_body(out, &r.graph, &inner, depth + 1);
            let _ = writeln!(out, "{pad}}}");
            if let Some(first) = r.graph.node_ids().next() {
                let _ = writeln!(
                    out,
                    "{pad}{prefix}{} -> {inner}{} [style=dotted, lhead=cluster_{inner}, arrowhead=none];",
                    id.index(),
                    first.index()
                );
            }
        }
    }
    for &id in &order {
        let args = g.args(id);
        for (pos, &a) in args.iter().enumerate() {
            let ty = esc(&g.node(a).ty.to_string());
            let label = if args.len() > 1 { format!("#{pos} {ty}") } else { ty };
            let _ = writeln!(out, "{pad}{prefix}{} -> {prefix}{} [label=\"{label}\"];", a.index(), id.index());
        }
        for p in g.order_preds(id) {
            let _ = writeln!(out, "{pad}{prefix}{} -> {prefix}{} [style=dashed, color=red];", p.index(), id.index());
        }
    }
}
