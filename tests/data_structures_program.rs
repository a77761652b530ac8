//! Issue 17's program (examples/data_structures.rs) runs as written.

#[path = "../examples/data_structures.rs"]
mod program;

#[test]
fn the_issue_program_runs() {
    program::main().unwrap();
}
