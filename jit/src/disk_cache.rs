//! The persistent kernel cache: compiled kernels written to a directory and loaded by later
//! processes instead of being compiled again (docs/JIT.md, "On-disk kernel cache").
//!
//! Off unless asked for: `KILN_CACHE_DIR=<dir>` (or `KILN_CACHE=on` for the user's cache
//! directory, `$XDG_CACHE_HOME/kiln` or `$HOME/.cache/kiln`), or [`set_dir`]. Each entry is
//! one file named by a hash of its key; the key is the kernel's identity plus everything
//! that changes its code (the Cranelift flags and CPU features, the transcendental path,
//! kiln's version and a fingerprint of this crate's sources and lock file). A load checks
//! the format, lengths, a checksum of every byte and the whole key stored inside, and
//! every relocation; an entry failing any check is ignored (and rewritten), never run.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("kiln-doc-cache-{}", std::process::id()));
//! kiln_jit::disk_cache::set_dir(Some(dir.clone()));
//! assert_eq!(kiln_jit::disk_cache::dir(), Some(dir.clone()));
//! kiln_jit::disk_cache::set_dir(None); // off again
//! assert_eq!(kiln_jit::disk_cache::dir(), None);
//! let _ = std::fs::remove_dir_all(dir);
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use crate::code::{host_symbols, Fixup, Image, Target};

/// The layout of an entry; bumped whenever it (or the meaning of the code) changes.
/// (3: the entry names the code generator that made it.)
const FORMAT: u32 = 3;
const MAGIC: &[u8; 8] = b"KILNKRN\0";
const SUFFIX: &str = "kk";

/// The default bound on the directory's size, in bytes: beyond it the least recently used
/// entries are deleted.
///
/// ```
/// assert_eq!(kiln_jit::disk_cache::DEFAULT_MAX_BYTES, 256 << 20);
/// ```
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// `None`: not chosen by [`set_dir`] (the environment decides).
static DIR: Mutex<Option<Option<PathBuf>>> = Mutex::new(None);
static MAX_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_MAX_BYTES);

/// Turns the cache on at `dir` (created when first written) or off (`None`) for this
/// process, overriding `KILN_CACHE_DIR` / `KILN_CACHE`.
///
/// ```
/// kiln_jit::disk_cache::set_dir(None);
/// assert!(kiln_jit::disk_cache::dir().is_none());
/// ```
pub fn set_dir(dir: Option<PathBuf>) {
    *DIR.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir);
}

/// The cache directory in use, or `None` when the cache is off: the one [`set_dir`] chose,
/// else the environment's (`KILN_CACHE_DIR`, `KILN_CACHE`; read once).
///
/// ```
/// // Off unless the environment or `set_dir` turns it on.
/// let _dir: Option<std::path::PathBuf> = kiln_jit::disk_cache::dir();
/// ```
pub fn dir() -> Option<PathBuf> {
    static ENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    match &*DIR.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(chosen) => chosen.clone(),
        None => ENV.get_or_init(kiln_ir::config::kernel_cache_dir).clone(),
    }
}

/// Bounds the directory's size (default [`DEFAULT_MAX_BYTES`]); least recently used entries
/// beyond it are deleted after later writes.
///
/// ```
/// kiln_jit::disk_cache::set_max_bytes(64 << 20);
/// kiln_jit::disk_cache::set_max_bytes(kiln_jit::disk_cache::DEFAULT_MAX_BYTES);
/// ```
pub fn set_max_bytes(bytes: u64) {
    MAX_BYTES.store(bytes, Ordering::Relaxed);
}

