//! The optimizer's own oracle: random well-typed programs run through the reference
//! interpreter before and after each pass alone and after the full pipeline, with the
//! verifier after every pass. Results must be identical: bit for bit (any NaN equals any
//! NaN), floats included, because no pass reassociates floating-point math (fused bodies
//! run op by op in the interpreter, and folding uses the interpreter's own kernels).
//! Variable writes are compared too.

mod common;

use common::{assert_same_outcome, check_kernels, check_plan, random_program, run};
use kiln_ir::{Graph, Op};
use kiln_passes::{ConstFold, Cse, Dce, Fuse, MemoryPlanner, Pass, Pipeline, Simplify};
use proptest::prelude::*;

/// Runs `f` on a fresh copy of the program's graph and checks it still computes the same.
fn check_with(seed: u64, what: &str, f: impl Fn(&mut Graph)) -> Option<Graph> {
    let p = random_program(seed);
    p.graph.verify().unwrap_or_else(|e| panic!("generator made a bad graph ({e}):\n{}", p.graph.to_text()));
    // A program whose reference run fails (e.g. an integer overflow check) says nothing.
    let want = run(&p.graph, &p).ok()?;
    let mut g = p.graph.clone();
    f(&mut g);
    g.verify().unwrap_or_else(|e| {
        panic!("{what} broke the graph: {e}\nbefore:\n{}\nafter:\n{}", p.graph.to_text(), g.to_text())
    });
    let got = run(&g, &p).unwrap_or_else(|e| {
        panic!("{what}: the optimized graph fails ({e})\nbefore:\n{}\nafter:\n{}", p.graph.to_text(), g.to_text())
    });
    let ctx = format!("{what}, seed {seed}\nbefore:\n{}\nafter:\n{}", p.graph.to_text(), g.to_text());
    assert_same_outcome(&want, &got, &ctx);
    Some(g)
}

fn single(pass: &dyn Pass, seed: u64) {
    check_with(seed, pass.name(), |g| {
        pass.run(g).unwrap();
    });
}

proptest! {
    // 400 cases by default; `PROPTEST_CASES=n` for a longer campaign.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn full_pipeline_preserves_semantics(seed in any::<u64>()) {
        if let Some(g) = check_with(seed, "pipeline", |g| {
            Pipeline::default().verify(true).dump_dir(None).run(g).unwrap();
        }) {
            check_kernels(&g);
            check_plan(&g);
            // The pipeline is idempotent: a second run finds nothing to do.
            let mut again = g.clone();
            Pipeline::default().verify(true).dump_dir(None).run(&mut again).unwrap();
            assert!(again.structurally_eq(&g), "second run changed\n{}\ninto\n{}", g.to_text(), again.to_text());
            // After the pipeline no elementwise op is left outside a kernel.
            for n in g.node_ids() {
                assert!(!g.node(n).op.is_elementwise() || !g.order_preds(n).is_empty() || !g.order_succs(n).is_empty(),
                    "unfused elementwise `{}` in\n{}", g.node(n).op.name(), g.to_text());
            }
        }
    }

    #[test]
    fn each_pass_alone_preserves_semantics(seed in any::<u64>()) {
        single(&ConstFold::default(), seed);
        single(&ConstFold::with_limit(0), seed);
        single(&Simplify, seed);
        single(&Cse, seed);
        single(&Dce, seed);
        single(&Fuse::default(), seed);
        single(&MemoryPlanner, seed);
    }

    #[test]
    fn side_effects_survive_and_random_ops_never_merge(seed in any::<u64>()) {
        let p = random_program(seed);
        let count = |g: &Graph, f: &dyn Fn(&Op) -> bool| g.node_ids().filter(|&n| f(&g.node(n).op)).count();
        let writes = count(&p.graph, &|op| matches!(op, Op::AssignVar(_)));
        let randoms = count(&p.graph, &|op| matches!(op, Op::Random { .. }));
        let mut g = p.graph.clone();
        Cse.run(&mut g).unwrap();
        prop_assert_eq!(count(&g, &|op| matches!(op, Op::Random { .. })), randoms);
        Pipeline::default().verify(true).dump_dir(None).run(&mut g).unwrap();
        prop_assert_eq!(count(&g, &|op| matches!(op, Op::AssignVar(_))), writes);
    }
}

#[test]
fn the_generator_covers_the_op_set() {
    // Not a property: makes sure the random programs exercise what they claim to.
    let mut seen = std::collections::BTreeSet::new();
    let mut fired = std::collections::BTreeSet::new();
    for seed in 0..400 {
        let p = random_program(seed);
        for n in p.graph.node_ids() {
            seen.insert(p.graph.node(n).op.name());
        }
        let mut g = p.graph.clone();
        if let Ok(report) = Pipeline::default().dump_dir(None).run(&mut g) {
            for r in &report.runs {
                for (k, v) in &r.stats.counters {
                    if *v > 0 {
                        fired.insert(format!("{}.{k}", r.pass));
                    }
                }
            }
        }
    }
    for op in [
        "input",
        "const",
        "read_var",
        "assign_var",
        "random_uniform",
        "add",
        "mul",
        "select",
        "cast",
        "broadcast_to",
        "reshape",
        "transpose",
        "slice",
        "concat",
        "sum",
        "matmul",
        "equal",
    ] {
        assert!(seen.contains(op), "the generator never makes `{op}`: {seen:?}");
    }
    for c in [
        "const_fold.nodes_folded",
        "simplify.mul_one",
        "cse.nodes_merged",
        "dce.nodes_removed",
        "fuse.kernels_formed",
        "memory_plan.in_place",
    ] {
        assert!(fired.contains(c), "no random program exercises {c}: {fired:?}");
    }
}
