//! The text form: golden output, exact round trips, and a parser that never panics.

mod printers_graphs;

use std::collections::HashSet;
use std::sync::Arc;

use kiln_ir::{
    ArgOp, Array, BinaryOp, CaseOp, DType, Distribution, Error, Graph, MemoryPlan, Op, OpKind, ReduceOp, Region,
    ScanOp, Slot, UnaryOp, WhileGradOp, WhileOp,
};
use printers_graphs::{kitchen_sink, reduce_kernel, small, t};
use proptest::prelude::*;

fn roundtrip(g: &Graph) -> Graph {
    let text = g.to_text();
    let back = Graph::from_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.to_text(), text, "print(parse(text)) differs");
    assert!(back.structurally_eq(g), "parsed graph differs:\n{text}");
    back
}

fn parse_err(text: &str) -> (usize, String) {
    match Graph::from_text(text) {
        Err(Error::Parse { line, msg }) => (line, msg),
        other => panic!("expected a parse error for\n{text}\ngot {other:?}"),
    }
}

#[test]
fn golden_small_graph() {
    let expected = "\
graph @small(%0: f32[2,3], %1: f32[3]) -> (%6, %7)
  var @0 \"dense/kernel\" : f32[3,4]
  %2 = read_var @0 : f32[3,4]
  %3 = add %0, %1 : f32[2,3]
  %4 = sum %3 {axes=[1], keepdims=false} : f32[2]
  %5 = const [1.0, 2.5] : f32[2]
  %6 = mul %4, %5 : f32[2]
  %7 = assign_var @0, %2 : f32[3,4] after %2
";
    assert_eq!(small().to_text(), expected);
    roundtrip(&small());
}

#[test]
fn kitchen_sink_roundtrips_exactly() {
    let g = kitchen_sink();
    g.verify().unwrap();
    let back = roundtrip(&g);
    back.verify().unwrap();
    // Constants come back bit for bit (structurally_eq compares bits; check a NaN payload directly too).
    let text = g.to_text();
    assert!(text.contains("0x7fc00001") && text.contains("0xffc00000") && text.contains("-0.0"));
    assert!(text.contains("b64\""), "large constants are base64");
    let payload = back
        .node_ids()
        .find_map(|n| match &back.node(n).op {
            Op::Const(a) if a.dtype() == DType::F32 && a.len() == 12 => Some(a.as_slice::<f32>().unwrap()[1].to_bits()),
            _ => None,
        })
        .unwrap();
    assert_eq!(payload, 0x7fc0_0001);
}

#[test]
fn collectives_roundtrip_with_their_order() {
    let mut g = Graph::new("collectives");
    let x = g.add_input(t(DType::F32, &[2, 3]));
    let mut prev = None;
    let mut outs = Vec::new();
    for op in ReduceOp::ALL.map(Op::AllReduce).into_iter().chain([Op::Broadcast(1), Op::AllGather(2)]) {
        let n = g.add(op, &[x]).unwrap();
        if let Some(p) = prev {
            g.add_order(p, n);
        }
        prev = Some(n);
        outs.push(n);
    }
    g.set_outputs(outs);
    g.verify().unwrap();
    let text = g.to_text();
    assert!(text.contains("%2 = all_reduce %0 {reduce=\"mean\"} : f32[2,3] after %1"), "{text}");
    assert!(text.contains("%6 = broadcast %0 {root=1} : f32[2,3] after %5"), "{text}");
    assert!(text.contains("%7 = all_gather %0 {ranks=2} : f32[2,2,3] after %6"), "{text}");
    roundtrip(&g);
}

