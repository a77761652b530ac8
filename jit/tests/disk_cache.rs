//! The on-disk kernel cache across processes: this test binary runs itself as a child (the
//! `child` test, active only when `KILN_TEST_CHILD_OUT` is set) with `KILN_CACHE_DIR`
//! pointing at a temporary directory, so each child starts with an empty in-process cache
//! and either compiles or loads every kernel. Results are compared bit for bit with a
//! child that has the cache off.

mod executor_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use executor_support::*;
use kiln_ir::{Array, BinaryOp, DType, Graph, Op, ReduceOp, UnaryOp};
use kiln_jit::{Executable, MathPath};

/// Graphs covering each kind of relocation and kernel: elementwise with a constant operand,
/// a row reduction, tile routines (tanh, exp inside a row sum), the trig slow path (huge
/// arguments call the host's `sin`), an integer mean (the i128 division routine), and a
/// matmul with a fused epilogue.
fn graphs() -> Vec<(&'static str, Graph, Vec<Array>)> {
    let (m, k, n) = (33, 37, 65);
    let mut out = Vec::new();

    let mut g = Graph::new("elementwise");
    let x = input(&mut g, &[4, 300]);
    let y = fused(&mut g, &[x], |b, i| {
        let c = b.add_const(f32s(&data(300, 9), &[300]));
        let p = bin(b, BinaryOp::Mul, i[0], c);
        let q = bin(b, BinaryOp::Add, p, i[0]);
        un(b, UnaryOp::Neg, q)
    });
    g.set_outputs(vec![y]);
    out.push(("elementwise", g, vec![f32s(&data(1200, 1), &[4, 300])]));

    let mut g = Graph::new("reductions");
    let x = input(&mut g, &[4, 300]);
    let s = fused(&mut g, &[x], |b, i| reduce(b, ReduceOp::Sum, i[0], &[1], false));
    let e = fused(&mut g, &[x], |b, i| {
        let e = un(b, UnaryOp::Exp, i[0]);
        reduce(b, ReduceOp::Sum, e, &[1], false)
    });
    let mean = fused(&mut g, &[x], |b, i| {
        let k = b.add_const(Array::scalar(1.0e6f32));
        let big = bin(b, BinaryOp::Mul, i[0], k);
        let wide = b.add(Op::Cast(DType::I64), &[big]).unwrap();
        reduce(b, ReduceOp::Mean, wide, &[1], false)
    });
    g.set_outputs(vec![s, e, mean]);
    out.push(("reductions", g, vec![f32s(&data(1200, 2), &[4, 300])]));

    let mut g = Graph::new("transcendental");
    let x = input(&mut g, &[1000]);
    let t = fused(&mut g, &[x], |b, i| un(b, UnaryOp::Tanh, i[0]));
    let s = fused(&mut g, &[x], |b, i| {
        let k = b.add_const(Array::scalar(3.0e4f32));
        let big = bin(b, BinaryOp::Mul, i[0], k);
        un(b, UnaryOp::Sin, big)
    });
    g.set_outputs(vec![t, s]);
    out.push(("transcendental", g, vec![f32s(&data(1000, 3), &[1000])]));

    let mut g = Graph::new("dense");
    let x = input(&mut g, &[m, k]);
    let w = input(&mut g, &[k, n]);
    let bias = input(&mut g, &[n]);
    let mm = g.add(Op::MatMul, &[x, w]).unwrap();
    let y = fused(&mut g, &[mm, bias], |b, i| {
        let s = bin(b, BinaryOp::Add, i[0], i[1]);
        un(b, UnaryOp::Tanh, s)
    });
    g.set_outputs(vec![y]);
    let inputs = vec![f32s(&data(m * k, 4), &[m, k]), f32s(&data(k * n, 5), &[k, n]), f32s(&data(n, 6), &[n])];
    out.push(("dense", g, inputs));
    out
}

