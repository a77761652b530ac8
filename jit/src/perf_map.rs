//! `KILN_PERF_MAP=1`: names kernels for `perf`. Each linked kernel's address range goes to
//! `/tmp/perf-<pid>.map` with a name made of its instructions, the convention JITs (V8, the
//! JVM, LuaJIT) use so that `perf report` shows `kiln:mul,add,tanh…` instead of a raw address.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::lower::{Ins, Program, Tail};

/// The open map file, or `None` when the variable is off (or the file cannot be opened:
/// profiling aid, never an error for the program being profiled).
fn file() -> &'static Option<Mutex<std::fs::File>> {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        if !kiln_ir::config::perf_map() {
            return None;
        }
        let path = std::env::temp_dir().join(format!("perf-{}.map", std::process::id()));
        std::fs::OpenOptions::new().create(true).append(true).open(path).ok().map(Mutex::new)
    })
}

/// Records `len` bytes of code at `addr` for the kernel `prog`, when the map is on.
pub(crate) fn record(addr: *const u8, len: usize, generator: &str, prog: &Program) {
    if let Some(f) = file() {
        if let Ok(mut f) = f.lock() {
            let _ = writeln!(f, "{:x} {:x} {}", addr as usize, len, name(generator, prog));
        }
    }
}

/// The generator, then the program's operations in order, then its reduction, e.g.
/// `kiln-cranelift:sub,exp>sum[4096x1024]`.
fn name(generator: &str, prog: &Program) -> String {
    let ops: Vec<String> = prog
        .ins
        .iter()
        .filter_map(|i| match i {
            Ins::Unary(op, ..) => Some(format!("{op:?}")),
            Ins::Binary(op, ..) => Some(format!("{op:?}")),
            Ins::Select(..) => Some("select".into()),
            Ins::Cast(_, to, _) => Some(format!("cast_{to:?}")),
            Ins::Leaf(_) | Ins::Scalar(..) => None,
        })
        .map(|s| s.to_lowercase())
        .collect();
    let tail = match &prog.tail {
        Tail::None => String::new(),
        Tail::Reduce { op, .. } => format!(">{op:?}").to_lowercase(),
        Tail::Arg { op, .. } => format!(">{op:?}").to_lowercase(),
    };
    let dims: Vec<String> = prog.space.iter().map(|d| d.to_string()).collect();
    format!("kiln-{generator}:{}{tail}[{}]", ops.join(","), dims.join("x"))
}
