//! Region ops in the executor: each loop and branch gives the interpreter's results, on the
//! native loop path (bodies of kernels only) and on the general path (bodies as executables).

use kiln_ir::{interp, Array, Graph};
use kiln_jit::Executable;

/// Runs `text` with the executor and the interpreter on `inputs` and compares bit for bit;
/// returns the executor's schedule.
fn same(text: &str, inputs: &[Array], vars: &[Array]) -> String {
    let g = Graph::from_text(text).unwrap();
    let mut optimized = g.clone();
    kiln_passes::optimize(&mut optimized).unwrap();
    let want = interp::run(&g, inputs, vars).unwrap();
    for graph in [g, optimized] {
        let exe = Executable::new(graph).unwrap();
        let got = exe.run(inputs, vars).unwrap();
        for (w, o) in want.outputs.iter().zip(&got.outputs) {
            assert!(w.bits_eq(o), "{:?} vs {:?}\n{}", w, o, exe.schedule_text());
        }
        assert_eq!(want.writes.len(), got.writes.len());
        for ((wv, wa), (gv, ga)) in want.writes.iter().zip(&got.writes) {
            assert_eq!(wv, gv);
            assert!(wa.bits_eq(ga));
        }
        if exe.graph().plan.is_some() {
            return exe.schedule_text();
        }
    }
    unreachable!("the optimized graph has a plan")
}

fn f32s(v: &[f32], shape: &[usize]) -> Array {
    Array::from_vec(v.to_vec(), shape).unwrap()
}

/// Two carries that swap each step, one updated by a kernel that also feeds the other: the
/// native loop's two halves must not overwrite what the step still reads.
const SWAP: &str = "graph @f(%0: f32[3], %1: f32[3], %2: f32[3]) -> (%4, %5)
  %3 = scan %0, %1, %2 {length=7, carries=2, xs=0, reverse=false} : bool[0] {
    graph @body(%0: i64[], %1: f32[3], %2: f32[3], %3: f32[3]) -> (%2, %6)
      %4 = mul %1, %3 : f32[3]
      %5 = const [0.5] : f32[]
      %6 = add %4, %5 : f32[3]
  }
  %4 = get %3 {index=0} : f32[3]
  %5 = get %3 {index=1} : f32[3]
";

#[test]
fn a_fori_loop_of_kernels_runs_natively_and_matches() {
    let x = f32s(&[1.0, -2.0, 0.25], &[3]);
    let y = f32s(&[0.5, 3.0, -1.0], &[3]);
    let w = f32s(&[0.9, 1.1, -0.7], &[3]);
    let sched = same(SWAP, &[x, y, w], &[]);
    assert!(sched.contains("native loop"), "{sched}");
}

const WHILE: &str = "graph @f(%0: f32[], %1: i64[]) -> (%3, %4)
  %2 = while %0, %1 {carries=2} : bool[0] {
    graph @cond(%0: f32[], %1: i64[]) -> (%3)
      %2 = const [50] : i64[]
      %3 = less %1, %2 : bool[]
  } {
    graph @body(%0: f32[], %1: i64[]) -> (%5, %7)
      %2 = const [0.999] : f32[]
      %3 = mul %0, %2 : f32[]
      %4 = const [1.0] : f32[]
      %5 = add %3, %4 : f32[]
      %6 = const [1] : i64[]
      %7 = add %1, %6 : i64[]
  }
  %3 = get %2 {index=0} : f32[]
  %4 = get %2 {index=1} : i64[]
";

#[test]
fn a_while_loop_of_kernels_runs_natively_and_matches() {
    for start in [0i64, 49, 50, 1000] {
        let sched = same(WHILE, &[Array::scalar(2.0f32), Array::scalar(start)], &[]);
        assert!(sched.contains("native loop"), "{sched}");
    }
}

/// A body with a variable write and a reduction over xs takes the general path.
const SCAN_VAR: &str = "graph @f(%0: f32[], %1: f32[4,2]) -> (%3, %4)
  var @0 \"count\" : f32[]
  %2 = scan %0, %1 {length=4, carries=1, xs=1, reverse=true} : bool[0] {
    graph @body(%0: i64[], %1: f32[], %2: f32[2]) -> (%5, %4)
      var @0 \"count\" : f32[] = @0
      %3 = sum %2 {axes=[0], keepdims=false} : f32[]
      %4 = mul %1, %3 : f32[]
      %5 = add %4, %3 : f32[]
      %6 = read_var @0 : f32[]
      %7 = add %6, %5 : f32[]
      %8 = assign_var @0, %7 : f32[] after %6
  }
  %3 = get %2 {index=0} : f32[]
  %4 = get %2 {index=1} : f32[4]
";

#[test]
fn a_scan_writing_a_variable_runs_on_the_general_path_and_matches() {
    let xs = f32s(&[1.0, 2.0, -3.0, 0.5, 0.25, 4.0, -1.0, 2.0], &[4, 2]);
    let sched = same(SCAN_VAR, &[Array::scalar(0.5f32), xs], &[Array::scalar(10.0f32)]);
    assert!(sched.contains("region ("), "{sched}");
}
