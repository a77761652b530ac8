//! Lowering filetests: `jit/tests/filetests/*.txt`, beside this runner, so code generation
//! can be reviewed by reading. Each file holds
//!
//! ```text
//! ; math: cranelift             which transcendental path (`cranelift` by default, or `wide`:
//! ;                             the widest host-routine build this CPU runs; skipped if none)
//! ; check: fadd.f32x4           must appear in the kernel's CLIF, each after the previous match
//! ; not: call_indirect          must not appear anywhere in it
//! graph @k(%0: f32[64]) -> (%1) a fused kernel's body in text form (its inputs are the
//!   ...                         kernel's operands)
//! ```
//!
//! The runner compiles the body (uncached, verifier on), matches the CLIF, and runs the
//! kernel against the interpreter on seeded random inputs.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use kiln_ir::{Graph, Kernel};
use kiln_jit::MathPath;

struct FileTest {
    math: String,
    checks: Vec<String>,
    nots: Vec<String>,
    graph_text: String,
}

fn parse_file(text: &str) -> Result<FileTest, String> {
    let mut t = FileTest { math: "cranelift".into(), checks: vec![], nots: vec![], graph_text: String::new() };
    for line in text.lines() {
        let Some(d) = line.trim().strip_prefix(';') else {
            t.graph_text.push_str(line);
            t.graph_text.push('\n');
            continue;
        };
        let d = d.trim();
        if let Some(v) = d.strip_prefix("math:") {
            t.math = v.trim().to_string();
        } else if let Some(v) = d.strip_prefix("check:") {
            t.checks.push(v.trim().to_string());
        } else if let Some(v) = d.strip_prefix("not:") {
            t.nots.push(v.trim().to_string());
        } else {
            return Err(format!("unknown directive `{}` (math:, check:, not:)", line.trim()));
        }
    }
    if t.checks.is_empty() {
        return Err("no `; check:` line".into());
    }
    Ok(t)
}

/// Runs one file; `Ok(false)` when its math path is not available on this CPU.
fn run_file(path: &Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let t = parse_file(&text)?;
    let math = match t.math.as_str() {
        "cranelift" => MathPath::Cranelift,
        "wide" => match wide_paths().first() {
            Some(p) => *p,
            None => return Ok(false),
        },
        other => return Err(format!("unknown math path `{other}`")),
    };
    let body = Graph::from_text(&t.graph_text).map_err(|e| format!("parse: {e}"))?;
    let kernel = Kernel { body };
    let clif = with_path(math, || kiln_jit::compile_uncached(&kernel))
        .map_err(|e| format!("compile: {e}"))?
        .clif()
        .to_string();
    let mut rest = clif.as_str();
    for c in &t.checks {
        match rest.find(c.as_str()) {
            Some(i) => rest = &rest[i + c.len()..],
            None => return Err(format!("`; check: {c}` not found (in order) in\n{clif}")),
        }
    }
    if let Some(n) = t.nots.iter().find(|n| clif.contains(n.as_str())) {
        return Err(format!("`; not: {n}` found in\n{clif}"));
    }
    let mut rng = Rng(7);
    let inputs = kernel_inputs(&mut rng, &kernel);
    let want = run_interp(&kernel, &inputs).map_err(|e| format!("interpreter: {e}"))?;
    let got = with_path(math, || run_compiled(&kernel, &inputs));
    for i in 0..want.len() {
        let (g, w) = (got.get_f64(i), want.get_f64(i));
        if !((g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-5 * w.abs().max(1.0)) {
            return Err(format!("element {i}: compiled {g}, interpreter {w}"));
        }
    }
    Ok(true)
}

fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filetests");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("jit/tests/filetests exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    v.sort();
    v
}

#[test]
fn lowering_filetests() {
    let files = files();
    assert!(files.len() >= 5, "expected the lowering filetests, found {}", files.len());
    let mut failures = vec![];
    for f in &files {
        match run_file(f) {
            Ok(ran) => println!("{} {}", if ran { "ok  " } else { "skip" }, f.display()),
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
