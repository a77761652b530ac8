//! Constant folding (limits, what is never folded) and the pipeline (fixed point, custom
//! pipelines, verification, dumps).

use kiln_ir::{Array, BinaryOp, DType, Distribution, Graph, Op, TensorType, UnaryOp};
use kiln_passes::{Changed, ConstFold, Dce, Pass, Pipeline, Simplify};

fn is_const(g: &Graph, id: kiln_ir::NodeId) -> bool {
    matches!(g.node(id).op, Op::Const(_))
}

#[test]
fn folds_a_constant_chain_into_one_constant() {
    let mut g = Graph::new("t");
    let a = g.add_const(Array::from_vec(vec![1.0f32, 4.0], &[2]).unwrap());
    let s = g.add(Op::Unary(UnaryOp::Sqrt), &[a]).unwrap();
    let m = g.add(Op::Binary(BinaryOp::Mul), &[s, a]).unwrap();
    let x = g.add_input(TensorType::new(DType::F32, &[2]));
    let y = g.add(Op::Binary(BinaryOp::Add), &[x, m]).unwrap();
    g.set_outputs(vec![y]);
    let c = ConstFold::default().run(&mut g).unwrap();
    g.verify().unwrap();
    assert_eq!(c.get("nodes_folded"), 2);
    let k = g.args(y)[1];
    assert!(is_const(&g, k));
    let Op::Const(v) = &g.node(k).op else { unreachable!() };
    assert_eq!(v.to_vec::<f32>().unwrap(), vec![1.0, 8.0]);
    assert_eq!(g.len(), 3, "x, the folded constant, the add");
}

#[test]
fn results_over_the_limit_are_not_materialized() {
    let mut g = Graph::new("t");
    let a = g.add_const(Array::scalar(3i32));
    let b = g.add(Op::BroadcastTo([1000][..].into()), &[a]).unwrap();
    g.set_outputs(vec![b]);
    let c = ConstFold::with_limit(1024).run(&mut g).unwrap();
    assert!(!c.changed, "4000 bytes > 1024");
    assert!(matches!(g.node(b).op, Op::BroadcastTo(_)));
    let c = ConstFold::with_limit(4000).run(&mut g).unwrap();
    assert_eq!(c.get("nodes_folded"), 1);
}

#[test]
fn never_folds_random_reads_inputs_or_writes() {
    let mut g = Graph::new("t");
    let v = g.declare_var("v", TensorType::new(DType::F32, &[2]));
    let r = g.add_read_var(v).unwrap();
    let counter = g.add_const(Array::scalar(5i64));
    let rnd = g.add_random(Distribution::Normal, 1, TensorType::new(DType::F32, &[2]), Some(counter)).unwrap();
    let k = g.add_const(Array::from_vec(vec![1.0f32, 2.0], &[2]).unwrap());
    let w = g.add(Op::AssignVar(v), &[k]).unwrap();
    g.add_order(r, w);
    let s = g.add(Op::Binary(BinaryOp::Add), &[r, rnd]).unwrap();
    g.set_outputs(vec![s]);
    let c = ConstFold::default().run(&mut g).unwrap();
    assert!(!c.changed, "{c}");
    assert!(g.contains(r) && g.contains(rnd) && g.contains(w));
}

#[test]
fn a_failing_evaluation_stays_a_runtime_error() {
    let mut g = Graph::new("t");
    let a = g.add_const(Array::scalar(1i32));
    let z = g.add_const(Array::scalar(0i32));
    let d = g.add(Op::Binary(BinaryOp::Div), &[a, z]).unwrap();
    g.set_outputs(vec![d]);
    assert!(!ConstFold::default().run(&mut g).unwrap().changed);
    assert!(kiln_ir::interp::run(&g, &[], &[]).is_err(), "integer division by zero is an error");
}

/// A pass that corrupts the graph, to see the verifier name it.
struct Corrupt;
impl Pass for Corrupt {
    fn name(&self) -> &str {
        "corrupt"
    }
    fn run(&self, g: &mut Graph) -> kiln_ir::Result<Changed> {
        let out = g.outputs()[0];
        g.node_mut(out).ty = TensorType::new(DType::I64, &[7]);
        let mut c = Changed::none();
        c.count("broken", 1);
        Ok(c)
    }
}

