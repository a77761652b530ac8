//! Compiled kernels: one Cranelift function per fused kernel, linked into executable pages
//! shared with the kernels compiled with it (kept alive, and freed, by the
//! [`CompiledKernel`]s), the process-wide
//! compile cache, and the way through the on-disk cache (`disk_cache.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{types, AbiParam, Function, Signature, UserFuncName};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use kiln_ir::{Error, Kernel, Result};

use crate::code::{self, Code, Image, Sym, Symbols};
use crate::math::{Fx, HostMath};
use crate::{disk_cache, lower};

/// A compiled kernel's entry point: computes output elements `begin..end` (flat,
/// row-major indices of the output; for a reduction, each output element is a whole
/// reduction).
///
/// # Safety
/// `inputs` must point to one pointer per kernel operand, each valid for reading the
/// operand's whole buffer (its static shape and dtype); `output` must be valid for
/// writing the whole output buffer; `begin <= end <= numel(output)`. Ranges written by
/// concurrent calls must not overlap.
pub type KernelFn = unsafe extern "C" fn(inputs: *const *const u8, output: *mut u8, begin: usize, end: usize);

/// The names [`CompiledKernel::generator`] gives: the x86 emitter's two widths, Cranelift.
pub(crate) const ASM_AVX512: &str = "asm-avx512";
pub(crate) const ASM_AVX2: &str = "asm-avx2";
pub(crate) const CRANELIFT: &str = "cranelift";
/// Every generator's name (a disk-cache entry naming another is refused).
pub(crate) const GENERATORS: [&str; 3] = [ASM_AVX512, ASM_AVX2, CRANELIFT];

/// Machine code for one fused kernel, specialized to its static shapes.
///
/// ```
/// use kiln_ir::{BinaryOp, DType, Graph, Kernel, Op, TensorType, UnaryOp};
/// let mut g = Graph::new("k");
/// let x = g.add_input(TensorType::new(DType::F32, &[5]));
/// let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
/// let z = g.add(Op::Unary(UnaryOp::Neg), &[y]).unwrap();
/// g.set_outputs(vec![z]);
/// let k = kiln_jit::compile(&Kernel { body: g }).unwrap();
/// let input = [1.0f32, 2.0, 3.0, 4.0, 5.0];
/// let mut out = [0.0f32; 5];
/// let ptrs = [input.as_ptr() as *const u8];
/// // SAFETY: one operand of 5 f32s, an output of 5 f32s, range 0..5.
/// unsafe { (k.func())(ptrs.as_ptr(), out.as_mut_ptr() as *mut u8, 0, 5) };
/// assert_eq!(out, [-1.0, -4.0, -9.0, -16.0, -25.0]);
/// assert!(k.clif().contains("fmul"));
/// ```
pub struct CompiledKernel {
    func: KernelFn,
    /// The CLIF text, made on first request by lowering `prog` again (as text it costs
    /// ~15% of a compile, and only dumps and tests read it).
    clif: OnceLock<String>,
    disasm: Option<String>,
    generator: &'static str,
    cost: usize,
    /// The executable code; its pages (shared with the kernels linked with it) are unmapped
    /// when the last of those kernels drops.
    _code: Code,
    /// The analyzed body. Its constant operands, whose addresses are patched into the
    /// code, live here.
    prog: lower::Program,
}

impl std::fmt::Debug for CompiledKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledKernel").field("cost", &self.cost).finish_non_exhaustive()
    }
}

impl CompiledKernel {
    /// The entry point.
    pub fn func(&self) -> KernelFn {
        self.func
    }

    /// The function's Cranelift IR, as text (for `KILN_DUMP`), made on the first request:
    /// the same lowering again, with the math path and ISA the kernel was compiled for.
    /// For a kernel the x86 emitter compiled ([`CompiledKernel::generator`]), this is the
    /// Cranelift form it has with the emitter off; [`CompiledKernel::disasm`] then holds
    /// the emitter's listing.
    pub fn clif(&self) -> &str {
        self.clif.get_or_init(|| match isa(false, self.prog.avx512()).and_then(|isa| function(&self.prog, &isa)) {
            Ok((func, _)) => func.display().to_string(),
            Err(e) => format!("; CLIF unavailable: {e}"),
        })
    }

