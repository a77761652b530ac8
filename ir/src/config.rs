//! The one reader of kiln's `KILN_*` environment variables; every crate asks here, so the
//! README's table of variables is the whole list.
//!
//! ```
//! // Unset or empty variables read as "not set".
//! let _dump: Option<std::path::PathBuf> = kiln_ir::config::dump_dir();
//! let _threads: Option<usize> = kiln_ir::config::num_threads();
//! ```

use std::path::PathBuf;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn is(name: &str, value: &str) -> bool {
    var(name).is_some_and(|v| v.eq_ignore_ascii_case(value))
}

/// `KILN_DUMP=<dir>`: where every traced graph, pass, kernel and schedule is written.
pub fn dump_dir() -> Option<PathBuf> {
    std::env::var_os("KILN_DUMP").filter(|d| !d.is_empty()).map(PathBuf::from)
}

/// `KILN_BACKEND=interpreter`: traced graphs run on the reference interpreter.
pub fn backend_is_interpreter() -> bool {
    is("KILN_BACKEND", "interpreter")
}

/// `KILN_EAGER=interpreter`: eager ops never use compiled one-op kernels.
pub fn eager_is_interpreter() -> bool {
    is("KILN_EAGER", "interpreter")
}

/// `KILN_EAGER=immediate`: eager elementwise ops run when written, never deferred and fused.
pub fn eager_is_immediate() -> bool {
    is("KILN_EAGER", "immediate")
}

/// `KILN_NUM_THREADS=<n>` (n ≥ 1): worker threads for large kernels.
pub fn num_threads() -> Option<usize> {
    var("KILN_NUM_THREADS").and_then(|s| s.parse::<usize>().ok()).filter(|&n| n > 0)
}

/// The thread count for kernels and products: [`num_threads`], else the cores this process
/// may use. Read once: the standard library's count reads cgroup files on every call (~20 µs
/// here), which an eager `matmul` would otherwise pay each time.
///
/// ```
/// assert!(kiln_ir::config::threads() >= 1);
/// ```
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS
        .get_or_init(|| num_threads().unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// `KILN_MATH=avx512|avx2|cranelift`: which build of the transcendental routines runs, and
/// whether the JIT's Cranelift code may use AVX-512 (only with `avx512`); the JIT ignores a
/// build this CPU cannot run. Lower-cased; `None` when unset.
pub fn math() -> Option<String> {
    var("KILN_MATH").map(|v| v.to_ascii_lowercase())
}

/// `KILN_ASM=off`: the JIT compiles every kernel with Cranelift, never with its x86 emitter
/// (docs/JIT.md, *The x86 emitter*).
pub fn asm_off() -> bool {
    is("KILN_ASM", "off")
}

/// `KILN_PERF_MAP=1`: every compiled kernel's address range and a name are appended to
/// `/tmp/perf-<pid>.map`, so `perf report` names JIT code (docs/JIT.md, *Profiling*).
pub fn perf_map() -> bool {
    is("KILN_PERF_MAP", "1") || is("KILN_PERF_MAP", "on")
}

/// The on-disk kernel cache's directory, `None` when it is off (the default):
/// `KILN_CACHE_DIR=<dir>` turns it on there (`off` turns it off); `KILN_CACHE=on` turns it
/// on in the user's cache directory (`$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`);
/// `KILN_CACHE=off` wins over both.
///
/// ```
/// // Whatever the environment says, the answer is a directory or nothing.
/// let _dir: Option<std::path::PathBuf> = kiln_ir::config::kernel_cache_dir();
/// ```
pub fn kernel_cache_dir() -> Option<PathBuf> {
    if is("KILN_CACHE", "off") {
        return None;
    }
    match std::env::var_os("KILN_CACHE_DIR").filter(|d| !d.is_empty()) {
        Some(d) if d.eq_ignore_ascii_case("off") => None,
        Some(d) => Some(PathBuf::from(d)),
        None if is("KILN_CACHE", "on") => user_cache_dir().map(|d| d.join("kiln")),
        None => None,
    }
}

fn user_cache_dir() -> Option<PathBuf> {
    let abs = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(abs)
        .or_else(|| std::env::var_os("HOME").and_then(abs).map(|h| h.join(".cache")))
}
