//! The W3 training step (MLP 784→512→512→10, batch 256, SGD; benches/train_step.rs) in new
//! processes: with the on-disk kernel cache off, writing it, and loading every kernel from
//! it. The losses and trained weights must be the same bits. The child is this binary's
//! `child` test, active only when `KILN_TEST_CHILD_OUT` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../benches/common/mlp.rs"]
mod mlp;
use mlp::{batch, Mlp};

/// Three compiled steps: each loss's bits, then a hash of every trained weight's bits.
fn train() -> String {
    let model = Mlp::new();
    let (x, y) = batch();
    let p = model.params.clone();
    let f = kiln::function(move |x: &kiln::Tensor, y: &kiln::Tensor| Mlp::step(&p, x, y));
    let mut out = String::new();
    for _ in 0..3 {
        let loss = f.call((&x, &y)).unwrap().to_vec::<f32>().unwrap()[0];
        out.push_str(&format!("loss {:08x}\n", loss.to_bits()));
    }
    for (i, p) in model.params.iter().enumerate() {
        let h = p
            .read()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, v| (h ^ v.to_bits() as u64).wrapping_mul(0x100_0000_01b3));
        out.push_str(&format!("param {i} {h:016x}\n"));
    }
    out
}

/// Not a test by itself: the body of each child process.
#[test]
fn child() {
    let Some(out) = std::env::var_os("KILN_TEST_CHILD_OUT") else { return };
    let text = train();
    let s = kiln_jit::disk_cache::stats();
    std::fs::write(out, format!("{} {} {} {}\n{text}", s.hits, s.misses, s.rejected, s.writes)).unwrap();
}

/// A path of this test process's own in the temporary directory (not created).
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kiln-kernel-cache-test-{}-{name}", std::process::id()))
}

/// `([hits, misses, rejected, writes], results)` of a child run with the cache at `cache`.
fn run_child(name: &str, cache: Option<&Path>) -> ([u64; 4], String) {
    let out = scratch(name);
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child", "--exact", "--test-threads=1"]).env("KILN_TEST_CHILD_OUT", &out);
    cmd.env("KILN_NUM_THREADS", "1").env_remove("KILN_CACHE").env_remove("KILN_DUMP");
    match cache {
        Some(dir) => cmd.env("KILN_CACHE_DIR", dir),
        None => cmd.env_remove("KILN_CACHE_DIR"),
    };
    assert!(cmd.stdout(Stdio::null()).status().unwrap().success(), "child {name} failed");
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let (first, results) = text.split_once('\n').unwrap();
    let stats: Vec<u64> = first.split(' ').map(|n| n.parse().unwrap()).collect();
    (stats.try_into().unwrap(), results.to_string())
}

#[test]
fn the_train_step_loaded_from_the_cache_trains_the_same_bits() {
    let dir = scratch("cache");
    let (off, cold) = run_child("cold", None);
    assert_eq!(off, [0, 0, 0, 0], "the cache is off by default");
    let (first, written) = run_child("first", Some(&dir));
    // Two threads compiling the same kernel at once both write it: one entry per kernel.
    let kernels = std::fs::read_dir(&dir).unwrap().count() as u64;
    assert!(kernels >= 10 && first[1] >= kernels && first[3] == first[1], "{kernels} kernels, {first:?}");
    assert_eq!(written, cold);
    let (second, loaded) = run_child("second", Some(&dir));
    assert_eq!(second, [kernels, 0, 0, 0], "every kernel loaded");
    assert_eq!(loaded, cold);
    std::fs::remove_dir_all(&dir).unwrap();
}
