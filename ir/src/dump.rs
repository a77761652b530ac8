//! The one place dump file names are made safe: every writer of `KILN_DUMP` output (the
//! pipeline's graphs, the executor's kernels and schedule) names its files from
//! [`file_stem`], so a function name can neither leave the dump directory nor make a write fail.

/// `name` as a file stem: letters, digits, `_`, `-` and `.` kept, anything else (path
/// separators included) replaced by `_`; a leading `.` is prefixed with `_` (no `..`, no hidden
/// files); empty becomes `graph`; at most 96 characters.
///
/// ```
/// assert_eq!(kiln_ir::dump::file_stem("../escaped"), "_.._escaped");
/// assert_eq!(kiln_ir::dump::file_stem("model/step"), "model_step");
/// assert_eq!(kiln_ir::dump::file_stem(""), "graph");
/// ```
pub fn file_stem(name: &str) -> String {
    let s: String =
        name.chars().take(96).map(|c| if c.is_alphanumeric() || "_-.".contains(c) { c } else { '_' }).collect();
    if s.is_empty() {
        "graph".to_string()
    } else if s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}
