//! `sin` and `cos`: `x = n pi/2 + r` (three-part Cody–Waite, |r| <= pi/4), minimax
//! polynomials for sin/cos on the reduced argument (Cephes for f32, fdlibm for f64), and
//! the quadrant picked by `n mod 4`. Arguments beyond [`bound`] (where a three-part
//! reduction loses bits) take a rare slow path: each such lane calls the host's libm.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, BlockArg, FuncRef, InstBuilder, Value};

use super::Fx;

/// Host routines imported into each kernel function (`f32::sin` & co. in Rust).
#[derive(Clone, Copy)]
pub(crate) struct HostMath {
    pub sinf: FuncRef,
    pub cosf: FuncRef,
    pub sin: FuncRef,
    pub cos: FuncRef,
}

/// Largest |x| reduced in generated code.
pub(crate) const fn bound(f32: bool) -> f64 {
    if f32 {
        8192.0
    } else {
        1048576.0
    }
}

/// `pi/2` in three parts for the reduction (each product with `n` exact).
pub(crate) const PIO2_F32: [f64; 3] = [1.5703125, 4.837_512_969_970_703e-4, 7.549_789_954_891_882e-8];
pub(crate) const PIO2_F64: [f64; 3] = [1.570_796_326_734_125_6, 6.077_100_506_303_966e-11, 2.022_266_248_711_166_5e-21];

#[allow(clippy::excessive_precision)]
pub(crate) const S_F32: [f64; 3] = [-1.666_665_461_1e-1, 8.332_160_873_6e-3, -1.951_529_589_1e-4];
#[allow(clippy::excessive_precision)]
pub(crate) const C_F32: [f64; 3] = [4.166_664_568_298_827e-2, -1.388_731_625_493_765e-3, 2.443_315_711_809_948e-5];
#[allow(clippy::excessive_precision)]
pub(crate) const S_F64: [f64; 6] = [
    -1.666_666_666_666_663_2e-1,
    8.333_333_333_322_49e-3,
    -1.984_126_982_985_795e-4,
    2.755_731_370_707_006_8e-6,
    -2.505_076_025_340_686_3e-8,
    1.589_690_995_211_55e-10,
];
#[allow(clippy::excessive_precision)]
pub(crate) const C_F64: [f64; 6] = [
    4.166_666_666_666_66e-2,
    -1.388_888_888_887_411e-3,
    2.480_158_728_947_673e-5,
    -2.755_731_435_139_066_3e-7,
    2.087_572_321_298_175e-9,
    -1.135_964_755_778_819_5e-11,
];