#[test]
fn op_names_are_unique_per_kind() {
    let mut ops: Vec<Op> = vec![
        Op::Input(0),
        Op::Const(Array::scalar(1.0f32)),
        Op::ReadVar(0),
        Op::AssignVar(0),
        Op::Random { dist: Distribution::Uniform, seed: 0 },
        Op::Random { dist: Distribution::Normal, seed: 0 },
        Op::Select,
        Op::Cast(DType::F32),
        Op::BroadcastTo(Default::default()),
        Op::Reshape(Default::default()),
        Op::Transpose(vec![]),
        Op::Slice(vec![]),
        Op::Unslice { dims: vec![], shape: Default::default() },
        Op::Concat { axis: 0 },
        Op::Gather { axis: 0 },
        Op::ScatterAdd { axis: 0, shape: Default::default() },
        Op::ArgReduce { op: ArgOp::ArgMax, axis: 0, keepdims: false },
        Op::ArgReduce { op: ArgOp::ArgMin, axis: 0, keepdims: false },
        Op::MatMul,
        Op::Fused(Arc::new(reduce_kernel())),
        Op::Case(Arc::new(CaseOp { branches: vec![] })),
        Op::While(Arc::new(WhileOp {
            cond: Region::new(Graph::new("c")),
            body: Region::new(Graph::new("b")),
            carries: 0,
        })),
        Op::Scan(Arc::new(ScanOp { body: Region::new(Graph::new("b")), length: 0, carries: 0, xs: 0, reverse: false })),
        Op::WhileGrad(Arc::new(WhileGradOp {
            cond: Region::new(Graph::new("c")),
            body: Region::new(Graph::new("b")),
            body_vjp: Region::new(Graph::new("v")),
            carries: 0,
        })),
        Op::Get(0),
        Op::Print(String::new()),
        Op::AllReduce(ReduceOp::Sum),
        Op::Broadcast(0),
        Op::AllGather(1),
    ];
    ops.extend(UnaryOp::ALL.map(Op::Unary));
    ops.extend(BinaryOp::ALL.map(Op::Binary));
    ops.extend(ReduceOp::ALL.map(|op| Op::Reduce { op, axes: vec![], keepdims: false }));
    let names: HashSet<&str> = ops.iter().map(|o| o.name()).collect();
    assert_eq!(names.len(), ops.len(), "two op kinds share a printed name");
    // The list above must name every row of the op table.
    for kind in OpKind::ALL {
        assert!(ops.iter().any(|o| o.kind() == kind), "op kind {kind:?} missing from this test");
    }
}

#[test]
fn inputs_not_first_in_topo_order_roundtrip() {
    // A constant created before the inputs is numbered before them.
    let mut g = Graph::new("late_inputs");
    let c = g.add_const(Array::scalar(3.0f32));
    let x = g.add_input(t(DType::F32, &[]));
    let s = g.add(Op::Binary(BinaryOp::Mul), &[c, x]).unwrap();
    g.set_outputs(vec![s]);
    let text = g.to_text();
    assert!(text.starts_with("graph @late_inputs(%1: f32[]) -> (%2)\n  %0 = const [3.0] : f32[]\n"), "{text}");
    roundtrip(&g);
}

#[test]
fn odd_names_and_empty_graph_roundtrip() {
    let mut g = Graph::new("");
    g.declare_var("tab\there \\ \u{1} ü", t(DType::Bool, &[0]));
    roundtrip(&g);
    let g = Graph::new("a b/c");
    assert!(g.to_text().starts_with("graph @\"a b/c\"() -> ()"));
    roundtrip(&g);
}

#[test]
fn comments_blank_lines_and_indentation_are_ignored() {
    let text = "# header comment\n\ngraph @g(%0: f32[2]) -> (%1)\n\n      %1 = neg %0 : f32[2]   # trailing\n";
    let g = Graph::from_text(text).unwrap();
    assert_eq!(g.to_text(), "graph @g(%0: f32[2]) -> (%1)\n  %1 = neg %0 : f32[2]\n");
}

#[test]
fn plan_text_lists_slots_and_still_parses() {
    let mut g = small();
    let order = g.topo_order().unwrap();
    let mut slots = std::collections::HashMap::new();
    slots.insert(order[3], Slot { offset: 0, bytes: 24 });
    slots.insert(order[4], Slot { offset: 32, bytes: 8 });
    g.plan =
        Some(MemoryPlan { schedule: order.clone(), slots, arena_bytes: 40, naive_bytes: 80, ..MemoryPlan::default() });
    let plan = g.plan_text();
    assert_eq!(
        plan,
        "plan: arena 40 bytes, naive 80 bytes (50.0% of naive)\nschedule: %0 %1 %2 %3 %4 %5 %6 %7\n%3 -> [0, 24]\n%4 -> [32, 8]\n"
    );
    let with = g.to_text_with_plan();
    assert!(with.ends_with("# %4 -> [32, 8]\n"));
    assert!(Graph::from_text(&with).unwrap().structurally_eq(&g));
    assert_eq!(small().plan_text(), "");
}