/// Every graph's outputs as hex lines, under the widest math path and the Cranelift one.
fn results() -> String {
    let mut text = String::new();
    let paths = [MathPath::available()[0], MathPath::Cranelift];
    for path in paths {
        kiln_jit::set_math_path(path).unwrap();
        for (name, g, inputs) in graphs() {
            let exe = Executable::new(g).unwrap();
            let got = exe.run(&inputs, &[]).unwrap();
            for (i, a) in got.outputs.iter().enumerate() {
                let hex: String = a.data().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
                text.push_str(&format!("{} {name}[{i}] {}: {hex}\n", path.name(), a.dtype()));
            }
        }
        // A loaded kernel's CLIF text (not stored in the entry) is regenerated, the same as
        // a compiled one's, and it names the generator that compiled it (stored).
        let mut g = Graph::new("tanh");
        let x = g.add_input(kiln_ir::TensorType::new(DType::F32, &[300]));
        let y = g.add(Op::Unary(UnaryOp::Tanh), &[x]).unwrap();
        g.set_outputs(vec![y]);
        let k = kiln_jit::compile(&kiln_ir::Kernel { body: g }).unwrap();
        let clif = k.clif().to_string();
        text.push_str(&format!("{} tanh clif {:016x} by {}\n", path.name(), fnv(clif.as_bytes()), k.generator()));
    }
    text
}

/// A 64-bit FNV-1a hash (to compare texts across processes in one line).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Not a test by itself: the body of each child process.
#[test]
fn child() {
    let Some(out) = std::env::var_os("KILN_TEST_CHILD_OUT") else { return };
    let text = results();
    let s = kiln_jit::disk_cache::stats();
    let stats = format!("hits {} misses {} rejected {} writes {}\n", s.hits, s.misses, s.rejected, s.writes);
    std::fs::write(out, stats + &text).unwrap();
}

struct Run {
    stats: [u64; 4],
    results: String,
}

