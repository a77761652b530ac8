//! The Graphviz form: every node and edge appears, with the documented styling.

mod printers_graphs;

use printers_graphs::{kitchen_sink, small};

#[test]
fn small_graph_dot_has_all_nodes_edges_and_styles() {
    let dot = small().to_dot();
    assert!(dot.starts_with("digraph \"small\" {\n"));
    assert!(dot.ends_with("}\n"));
    // inputs, a variable read, a constant with its value, a side effect
    assert!(dot.contains("n0 [label=\"%0 input 0\\nf32[2,3]\", shape=invhouse"), "{dot}");
    assert!(dot.contains("[label=\"%2 read_var @0 \\\"dense/kernel\\\"\\nf32[3,4]\", shape=cylinder"), "{dot}");
    assert!(dot.contains("%5 const\\nf32[2]\\n[1.0, 2.5]\", shape=note"), "{dot}");
    assert!(dot.contains("%4 sum {axes=[1], keepdims=false}\\nf32[2]"), "{dot}");
    assert!(dot.contains("%7 assign_var @0 \\\"dense/kernel\\\"\\nf32[3,4]\", shape=box, style=\"filled,bold\""));
    // data edges with types (and positions when there are several), order edges dashed red
    assert!(dot.contains("n0 -> n3 [label=\"#0 f32[2,3]\"];"), "{dot}");
    assert!(dot.contains("n1 -> n3 [label=\"#1 f32[3]\"];"), "{dot}");
    assert!(dot.contains("n3 -> n4 [label=\"f32[2,3]\"];"), "{dot}");
    assert!(dot.contains("n2 -> n7 [style=dashed, color=red];"), "{dot}");
    // outputs
    assert!(dot.contains("out0 [label=\"output 0\", shape=house"));
    assert!(dot.contains("n6 -> out0;") && dot.contains("n7 -> out1;"));
}

#[test]
fn every_node_and_edge_of_the_kitchen_sink_appears() {
    let g = kitchen_sink();
    let dot = g.to_dot();
    let mut edges = 0;
    for n in g.node_ids() {
        assert!(dot.contains(&format!("  n{} [label=", n.index())), "node {n:?} missing");
        edges += g.args(n).len() + g.order_preds(n).len();
    }
    let drawn = dot.lines().filter(|l| l.contains(" -> n")).count();
    assert_eq!(drawn, edges);
    // A fused node lists its body's ops, left-justified.
    assert!(dot.contains("%4 = sum %3 {axes=[1], keepdims=false} : f32[2]\\l"), "{dot}");
    // Balanced quotes on every line: labels are escaped (the variable name has quotes and a newline).
    for line in dot.lines() {
        let unescaped = line.replace("\\\\", "").replace("\\\"", "");
        assert_eq!(unescaped.matches('"').count() % 2, 0, "unbalanced quotes: {line}");
    }
}
