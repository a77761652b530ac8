//! A kernel's machine code as a relocatable image, and its loading into executable memory.
//!
//! The generated code never holds a process address as an immediate: every address it
//! needs (a constant operand, a host routine) is a Cranelift symbol, which leaves a
//! relocation in the compiled code. [`Image`] keeps the bytes (identical in every process
//! for the same kernel, compiler and CPU) with those relocations named by what they point
//! to, and [`Code::load`] patches them with this process's addresses, as a dynamic linker
//! does. A freshly compiled kernel and one read from the disk cache (`disk_cache.rs`) go
//! through the same loader, so the cached path runs on every compile.

use std::sync::OnceLock;

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir::function::FunctionParameters;
use cranelift_codegen::ir::immediates::Imm64;
use cranelift_codegen::ir::{
    self, types, ExtFuncData, ExternalName, GlobalValueData, InstBuilder, LibCall, SigRef, UserExternalName, Value,
};
use cranelift_codegen::{FinalizedMachReloc, FinalizedRelocTarget};
use cranelift_frontend::FunctionBuilder;
use kiln_ir::{Error, Result, UnaryOp};

use crate::math::Fx;

/// An address the code needs that differs between processes: emitted as a symbol and
/// patched in when the code is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sym {
    /// The kernel's constant operand number `k` (`Program::consts`).
    Const(usize),
    /// A host routine at this address (named in [`host_symbols`]).
    Host(usize),
}

/// The symbols one kernel function refers to; relocation `User(0, i)` names `syms[i]`.
#[derive(Default)]
pub(crate) struct Symbols {
    syms: Vec<Sym>,
    values: Vec<(Sym, ir::GlobalValue)>,
}

impl Symbols {
    fn name(&mut self, func: &mut ir::Function, s: Sym) -> ExternalName {
        let i = match self.syms.iter().position(|&x| x == s) {
            Some(i) => i,
            None => {
                self.syms.push(s);
                self.syms.len() - 1
            }
        };
        ExternalName::User(func.declare_imported_user_function(UserExternalName::new(0, i as u32)))
    }

    /// An imported host function at `addr` with signature `sig`, for direct `call`s.
    pub fn host_func(&mut self, b: &mut FunctionBuilder, addr: usize, sig: SigRef) -> ir::FuncRef {
        let name = self.name(b.func, Sym::Host(addr));
        b.import_function(ExtFuncData { name, signature: sig, colocated: false, patchable: false })
    }
}

impl Fx<'_, '_> {
    /// The address `s` as an `i64` value (one 64-bit immediate, patched at load).
    pub fn sym_addr(&mut self, s: Sym) -> Value {
        let gv = match self.syms.values.iter().find(|(x, _)| *x == s) {
            Some(&(_, gv)) => gv,
            None => {
                let name = self.syms.name(self.b.func, s);
                let data = GlobalValueData::Symbol { name, offset: Imm64::new(0), colocated: false, tls: false };
                let gv = self.b.create_global_value(data);
                self.syms.values.push((s, gv));
                gv
            }
        };
        self.b.ins().symbol_value(types::I64, gv)
    }

    /// The symbols referred to so far (call after lowering).
    pub fn take_symbols(&mut self) -> Vec<Sym> {
        std::mem::take(&mut self.syms.syms)
    }
}

/// What a relocation points to, in a form valid in any process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The kernel's constant operand number `k`.
    Const(usize),
    /// A host routine, by its name in [`host_symbols`].
    Host(&'static str),
}

/// One 64-bit absolute address to write at `offset`: the target's address plus `addend`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fixup {
    pub offset: u32,
    pub target: Target,
    pub addend: i64,
}

/// A kernel's code bytes and the addresses to patch into them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Image {
    pub bytes: Vec<u8>,
    pub fixups: Vec<Fixup>,
}

