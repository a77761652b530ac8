//! `sin` and `cos`: `x = n pi/2 + r` (three-part Cody–Waite, |r| <= pi/4), minimax
//! polynomials for sin/cos on the reduced argument (Cephes for f32, fdlibm for f64), and
//! the quadrant picked by `n mod 4`. Arguments beyond [`bound`] (where a three-part
//! reduction loses bits) take a rare slow path: each such lane calls the host's libm.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, BlockArg, FuncRef, InstBuilder, Value};

use super::{Fx, Ops};

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
const PIO2_F32: [f64; 3] = [1.5703125, 4.837_512_969_970_703e-4, 7.549_789_954_891_882e-8];
const PIO2_F64: [f64; 3] = [1.570_796_326_734_125_6, 6.077_100_506_303_966e-11, 2.022_266_248_711_166_5e-21];

#[allow(clippy::excessive_precision)]
const S_F32: [f64; 3] = [-1.666_665_461_1e-1, 8.332_160_873_6e-3, -1.951_529_589_1e-4];
#[allow(clippy::excessive_precision)]
const C_F32: [f64; 3] = [4.166_664_568_298_827e-2, -1.388_731_625_493_765e-3, 2.443_315_711_809_948e-5];
#[allow(clippy::excessive_precision)]
const S_F64: [f64; 6] = [
    -1.666_666_666_666_663_2e-1,
    8.333_333_333_322_49e-3,
    -1.984_126_982_985_795e-4,
    2.755_731_370_707_006_8e-6,
    -2.505_076_025_340_686_3e-8,
    1.589_690_995_211_55e-10,
];
#[allow(clippy::excessive_precision)]
const C_F64: [f64; 6] = [
    4.166_666_666_666_66e-2,
    -1.388_888_888_887_411e-3,
    2.480_158_728_947_673e-5,
    -2.755_731_435_139_066_3e-7,
    2.087_572_321_298_175e-9,
    -1.135_964_755_778_819_5e-11,
];

/// sin (`cos = false`) or cos of `x` for |x| up to [`bound`]; lanes beyond it get a
/// meaningless value, recomputed by the caller (the Cranelift code's [`slow_path`], the
/// routines' libm pass).
#[inline(always)]
pub(crate) fn sincos<O: Ops>(o: &mut O, x: O::F, cos: bool) -> O::F {
    let f32 = o.is_f32();
    let [p1, p2, p3] = if f32 { PIO2_F32 } else { PIO2_F64 };
    let b = bound(f32);
    let xc = o.clamp(x, -b, b);
    let k = o.k(std::f64::consts::FRAC_2_PI);
    let y = o.mul(xc, k);
    let (n, ni) = o.round_int(y);
    let nn = o.neg(n);
    let r = o.madd_k(nn, p1, xc);
    let r = o.madd_k(nn, p2, r);
    let r = o.madd_k(nn, p3, r);
    let z = o.mul(r, r);
    let (sp, cp) = if f32 { (&S_F32[..], &C_F32[..]) } else { (&S_F64[..], &C_F64[..]) };
    let ps = o.poly(z, sp);
    let rz = o.mul(r, z);
    let s = o.madd(rz, ps, r);
    let pc = o.poly(z, cp);
    let zz = o.mul(z, z);
    let one = o.k(1.0);
    let c = if f32 {
        let half = o.k(-0.5);
        let c0 = o.madd(z, half, one);
        o.madd(zz, pc, c0)
    } else {
        let half = o.k(0.5);
        let hz = o.mul(half, z);
        let w = o.sub(one, hz);
        // w + (((1 - w) - hz) + z^2 C(z)): the fdlibm order that keeps 1 - z/2's rounding.
        let e = o.sub(one, w);
        let e = o.sub(e, hz);
        let e = o.madd(zz, pc, e);
        o.add(w, e)
    };
    let onei = o.ki(1);
    let q = if cos { o.iadd(ni, onei) } else { ni };
    let odd = o.iand(q, onei);
    let swap = o.ieq(odd, onei);
    let v = o.sel(swap, c, s);
    let twoi = o.ki(2);
    let neg = o.iand(q, twoi);
    let sign = o.shl(neg, if f32 { 30 } else { 62 });
    let vb = o.bits(v);
    let vb = o.ixor(vb, sign);
    let res = o.of_bits(vb);
    if cos {
        res
    } else {
        // sin(-0) = -0: the polynomial would give +0.
        let zero = o.eq_k(x, 0.0);
        o.sel(zero, x, res)
    }
}

/// Lanes with |x| > bound (including ±inf) are recomputed by the host's libm, behind a
/// branch that is almost never taken.
pub(crate) fn slow_path(fx: &mut Fx, x: Value, fast: Value, cos: bool) -> Value {
    let t = fx.ty(x);
    let f32 = t.lane_type() == types::F32;
    let b = bound(f32);
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