    /// The machine code as text, when disassembly was requested at compile time (it is
    /// whenever `KILN_DUMP` is set).
    pub fn disasm(&self) -> Option<&str> {
        self.disasm.as_deref()
    }

    /// The code generator that compiled the kernel: `"asm-avx512"` or `"asm-avx2"` (the x86
    /// emitter, full-width vectors) or `"cranelift"` (128-bit vectors).
    ///
    /// ```
    /// use kiln_ir::{BinaryOp, DType, Graph, Kernel, Op, TensorType};
    /// let mut g = Graph::new("k");
    /// let x = g.add_input(TensorType::new(DType::F32, &[1000]));
    /// let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
    /// g.set_outputs(vec![y]);
    /// let k = kiln_jit::compile(&Kernel { body: g }).unwrap();
    /// assert!(["asm-avx512", "asm-avx2", "cranelift"].contains(&k.generator()));
    /// ```
    pub fn generator(&self) -> &'static str {
        self.generator
    }

    /// Rough work per output element (in vector-instruction units), for the executor's
    /// decision to split a call across threads.
    pub fn cost_per_element(&self) -> usize {
        self.cost
    }
}

/// Cranelift's x86-64 settings for AVX-512 (cranelift-native turns on those the CPU has).
const AVX512_FLAGS: [&str; 6] =
    ["has_avx512f", "has_avx512vl", "has_avx512dq", "has_avx512bitalg", "has_avx512vbmi", "has_avx512vnni"];

static VERIFY: AtomicBool = AtomicBool::new(cfg!(debug_assertions));

/// Turns Cranelift's IR verifier on or off for later compilations (on by default in
/// debug builds; tests turn it on in release builds too).
pub fn set_verify(on: bool) {
    VERIFY.store(on, Ordering::Relaxed);
}

/// The host ISA, with Cranelift's verifier on or off, and with or without the AVX-512
/// instructions the CPU has (see [`lower::Program::avx512`]).
pub(crate) fn isa(verify: bool, avx512: bool) -> Result<OwnedTargetIsa> {
    type Isas = [[OwnedTargetIsa; 2]; 2];
    static ISAS: OnceLock<std::result::Result<Isas, String>> = OnceLock::new();
    let isas = ISAS.get_or_init(|| {
        let make = |avx512: bool, verify: bool| -> std::result::Result<OwnedTargetIsa, String> {
            let mut flags = settings::builder();
            let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| e.to_string());
            set(&mut flags, "opt_level", "speed")?;
            set(&mut flags, "regalloc_algorithm", "backtracking")?;
            set(&mut flags, "is_pic", "false")?;
            set(&mut flags, "use_colocated_libcalls", "false")?;
            set(&mut flags, "enable_verifier", if verify { "true" } else { "false" })?;
            // A frame larger than the guard page must touch each page on the way down, so
            // an overflow hits the guard page instead of writing below it.
            set(&mut flags, "enable_probestack", "true")?;
            set(&mut flags, "probestack_strategy", "inline")?;
            let mut builder = cranelift_native::builder().map_err(|e| e.to_string())?;
            if !avx512 {
                for f in AVX512_FLAGS {
                    builder.set(f, "false").map_err(|e| e.to_string())?;
                }
            }
            builder.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())
        };
        Ok([[make(false, false)?, make(false, true)?], [make(true, false)?, make(true, true)?]])
    });
    match isas {
        Ok(i) => Ok(i[avx512 as usize][verify as usize].clone()),
        Err(e) => Err(Error::Compile(format!("host ISA: {e}"))),
    }
}

/// Whether the ISA flag `name` is on (`has_fma`: `fma` is one instruction).
fn has_flag(isa: &OwnedTargetIsa, name: &str) -> bool {
    isa.isa_flags().iter().any(|f| f.name == name && f.as_bool() == Some(true))
}

/// The cache key: the kernel's identity, the math path it is compiled for (which decides
/// the host routines and Cranelift's ISA) and whether the x86 emitter is on.
fn cache_key(kernel: &Kernel) -> Result<String> {
    Ok(format!("{} math {} asm {}", kernel.key()?, crate::math_path().name(), crate::asm_on()))
}

