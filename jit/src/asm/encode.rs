//! Machine code for a [`Vir`] body: the kernel ABI's loop over `begin..end`, row by row of
//! the [`Layout`], within a row a full vector (or an unrolled step) at a time and the row's
//! remainder once under a lane mask; or, for a [`RowReduce`], one reduced row per output;
//! or, for a [`ColReduce`], the columns a step at a time, each reduced down every row; the
//! constant pool ahead of the code, jumped over at the entry. A reduction keeps its
//! accumulators above its body's registers.
//!
//! Registers: `rdi` inputs (then scratch), `rsi` the output row, `rdx` the column, `rcx`
//! the row's end column, `rbp` the elements left after this row (several rows only), `rax`
//! the first row (then scratch); in a reduction `rax` the output and `rbp` the end. Leaf row
//! pointers in `r8`–`r11`, then the callee-saved `rbx`, `r12`–`r15` (pushed, as `rbp` is).
//! Vector values live in the registers `regalloc` chose; the tail mask in `k1` (AVX-512) or
//! `ymm15` (AVX2).

use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;
use kiln_ir::{Error, ReduceOp, Result};

use super::regalloc::Budget;
use super::vir::{Arg, Bin, FCmp, ICmp, Inst, Shift, Vir};
use super::{ColReduce, Fold, Layout, Nest, RowReduce};
use crate::code::{Fixup, Image, Target};
use crate::lower::{Program, Src};

const ZMM: [AsmRegisterZmm; 32] = [
    zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17,
    zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27, zmm28, zmm29, zmm30, zmm31,
];
const XMM: [AsmRegisterXmm; 16] =
    [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14, xmm15];
const YMM: [AsmRegisterYmm; 16] =
    [ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14, ymm15];
/// Mask values use `k2`–`k7`; `k1` is the tail mask.
const K: [AsmRegisterK; 6] = [k2, k3, k4, k5, k6, k7];
const LEAF_GPRS: [AsmRegister64; 9] = [r8, r9, r10, r11, rbx, r12, r13, r14, r15];
/// The callee-saved registers among [`LEAF_GPRS`] (saved when a kernel uses them).
const SAVED_FROM: usize = 4;

/// `elements` f32s in bytes, as an immediate (`asm::fits` checked the range).
fn bytes(elements: usize) -> i32 {
    (elements * 4) as i32
}

/// What the assembler's calls return.
type Asm<T> = std::result::Result<T, IcedError>;

/// The registers a body may use on this ISA.
pub(crate) fn budget(avx512: bool) -> Budget {
    if avx512 {
        Budget { vectors: 32, masks: K.len() }
    } else {
        Budget { vectors: 15, masks: 0 }
    }
}

/// A reduction's registers: the vector accumulators (AVX-512: one zmm; AVX2: two ymm, 8
/// lanes each) and the scalar accumulator, kept out of its body's allocation; two
/// temporaries, and on AVX2 two for the combine's masks (AVX-512 uses `k2`, `k3`).
#[derive(Clone, Copy)]
struct AccRegs {
    acc: [usize; 2],
    scalar: usize,
    t: usize,
    v: usize,
    masks: [usize; 2],
}

const ACC_AVX512: AccRegs = AccRegs { acc: [28, 28], scalar: 29, t: 30, v: 31, masks: [0, 0] };

/// AVX2's accumulators: ymm12–14 (ymm15 holds the tail mask).
const AVX2_ACC: [usize; 3] = [12, 13, 14];

/// AVX2's reduction registers for bodies whose results are in `roots`: the temporaries are
/// the lowest body registers holding no result, since the temporaries are written only
/// once a body has run, when its results are all it has live.
fn avx2_acc(roots: &[usize]) -> AccRegs {
    let mut free = (0..AVX2_ACC[0]).filter(|r| !roots.contains(r));
    let mut next = || free.next().expect("a reduction's bodies leave registers free");
    AccRegs { acc: [AVX2_ACC[0], AVX2_ACC[1]], scalar: AVX2_ACC[2], t: next(), v: next(), masks: [next(), next()] }
}

/// The registers a reduction's body may use: those below its accumulators.
pub(crate) fn reduce_budget(avx512: bool) -> Budget {
    if avx512 {
        Budget { vectors: ACC_AVX512.acc[0], masks: K.len() }
    } else {
        Budget { vectors: AVX2_ACC[0], masks: 0 }
    }
}

/// A column reduction's registers for a step of `copies` vectors: one accumulator a copy
/// (the highest registers down), and on AVX2 the combine's two mask registers.
fn column_accs(avx512: bool, copies: usize) -> (Vec<usize>, [usize; 2]) {
    let top = if avx512 { 31 } else { 12 };
    ((0..copies).map(|j| top - j).collect(), [13, 14])
}