fn small_graph() -> Graph {
    let mut g = Graph::new("small");
    let x = g.add_input(TensorType::new(DType::F32, &[4]));
    let one = g.add_const(Array::scalar(1.0f32));
    let two = g.add_const(Array::scalar(2.0f32));
    let three = g.add(Op::Binary(BinaryOp::Add), &[one, two]).unwrap();
    let y = g.add(Op::Binary(BinaryOp::Mul), &[x, one]).unwrap();
    let n1 = g.add(Op::Unary(UnaryOp::Neg), &[y]).unwrap();
    let n2 = g.add(Op::Unary(UnaryOp::Neg), &[n1]).unwrap();
    let z = g.add(Op::Binary(BinaryOp::Mul), &[n2, three]).unwrap();
    let e = g.add(Op::Unary(UnaryOp::Exp), &[z]).unwrap();
    g.set_outputs(vec![e]);
    g
}

#[test]
fn the_verifier_names_the_pass_that_broke_the_graph() {
    let mut g = small_graph();
    let mut p = Pipeline::empty().verify(true).dump_dir(None);
    p.push(Simplify).push(Corrupt).push(Dce);
    let err = p.run(&mut g).unwrap_err().to_string();
    assert!(err.contains("after pass `corrupt`"), "{err}");
}

#[test]
fn custom_pipelines_insert_and_remove() {
    let mut p = Pipeline::default();
    assert_eq!(
        p.names(),
        ["const_fold", "inline_case", "simplify", "cse", "dce", "hoist", "regions", "fuse", "dce", "memory_plan"]
    );
    assert!(p.remove("fuse"));
    assert!(!p.remove("fuse"));
    p.insert(0, Simplify);
    assert_eq!(
        p.names(),
        ["simplify", "const_fold", "inline_case", "simplify", "cse", "dce", "hoist", "regions", "dce", "memory_plan"]
    );
}

#[test]
fn default_pipeline_reaches_a_fixed_point_and_reports() {
    let mut g = small_graph();
    let report = Pipeline::default().verify(true).dump_dir(None).run(&mut g).unwrap();
    assert_eq!(report.total("const_fold", "nodes_folded"), 1);
    assert_eq!(report.total("simplify", "mul_one"), 1);
    assert_eq!(report.total("simplify", "neg_neg"), 1);
    assert_eq!(report.total("fuse", "kernels_formed"), 1);
    // The fixed-point group ran until a round changed nothing: its last round is all unchanged.
    let fold_runs = report.runs.iter().filter(|r| r.pass == "const_fold").count();
    assert!(fold_runs >= 2);
    let group = &report.runs[..report.runs.len() - 5];
    assert_eq!(group.len() % 5, 0);
    assert!(group[group.len() - 5..].iter().all(|r| !r.stats.changed), "last round changed nothing");
    assert!(group[..5].iter().any(|r| r.stats.changed));
    assert_eq!(g.len(), 2, "{}", g.to_text());
}

#[test]
fn dumps_are_written_in_pipeline_order() {
    let dir = std::env::temp_dir().join(format!("kiln_passes_dump_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut g = small_graph();
    let mut p = Pipeline::empty().verify(true).dump_dir(Some(dir.clone()));
    p.push(Simplify).push(Dce);
    p.run(&mut g).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "small.00.input.dot",
            "small.00.input.txt",
            "small.01.simplify.dot",
            "small.01.simplify.txt",
            "small.02.dce.dot",
            "small.02.dce.txt",
            "small.stats.txt"
        ]
    );
    let last = std::fs::read_to_string(dir.join("small.02.dce.txt")).unwrap();
    assert_eq!(last, g.to_text());
    assert_eq!(Graph::from_text(&last).unwrap().to_text(), last, "dumps parse back");
    let stats = std::fs::read_to_string(dir.join("small.stats.txt")).unwrap();
    assert!(stats.lines().next().unwrap().starts_with("small.01.simplify: simplify: changed"), "{stats}");
    assert!(stats.contains("nodes_removed="), "{stats}");
    // An explicit stem replaces the graph's name.
    let mut g = small_graph();
    let mut p = Pipeline::empty().verify(true).dump_dir(Some(dir.clone())).dump_stem(Some("small.sig1".into()));
    p.push(Dce);
    p.run(&mut g).unwrap();
    assert!(dir.join("small.sig1.01.dce.txt").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