impl Image {
    /// The image of a compiled function whose symbols are `syms`. `Err` for a relocation
    /// the loader does not handle (it would be a code-generator change: the ISA is set up
    /// so that every reference is a 64-bit absolute one).
    pub fn new(
        bytes: &[u8],
        relocs: &[FinalizedMachReloc],
        params: &FunctionParameters,
        syms: &[Sym],
    ) -> Result<Image> {
        let mut fixups = Vec::with_capacity(relocs.len());
        for r in relocs {
            if r.kind != Reloc::Abs8 {
                return Err(Error::Compile(format!("relocation {:?} unsupported by the kernel loader", r.kind)));
            }
            let target = match &r.target {
                FinalizedRelocTarget::ExternalName(ExternalName::User(u)) => {
                    let name = &params.user_named_funcs()[*u];
                    match syms.get(name.index as usize) {
                        Some(Sym::Const(k)) if name.namespace == 0 => Target::Const(*k),
                        Some(Sym::Host(addr)) if name.namespace == 0 => Target::Host(host_name(*addr)?),
                        _ => return Err(Error::Compile(format!("relocation to unknown symbol {name}"))),
                    }
                }
                FinalizedRelocTarget::ExternalName(ExternalName::LibCall(lc)) => Target::Host(libcall_name(*lc)?),
                other => {
                    return Err(Error::Compile(format!("relocation to {other:?} unsupported by the kernel loader")))
                }
            };
            fixups.push(Fixup { offset: r.offset, target, addend: r.addend });
        }
        let image = Image { bytes: bytes.to_vec(), fixups };
        image.check(usize::MAX)?;
        Ok(image)
    }

    /// Every fixup inside the code and to a known target (`consts` constant operands).
    pub fn check(&self, consts: usize) -> Result<()> {
        for f in &self.fixups {
            let inside = (f.offset as usize).checked_add(8).is_some_and(|end| end <= self.bytes.len());
            let known = match f.target {
                Target::Const(k) => k < consts,
                Target::Host(name) => host_addr(name).is_some(),
            };
            if !inside || !known {
                return Err(Error::Compile(format!("bad relocation {f:?} in a {}-byte kernel", self.bytes.len())));
            }
        }
        if self.bytes.is_empty() {
            return Err(Error::Compile("empty kernel code".into()));
        }
        Ok(())
    }
}

/// Pages of executable memory holding one or more linked kernels; unmapped on drop.
struct Pages(region::Allocation);

// SAFETY: the mapping is immutable (read + execute) after `Code::load_all`, and only its
// address is shared; unmapping happens once, in drop.
unsafe impl Send for Pages {}
// SAFETY: as above: no interior mutation after loading.
unsafe impl Sync for Pages {}

/// One linked kernel: its place in pages it may share with the kernels loaded with it,
/// which stay mapped while any of them is alive.
pub(crate) struct Code {
    pages: std::sync::Arc<Pages>,
    offset: usize,
}

/// Where each kernel of a batch starts: a cache line apart.
const KERNEL_ALIGN: usize = 64;

impl Code {
    /// [`Code::load_all`] of one image.
    pub fn load(image: &Image, consts: &[Vec<u8>]) -> Result<Code> {
        let mut codes = Code::load_all(&[(image, consts)])?;
        Ok(codes.pop().expect("one image, one code"))
    }