/// The registers a column reduction's body of `copies` vectors may use: those below its
/// accumulators.
pub(crate) fn column_budget(avx512: bool, copies: usize) -> Budget {
    let (accs, _) = column_accs(avx512, copies);
    Budget { vectors: accs[copies - 1], masks: if avx512 { K.len() } else { 0 } }
}

/// The most leaves a kernel may read (one base register each).
pub(crate) const MAX_LEAVES: usize = LEAF_GPRS.len();

/// `zmm` with write mask `K[m]`.
fn masked(r: AsmRegisterZmm, m: usize) -> AsmRegisterZmm {
    match m {
        0 => r.k2(),
        1 => r.k3(),
        2 => r.k4(),
        3 => r.k5(),
        4 => r.k6(),
        _ => r.k7(),
    }
}

/// Where a counted loop's columns end: at `rcx` (an elementwise row's end) or at a
/// reduction's fixed row length.
#[derive(Clone, Copy)]
enum End {
    Rcx,
    Len(i32),
}

/// A resolved operand: a register number or a pool constant.
#[derive(Clone, Copy)]
enum S {
    R(usize),
    K(usize),
}

/// `$m d, x, y` at the ISA's width (`$z` the AVX-512 mnemonic, `$y` the AVX2 one), `y` a
/// register or a pool constant in memory.
macro_rules! v3 {
    ($e:ident, $z:ident, $y:ident, $d:expr, $x:expr, $src:expr) => {{
        let (d, x) = ($d, $x);
        match ($e.z, $src) {
            (true, S::R(y)) => $e.a.$z(ZMM[d], ZMM[x], ZMM[y]),
            (true, S::K(k)) => $e.a.$z(ZMM[d], ZMM[x], zmmword_ptr($e.pool[k])),
            (false, S::R(y)) => $e.a.$y(YMM[d], YMM[x], YMM[y]),
            (false, S::K(k)) => $e.a.$y(YMM[d], YMM[x], ymmword_ptr($e.pool[k])),
        }
    }};
}

/// A loop body and its registers.
#[derive(Clone, Copy)]
pub(crate) struct Body<'v> {
    pub vir: &'v Vir,
    pub regs: &'v [usize],
}

struct Enc<'v> {
    a: CodeAssembler,
    /// AVX-512 (else AVX2).
    z: bool,
    /// The body being written.
    vir: &'v Vir,
    regs: &'v [usize],
    pool: Vec<CodeLabel>,
    /// Lane numbers 0, 1, …: the AVX2 tail mask compares against them.
    iota: CodeLabel,
    /// Each constant leaf's number and the label of its address slot.
    slots: Vec<(usize, CodeLabel)>,
}

impl<'v> Enc<'v> {
    fn lanes(&self) -> i32 {
        if self.z {
            16
        } else {
            8
        }
    }

    /// The columns one step of `body` computes.
    fn columns(&self, body: Body) -> i32 {
        self.lanes() * body.vir.roots.len() as i32
    }

    fn arg(&self, a: Arg) -> S {
        match a {
            Arg::V(v) => S::R(self.regs[v]),
            Arg::K(k) => S::K(k),
        }
    }

    fn mov(&mut self, d: usize, s: usize) -> Asm<()> {
        if d == s {
            return Ok(());
        }
        if self.z {
            self.a.vmovaps(ZMM[d], ZMM[s])
        } else {
            self.a.vmovaps(YMM[d], YMM[s])
        }
    }

    /// Register `d` set to pool constant `k`.
    fn load_const(&mut self, d: usize, k: usize) -> Asm<()> {
        let l = self.pool[k];
        if self.z {
            self.a.vmovups(ZMM[d], zmmword_ptr(l))
        } else {
            self.a.vmovups(YMM[d], ymmword_ptr(l))
        }
    }

    /// Vector `u` from element `rdx` of the buffer at `base`.
    fn at(&self, base: AsmRegister64, u: usize) -> AsmMemoryOperand {
        ptr(base + rdx * 4 + (u as i32) * self.lanes() * 4)
    }

