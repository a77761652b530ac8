//! The layering of docs/ARCHITECTURE.md ("Module layout"): `context` (the trace and tape
//! stacks, `apply`) sits below `autodiff`, and inside it the trace stack sits below the
//! recording. A file that names a module above it would let the two import each other again.

use std::path::Path;

/// The lines of `file` (relative to the crate root) that name `module` through a path
/// (`crate::module`, `super::module`, or `module::` after a `use crate::{..}`), comments aside.
fn naming(file: &str, module: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let paths = [format!("crate::{module}"), format!("super::{module}"), format!("{module}::")];
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| paths.iter().any(|p| l.contains(p.as_str())) || l.contains(&format!("{{{module}")))
        .map(|(i, l)| format!("{file}:{}: {}", i + 1, l.trim()))
        .collect()
}

#[test]
fn context_and_variable_do_not_use_autodiff() {
    let files = ["src/context/mod.rs", "src/context/trace.rs", "src/context/recording.rs", "src/variable.rs"];
    let found: Vec<String> = files.iter().flat_map(|f| naming(f, "autodiff")).collect();
    assert!(found.is_empty(), "context and variable.rs must not depend on autodiff:\n{}", found.join("\n"));
}

#[test]
fn the_trace_stack_does_not_use_the_tape_stack() {
    let found = naming("src/context/trace.rs", "recording");
    assert!(found.is_empty(), "context/trace.rs must not depend on context/recording.rs:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_an_import() {
    // The check must be able to fail: autodiff/tape.rs does use the recording.
    assert!(!naming("src/autodiff/tape.rs", "recording").is_empty());
    assert!(!naming("src/autodiff/vjp.rs", "context").is_empty());
}
