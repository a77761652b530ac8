//! Full-width x86 code for elementwise f32 kernels: where Cranelift's x86 backend stops at
//! 128-bit vectors, this writes the kernel's loop itself, 16 lanes a step with AVX-512 or 8
//! with AVX2 (the math path decides), every op of the body (transcendentals included) in
//! registers from one load of each operand to one store.
//!
//! The pipeline is small and one file a stage: [`vir`] builds the loop body from the
//! analyzed [`Program`] (through the same [`crate::math::Ops`] algorithms as the other
//! paths, so the bits agree), [`regalloc`] gives each value a register, [`encode`] writes
//! the machine code (with iced-x86's assembler) into the same relocatable [`Image`] that
//! Cranelift's code uses. A kernel outside what it covers (see [`vir::Vir::build`]), or
//! needing more registers than the ISA has, is compiled by Cranelift as before.

mod encode;
mod regalloc;
mod vir;

use std::sync::atomic::{AtomicU8, Ordering};

use kiln_ir::Result;

use crate::code::Image;
use crate::lower::Program;
use crate::math::wide::MathPath;

/// 0: not decided yet (on unless `KILN_ASM=off`); 1 off; 2 on.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Turns the x86 emitter on or off for kernels compiled from now on (on by default;
/// `KILN_ASM=off` starts with it off). Off, every kernel is Cranelift's, as on a path
/// without it (`KILN_MATH=cranelift`). Results are the same bits either way.
///
/// ```
/// kiln_jit::set_asm(false);
/// assert!(!kiln_jit::asm_on());
/// kiln_jit::set_asm(true);
/// ```
pub fn set_asm(on: bool) {
    STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// Whether the x86 emitter compiles the kernels it covers ([`set_asm`]).
pub fn asm_on() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = !kiln_ir::config::asm_off();
            set_asm(on);
            on
        }
        s => s == 2,
    }
}

/// A kernel's loop bodies: one vector a step, and (when registers allow) several.
struct Plan {
    one: (vir::Vir, Vec<usize>),
    unrolled: Option<(vir::Vir, Vec<usize>)>,
}

/// The loop bodies and their registers, when the emitter compiles `prog`.
fn plan(prog: &Program) -> Option<Plan> {
    let avx512 = match prog.path {
        MathPath::Cranelift => return None,
        MathPath::Avx512 if !std::is_x86_feature_detected!("bmi2") => return None,
        MathPath::Avx512 => true,
        MathPath::Avx2 => false,
    };
    if !prog.asm || prog.leaves.len() > encode::MAX_LEAVES {
        return None;
    }
    let budget = encode::budget(avx512);
    let vir = vir::Vir::build(prog, avx512)?;
    let regs = regalloc::allocate(&vir, &budget)?;
    // The widest unrolling whose registers fit.
    let unrolled = UNROLL.iter().find_map(|&u| {
        let v = vir.unroll(u);
        regalloc::allocate(&v, &budget).map(|r| (v, r))
    });
    Some(Plan { one: (vir, regs), unrolled })
}

fn body((vir, regs): &(vir::Vir, Vec<usize>)) -> encode::Body<'_> {
    encode::Body { vir, regs }
}

/// Vectors a step of the unrolled body computes, the first whose registers fit.
const UNROLL: [usize; 2] = [4, 2];

/// Which code generator compiles `prog`: `"asm-avx512"`, `"asm-avx2"` or `"cranelift"`.
pub(crate) fn generator(prog: &Program) -> &'static str {
    match plan(prog) {
        Some(p) if p.one.0.avx512 => "asm-avx512",
        Some(_) => "asm-avx2",
        None => "cranelift",
    }
}

/// The emitter's code for `prog` and its listing (the body with its registers), or `None`
/// when Cranelift compiles it.
pub(crate) fn compile(prog: &Program) -> Option<Result<(Image, String)>> {
    let p = plan(prog)?;
    let image = encode::image(body(&p.one), p.unrolled.as_ref().map(body), prog);
    let (vir, regs) = p.unrolled.as_ref().unwrap_or(&p.one);
    Some(image.map(|image| (image, vir.listing(regs))))
}
