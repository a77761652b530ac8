//! The arithmetic the kernels need from each element type, in one place, so every kernel is
//! written once for floats and once for integers.
//!
//! Integer arithmetic wraps on overflow (two's complement, as TensorFlow and numpy do);
//! only division by zero and a negative power are errors.

use crate::dtype::Element;

/// Arithmetic shared by all numeric element types.
pub(crate) trait Num: Element + PartialOrd {
    const ZERO: Self;
    const ONE: Self;
    /// The identity of `max` (`-inf`, or the type's minimum).
    const LOWEST: Self;
    /// The identity of `min` (`+inf`, or the type's maximum).
    const HIGHEST: Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// `None` for an integer division by zero.
    fn div(self, o: Self) -> Option<Self>;
    /// `self ^ o`; `None` for an integer raised to a negative power.
    fn pow(self, o: Self) -> Option<Self>;
    fn is_nan(self) -> bool;
}

macro_rules! float {
    ($t:ty) => {
        impl Num for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn div(self, o: Self) -> Option<Self> {
                Some(self / o)
            }
            fn pow(self, o: Self) -> Option<Self> {
                Some((self as f64).powf(o as f64) as $t)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
float!(f32);
float!(f64);

macro_rules! int {
    ($t:ty) => {
        impl Num for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            /// Truncates toward zero; `MIN / -1` wraps to `MIN`.
            fn div(self, o: Self) -> Option<Self> {
                if o == 0 {
                    None
                } else {
                    Some(self.wrapping_div(o))
                }
            }
            /// By squaring, wrapping on overflow (TF and numpy's integer power).
            fn pow(self, o: Self) -> Option<Self> {
                if o < 0 {
                    return None;
                }
                let (mut base, mut e, mut acc) = (self, o as u64, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                Some(acc)
            }
            fn is_nan(self) -> bool {
                false
            }
        }
    };
}
int!(i32);
int!(i64);

/// NaN-propagating maximum; numpy's rule `a >= b || isnan(a) ? a : b`.
pub(crate) fn maximum<T: Num>(a: T, b: T) -> T {
    if a >= b || a.is_nan() {
        a
    } else {
        b
    }
}

/// NaN-propagating minimum; numpy's rule `a <= b || isnan(a) ? a : b`.
pub(crate) fn minimum<T: Num>(a: T, b: T) -> T {
    if a <= b || a.is_nan() {
        a
    } else {
        b
    }
}
