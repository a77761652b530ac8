//! `Random { dist, seed }`: stateless, counter-based, the same numbers on every machine.
//!
//! The algorithm (pinned by tests; changing it changes every seeded program's numbers):
//!
//! - `mix(z)` is the splitmix64 finalizer:
//!   `z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31`
//!   (wrapping multiplications), and `GAMMA = 0x9e3779b97f4a7c15`.
//! - The key of a tensor is `key = mix(seed ^ mix(c + GAMMA))`, where `c` is the optional
//!   `i64` scalar operand reinterpreted as `u64` (`0` when absent).
//! - The `j`-th 64-bit word of the stream is `bits(j) = mix(key + (j + 1) * GAMMA)`: the
//!   `j`-th output of a splitmix64 generator seeded with `key`.
//! - A uniform in `[0, 1)` from a word: its top 24 bits times `2^-24` for f32, its top 53
//!   bits times `2^-53` for f64 — exact, so no rounding can produce 1.0.
//! - `Uniform`: element `i` (row-major) is the uniform from `bits(i)`.
//! - `Normal`: element `i` is Box–Muller on the 53-bit uniforms `u1` from `bits(2i)` and `u2`
//!   from `bits(2i+1)`: `sqrt(-2 ln(1 - u1)) * cos(2π u2)`, computed in f64 and rounded once
//!   to the dtype (`1 - u1` is in `(0, 1]`, so the logarithm is finite).
//!
//! Only `ln`, `sqrt` and `cos` of the normal case depend on the platform's libm; the f32
//! values (rounded from f64) are the same everywhere in practice.

use crate::array::{Array, Data};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::Distribution;

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The splitmix64 finalizer: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream key of a tensor with this seed and counter.
pub(crate) fn key(seed: u64, counter: i64) -> u64 {
    mix(seed ^ mix((counter as u64).wrapping_add(GAMMA)))
}

/// The `j`-th 64-bit word of the stream of `key`.
pub(crate) fn bits(key: u64, j: u64) -> u64 {
    mix(key.wrapping_add(j.wrapping_add(1).wrapping_mul(GAMMA)))
}

fn unit_f64(w: u64) -> f64 {
    (w >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn unit_f32(w: u64) -> f32 {
    (w >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
}

fn normal(key: u64, i: u64) -> f64 {
    let u1 = unit_f64(bits(key, 2 * i));
    let u2 = unit_f64(bits(key, 2 * i + 1));
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A tensor of `n` elements of `dtype` from `dist`; `counter` is the optional operand.
pub(crate) fn random(
    dist: Distribution,
    seed: u64,
    counter: Option<&Array>,
    dtype: DType,
    shape: &[usize],
) -> Result<Array> {
    let c = match counter {
        None => 0,
        Some(a) => match (a.as_slice::<i64>(), a.rank()) {
            (Some(&[c]), 0) => c,
            _ => {
                return Err(Error::invalid(
                    dist.name(),
                    format!("the counter must be i64[], got {}{:?}", a.dtype(), a.shape()),
                ))
            }
        },
    };
    let k = key(seed, c);
    let n = crate::shape::numel(shape) as u64;
    let data = match (dist, dtype) {
        (Distribution::Uniform, DType::F32) => Data::F32((0..n).map(|i| unit_f32(bits(k, i))).collect()),
        (Distribution::Uniform, DType::F64) => Data::F64((0..n).map(|i| unit_f64(bits(k, i))).collect()),
        (Distribution::Normal, DType::F32) => Data::F32((0..n).map(|i| normal(k, i) as f32).collect()),
        (Distribution::Normal, DType::F64) => Data::F64((0..n).map(|i| normal(k, i)).collect()),
        (_, d) => return Err(Error::UnsupportedDType { op: dist.name(), dtype: d, expected: "a float dtype" }),
    };
    Array::new(data, shape)
}
