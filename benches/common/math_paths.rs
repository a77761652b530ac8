//! The math paths a bench runs its workloads on.

use kiln_jit::MathPath;

/// Sets each math path this CPU runs in turn (AVX-512 and AVX2 builds of the wide routines,
/// then the 128-bit Cranelift code), yielding it, and restores the default afterwards:
/// functions created inside the loop compile their kernels for that path.
pub fn each_math_path() -> impl Iterator<Item = MathPath> {
    let default = kiln_jit::math_path();
    let mut paths = MathPath::available().into_iter();
    std::iter::from_fn(move || match paths.next() {
        Some(p) => {
            kiln_jit::set_math_path(p).unwrap();
            Some(p)
        }
        None => {
            kiln_jit::set_math_path(default).unwrap();
            None
        }
    })
}