/// Counts of this process's cache traffic.
///
/// ```
/// let s = kiln_jit::disk_cache::stats();
/// // Every kernel compiled while the disk cache was on was a miss or a refused entry first.
/// let _share_loaded = s.hits as f64 / (s.hits + s.compiled).max(1) as f64;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Kernels loaded from the disk instead of compiled.
    pub hits: u64,
    /// Kernels compiled because no entry existed.
    pub misses: u64,
    /// Entries found but refused (truncated, corrupted, another key, bad relocation).
    pub rejected: u64,
    /// Entries written.
    pub writes: u64,
    /// Kernels compiled through [`crate::compile`] (a miss or refusal, or the cache off).
    pub compiled: u64,
    /// Time spent compiling kernels through [`crate::compile`] (Cranelift, linking, and
    /// writing the entry when the cache is on), summed over threads; counted with the cache off too.
    pub compile_time: Duration,
    /// Time spent loading kernels from the disk (reading, checking, linking), summed over threads.
    pub load_time: Duration,
}

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static REJECTED: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);
static COMPILED: AtomicU64 = AtomicU64::new(0);
static COMPILE_NANOS: AtomicU64 = AtomicU64::new(0);
static LOAD_NANOS: AtomicU64 = AtomicU64::new(0);

/// Counts a kernel compiled (`load == false`, adding to [`Stats::compile_time`]) or
/// loaded (adding to [`Stats::load_time`]) in `t`.
pub(crate) fn add_time(load: bool, t: Duration) {
    let c = if load { &LOAD_NANOS } else { &COMPILE_NANOS };
    c.fetch_add(t.as_nanos() as u64, Ordering::Relaxed);
    if !load {
        COMPILED.fetch_add(1, Ordering::Relaxed);
    }
}

/// This process's cache traffic so far.
///
/// ```
/// let s = kiln_jit::disk_cache::stats();
/// assert!(s.hits + s.misses >= s.hits);
/// ```
pub fn stats() -> Stats {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Stats {
        hits: get(&HITS),
        misses: get(&MISSES),
        rejected: get(&REJECTED),
        writes: get(&WRITES),
        compiled: get(&COMPILED),
        compile_time: Duration::from_nanos(get(&COMPILE_NANOS)),
        load_time: Duration::from_nanos(get(&LOAD_NANOS)),
    }
}

/// Everything besides the kernel that changes its machine code, computed once.
fn fingerprint() -> &'static str {
    static FP: OnceLock<String> = OnceLock::new();
    FP.get_or_init(|| {
        let mut s = format!(
            "format {FORMAT} kiln-jit {} build {} {}-{}",
            env!("CARGO_PKG_VERSION"),
            env!("KILN_JIT_BUILD_HASH"),
            std::env::consts::ARCH,
            std::env::consts::OS
        );
        // All the host's flags; the kernel key's math path says whether a kernel used AVX-512.
        if let Ok(isa) = crate::kernel::isa(false, true) {
            for v in isa.flags().iter().chain(isa.isa_flags()) {
                s.push_str(&format!(" {v}"));
            }
        }
        s
    })
}

/// The entry key for a kernel whose in-process cache key is `kernel_key`, when the cache is
/// on: `(directory, key)`.
pub(crate) fn entry(kernel_key: &str) -> Option<(PathBuf, String)> {
    let dir = dir()?;
    // The kernel key names the math path it was compiled for (`kernel::cache_key`).
    Some((dir, format!("{}\n{kernel_key}", fingerprint())))
}

/// A 64-bit hash of `bytes` (FNV-style over 8-byte words): the file name and the checksum.
fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 32;
    h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (h >> 29)
}

fn path_of(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{:016x}.{SUFFIX}", hash64(key.as_bytes())))
}