/// How many recently used kernels the cache keeps alive after every executable using them
/// is gone, so a function traced again (or an eager op on a recent shape) does not
/// recompile. Older unused kernels are freed.
pub const RECENT_KERNELS: usize = 128;

/// The process-wide compile cache. `live` finds a kernel while anything holds it (an
/// executable, or `recent`); `recent` holds the last [`RECENT_KERNELS`] kernels compiled
/// or looked up, least recently used first. A kernel nobody holds frees its code.
#[derive(Default)]
struct Cache {
    live: HashMap<String, Weak<CompiledKernel>>,
    recent: VecDeque<Arc<CompiledKernel>>,
}

impl Cache {
    fn get(&mut self, key: &str) -> Option<Arc<CompiledKernel>> {
        let k = self.live.get(key)?.upgrade()?;
        self.touch(&k);
        Some(k)
    }

    fn insert(&mut self, key: String, k: Arc<CompiledKernel>) -> Arc<CompiledKernel> {
        if let Some(old) = self.get(&key) {
            return old; // another thread compiled it meanwhile
        }
        self.live.insert(key, Arc::downgrade(&k));
        self.touch(&k);
        // Forget dropped kernels once they could be half the map: amortized O(1) per insert.
        if self.live.len() > 2 * RECENT_KERNELS && self.live.len() > 2 * self.live_count() {
            self.live.retain(|_, w| w.strong_count() > 0);
        }
        k
    }

    /// Makes `k` the most recently used kernel.
    fn touch(&mut self, k: &Arc<CompiledKernel>) {
        if let Some(i) = self.recent.iter().rposition(|r| Arc::ptr_eq(r, k)) {
            self.recent.remove(i);
        }
        self.recent.push_back(k.clone());
        if self.recent.len() > RECENT_KERNELS {
            self.recent.pop_front();
        }
    }

