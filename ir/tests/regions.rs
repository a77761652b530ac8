//! Region ops in the IR: the text, JSON and DOT forms, the verifier's rules, and what the
//! interpreter computes (docs/CONTROL_FLOW.md).

use kiln_ir::interp::{self, region::capture_prints};
use kiln_ir::{Array, Graph};

const WHILE: &str = "graph @f(%0: f32[], %1: f32[]) -> (%3)
  var @0 \"w\" : f32[]
  %2 = while %0, %1 {carries=1} : bool[0] {
    graph @cond(%0: f32[], %1: f32[]) -> (%3)
      %2 = const [100.0] : f32[]
      %3 = less %0, %2 : bool[]
  } {
    graph @body(%0: f32[], %1: f32[]) -> (%4)
      var @0 \"w\" : f32[] = @0
      %2 = read_var @0 : f32[]
      %3 = mul %0, %2 : f32[]
      %4 = add %3, %1 : f32[]
  }
  %3 = get %2 {index=0} : f32[]
";

const SCAN: &str = "graph @f(%0: f32[], %1: f32[3,2]) -> (%3, %4)
  %2 = scan %0, %1 {length=3, carries=1, xs=1, reverse=true} : bool[0] {
    graph @body(%0: i64[], %1: f32[], %2: f32[2]) -> (%4, %5)
      %3 = sum %2 {axes=[0], keepdims=false} : f32[]
      %4 = add %1, %3 : f32[]
      %5 = cast %0 {to=f32} : f32[]
  }
  %3 = get %2 {index=0} : f32[]
  %4 = get %2 {index=1} : f32[3]
";