/// An entry's bytes: header, the generator's name, key, code, fixups, then a checksum of
/// all of it. (The CLIF
/// text is not stored: a loaded kernel regenerates it when asked, as a compiled one does.)
fn encode(key: &str, image: &Image, generator: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + key.len() + image.bytes.len() + 24 * image.fixups.len());
    out.extend_from_slice(MAGIC);
    for n in [FORMAT as usize, key.len(), image.bytes.len(), image.fixups.len()] {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    out.push(generator.len() as u8);
    out.extend_from_slice(generator.as_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&image.bytes);
    for f in &image.fixups {
        out.extend_from_slice(&f.offset.to_le_bytes());
        out.extend_from_slice(&f.addend.to_le_bytes());
        let (tag, name) = match f.target {
            Target::Const(k) => (0u8, k.to_string()),
            Target::Host(n) => (1u8, n.to_string()),
        };
        out.push(tag);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    let sum = hash64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// A cursor over an entry that fails (`None`) instead of reading past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }
}

/// The image of an entry holding `key`, and the code generator it names; `None` for
/// anything malformed.
fn decode(bytes: &[u8], key: &str) -> Option<(Image, &'static str)> {
    let body_len = bytes.len().checked_sub(8)?;
    let (body, sum) = bytes.split_at(body_len);
    if hash64(body).to_le_bytes() != sum {
        return None;
    }
    let mut r = Reader(body);
    if r.take(8)? != MAGIC || r.len()? != FORMAT as usize {
        return None;
    }
    let (key_len, code_len, nfix) = (r.len()?, r.len()?, r.len()?);
    let n = r.take(1)?[0] as usize;
    let generator = std::str::from_utf8(r.take(n)?).ok()?;
    let generator = *crate::kernel::GENERATORS.iter().find(|g| **g == generator)?;
    if r.take(key_len)? != key.as_bytes() {
        return None;
    }
    let code = r.take(code_len)?.to_vec();
    let mut fixups = Vec::with_capacity(nfix.min(body.len()));
    for _ in 0..nfix {
        let offset = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        let addend = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let tag = r.take(1)?[0];
        let n = r.take(1)?[0] as usize;
        let name = std::str::from_utf8(r.take(n)?).ok()?;
        let target = match tag {
            0 => Target::Const(name.parse().ok()?),
            1 => Target::Host(host_symbols().iter().find(|(s, _)| *s == name)?.0),
            _ => return None,
        };
        fixups.push(Fixup { offset, target, addend });
    }
    if !r.0.is_empty() {
        return None;
    }
    Some((Image { bytes: code, fixups }, generator))
}

/// The cached code for `key` in `dir` whose fixups fit a kernel with `consts` constant
/// operands, with the name of the generator that made it; `None` (counted as a miss or a
/// rejection) otherwise.
pub(crate) fn load(dir: &Path, key: &str, consts: usize) -> Option<(Image, &'static str)> {
    let path = path_of(dir, key);
    let mut bytes = Vec::new();
    // Read-write when allowed, to mark the entry used (eviction drops the least recent).
    let file = std::fs::File::options().read(true).write(true).open(&path).or_else(|_| std::fs::File::open(&path));
    let Ok(mut file) = file else {
        MISSES.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let read = trusted(&file).then(|| file.read_to_end(&mut bytes));
    let found = read.and_then(|r| r.ok()).and_then(|_| decode(&bytes, key));
    match found.filter(|(image, _)| image.check(consts).is_ok()) {
        Some(found) => {
            let _ = file.set_modified(SystemTime::now());
            HITS.fetch_add(1, Ordering::Relaxed);
            Some(found)
        }
        None => {
            tracing::debug!(path = %path.display(), "kernel cache entry refused");
            REJECTED.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Writes the entry for `key` (atomically: a temporary file renamed over the name), then
/// trims the directory in the background if it may exceed its bound. Failures only log:
/// the cache is an optimization.
pub(crate) fn store(dir: &Path, key: &str, image: &Image, generator: &str) {
    let bytes = encode(key, image, generator);
    match write_atomically(dir, &path_of(dir, key), &bytes) {
        Ok(()) => {
            WRITES.fetch_add(1, Ordering::Relaxed);
            note_written(dir, bytes.len() as u64);
        }
        Err(e) => tracing::debug!(dir = %dir.display(), "kernel cache write failed: {e}"),
    }
}

/// Whether an entry may be run: on Unix, a file of this user that no one else can write (a
/// checksum catches damage, not a planted entry in a shared directory).
#[cfg(unix)]
fn trusted(file: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    file.metadata().is_ok_and(|m| m.uid() == me && m.mode() & 0o022 == 0)
}

#[cfg(not(unix))]
fn trusted(_: &std::fs::File) -> bool {
    true
}

/// A new file readable and writable by this user only (on Unix; elsewhere the default).
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn create_dir_private(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    create_dir_private(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let written = create_private(&tmp).and_then(|mut f| f.write_all(bytes));
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Bytes this process wrote since its last trim (the first write always trims: the
/// directory's size is unknown until listed once).
static WRITTEN: AtomicU64 = AtomicU64::new(u64::MAX);
static TRIMMING: AtomicBool = AtomicBool::new(false);

fn note_written(dir: &Path, n: u64) {
    let before = WRITTEN.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_add(n))).unwrap_or(0);
    let max = MAX_BYTES.load(Ordering::Relaxed);
    // Trimming lists the whole directory: once per process, then whenever this process alone
    // may have written a tenth of the bound.
    if before != u64::MAX && before.saturating_add(n) < max / 10 {
        return;
    }
    if TRIMMING.swap(true, Ordering::AcqRel) {
        return;
    }
    WRITTEN.store(0, Ordering::Relaxed);
    let dir = dir.to_path_buf();
    let spawned = std::thread::Builder::new().name("kiln-cache-trim".into()).spawn(move || {
        trim(&dir, max);
        TRIMMING.store(false, Ordering::Release);
    });
    if spawned.is_err() {
        TRIMMING.store(false, Ordering::Release);
    }
}

/// Deletes the least recently used entries until the directory holds at most `max` bytes,
/// and temporary files abandoned by crashed writers.
pub(crate) fn trim(dir: &Path, max: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let (path, Ok(meta)) = (e.path(), e.metadata()) else { continue };
        let modified = meta.modified().unwrap_or(now);
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".tmp-") {
            if now.duration_since(modified).unwrap_or_default() > Duration::from_secs(3600) {
                let _ = std::fs::remove_file(&path);
            }
        } else if name.ends_with(SUFFIX) && meta.is_file() {
            files.push((modified, meta.len(), path));
        }
    }
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        Image {
            bytes: (0..64u8).collect(),
            fixups: vec![
                Fixup { offset: 3, target: Target::Const(0), addend: 0 },
                Fixup { offset: 20, target: Target::Host("sinf"), addend: -8 },
            ],
        }
    }

    #[test]
    fn entries_round_trip_and_refuse_every_damage() {
        let bytes = encode("the key", &image(), "asm-avx2");
        assert_eq!(decode(&bytes, "the key"), Some((image(), "asm-avx2")));
        assert_eq!(decode(&bytes, "another key"), None);
        // A generator kiln does not know, even with a valid checksum, is refused.
        assert_eq!(decode(&encode("the key", &image(), "asm-sse9"), "the key"), None);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], "the key"), None, "truncated to {cut} bytes");
        }
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                assert_eq!(decode(&bad, "the key"), None, "byte {i} flipped by {bit:#x}");
            }
        }
    }

    #[test]
    fn trim_keeps_the_most_recent_entries_within_the_bound() {
        let dir = std::env::temp_dir().join(format!("kiln-trim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t0 = SystemTime::now() - Duration::from_secs(100);
        for i in 0..10u64 {
            let p = dir.join(format!("{i:016x}.{SUFFIX}"));
            std::fs::write(&p, vec![0u8; 1000]).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(t0 + Duration::from_secs(i)).unwrap();
        }
        std::fs::write(dir.join("unrelated.txt"), b"kept").unwrap();
        trim(&dir, 4500);
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        let want: Vec<String> =
            (6..10u64).map(|i| format!("{i:016x}.{SUFFIX}")).chain(["unrelated.txt".to_string()]).collect();
        assert_eq!(left, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