    fn live_count(&self) -> usize {
        self.live.values().filter(|w| w.strong_count() > 0).count()
    }
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// How many compiled kernels exist in the process right now (held by executables or by
/// the cache's [`RECENT_KERNELS`]): what a long-running service watches to see that
/// kernels of dropped functions are freed.
///
/// ```
/// use kiln_ir::{DType, Graph, Kernel, Op, TensorType, UnaryOp};
/// let mut g = Graph::new("k");
/// let x = g.add_input(TensorType::new(DType::F32, &[3]));
/// let y = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
/// g.set_outputs(vec![y]);
/// let k = kiln_jit::compile(&Kernel { body: g.clone() }).unwrap();
/// assert!(kiln_jit::kernel::live_kernels() >= 1);
/// // While it is alive, the same body is the same compiled kernel.
/// assert!(std::sync::Arc::ptr_eq(&k, &kiln_jit::compile(&Kernel { body: g }).unwrap()));
/// ```
pub fn live_kernels() -> usize {
    cache().lock().map(|c| c.live_count()).unwrap_or(0)
}

/// Compiles a fused kernel, or returns the compilation of an identical one (same ops,
/// types, constants and wiring) if one is still alive: in use by an executable or among
/// the [`RECENT_KERNELS`] most recently used. With the on-disk cache on
/// ([`crate::disk_cache`]), a kernel compiled by an earlier process is loaded instead.
///
/// `Err(Error::Compile)` for a body outside the fused-kernel contract; the executor then
/// runs the kernel in the interpreter.
pub fn compile(kernel: &Kernel) -> Result<Arc<CompiledKernel>> {
    let key = match lookup(kernel)? {
        Found::Ready(k) => return Ok(k),
        Found::Missing(key) => key,
    };
    let (prog, generated) = through_disk(kernel, &key)?;
    link_all(std::iter::once(Ok(Unlinked { key, prog, generated }))).pop().expect("one kernel")
}

/// [`compile`] for the kernels of one executable. `for_each(n, f)` runs `f(0..n)` on the
/// thread pool: first for the cache keys and the kernels the compile cache already has,
/// then to generate (or load from disk) the code of each distinct missing body once (one
/// body at several places of a graph compiles once), which is then linked together into
/// one run of executable pages (`Code::load_all`).
pub(crate) fn compile_batch(
    kernels: &[&Kernel],
    for_each: impl Fn(usize, &(dyn Fn(usize) + Sync)),
) -> Vec<Result<Arc<CompiledKernel>>> {
    let looked_up = on_pool(kernels.len(), &for_each, |i| lookup(kernels[i]));
    let mut todo: Vec<(usize, String)> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut plan: Vec<Planned> = Vec::with_capacity(kernels.len());
    for (i, found) in looked_up.into_iter().enumerate() {
        plan.push(match found {
            Ok(Found::Ready(k)) => Planned::Done(Ok(k)),
            Ok(Found::Missing(key)) => Planned::Generate(*by_key.entry(key.clone()).or_insert_with(|| {
                todo.push((i, key));
                todo.len() - 1
            })),
            Err(e) => Planned::Done(Err(e)),
        });
    }
    let generated = on_pool(todo.len(), &for_each, |t| through_disk(kernels[todo[t].0], &todo[t].1));
    let linked = link_all(
        todo.into_iter()
            .zip(generated)
            .map(|((_, key), g)| g.map(|(prog, generated)| Unlinked { key, prog, generated })),
    );
    plan.into_iter()
        .map(|p| match p {
            Planned::Done(r) => r,
            Planned::Generate(t) => linked[t].clone(),
        })
        .collect()
}

/// What becomes of one kernel of a batch.
enum Planned {
    Done(Result<Arc<CompiledKernel>>),
    /// Its body is number `t` of those generated.
    Generate(usize),
}

/// `f(0..n)` run by `for_each`, the results in order (an `Err` for any index it skipped).
fn on_pool<T: Send>(
    n: usize,
    for_each: &impl Fn(usize, &(dyn Fn(usize) + Sync)),
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Vec<Result<T>> {
    let out: Vec<Mutex<Option<Result<T>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    for_each(n, &|i| *out[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(f(i)));
    out.into_iter()
        .map(|m| {
            let r = m.into_inner().unwrap_or_else(|e| e.into_inner());
            r.unwrap_or_else(|| Err(Error::Compile("kernel compilation did not run".into())))
        })
        .collect()
}

/// A kernel the compile cache has, or the key of one it lacks.
enum Found {
    Ready(Arc<CompiledKernel>),
    Missing(String),
}

fn lookup(kernel: &Kernel) -> Result<Found> {
    let key = cache_key(kernel)?;
    let found = cache().lock().map_err(|_| poisoned())?.get(&key);
    Ok(found.map_or(Found::Missing(key), Found::Ready))
}

/// A kernel's generated code, not yet in executable memory.
struct Unlinked {
    key: String,
    prog: lower::Program,
    generated: Generated,
}

/// Loads the kernels generated without error into one run of executable pages and enters
/// each in the compile cache (which returns an identical kernel another thread entered
/// meanwhile instead).
fn link_all(items: impl Iterator<Item = Result<Unlinked>>) -> Vec<Result<Arc<CompiledKernel>>> {
    let items: Vec<Result<Unlinked>> = items.collect();
    // An image that fails its checks fails alone, not the pages of the others.
    let checked = |u: &Unlinked| u.generated.image.check(u.prog.consts.len());
    let mut results: Vec<Result<Arc<CompiledKernel>>> = Vec::with_capacity(items.len());
    let mut good: Vec<(usize, Unlinked)> = Vec::new();
    for item in items {
        match item.and_then(|u| checked(&u).map(|()| u)) {
            Ok(u) => {
                good.push((results.len(), u));
                results.push(Err(Error::Compile("not linked".into())));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    let images: Vec<(&Image, &[Vec<u8>])> =
        good.iter().map(|(_, u)| (&u.generated.image, &u.prog.consts[..])).collect();
    let codes = Code::load_all(&images);
    drop(images);
    match codes {
        Ok(codes) => {
            for ((i, u), code) in good.into_iter().zip(codes) {
                let k = Arc::new(link(u.prog, u.generated, code));
                results[i] = cache().lock().map_err(|_| poisoned()).map(|mut c| c.insert(u.key, k));
            }
        }
        Err(e) => good.iter().for_each(|&(i, _)| results[i] = Err(e.clone())),
    }
    results
}

fn poisoned() -> Error {
    Error::Compile("kernel cache poisoned by a panic".into())
}

/// The kernel's code from the on-disk cache when it is on and holds a valid entry, else
/// generated (and written there). Dumps (`KILN_DUMP`) always compile, for the disassembly.
fn through_disk(kernel: &Kernel, key: &str) -> Result<(lower::Program, Generated)> {
    let start = Instant::now();
    let prog = lower::analyze(kernel)?;
    let dump = kiln_ir::config::dump_dir().is_some();
    let disk = if dump { None } else { disk_cache::entry(key) };
    if let Some((dir, key)) = &disk {
        if let Some((image, generator)) = disk_cache::load(dir, key, prog.consts.len()) {
            disk_cache::add_time(true, start.elapsed());
            return Ok((prog, Generated { image, disasm: None, generator }));
        }
    }
    let start = Instant::now();
    let generated = generate(&prog, dump)?;
    if let Some((dir, key)) = &disk {
        disk_cache::store(dir, key, &generated.image, generated.generator);
    }
    disk_cache::add_time(false, start.elapsed());
    Ok((prog, generated))
}

/// Compiles without looking at either cache (benchmarks of compile latency use this).
pub fn compile_uncached(kernel: &Kernel) -> Result<CompiledKernel> {
    let prog = lower::analyze(kernel)?;
    let generated = generate(&prog, kiln_ir::config::dump_dir().is_some())?;
    let code = Code::load(&generated.image, &prog.consts)?;
    Ok(link(prog, generated, code))
}

/// The x86 emitter's code for the program where it covers it (`asm`), else Cranelift's.
fn generate(prog: &lower::Program, dump: bool) -> Result<Generated> {
    if let Some(emitted) = crate::asm::compile(prog, dump) {
        let (image, listing, generator) = emitted?;
        return Ok(Generated { image, disasm: listing, generator });
    }
    let verify = VERIFY.load(Ordering::Relaxed);
    let isa = isa(verify, prog.avx512())?;
    // Cranelift reports some unsupported lowerings by panicking: contain it as an error.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| codegen(prog, isa, dump)));
    match built {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(Error::Compile(format!("cranelift: {msg}")))
        }
    }
}

/// The kernel of generated code loaded as `code` (linked to the program's constants).
fn link(prog: lower::Program, generated: Generated, code: Code) -> CompiledKernel {
    let generator = generated.generator;
    crate::perf_map::record(code.entry(), generated.image.bytes.len(), generator, &prog);
    // SAFETY: the code is a function with the KernelFn ABI (Cranelift's from
    // `lower::signature`, the emitter's from `asm/encode.rs`: four pointer-sized integer
    // parameters, no result, the host's C calling convention), starting at its first byte,
    // and lives as long as the CompiledKernel.
    let func = unsafe { std::mem::transmute::<*const u8, KernelFn>(code.entry()) };
    CompiledKernel {
        func,
        clif: OnceLock::new(),
        disasm: generated.disasm,
        generator,
        cost: lower::cost_per_element(&prog),
        _code: code,
        prog,
    }
}

fn host_sig(call_conv: CallConv, f32: bool) -> Signature {
    let t = if f32 { types::F32 } else { types::F64 };
    let mut s = Signature::new(call_conv);
    s.params.push(AbiParam::new(t));
    s.returns.push(AbiParam::new(t));
    s
}

/// What code generation produces: the relocatable code and, for dumps, its disassembly.
struct Generated {
    image: Image,
    disasm: Option<String>,
    /// [`CompiledKernel::generator`].
    generator: &'static str,
}

fn codegen(prog: &lower::Program, isa: OwnedTargetIsa, dump: bool) -> Result<Generated> {
    let (func, syms) = function(prog, &isa)?;
    let mut ctx = Context::for_function(func);
    ctx.set_disasm(dump);
    ctx.compile(&*isa, &mut ControlPlane::default())
        .map_err(|e| Error::Compile(format!("{:?}\n{}", e.inner, e.func.display())))?;
    let compiled = ctx.compiled_code().expect("compiled just above");
    let disasm = compiled.vcode.clone();
    let image = Image::new(compiled.buffer.data(), compiled.buffer.relocs(), &ctx.func.params, &syms)?;
    Ok(Generated { image, disasm, generator: CRANELIFT })
}

/// The program lowered to one Cranelift function, and the symbols it refers to.
fn function(prog: &lower::Program, isa: &OwnedTargetIsa) -> Result<(Function, Vec<Sym>)> {
    let call_conv = isa.default_call_conv();
    let mut func = Function::with_name_signature(UserFuncName::user(0, 0), lower::signature(call_conv));
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry);
    let args = [p[0], p[1], p[2], p[3]];
    let mut syms = Symbols::default();
    let [sinf, cosf, sin, cos] = code::scalar_trig();
    let sig32 = b.import_signature(host_sig(call_conv, true));
    let sig64 = b.import_signature(host_sig(call_conv, false));
    let host = HostMath {
        sinf: syms.host_func(&mut b, sinf, sig32),
        cosf: syms.host_func(&mut b, cosf, sig32),
        sin: syms.host_func(&mut b, sin, sig64),
        cos: syms.host_func(&mut b, cos, sig64),
    };
    let mut fx = Fx { b: &mut b, fma: has_flag(isa, "has_fma"), host, syms };
    lower::build(&mut fx, prog, args)?;
    let syms = fx.take_symbols();
    b.seal_all_blocks();
    b.finalize(isa.frontend_config());
    Ok((func, syms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_avx512_path_lets_cranelift_use_avx512() {
        let host_has = std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl");
        for verify in [false, true] {
            let (with, without) = (isa(verify, true).unwrap(), isa(verify, false).unwrap());
            for name in AVX512_FLAGS {
                assert!(!has_flag(&without, name), "{name} on without AVX-512");
            }
            assert_eq!(has_flag(&with, "has_avx512f"), host_has);
            assert_eq!(has_flag(&with, "has_avx512vl"), host_has);
            // The rest of the host's flags stay as they are.
            assert_eq!(has_flag(&with, "has_avx2"), has_flag(&without, "has_avx2"));
            assert_eq!(has_flag(&with, "has_fma"), has_flag(&without, "has_fma"));
        }
    }

    /// `x * c` on `n` f32s, a body no other test compiles (so the cache misses).
    fn scale(n: usize, c: f32) -> Kernel {
        use kiln_ir::{Array, BinaryOp, DType, Graph, Op, TensorType};
        let mut g = Graph::new("scale");
        let x = g.add_input(TensorType::new(DType::F32, &[n]));
        let k = g.add_const(Array::scalar(c));
        let y = g.add(Op::Binary(BinaryOp::Mul), &[x, k]).unwrap();
        g.set_outputs(vec![y]);
        Kernel { body: g }
    }

    fn run(k: &CompiledKernel, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; x.len()];
        let ptrs = [x.as_ptr() as *const u8];
        // SAFETY: one operand of x.len() f32s, an output of as many, the whole range.
        unsafe { (k.func())(ptrs.as_ptr(), out.as_mut_ptr() as *mut u8, 0, x.len()) };
        out
    }

    /// A batch shares one run of pages, a cache line apart, which outlives any of its
    /// kernels being dropped; the same body twice in a batch is one kernel.
    #[test]
    fn a_batch_is_linked_into_shared_pages() {
        let bodies = [scale(37, 3.0), scale(37, 5.0), scale(37, 7.0), scale(37, 3.0)];
        let refs: Vec<&Kernel> = bodies.iter().collect();
        let mut ks: Vec<Arc<CompiledKernel>> =
            compile_batch(&refs, |n, f| (0..n).for_each(f)).into_iter().collect::<Result<_>>().unwrap();
        assert!(Arc::ptr_eq(&ks[0], &ks[3]), "one body, one kernel");
        let entries: Vec<usize> = ks[..3].iter().map(|k| k.func() as usize).collect();
        let lowest = *entries.iter().min().unwrap();
        for &e in &entries {
            assert_eq!((e - lowest) % 64, 0, "kernels start a cache line apart");
            // Three small kernels fit one page; mapped one by one they would be pages apart.
            assert!(e - lowest < 4096, "one run of pages: {entries:x?}");
        }
        let x: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let survivor = ks.remove(1);
        drop(ks);
        assert_eq!(run(&survivor, &x), x.iter().map(|v| v * 5.0).collect::<Vec<_>>());
    }
}