const CASE: &str = "graph @f(%0: i32[], %1: f32[2]) -> (%3)
  %2 = case %0, %1 : bool[0] {
    graph @zero(%0: f32[2]) -> (%1)
      %1 = neg %0 : f32[2]
  } {
    graph @one(%0: f32[2]) -> (%1)
      %1 = exp %0 : f32[2]
  } {
    graph @two(%0: f32[2]) -> (%2)
      %1 = print %0 {message=\"x is\"} : bool[0]
      %2 = mul %0, %0 : f32[2]
  }
  %3 = get %2 {index=0} : f32[2]
";

fn f32s(a: &Array) -> Vec<f32> {
    a.to_vec::<f32>().unwrap()
}

#[test]
fn text_and_json_round_trip_nested_regions() {
    for text in [WHILE, SCAN] {
        let g = Graph::from_text(text).unwrap();
        assert_eq!(g.to_text(), text);
        let back = Graph::from_json(&g.to_json()).unwrap();
        assert_eq!(back.to_text(), text);
        assert!(back.structurally_eq(&g), "bodies compare by structure");
    }
    let other = Graph::from_text(&SCAN.replace("%4 = add %1, %3", "%4 = mul %1, %3")).unwrap();
    assert!(!other.structurally_eq(&Graph::from_text(SCAN).unwrap()), "another body is another op");
}

#[test]
fn while_reads_the_variable_each_iteration_and_stops_on_its_condition() {
    let g = Graph::from_text(WHILE).unwrap();
    // x <- x * w + 1 from x = 1 with w = 2: 3, 7, 15, 31, 63, 127 (first >= 100).
    let out = interp::run(&g, &[Array::scalar(1.0f32), Array::scalar(1.0f32)], &[Array::scalar(2.0f32)]).unwrap();
    assert_eq!(f32s(&out.outputs[0]), vec![127.0]);
    assert!(out.writes.is_empty());
}

#[test]
fn reverse_scan_visits_rows_from_the_last_and_stacks_by_index() {
    let g = Graph::from_text(SCAN).unwrap();
    let xs = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
    let out = interp::run(&g, &[Array::scalar(0.5f32), xs], &[]).unwrap();
    assert_eq!(f32s(&out.outputs[0]), vec![21.5]);
    assert_eq!(f32s(&out.outputs[1]), vec![0.0, 1.0, 2.0]);
}

#[test]
fn case_runs_only_the_chosen_branch_and_out_of_range_runs_the_last() {
    let g = Graph::from_text(CASE).unwrap();
    let x = Array::from_vec(vec![1.0f32, -2.0], &[2]).unwrap();
    let run = |i: i32| capture_prints(|| interp::run(&g, &[Array::scalar(i), x.clone()], &[]).unwrap());
    let (out, printed) = run(0);
    assert_eq!(f32s(&out.outputs[0]), vec![-1.0, 2.0]);
    assert!(printed.is_empty(), "the other branches do not run");
    let (out, printed) = run(7);
    assert_eq!(f32s(&out.outputs[0]), vec![1.0, 4.0]);
    assert_eq!(printed.len(), 1);
    assert!(printed[0].starts_with("x is"), "{printed:?}");
    let (out, _) = run(-1);
    assert_eq!(f32s(&out.outputs[0]), vec![1.0, 4.0]);
}

#[test]
fn dot_draws_bodies_as_clusters() {
    let dot = Graph::from_text(WHILE).unwrap().to_dot();
    assert!(dot.contains("subgraph cluster_n2_0_"), "{dot}");
    assert!(dot.contains("subgraph cluster_n2_1_"), "{dot}");
    assert!(dot.contains("lhead=cluster_n2_1_"), "{dot}");
}

fn parse_err(text: &str) -> String {
    Graph::from_text(text).unwrap_err().to_string()
}

#[test]
fn the_verifier_checks_body_signatures_and_get() {
    // A body result of another type than the carry.
    let bad = WHILE
        .replace("%4 = add %3, %1 : f32[]\n", "%4 = add %3, %1 : f32[]\n      %5 = cast %4 {to=f64} : f64[]\n")
        .replace("-> (%4)", "-> (%5)");
    assert!(parse_err(&bad).contains("value 0 must be f32[], got f64[]"), "{}", parse_err(&bad));
    // A condition that is not a bool scalar.
    let bad = WHILE.replace("-> (%3)\n      %2 = const", "-> (%2)\n      %2 = const");
    assert!(parse_err(&bad).contains("the condition must return one bool scalar"), "{}", parse_err(&bad));
    // Branches that disagree.
    let bad = CASE.replace("%1 = exp %0 : f32[2]", "%1 = sum %0 {axes=[0], keepdims=false} : f32[]");
    assert!(parse_err(&bad).contains("branch 1's results"), "{}", parse_err(&bad));
    // A `get` past the results, and of the wrong type.
    let bad = SCAN.replace("%4 = get %2 {index=1} : f32[3]", "%4 = get %2 {index=2} : f32[3]");
    assert!(parse_err(&bad).contains("result 2 of a region with 2 results"), "{}", parse_err(&bad));
    let bad = SCAN.replace("%4 = get %2 {index=1} : f32[3]", "%4 = get %2 {index=1} : f32[2]");
    assert!(parse_err(&bad).contains("result 1 of the region is f32[3]"), "{}", parse_err(&bad));
    // A body variable mapped to an outer one of another type.
    let bad = WHILE.replace("var @0 \"w\" : f32[]\n  %2", "var @0 \"w\" : f64[]\n  %2");
    assert!(parse_err(&bad).contains("outer variable @0 is f64[]"), "{}", parse_err(&bad));
    // A scan whose xs are shorter than its length.
    let bad = SCAN.replace("length=3", "length=4");
    assert!(parse_err(&bad).contains("leading axis must be the length 4"), "{}", parse_err(&bad));
}

#[test]
fn a_region_is_read_by_get_only() {
    let bad = SCAN.replace("%4 = get %2 {index=1} : f32[3]", "%4 = neg %2 : bool[0]");
    assert!(parse_err(&bad).contains("a region op is read by `get` only"), "{}", parse_err(&bad));
}