    /// Copies each image into one run of fresh pages, patches every fixup with this
    /// process's address (an image's `consts` are its kernel's constant operands, which must
    /// outlive its code's use), and makes the pages executable: one `mmap` and one
    /// `mprotect` for the batch, where each costs a TLB shootdown on the other cores when
    /// threads run. The entry point of each is its first byte.
    pub fn load_all(images: &[(&Image, &[Vec<u8>])]) -> Result<Vec<Code>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let mut offsets = Vec::with_capacity(images.len());
        let mut total = 0usize;
        for (image, consts) in images {
            image.check(consts.len())?;
            let offset = total.next_multiple_of(KERNEL_ALIGN);
            offsets.push(offset);
            total = offset + image.bytes.len();
        }
        let err = |e: region::Error| Error::Compile(format!("kernel memory: {e}"));
        let mut mem = region::alloc(total, region::Protection::READ_WRITE).map_err(err)?;
        let base = mem.as_mut_ptr::<u8>();
        for ((image, consts), &offset) in images.iter().zip(&offsets) {
            // SAFETY: the allocation is at least `total` bytes long (rounded up to pages),
            // writable, nothing else refers to it yet, and `offset + bytes.len() <= total`.
            let at = unsafe { base.add(offset) };
            // SAFETY: as above.
            unsafe { std::ptr::copy_nonoverlapping(image.bytes.as_ptr(), at, image.bytes.len()) };
            for f in &image.fixups {
                let addr = match f.target {
                    Target::Const(k) => consts[k].as_ptr() as usize,
                    Target::Host(name) => host_addr(name).expect("checked above"),
                };
                let value = (addr as u64).wrapping_add(f.addend as u64);
                // SAFETY: `check` put the fixup's `offset + 8` within its image's bytes, which
                // were copied to `at`; the write may be unaligned.
                unsafe { std::ptr::write_unaligned(at.add(f.offset as usize) as *mut u64, value) };
            }
        }
        // SAFETY: the pages are ours; after this no one writes them again. x86-64 keeps
        // instruction fetch coherent with these stores, so no cache flush is needed.
        unsafe { region::protect(base as *const u8, total, region::Protection::READ_EXECUTE) }.map_err(err)?;
        let pages = std::sync::Arc::new(Pages(mem));
        Ok(offsets.into_iter().map(|offset| Code { pages: pages.clone(), offset }).collect())
    }

    /// The address of the first instruction.
    pub fn entry(&self) -> *const u8 {
        self.pages.0.as_ptr::<u8>().wrapping_add(self.offset)
    }
}

extern "C" fn host_sinf(x: f32) -> f32 {
    x.sin()
}
extern "C" fn host_cosf(x: f32) -> f32 {
    x.cos()
}
extern "C" fn host_sin(x: f64) -> f64 {
    x.sin()
}
extern "C" fn host_cos(x: f64) -> f64 {
    x.cos()
}

/// The scalar host routines kernels call: `sin`/`cos` for the trig slow paths.
pub(crate) fn scalar_trig() -> [usize; 4] {
    [
        host_sinf as *const () as usize,
        host_cosf as *const () as usize,
        host_sin as *const () as usize,
        host_cos as *const () as usize,
    ]
}