    fn inst(&mut self, i: usize, tail: bool) -> Asm<()> {
        let d = self.regs[i];
        let r = |v: usize| self.regs[v];
        match self.vir.insts[i] {
            Inst::Load(l, u) => {
                let m = self.at(LEAF_GPRS[l], u);
                match (self.z, tail) {
                    (true, false) => self.a.vmovups(ZMM[d], zmmword_ptr(m)),
                    (true, true) => self.a.vmovups(ZMM[d].k1().z(), zmmword_ptr(m)),
                    (false, false) => self.a.vmovups(YMM[d], ymmword_ptr(m)),
                    (false, true) => self.a.vmaskmovps(YMM[d], ymm15, ymmword_ptr(m)),
                }
            }
            Inst::Splat(l) => {
                let m = dword_ptr(LEAF_GPRS[l]);
                if self.z {
                    self.a.vbroadcastss(ZMM[d], m)
                } else {
                    self.a.vbroadcastss(YMM[d], m)
                }
            }
            Inst::Mat(k) => self.load_const(d, k),
            Inst::Bin(op, x, y) => {
                let (x, y) = (r(x), self.arg(y));
                match op {
                    Bin::FAdd => v3!(self, vaddps, vaddps, d, x, y),
                    Bin::FSub => v3!(self, vsubps, vsubps, d, x, y),
                    Bin::FMul => v3!(self, vmulps, vmulps, d, x, y),
                    Bin::FDiv => v3!(self, vdivps, vdivps, d, x, y),
                    Bin::IAdd => v3!(self, vpaddd, vpaddd, d, x, y),
                    Bin::ISub => v3!(self, vpsubd, vpsubd, d, x, y),
                    Bin::And => v3!(self, vpandd, vpand, d, x, y),
                    Bin::Xor => v3!(self, vpxord, vpxor, d, x, y),
                }
            }
            Inst::Shift(op, x, n) => {
                let (x, n) = (r(x), n as i32);
                match (op, self.z) {
                    (Shift::Left, true) => self.a.vpslld(ZMM[d], ZMM[x], n),
                    (Shift::Left, false) => self.a.vpslld(YMM[d], YMM[x], n),
                    (Shift::RightArith, true) => self.a.vpsrad(ZMM[d], ZMM[x], n),
                    (Shift::RightArith, false) => self.a.vpsrad(YMM[d], YMM[x], n),
                    (Shift::Right, true) => self.a.vpsrld(ZMM[d], ZMM[x], n),
                    (Shift::Right, false) => self.a.vpsrld(YMM[d], YMM[x], n),
                }
            }
            Inst::Sqrt(x) => {
                if self.z {
                    self.a.vsqrtps(ZMM[d], ZMM[r(x)])
                } else {
                    self.a.vsqrtps(YMM[d], YMM[r(x)])
                }
            }
            Inst::Fma(a, b, c) => self.fma(d, self.arg(a), self.arg(b), self.arg(c), false),
            Inst::Fnma(a, b, c) => self.fma(d, self.arg(a), self.arg(b), self.arg(c), true),
            Inst::Max(x, y) => v3!(self, vmaxps, vmaxps, d, r(x), self.arg(y)),
            Inst::Min(x, y) => v3!(self, vminps, vminps, d, r(x), self.arg(y)),
            Inst::Cmp(p, x, y) => {
                let (x, y, imm) = (r(x), self.arg(y), p as i32);
                match (self.z, y) {
                    (true, S::R(y)) => self.a.vcmpps(K[d], ZMM[x], ZMM[y], imm),
                    (true, S::K(k)) => self.a.vcmpps(K[d], ZMM[x], zmmword_ptr(self.pool[k]), imm),
                    (false, S::R(y)) => self.a.vcmpps(YMM[d], YMM[x], YMM[y], imm),
                    (false, S::K(k)) => self.a.vcmpps(YMM[d], YMM[x], ymmword_ptr(self.pool[k]), imm),
                }
            }
            Inst::ICmp(p, x, y) => {
                let (x, y) = (r(x), self.arg(y));
                // vpcmpd predicates: 0 equal, 6 signed greater ("not less or equal").
                let imm = if p == ICmp::Eq { 0 } else { 6 };
                match (self.z, y, p) {
                    (true, S::R(y), _) => self.a.vpcmpd(K[d], ZMM[x], ZMM[y], imm),
                    (true, S::K(k), _) => self.a.vpcmpd(K[d], ZMM[x], zmmword_ptr(self.pool[k]), imm),
                    (false, S::R(y), ICmp::Eq) => self.a.vpcmpeqd(YMM[d], YMM[x], YMM[y]),
                    (false, S::K(k), ICmp::Eq) => self.a.vpcmpeqd(YMM[d], YMM[x], ymmword_ptr(self.pool[k])),
                    (false, S::R(y), ICmp::Gt) => self.a.vpcmpgtd(YMM[d], YMM[x], YMM[y]),
                    (false, S::K(k), ICmp::Gt) => self.a.vpcmpgtd(YMM[d], YMM[x], ymmword_ptr(self.pool[k])),
                }
            }
            Inst::MaskAnd(x, y) => {
                if self.z {
                    self.a.kandw(K[d], K[r(x)], K[r(y)])
                } else {
                    self.a.vpand(YMM[d], YMM[r(x)], YMM[r(y)])
                }
            }
            Inst::MaskOr(x, y) => {
                if self.z {
                    self.a.korw(K[d], K[r(x)], K[r(y)])
                } else {
                    self.a.vpor(YMM[d], YMM[r(x)], YMM[r(y)])
                }
            }
            Inst::MaskNot(x, ones) => {
                if self.z {
                    self.a.knotw(K[d], K[r(x)])
                } else {
                    self.a.vpxor(YMM[d], YMM[r(x)], ymmword_ptr(self.pool[ones]))
                }
            }
            Inst::Blend(m, a, b) => {
                let (m, a, b) = (r(m), self.arg(a), r(b));
                match (self.z, a) {
                    (true, S::R(a)) => self.a.vblendmps(masked(ZMM[d], m), ZMM[b], ZMM[a]),
                    (true, S::K(k)) => self.a.vblendmps(masked(ZMM[d], m), ZMM[b], zmmword_ptr(self.pool[k])),
                    (false, S::R(a)) => self.a.vblendvps(YMM[d], YMM[b], YMM[a], YMM[m]),
                    (false, S::K(k)) => self.a.vblendvps(YMM[d], YMM[b], ymmword_ptr(self.pool[k]), YMM[m]),
                }
            }
        }
    }