#[test]
fn syntax_errors_name_the_line() {
    let (line, msg) = parse_err("graph @g(%0: f32[2]) -> (%1)\n  %1 = neg %0 : f32[2\n");
    assert_eq!(line, 2, "{msg}");
    let (line, msg) = parse_err("graph @g(%0: f32[2]) -> (%1)\n  %1 = frobnicate %0 : f32[2]\n");
    assert_eq!(line, 2);
    assert!(msg.contains("unknown op `frobnicate`"), "{msg}");
    let (line, msg) = parse_err("graph @g(%0: f32[2]) -> (%2)\n  %1 = neg %0 : f32[2]\n");
    assert_eq!(line, 1);
    assert!(msg.contains("%2"), "{msg}");
    let (_, msg) = parse_err("graph @g(%0: f32[2]) -> (%1)\n  %1 = neg %1 : f32[2]\n");
    assert!(msg.contains("not defined before"), "{msg}");
    let (_, msg) = parse_err("graph @g(%0: f32[2]) -> (%1)\n  %1 = neg %0 : f32[2]\n  %1 = neg %0 : f32[2]\n");
    assert!(msg.contains("already defined"), "{msg}");
    let (_, msg) = parse_err("graph @g(%0: f32[2]) -> ()\n  %1 = sum %0 {axes=[0]} : f32[]\n");
    assert!(msg.contains("keepdims"), "{msg}");
    let (_, msg) = parse_err("graph @g(%0: f32[2]) -> ()\n  %1 = neg %0 {axis=1} : f32[2]\n");
    assert!(msg.contains("no attribute `axis`"), "{msg}");
    let (_, msg) = parse_err("graph @g() -> ()\n  %0 = const [1.0, 2.0] : f32[3]\n");
    assert!(msg.contains("2 values"), "{msg}");
    let (_, msg) = parse_err("graph @g() -> ()\n  %0 = const [1.0] : i32[1]\n");
    assert!(msg.contains("not an i32"), "{msg}");
}

#[test]
fn semantic_errors_are_reported_at_the_node_line() {
    // Parses fine, but the stored type is wrong: the verifier's message, at line 3.
    let text = "graph @g(%0: f32[2]) -> (%2)\n  %1 = neg %0 : f32[2]\n  %2 = add %0, %1 : f64[2]\n";
    let (line, msg) = parse_err(text);
    assert_eq!(line, 3);
    assert!(msg.starts_with("%2 = add: stored type f64[2]"), "{msg}");
    // ...and the unverified parser accepts it.
    let g = Graph::from_text_unverified(text).unwrap();
    assert!(g.verify().is_err());
}

#[test]
fn hostile_sizes_are_rejected_before_allocating() {
    for text in [
        "graph @g(%0: f32[99999999999,99999999999]) -> ()\n",
        "graph @g(%0: f32[18446744073709551615]) -> ()\n",
        "graph @g(%0: f32[-170141183460469231731687303715884105728]) -> ()\n",
        "graph @g(%0: f32[4]) -> ()\n  %1 = slice %0 {dims=[18446744073709551615:18446744073709551615:-18446744073709551615]} : f32[1]\n",
        "graph @g(%0: f32[4]) -> ()\n  %1 = sum %0 {axes=[-170141183460469231731687303715884105728], keepdims=false} : f32[]\n",
        "graph @g(%0: f32[1099511627777]) -> ()\n",
        "graph @g(%0: f32[4]) -> ()\n  %1 = reshape %0 {shape=[4294967296,4294967296,0]} : f32[0]\n",
        "graph @g() -> ()\n  %0 = const b64\"AAAA\" : f32[1048576,1048576]\n",
        "graph @g() -> ()\n  %0 = const [] : f32[1099511627776,2]\n",
        "graph @g(%0: f32[4]) -> ()\n  %1 = slice %0 {dims=[3:1099511627776:-1099511627776]} : f32[1]\n",
        "graph @g(%0: f32[4]) -> ()\n  %99999999999999999999 = neg %0 : f32[4]\n",
        "graph @g(%0: f32[4]) -> ()\n  %1000000 = neg %0 : f32[4]\n",
        "graph @g(%0: f32[4]) -> ()\n  %1 = random_uniform {seed=18446744073709551616} : f32[4]\n",
        "graph @g(%0: f32[4]) -> ()\n  %1 = read_var @4294967296 : f32[4]\n",
    ] {
        parse_err(text);
    }
}

#[test]
fn deep_fused_nesting_is_rejected() {
    let depth = 50;
    let mut text = String::from("graph @g(%0: f32[]) -> (%1)\n");
    for _ in 0..depth {
        text.push_str("%1 = fused %0 : f32[] {\ngraph @k(%0: f32[]) -> (%1)\n");
    }
    text.push_str("%1 = neg %0 : f32[]\n");
    for _ in 0..depth {
        text.push_str("}\n");
    }
    let (_, msg) = parse_err(&text);
    assert!(msg.contains("nest deeper"), "{msg}");
}