/// Runs the `child` test in a new process with `env` set; its cache counters and results.
fn run_child(name: &str, env: &[(&str, &Path)]) -> Run {
    let out = scratch(&format!("{name}.out"));
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child", "--exact", "--test-threads=1"]).env("KILN_TEST_CHILD_OUT", &out);
    // One worker thread: the same summation order in every process.
    cmd.env("KILN_NUM_THREADS", "1").env_remove("KILN_CACHE_DIR").env_remove("KILN_CACHE").env_remove("KILN_DUMP");
    cmd.env_remove("XDG_CACHE_HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.stdout(std::process::Stdio::null()).status().unwrap();
    assert!(status.success(), "child {name} failed");
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let (first, results) = text.split_once('\n').unwrap();
    let nums: Vec<u64> = first.split(' ').skip(1).step_by(2).map(|n| n.parse().unwrap()).collect();
    Run { stats: nums.try_into().unwrap(), results: results.to_string() }
}

/// A path of this test process's own in the temporary directory (not created).
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kiln-disk-cache-test-{}-{name}", std::process::id()))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "kk")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A cold process, then one writing the cache, then one loading every kernel from it: all
/// three compute the same bits.
#[test]
fn a_new_process_loads_every_kernel_and_computes_the_same_bits() {
    let dir = scratch("warm");
    let cold = run_child("cold", &[]);
    assert_eq!(cold.stats, [0, 0, 0, 0], "the cache is off by default");
    let first = run_child("first", &[("KILN_CACHE_DIR", &dir)]);
    let [hits, misses, rejected, writes] = first.stats;
    // Two threads compiling the same kernel at once both write it: one entry per kernel.
    let kernels = entries(&dir).len() as u64;
    assert!(kernels >= 10 && misses >= kernels, "each kernel compiled: {kernels}, {:?}", first.stats);
    assert_eq!((hits, rejected, writes), (0, 0, misses));
    assert_eq!(first.results, cold.results);
    let second = run_child("second", &[("KILN_CACHE_DIR", &dir)]);
    assert_eq!(second.stats, [kernels, 0, 0, 0], "every kernel loaded");
    assert_eq!(second.results, cold.results);
    // Another process (another address layout) writes the very same bytes: no process
    // address is baked into the code.
    let other = scratch("warm-again");
    run_child("again", &[("KILN_CACHE_DIR", &other)]);
    let (a, b) = (entries(&dir), entries(&other));
    assert_eq!(
        a.iter().map(|p| p.file_name()).collect::<Vec<_>>(),
        b.iter().map(|p| p.file_name()).collect::<Vec<_>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(std::fs::read(x).unwrap() == std::fs::read(y).unwrap(), "{x:?} differs between processes");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

/// Truncated, flipped, emptied, swapped and writable-by-others entries are refused and recompiled: the results
/// stay those of a cold process, and the next process finds the entries repaired.
#[test]
fn damaged_entries_are_refused_and_rewritten() {
    let dir = scratch("damaged");
    let cold = run_child("cold-d", &[]);
    run_child("first-d", &[("KILN_CACHE_DIR", &dir)]);
    let files = entries(&dir);
    let total = files.len() as u64;
    assert!(files.len() >= 6);
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let len = bytes[0].len();
    std::fs::write(&files[0], &bytes[0][..len / 2]).unwrap(); // truncated
    let mut flipped = bytes[1].clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40; // one bit, inside the code or the key
    std::fs::write(&files[1], &flipped).unwrap();
    std::fs::write(&files[2], b"").unwrap(); // emptied
    std::fs::write(&files[3], &bytes[4]).unwrap(); // a valid entry of another kernel
    let mut tail = bytes[4].clone();
    *tail.last_mut().unwrap() ^= 1; // the checksum itself
    std::fs::write(&files[4], &tail).unwrap();
    let mut refused = 5;
    #[cfg(unix)]
    {
        // Intact, but others may write it: it could have been planted.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&files[5], std::fs::Permissions::from_mode(0o666)).unwrap();
        refused += 1;
    }
    let damaged = run_child("damaged", &[("KILN_CACHE_DIR", &dir)]);
    assert_eq!(damaged.stats, [total - refused, 0, refused, refused], "refused, recompiled and rewritten");
    assert_eq!(damaged.results, cold.results);
    let repaired = run_child("repaired", &[("KILN_CACHE_DIR", &dir)]);
    assert_eq!(repaired.stats, [total, 0, 0, 0]);
    assert_eq!(repaired.results, cold.results);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `KILN_CACHE_DIR=off` and `KILN_CACHE=off` keep the cache off: nothing read or written.
#[test]
fn the_cache_can_be_turned_off() {
    let dir = scratch("off");
    let off = Path::new("off");
    assert_eq!(run_child("off1", &[("KILN_CACHE_DIR", off)]).stats, [0, 0, 0, 0]);
    assert_eq!(run_child("off2", &[("KILN_CACHE_DIR", &dir), ("KILN_CACHE", off)]).stats, [0, 0, 0, 0]);
    assert!(entries(&dir).is_empty());
}

/// `KILN_CACHE=on` without a directory uses the user's cache directory:
/// `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln` (both pointed at scratch space here).
#[test]
fn on_uses_the_user_cache_directory() {
    let on = Path::new("on");
    let xdg = scratch("xdg");
    let run = run_child("xdg", &[("KILN_CACHE", on), ("XDG_CACHE_HOME", &xdg)]);
    assert!(run.stats[3] > 0 && entries(&xdg.join("kiln")).len() as u64 <= run.stats[3]);
    assert!(!entries(&xdg.join("kiln")).is_empty());
    let home = scratch("home");
    let run = run_child("home", &[("KILN_CACHE", on), ("HOME", &home)]);
    assert!(run.stats[3] > 0);
    assert!(!entries(&home.join(".cache/kiln")).is_empty());
    std::fs::remove_dir_all(&xdg).unwrap();
    std::fs::remove_dir_all(&home).unwrap();
}
