//! Fingerprints the code generator for the on-disk kernel cache (`src/disk_cache.rs`): a
//! hash of this crate's sources and of the workspace's `Cargo.lock` (the exact Cranelift
//! version), so a cache entry written by another build of kiln is never loaded, even when
//! the crate's version number did not change.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    files(&root.join("src"), &mut paths);
    paths.sort();
    let mut h = DefaultHasher::new();
    for p in &paths {
        p.strip_prefix(&root).unwrap_or(p).hash(&mut h);
        std::fs::read(p).unwrap_or_default().hash(&mut h);
    }
    println!("cargo:rerun-if-changed=src");
    // The workspace's lock file pins Cranelift; outside the workspace (a registry
    // dependency) there is none, and the crate version stands for the build.
    if let Some(lock) = root.ancestors().map(|d| d.join("Cargo.lock")).find(|p| p.is_file()) {
        std::fs::read(&lock).unwrap_or_default().hash(&mut h);
        println!("cargo:rerun-if-changed={}", lock.display());
    }
    println!("cargo:rustc-env=KILN_JIT_BUILD_HASH={:016x}", h.finish());
}
