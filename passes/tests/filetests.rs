//! Filetests: `passes/tests/filetests/*.txt`, beside this runner. Each file holds
//!
//! ```text
//! ; run: simplify, dce          passes to run, in order (`pipeline` = the default pipeline)
//! ; check: %2 = neg %0          must appear in the output, each after the previous match
//! ; not: mul                    must not appear anywhere in the output
//! graph @f(%0: f32[4]) -> (%2)  the input graph in text form
//!   ...
//! ```
//!
//! The runner parses the input (and checks `to_text` round-trips it exactly), runs the
//! passes with the verifier after each, matches the output text (`to_text_with_plan`,
//! which also round-trips), and runs input and output through the interpreter on seeded
//! random inputs and variables: the results must be identical.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_same_outcome, random_array, Rng};
use kiln_ir::{interp, Array, Graph};
use kiln_passes::{
    ConstFold, Cse, Dce, Fuse, HoistInvariants, InlineCase, MemoryPlanner, OptimizeRegions, Pass, Pipeline, Simplify,
};

struct FileTest {
    passes: Vec<String>,
    checks: Vec<String>,
    nots: Vec<String>,
    graph_text: String,
}

fn parse_file(text: &str) -> Result<FileTest, String> {
    let mut t = FileTest { passes: Vec::new(), checks: Vec::new(), nots: Vec::new(), graph_text: String::new() };
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(d) = trimmed.strip_prefix(';') {
            let d = d.trim();
            if let Some(v) = d.strip_prefix("run:") {
                t.passes.extend(v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()));
            } else if let Some(v) = d.strip_prefix("check:") {
                t.checks.push(v.trim().to_string());
            } else if let Some(v) = d.strip_prefix("not:") {
                t.nots.push(v.trim().to_string());
            } else {
                return Err(format!(
                    "unknown directive `{trimmed}` (run:, check:, not:, prose goes in `#` comment lines)"
                ));
            }
        } else {
            t.graph_text.push_str(line);
            t.graph_text.push('\n');
        }
    }
    if t.passes.is_empty() {
        return Err("no `; run:` line".into());
    }
    Ok(t)
}

fn pass_by_name(name: &str) -> Option<Box<dyn Pass>> {
    Some(match name {
        "const_fold" => Box::new(ConstFold::default()),
        "simplify" => Box::new(Simplify),
        "cse" => Box::new(Cse),
        "dce" => Box::new(Dce),
        "fuse" => Box::new(Fuse::default()),
        "memory_plan" => Box::new(MemoryPlanner),
        "inline_case" => Box::new(InlineCase),
        "hoist" => Box::new(HoistInvariants),
        "regions" => Box::new(OptimizeRegions),
        _ => return None,
    })
}

/// Runs one file; `Err` with a readable report on any failure.
fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let t = parse_file(&text)?;
    let input = Graph::from_text(&t.graph_text).map_err(|e| format!("input does not parse: {e}"))?;
    let printed = input.to_text();
    let reparsed = Graph::from_text(&printed).map_err(|e| format!("printed input does not parse: {e}"))?;
    if reparsed.to_text() != printed {
        return Err(format!("to_text does not round-trip:\n{printed}\nvs\n{}", reparsed.to_text()));
    }
    let mut g = input.clone();
    for name in &t.passes {
        if name == "pipeline" {
            Pipeline::default().verify(true).dump_dir(None).run(&mut g).map_err(|e| e.to_string())?;
            continue;
        }
        let pass = pass_by_name(name).ok_or_else(|| format!("unknown pass `{name}`"))?;
        pass.run(&mut g).map_err(|e| format!("{name}: {e}"))?;
        g.verify().map_err(|e| format!("after {name}: {e}\n{}", g.to_text()))?;
    }
    let out = g.to_text_with_plan();
    let back = Graph::from_text(&out).map_err(|e| format!("output does not parse: {e}\n{out}"))?;
    if back.to_text() != g.to_text() {
        return Err(format!("output does not round-trip:\n{out}\nvs\n{}", back.to_text()));
    }
    let lines: Vec<&str> = out.lines().collect();
    let mut at = 0;
    for c in &t.checks {
        match lines[at..].iter().position(|l| l.contains(c.as_str())) {
            Some(i) => at += i + 1,
            None => return Err(format!("`; check: {c}` not found (in order) in:\n{out}")),
        }
    }
    for n in &t.nots {
        if out.contains(n.as_str()) {
            return Err(format!("`; not: {n}` found in:\n{out}"));
        }
    }
    same_results(&input, &g).map_err(|e| format!("{e}\noutput:\n{out}"))
}

/// The interpreter gives identical results on both graphs for a few seeded random inputs.
fn same_results(before: &Graph, after: &Graph) -> Result<(), String> {
    for seed in 0..4 {
        let mut r = Rng::new(seed);
        let inputs: Vec<Array> = before.inputs().iter().map(|&i| random_array(&mut r, &before.node(i).ty)).collect();
        let vars: Vec<Array> = before.vars().iter().map(|v| random_array(&mut r, &v.ty)).collect();
        let Ok(want) = interp::run(before, &inputs, &vars) else { continue };
        let got = interp::run(after, &inputs, &vars).map_err(|e| format!("the output graph fails: {e}"))?;
        std::panic::catch_unwind(|| assert_same_outcome(&want, &got, "filetest"))
            .map_err(|_| "results differ (see the message above)".to_string())?;
    }
    Ok(())
}

fn filetest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filetests")
}

#[test]
fn filetests() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(filetest_dir())
        .expect("passes/tests/filetests exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "expected the filetests, found {}", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| run_file(f).err().map(|e| format!("=== {}\n{e}", f.file_name().unwrap().to_string_lossy())))
        .collect();
    assert!(failures.is_empty(), "{} of {} filetests failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

#[test]
fn the_runner_rejects_a_wrong_check() {
    let dir = std::env::temp_dir().join(format!("kiln_filetest_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.txt");
    let graph = "graph @f(%0: f32[4]) -> (%2)\n  %1 = neg %0 : f32[4]\n  %2 = neg %1 : f32[4]\n";
    std::fs::write(&f, format!("; run: simplify\n; check: neg\n{graph}")).unwrap();
    assert!(run_file(&f).unwrap_err().contains("not found"));
    std::fs::write(&f, format!("; run: dce\n; not: neg\n{graph}")).unwrap();
    assert!(run_file(&f).unwrap_err().contains("found in"));
    std::fs::write(&f, format!("; run: simplify\n; check: graph @f(%0: f32[4]) -> (%0)\n; not: neg\n{graph}")).unwrap();
    run_file(&f).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