// Libcalls Cranelift emits on x86-64 CPUs without SSE4.1 (rounding) or FMA.
extern "C" fn lib_ceilf(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn lib_ceil(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn lib_floorf(x: f32) -> f32 {
    x.floor()
}
extern "C" fn lib_floor(x: f64) -> f64 {
    x.floor()
}
extern "C" fn lib_truncf(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn lib_trunc(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn lib_nearbyintf(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn lib_nearbyint(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn lib_fmaf(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}
extern "C" fn lib_fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

fn libcall_name(lc: LibCall) -> Result<&'static str> {
    Ok(match lc {
        LibCall::CeilF32 => "ceilf",
        LibCall::CeilF64 => "ceil",
        LibCall::FloorF32 => "floorf",
        LibCall::FloorF64 => "floor",
        LibCall::TruncF32 => "truncf",
        LibCall::TruncF64 => "trunc",
        LibCall::NearestF32 => "nearbyintf",
        LibCall::NearestF64 => "nearbyint",
        LibCall::FmaF32 => "fmaf",
        LibCall::FmaF64 => "fma",
        other => return Err(Error::Compile(format!("libcall {other:?} unsupported by the kernel loader"))),
    })
}

/// Every host routine kernels may call, by a name stable across processes (what disk-cache
/// entries store): the trig slow paths, the i128 mean, the tile routines and the libcalls.
pub(crate) fn host_symbols() -> &'static [(&'static str, usize)] {
    static TABLE: OnceLock<Vec<(&'static str, usize)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let [sinf, cosf, sin, cos] = scalar_trig();
        let mut t: Vec<(&'static str, usize)> = vec![
            ("sinf", sinf),
            ("cosf", cosf),
            ("sin", sin),
            ("cos", cos),
            ("mean_i128", crate::lower::mean_i128_addr()),
            ("ceilf", lib_ceilf as *const () as usize),
            ("ceil", lib_ceil as *const () as usize),
            ("floorf", lib_floorf as *const () as usize),
            ("floor", lib_floor as *const () as usize),
            ("truncf", lib_truncf as *const () as usize),
            ("trunc", lib_trunc as *const () as usize),
            ("nearbyintf", lib_nearbyintf as *const () as usize),
            ("nearbyint", lib_nearbyint as *const () as usize),
            ("fmaf", lib_fmaf as *const () as usize),
            ("fma", lib_fma as *const () as usize),
        ];
        for op in UnaryOp::ALL {
            for (dtype, tag) in [(kiln_ir::DType::F32, "f32"), (kiln_ir::DType::F64, "f64")] {
                if let Some(f) = crate::math::wide::routine_any_path(op, dtype) {
                    // Leaked once per process: a few dozen short names.
                    let name: &'static str = Box::leak(format!("tile.{}.{tag}", op.name()).into_boxed_str());
                    t.push((name, f as usize));
                }
            }
        }
        t
    })
}

fn host_name(addr: usize) -> Result<&'static str> {
    host_symbols()
        .iter()
        .find(|&&(_, a)| a == addr)
        .map(|&(n, _)| n)
        .ok_or_else(|| Error::Compile(format!("host routine at {addr:#x} missing from the symbol table")))
}

fn host_addr(name: &str) -> Option<usize> {
    host_symbols().iter().find(|&&(n, _)| n == name).map(|&(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routine_a_kernel_may_call_has_a_unique_name() {
        let mut addrs: Vec<usize> = scalar_trig().to_vec();
        addrs.push(crate::lower::mean_i128_addr());
        for op in UnaryOp::ALL {
            for d in [kiln_ir::DType::F32, kiln_ir::DType::F64] {
                addrs.extend(crate::math::wide::routine_any_path(op, d).map(|f| f as usize));
            }
        }
        for lc in [LibCall::CeilF32, LibCall::FloorF64, LibCall::TruncF32, LibCall::NearestF64, LibCall::FmaF32] {
            addrs.push(host_addr(libcall_name(lc).unwrap()).unwrap());
        }
        assert!(addrs.len() > 20);
        for a in addrs {
            assert_eq!(host_addr(host_name(a).unwrap()), Some(a));
        }
        let mut names: Vec<&str> = host_symbols().iter().map(|s| s.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), host_symbols().len(), "names are unique");
        assert!(libcall_name(LibCall::Probestack).is_err(), "a libcall without a routine is refused");
    }

    #[test]
    fn fixups_outside_the_code_or_to_unknown_targets_are_refused() {
        let ok =
            Image { bytes: vec![0x90; 16], fixups: vec![Fixup { offset: 8, target: Target::Const(0), addend: 0 }] };
        assert!(ok.check(1).is_ok());
        assert!(ok.check(0).is_err(), "constant 0 of a kernel without constants");
        let past =
            Image { bytes: vec![0x90; 16], fixups: vec![Fixup { offset: 9, target: Target::Host("sinf"), addend: 0 }] };
        assert!(past.check(0).is_err(), "8 bytes at 9 overrun 16");
        let unknown = Image {
            bytes: vec![0x90; 16],
            fixups: vec![Fixup { offset: 0, target: Target::Host("system"), addend: 0 }],
        };
        assert!(unknown.check(0).is_err());
        assert!(Image { bytes: vec![], fixups: vec![] }.check(0).is_err());
    }
}