/// sin (`cos = false`) or cos of `x`.
fn sincos(fx: &mut Fx, x: Value, cos: bool) -> Value {
    let t = fx.ty(x);
    let f32 = fx.is_f32(x);
    let [p1, p2, p3] = if f32 { PIO2_F32 } else { PIO2_F64 };
    // Reduction on the clamped argument (huge lanes are recomputed on the slow path).
    let b = bound(f32);
    let xc = fx.clamp(x, -b, b);
    let k = fx_k(fx, t, std::f64::consts::FRAC_2_PI);
    let y = fx.mul(xc, k);
    let (n, ni) = fx.round_int(y);
    let nn = fx.b.ins().fneg(n);
    let r = fx.madd_k(nn, p1, xc);
    let r = fx.madd_k(nn, p2, r);
    let r = fx.madd_k(nn, p3, r);
    let z = fx.mul(r, r);
    let (s, c) = if f32 {
        let ps = fx.poly(z, &S_F32);
        let rz = fx.mul(r, z);
        let s = fx.madd(rz, ps, r);
        let pc = fx.poly(z, &C_F32);
        let zz = fx.mul(z, z);
        let half = fx.fconst(t, -0.5);
        let one = fx.fconst(t, 1.0);
        let c0 = fx.madd(z, half, one);
        let c = fx.madd(zz, pc, c0);
        (s, c)
    } else {
        let ps = fx.poly(z, &S_F64);
        let rz = fx.mul(r, z);
        let s = fx.madd(rz, ps, r);
        let pc = fx.poly(z, &C_F64);
        let zz = fx.mul(z, z);
        let half = fx.fconst(t, 0.5);
        let hz = fx.mul(half, z);
        let one = fx.fconst(t, 1.0);
        let w = fx.sub(one, hz);
        // w + (((1 - w) - hz) + z^2 C(z)): the fdlibm order that keeps 1 - z/2's rounding.
        let e = fx.sub(one, w);
        let e = fx.sub(e, hz);
        let e = fx.madd(zz, pc, e);
        (s, fx.add(w, e))
    };
    let it = fx.ty(ni);
    let q = if cos {
        let one = fx.iconst(it, 1);
        fx.b.ins().iadd(ni, one)
    } else {
        ni
    };
    let onei = fx.iconst(it, 1);
    let odd = fx.b.ins().band(q, onei);
    let swap = fx.icmp(IntCC::Equal, odd, onei);
    let v = fx.sel(swap, c, s);
    let twoi = fx.iconst(it, 2);
    let neg = fx.b.ins().band(q, twoi);
    let sh = fx.b.ins().iconst(types::I32, if f32 { 30 } else { 62 });
    let sign = fx.b.ins().ishl(neg, sh);
    let vb = fx.bits_of(v);
    let vb = fx.b.ins().bxor(vb, sign);
    let mut res = fx.float_of_bits(vb);
    if !cos {
        // sin(-0) = -0: the polynomial would give +0.
        let zero = fx.fcmp_k(FloatCC::Equal, x, 0.0);
        res = fx.sel(zero, x, res);
    }
    slow_path(fx, x, res, b, cos)
}

fn fx_k(fx: &mut Fx, t: cranelift_codegen::ir::Type, k: f64) -> Value {
    fx.fconst(t, k)
}

/// Lanes with |x| > bound (including ±inf) are recomputed by the host's libm, behind a
/// branch that is almost never taken.
fn slow_path(fx: &mut Fx, x: Value, fast: Value, b: f64, cos: bool) -> Value {
    let t = fx.ty(x);
    let f32 = fx.is_f32(x);
    let func = match (f32, cos) {
        (true, false) => fx.host.sinf,
        (true, true) => fx.host.cosf,
        (false, false) => fx.host.sin,
        (false, true) => fx.host.cos,
    };
    let ax = fx.b.ins().fabs(x);
    let big = fx.fcmp_k(FloatCC::GreaterThan, ax, b);
    let any = if t.is_vector() { fx.b.ins().vany_true(big) } else { big };
    let slow = fx.b.create_block();
    let merge = fx.b.create_block();
    let out = fx.b.append_block_param(merge, t);
    fx.b.ins().brif(any, slow, &[], merge, &[BlockArg::Value(fast)]);
    fx.b.switch_to_block(slow);
    fx.b.set_cold_block(slow);
    let exact = if t.is_vector() {
        let mut v = fast;
        for lane in 0..t.lane_count() as u8 {
            let xi = fx.b.ins().extractlane(x, lane);
            let call = fx.b.ins().call(func, &[xi]);
            let ri = fx.b.inst_results(call)[0];
            v = fx.b.ins().insertlane(v, ri, lane);
        }
        v
    } else {
        let call = fx.b.ins().call(func, &[x]);
        fx.b.inst_results(call)[0]
    };
    let r = fx.sel(big, exact, fast);
    fx.b.ins().jump(merge, &[BlockArg::Value(r)]);
    fx.b.switch_to_block(merge);
    out
}

pub(crate) fn sin(fx: &mut Fx, x: Value) -> Value {
    sincos(fx, x, false)
}

pub(crate) fn cos(fx: &mut Fx, x: Value) -> Value {
    sincos(fx, x, true)
}