    /// `d = a * b + c` (`-(a * b) + c` when `neg`) with one rounding. x86's forms overwrite
    /// one operand, so `d` takes the operand it already holds (regalloc may have given it a
    /// dying operand's register), else a copy of one first. At most one of `b`, `c` is a
    /// constant; `a` never is.
    fn fma(&mut self, d: usize, a: S, b: S, c: S, neg: bool) -> Asm<()> {
        let S::R(a) = a else { unreachable!("vir puts fma's constant in b or c") };
        // `vfmadd231ps d, x, y`: d = x*y + d; `213`: d = x*d + y; `132`: d = d*y + x.
        macro_rules! form {
            ($f:ident, $n:ident, $d:expr, $x:expr, $y:expr) => {
                if neg {
                    v3!(self, $n, $n, $d, $x, $y)
                } else {
                    v3!(self, $f, $f, $d, $x, $y)
                }
            };
        }
        match (b, c) {
            (S::R(b), S::R(c)) => {
                if d == c {
                    form!(vfmadd231ps, vfnmadd231ps, d, a, S::R(b)) // d = a*b + d
                } else if d == a || d == b {
                    let other = if d == a { b } else { a };
                    form!(vfmadd213ps, vfnmadd213ps, d, other, S::R(c)) // d = other*d + c
                } else {
                    self.mov(d, c)?;
                    form!(vfmadd231ps, vfnmadd231ps, d, a, S::R(b))
                }
            }
            (S::R(b), S::K(k)) => {
                if d == b {
                    form!(vfmadd213ps, vfnmadd213ps, d, a, S::K(k)) // d = a*d + k
                } else {
                    self.mov(d, a)?;
                    form!(vfmadd213ps, vfnmadd213ps, d, b, S::K(k)) // d = b*d + k
                }
            }
            (S::K(k), S::R(c)) => {
                if d == a && d != c {
                    form!(vfmadd132ps, vfnmadd132ps, d, c, S::K(k)) // d = d*k + c
                } else {
                    self.mov(d, c)?;
                    form!(vfmadd231ps, vfnmadd231ps, d, a, S::K(k)) // d = a*k + d
                }
            }
            (S::K(_), S::K(_)) => unreachable!("vir loads one of two constants"),
        }
    }

    /// One step of `body`: its instructions (loads under the tail mask: `tail`).
    fn eval(&mut self, body: Body<'v>, tail: bool) -> Asm<()> {
        (self.vir, self.regs) = (body.vir, body.regs);
        for i in 0..self.vir.insts.len() {
            self.inst(i, tail)?;
        }
        Ok(())
    }

    /// One step of `body`: its vectors computed and stored (under the tail mask: `tail`).
    fn body(&mut self, body: Body<'v>, tail: bool) -> Asm<()> {
        self.eval(body, tail)?;
        for (u, &root) in self.vir.roots.iter().enumerate() {
            self.store(u, self.regs[root], tail)?;
        }
        Ok(())
    }

    /// Register `r` to output vector `u` (under the tail mask: `tail`).
    fn store(&mut self, u: usize, r: usize, tail: bool) -> Asm<()> {
        let m = self.at(rsi, u);
        match (self.z, tail) {
            (true, false) => self.a.vmovups(zmmword_ptr(m), ZMM[r]),
            (true, true) => self.a.vmovups(zmmword_ptr(m).k1(), ZMM[r]),
            (false, false) => self.a.vmovups(ymmword_ptr(m), YMM[r]),
            (false, true) => self.a.vmaskmovps(ymmword_ptr(m), ymm15, YMM[r]),
        }
    }
}

/// An assembled kernel: its bytes and each constant leaf's address slot (constant number,
/// offset).
struct Assembled {
    bytes: Vec<u8>,
    slots: Vec<(usize, u64)>,
    /// Where the code starts, and where the entry jump goes.
    code: (u64, u64),
}

/// Where the constant pool starts: one cache line in, after the jump over it.
const POOL_AT: usize = 64;

