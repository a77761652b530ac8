//! Issue 16's program (examples/export.rs) runs as written.

#[path = "../examples/export.rs"]
mod program;

#[test]
fn the_issue_program_runs() {
    program::main().unwrap();
}