#[test]
fn every_truncation_fails_cleanly_or_parses() {
    let text = kitchen_sink().to_text();
    let mut ok = 0;
    for (i, _) in text.char_indices().step_by(3) {
        if Graph::from_text(&text[..i]).is_ok() {
            ok += 1;
        }
    }
    // Only cuts at a line boundary after the last used node can still parse; most fail.
    assert!(ok < 20, "{ok} truncations parsed");
}

#[test]
fn garbage_lines_fail_cleanly() {
    for text in [
        "",
        "}",
        "graph",
        "graph @",
        "graph @g(",
        "graph @g(%0 f32[2]) -> ()",
        "graph @g() -> ()\n}",
        "graph @g() -> ()\n%0 = fused : f32[] {",
        "graph @g() -> ()\n%0 = fused : f32[] {\ngraph @k() -> ()\n",
        "graph @g() -> ()\n%0 = neg : f32[] {\n}",
        "graph @g() -> ()\nvar @1 \"x\" : f32[]",
        "graph @g() -> ()\nvar @0 \"unterminated : f32[]",
        "graph @g() -> ()\nvar @0 \"bad \\q escape\" : f32[]",
        "graph @g() -> ()\nvar @0 \"\\u{110000}\" : f32[]",
        "graph @g() -> ()\n%0 = const [1.0] : f32[]\ngraph @h() -> ()",
        "graph @g() -> ()\n%0 = const b64\"!!!\" : f32[]",
        "graph @g() -> ()\n%0 = const [0x7fc0] : f32[]",
        "graph @g() -> ()\n%0 = const [2] : bool[]",
        "graph @g() -> ()\n%0 = transpose {perm=[1:2:3, 4]} : f32[]",
        "graph @g() -> ()\n%0 = cast {to=f16} : f32[]",
        "graph @g() -> ()\n%0 = input {index=0} : f32[]",
        "graph @g(%1: f32[], %0: f32[]) -> ()",
        "graph @g(%0: f32[], %0: f32[]) -> ()",
        "\u{0}\u{ffff}%%%@@@",
    ] {
        assert!(Graph::from_text(text).is_err(), "accepted:\n{text}");
    }
}

/// Random edits of a valid text: delete, insert or replace a span with characters drawn
/// from the format's own alphabet.
fn mutate(text: &str, edits: &[(usize, usize, u8, String)]) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for (pos, len, kind, ins) in edits {
        let p = pos % (s.len() + 1);
        let end = (p + len).min(s.len());
        match kind % 3 {
            0 => {
                s.drain(p..end);
            }
            1 => {
                s.splice(p..p, ins.chars());
            }
            _ => {
                s.splice(p..end, ins.chars());
            }
        }
    }
    s.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn mutated_text_never_panics(
        edits in proptest::collection::vec((0usize..100_000, 0usize..8, 0u8..3, "[%@:=,\\[\\]{}()0-9a-z \\n\"#x-]{0,6}"), 1..6)
    ) {
        let base = kitchen_sink().to_text();
        let text = mutate(&base, &edits);
        if let Ok(g) = Graph::from_text(&text) {
            // Whatever parses verifies and prints back to a fixed point.
            prop_assert!(g.verify().is_ok());
            let again = g.to_text();
            prop_assert_eq!(Graph::from_text(&again).unwrap().to_text(), again);
        }
        let _ = Graph::from_text_unverified(&text).map(|g| (g.verify(), g.to_text(), g.to_dot()));
    }
}

#[test]
fn splat_constants_print_one_value_whatever_their_size() {
    let mut g = Graph::new("splat");
    let big = g.add(Op::Const(Array::full(&[300, 7], DType::F32, -0.5)), &[]).unwrap();
    let ints = g.add(Op::Const(Array::full(&[2, 2], DType::I64, 9_007_199_254_740_993.0)), &[]).unwrap();
    let mixed = g.add(Op::Const(Array::from_vec(vec![0.0f32, -0.0], &[2]).unwrap()), &[]).unwrap();
    g.set_outputs(vec![big, ints, mixed]);
    let text = roundtrip(&g).to_text();
    assert!(text.contains("const [-0.5] : f32[300,7]"), "{text}");
    assert!(text.contains("const [0.0, -0.0] : f32[2]"), "same value, different bits: {text}");
    let (_, msg) = parse_err("graph @g() -> ()\n  %0 = const [1.0] : f32[1000000000000]\n");
    assert!(msg.contains("splat constant") || msg.contains("size"), "{msg}");
}