/// The kernel's image: a jump over the constant pool, the pool (each constant in every
/// lane, then the lane numbers; from [`POOL_AT`], so 64-byte aligned), the code (the loops
/// of `nest` around the bodies), and each constant leaf's address slot. With the pool ahead
/// of the code its place is known before anything is assembled, so a kernel is assembled
/// once; a pool after the code could only be aligned by assembling twice, the first time to
/// learn the code's length (iced's encoder was then a quarter of a cold build's CPU).
fn assemble(nest: &Nest, one: Body, unrolled: Option<Body>, prog: &Program) -> Asm<Assembled> {
    let vir = one.vir;
    let mut a = CodeAssembler::new(64)?;
    let pool: Vec<CodeLabel> = vir.consts.iter().map(|_| a.create_label()).collect();
    let iota = a.create_label();
    let mut e = Enc { a, z: vir.avx512, vir, regs: one.regs, pool, iota, slots: Vec::new() };
    let lanes = e.lanes() as usize;
    let code_at = POOL_AT + (vir.consts.len() + 1) * lanes * 4;
    // `jmp rel32` as bytes: the assembler may shorten a jump it writes, which would move the
    // pool.
    let rel = (code_at - 5) as u32;
    e.a.db(&[&[0xe9][..], &rel.to_le_bytes()].concat())?;
    e.a.db(&[0xcc; POOL_AT - 5])?;
    let mut labels = std::mem::take(&mut e.pool);
    for (k, &bits) in vir.consts.iter().enumerate() {
        e.a.set_label(&mut labels[k])?;
        e.a.dd(&vec![bits; lanes])?;
    }
    e.pool = labels;
    e.a.set_label(&mut e.iota)?;
    e.a.dd(&(0..lanes as u32).collect::<Vec<_>>())?;
    let mut code = e.a.create_label();
    e.a.set_label(&mut code)?;
    let uses_rbp = match nest {
        Nest::Rows(layout) => layout.rows > 1,
        Nest::Reduce(..) => true,
        Nest::Columns(..) => false,
    };
    let mut saved = LEAF_GPRS[SAVED_FROM..prog.leaves.len().max(SAVED_FROM)].to_vec();
    if uses_rbp {
        saved.push(rbp);
    }
    for &g in &saved {
        e.a.push(g)?;
    }
    let mut done = e.a.create_label();
    match nest {
        Nest::Rows(layout) => e.rows(layout, one, unrolled, prog, done)?,
        Nest::Reduce(red, fold) => e.reduce(red, *fold, one, unrolled, prog, done)?,
        Nest::Columns(col, fold) => e.column_reduce(col, *fold, one, unrolled, prog, done)?,
    }
    e.a.set_label(&mut done)?;
    e.a.vzeroupper()?;
    for &g in saved.iter().rev() {
        e.a.pop(g)?;
    }
    e.a.ret()?;
    let mut slots = std::mem::take(&mut e.slots);
    for (_, slot) in slots.iter_mut() {
        e.a.set_label(slot)?;
        e.a.dq(&[0])?;
    }
    let out = e.a.assemble_options(0, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let slots = slots.iter().map(|(k, l)| out.label_ip(l).map(|ip| (*k, ip))).collect::<Asm<_>>()?;
    let code = (out.label_ip(&code)?, code_at as u64);
    Ok(Assembled { bytes: out.inner.code_buffer, slots, code })
}

impl<'v> Enc<'v> {
    /// Each leaf's base pointer into its register, moved on to row `rax` by its stride
    /// (`strides`, in elements) when there is one.
    fn load_leaves(&mut self, prog: &Program, strides: Option<&[usize]>) -> Asm<()> {
        for (l, leaf) in prog.leaves.iter().enumerate() {
            match leaf.src {
                Src::Input(i) => self.a.mov(LEAF_GPRS[l], qword_ptr(rdi + 8 * i as i32))?,
                Src::Const(k) => {
                    let slot = self.a.create_label();
                    self.a.mov(LEAF_GPRS[l], qword_ptr(slot))?;
                    self.slots.push((k, slot));
                }
            }
            if let Some(&stride) = strides.and_then(|s| s.get(l)).filter(|&&s| s != 0) {
                self.a.imul_3(rcx, rax, bytes(stride))?;
                self.a.add(LEAF_GPRS[l], rcx)?;
            }
        }
        Ok(())
    }

    /// Moves every leaf pointer on by one row (`strides` in elements).
    fn next_leaf_rows(&mut self, strides: &[usize]) -> Asm<()> {
        for (l, &stride) in strides.iter().enumerate() {
            if stride != 0 {
                self.a.add(LEAF_GPRS[l], bytes(stride))?;
            }
        }
        Ok(())
    }

    /// The elementwise loops: per row, `unrolled` steps while they fit, then `one` vector at
    /// a time, then the rest under a mask.
    fn rows(
        &mut self,
        layout: &Layout,
        one: Body<'v>,
        unrolled: Option<Body<'v>>,
        prog: &Program,
        done: CodeLabel,
    ) -> Asm<()> {
        let rows = layout.rows > 1;
        // Several rows: start at row `begin / cols`, column `begin % cols` (rax, rdx), with
        // `end - begin` elements left (rbp).
        if rows {
            self.a.mov(rbp, rcx)?;
            self.a.sub(rbp, rdx)?;
            self.a.jbe(done)?;
            self.a.mov(rax, rdx)?;
            self.a.xor(edx, edx)?;
            self.a.mov(rcx, layout.cols as u64)?;
            self.a.div(rcx)?;
            self.a.imul_3(rcx, rax, bytes(layout.cols))?;
            self.a.add(rsi, rcx)?;
        }
        self.load_leaves(prog, rows.then_some(&layout.row_strides[..]))?;
        let mut next_row = self.a.create_label();
        if rows {
            // This row: columns rdx .. min(cols, rdx + left).
            self.a.set_label(&mut next_row)?;
            self.a.mov(rcx, layout.cols as u64)?;
            self.a.sub(rcx, rdx)?;
            self.a.cmp(rcx, rbp)?;
            self.a.cmova(rcx, rbp)?;
            self.a.sub(rbp, rcx)?;
            self.a.add(rcx, rdx)?;
        }
        let mut row_end = if rows { self.a.create_label() } else { done };
        self.steps(one, unrolled, row_end, |e, body, tail| e.body(body, tail))?;
        if rows {
            // The next row from column 0, while elements are left.
            self.a.set_label(&mut row_end)?;
            self.a.test(rbp, rbp)?;
            self.a.jz(done)?;
            self.a.add(rsi, bytes(layout.cols))?;
            self.next_leaf_rows(&layout.row_strides)?;
            self.a.xor(edx, edx)?;
            self.a.jmp(next_row)?;
        }
        Ok(())
    }

    /// `acc ⊕= v` for register numbers: the reduction's combining op with the lowering's
    /// semantics (`lower/accum.rs`: `acc + v`; `acc >= v || isnan(acc) ? acc : v` for max,
    /// `<=` for min), on every lane. Uses `k2`, `k3` (AVX-512; free once a body has run)
    /// or the vector registers `masks` (AVX2).
    fn combine(&mut self, op: ReduceOp, masks: [usize; 2], acc: usize, v: usize) -> Asm<()> {
        let keep = match op {
            ReduceOp::Sum | ReduceOp::Mean if self.z => return self.a.vaddps(ZMM[acc], ZMM[acc], ZMM[v]),
            ReduceOp::Sum | ReduceOp::Mean => return self.a.vaddps(YMM[acc], YMM[acc], YMM[v]),
            ReduceOp::Max => FCmp::Ge as i32,
            _ => FCmp::Le as i32,
        };
        if self.z {
            let (a, v) = (ZMM[acc], ZMM[v]);
            self.a.vcmpps(k2, a, v, keep)?;
            self.a.vcmpps(k3, a, a, FCmp::Unord as i32)?;
            self.a.korw(k2, k2, k3)?;
            self.a.vblendmps(a.k2(), v, a)
        } else {
            let (a, v) = (YMM[acc], YMM[v]);
            let [m1, m2] = masks.map(|m| YMM[m]);
            self.a.vcmpps(m1, a, v, keep)?;
            self.a.vcmpps(m2, a, a, FCmp::Unord as i32)?;
            self.a.vorps(m1, m1, m2)?;
            self.a.vblendvps(a, v, a, m1)
        }
    }

    /// The tail mask (`k1` or `ymm15`) set to the first `edi` lanes (clobbers `rcx`).
    fn tail_mask(&mut self) -> Asm<()> {
        if self.z {
            self.a.mov(ecx, -1)?;
            self.a.bzhi(ecx, ecx, edi)?;
            self.a.kmovw(k1, ecx)
        } else {
            self.a.vmovd(xmm15, edi)?;
            self.a.vpbroadcastd(ymm15, xmm15)?;
            self.a.vpcmpgtd(ymm15, ymm15, ymmword_ptr(self.iota))
        }
    }

    /// At `at`, the tail mask set to the first `lanes` lanes.
    fn first_lanes(&mut self, mut at: CodeLabel, lanes: u32) -> Asm<()> {
        self.a.set_label(&mut at)?;
        self.a.mov(edi, lanes)?;
        self.tail_mask()
    }

    /// Columns `rdx..rcx` by `step`: `unrolled` steps while they fit, then `one` vector at a
    /// time, then the rest under the tail mask (skipped to `none_left` when nothing is).
    fn steps(
        &mut self,
        one: Body<'v>,
        unrolled: Option<Body<'v>>,
        none_left: CodeLabel,
        step: impl Fn(&mut Self, Body<'v>, bool) -> Asm<()>,
    ) -> Asm<()> {
        let (singles, mut tail) = (self.a.create_label(), self.a.create_label());
        if let Some(u) = unrolled {
            let (top, width) = (self.a.create_label(), self.columns(u));
            self.counted(top, width, End::Rcx, singles, |e| step(e, u, false))?;
        }
        let width = self.columns(one);
        self.counted(singles, width, End::Rcx, tail, |e| step(e, one, false))?;
        self.a.set_label(&mut tail)?;
        self.a.cmp(rdx, rcx)?;
        self.a.jae(none_left)?;
        // The remaining r = end - i < lanes elements, under a mask of r lanes.
        self.a.mov(rdi, rcx)?;
        self.a.sub(rdi, rdx)?;
        self.tail_mask()?;
        step(self, one, true)
    }

    /// A loop at `top` running `body` while `step` more columns (from `rdx`) fit before
    /// `end`, then going on to `next`.
    fn counted(
        &mut self,
        mut top: CodeLabel,
        step: i32,
        end: End,
        next: CodeLabel,
        body: impl Fn(&mut Self) -> Asm<()>,
    ) -> Asm<()> {
        self.a.set_label(&mut top)?;
        self.a.lea(rdi, ptr(rdx + step))?;
        match end {
            End::Rcx => self.a.cmp(rdi, rcx)?,
            End::Len(len) => self.a.cmp(rdi, len)?,
        }
        self.a.ja(next)?;
        body(self)?;
        self.a.mov(rdx, rdi)?;
        self.a.jmp(top)
    }

    /// A row reduction: per output, the body 16 values a step into the vector
    /// accumulators, then 4 at a time into their lowest four lanes, then one at a time into
    /// a scalar accumulator, folded in the order of Cranelift's code (`lower/reduce.rs`: its
    /// four 4-lane accumulators are the zmm accumulator's four 128-bit blocks, or the two
    /// ymm ones' halves), so the result has its bits. `two` is the body for two vectors
    /// (AVX2's 16 values) when its registers fit; else `one` runs twice a step.
    fn reduce(
        &mut self,
        red: &RowReduce,
        fold: Fold,
        one: Body<'v>,
        two: Option<Body<'v>>,
        prog: &Program,
        done: CodeLabel,
    ) -> Asm<()> {
        let r = match self.z {
            true => ACC_AVX512,
            false => {
                let roots = |b: Body| b.vir.roots.iter().map(|&v| b.regs[v]).collect::<Vec<_>>();
                avx2_acc(&[roots(one), two.map_or(vec![], roots)].concat())
            }
        };
        let len = End::Len(red.len as i32);
        // rax: the output; rbp: the end.
        self.a.mov(rbp, rcx)?;
        self.a.mov(rax, rdx)?;
        self.load_leaves(prog, Some(&red.out_strides))?;
        let mut next = self.a.create_label();
        self.a.set_label(&mut next)?;
        self.a.cmp(rax, rbp)?;
        self.a.jae(done)?;
        self.load_const(r.acc[0], fold.identity)?;
        self.mov(r.acc[1], r.acc[0])?;
        self.mov(r.scalar, r.acc[0])?;
        self.a.xor(edx, edx)?;
        let (fours, ones, mut merge) = (self.a.create_label(), self.a.create_label(), self.a.create_label());
        // Sixteen at a time into every lane.
        let step = two.unwrap_or(one);
        let sixteen = self.a.create_label();
        self.counted(sixteen, 16, len, fours, |e| {
            e.eval(step, false)?;
            for (u, &root) in step.vir.roots.iter().enumerate() {
                e.combine(red.op, r.masks, r.acc[u], e.regs[root])?;
            }
            if !e.z && two.is_none() {
                // AVX2 with a body whose two copies do not fit: the second 8 values by the
                // same copy (`counted` sets rdx to the next step after the body).
                e.a.add(rdx, 8)?;
                e.eval(one, false)?;
                e.combine(red.op, r.masks, r.acc[1], e.regs[one.vir.roots[0]])?;
            }
            Ok(())
        })?;
        // Four at a time into lanes 0–3 (the first 4-lane accumulator), under a mask.
        self.first_lanes(fours, 4)?;
        let four = self.a.create_label();
        self.counted(four, 4, len, ones, |e| {
            e.eval(one, true)?;
            e.mov(r.t, r.acc[0])?;
            e.combine(red.op, r.masks, r.t, e.regs[one.vir.roots[0]])?;
            if e.z {
                e.a.vmovaps(ZMM[r.acc[0]].k1(), ZMM[r.t])
            } else {
                e.a.vblendvps(YMM[r.acc[0]], YMM[r.acc[0]], YMM[r.t], ymm15)
            }
        })?;
        // One at a time into the scalar accumulator's lane 0.
        self.first_lanes(ones, 1)?;
        let single = self.a.create_label();
        self.counted(single, 1, len, merge, |e| {
            e.eval(one, true)?;
            e.combine(red.op, r.masks, r.scalar, e.regs[one.vir.roots[0]])
        })?;
        // The 4-lane accumulators 1, 2, 3 into 0, then its lanes 0..3 into the scalar.
        self.a.set_label(&mut merge)?;
        self.mov(r.v, r.acc[0])?;
        for block in 1..4 {
            if self.z {
                self.a.vshuff32x4(ZMM[r.t], ZMM[r.acc[0]], ZMM[r.acc[0]], block)?;
            } else {
                // Blocks 1, 2, 3: the high half of the first ymm, the second's halves.
                let from = YMM[r.acc[(block / 2) as usize]];
                self.a.vperm2f128(YMM[r.t], from, from, block % 2)?;
            }
            self.combine(red.op, r.masks, r.v, r.t)?;
        }
        self.combine(red.op, r.masks, r.scalar, r.v)?;
        for lane in 1..4 {
            if self.z {
                self.a.valignd(ZMM[r.t], ZMM[r.v], ZMM[r.v], lane)?;
            } else {
                self.a.vpermilps(YMM[r.t], YMM[r.v], lane)?;
            }
            self.combine(red.op, r.masks, r.scalar, r.t)?;
        }
        if let Some(k) = fold.divisor {
            v3!(self, vdivps, vdivps, r.scalar, r.scalar, S::K(k))?;
        }
        // Lane 0 only (the tail mask still has one lane on).
        if self.z {
            self.a.vmovups(zmmword_ptr(rsi + rax * 4).k1(), ZMM[r.scalar])?;
        } else {
            self.a.vmovss(dword_ptr(rsi + rax * 4), XMM[r.scalar])?;
        }
        self.a.inc(rax)?;
        self.next_leaf_rows(&red.out_strides)?;
        self.a.jmp(next)
    }

    /// A column reduction: output columns `rdx..rcx`, `unrolled` steps while they fit, then
    /// one vector at a time, then the rest under a mask.
    fn column_reduce(
        &mut self,
        col: &ColReduce,
        fold: Fold,
        one: Body<'v>,
        unrolled: Option<Body<'v>>,
        prog: &Program,
        done: CodeLabel,
    ) -> Asm<()> {
        self.load_leaves(prog, None)?;
        self.steps(one, unrolled, done, |e, body, tail| e.column_step(col, fold, body, tail))
    }

    /// The columns from `rdx` on that one step of `body` covers, reduced over every row:
    /// each copy's accumulator combines the body's value row by row (rax counts rows, the
    /// leaf pointers move down a row each and back up after), then it is stored.
    fn column_step(&mut self, col: &ColReduce, fold: Fold, body: Body<'v>, tail: bool) -> Asm<()> {
        let (accs, masks) = column_accs(self.z, body.vir.roots.len());
        for &acc in &accs {
            self.load_const(acc, fold.identity)?;
        }
        self.a.xor(eax, eax)?;
        let mut row = self.a.create_label();
        self.a.set_label(&mut row)?;
        self.eval(body, tail)?;
        for (j, &root) in body.vir.roots.iter().enumerate() {
            self.combine(col.op, masks, accs[j], body.regs[root])?;
        }
        self.next_leaf_rows(&col.row_strides)?;
        self.a.inc(rax)?;
        self.a.cmp(rax, col.rows as i32)?;
        self.a.jb(row)?;
        for (l, &stride) in col.row_strides.iter().enumerate() {
            if stride != 0 {
                self.a.sub(LEAF_GPRS[l], bytes(stride * col.rows))?;
            }
        }
        for (j, &acc) in accs.iter().enumerate() {
            if let Some(k) = fold.divisor {
                v3!(self, vdivps, vdivps, acc, acc, S::K(k))?;
            }
            self.store(j, acc, tail)?;
        }
        Ok(())
    }
}

/// The image of the kernel `prog` with loop nest `nest` and bodies `one` and `unrolled`:
/// pool, code, and a fixup for each constant leaf's address.
pub(crate) fn image(nest: &Nest, one: Body, unrolled: Option<Body>, prog: &Program) -> Result<Image> {
    let Assembled { bytes, slots, code } =
        assemble(nest, one, unrolled, prog).map_err(|e| Error::Compile(format!("x86 assembler: {e}")))?;
    if code.0 != code.1 {
        return Err(Error::Compile(format!(
            "x86 assembler: the code starts at {}, the entry jumps to {}",
            code.0, code.1
        )));
    }
    let fixups =
        slots.into_iter().map(|(k, off)| Fixup { offset: off as u32, target: Target::Const(k), addend: 0 }).collect();
    let image = Image { bytes, fixups };
    image.check(prog.consts.len())?;
    Ok(image)
}
