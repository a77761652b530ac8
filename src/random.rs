//! Stateful random numbers: a [`Generator`] keeps a step counter in a Variable and feeds it
//! to the seeded random op, so every call draws fresh values — eagerly and inside a
//! compiled function alike (where a plain seeded op would repeat the same values each call).
//! Also the process-wide seed sequence layers draw their default seeds from.

use std::sync::atomic::{AtomicU64, Ordering};

use kiln_ir::{DType, Distribution, TensorType};

use crate::{Result, Tensor, Variable};

static NEXT_SEED: AtomicU64 = AtomicU64::new(0);

/// The next seed of the process-wide sequence (0, 1, 2, ...). Layers built without an
/// explicit seed take one from here, so a program that builds the same layers in the same
/// order is reproducible run to run.
pub fn next_seed() -> u64 {
    NEXT_SEED.fetch_add(1, Ordering::Relaxed)
}

/// Restarts the process-wide seed sequence at `seed` (like `keras.utils.set_random_seed`).
pub fn set_global_seed(seed: u64) {
    NEXT_SEED.store(seed, Ordering::Relaxed);
}

/// A seeded stream of random tensors: draw `k` uses the seed and counter value `k`.
///
/// ```
/// use kiln::random::Generator;
/// use kiln::DType;
/// let g = Generator::new(42);
/// let a = g.uniform(&[3], DType::F32).unwrap();
/// let b = g.uniform(&[3], DType::F32).unwrap();
/// assert_ne!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
/// let f = kiln::function(move |x: &kiln::Tensor| x + &g.uniform(&[3], DType::F32).unwrap());
/// let zero = kiln::Tensor::zeros(&[3], DType::F32);
/// let (c, d) = (f.call(&zero).unwrap(), f.call(&zero).unwrap());
/// assert_ne!(c.to_vec::<f32>().unwrap(), d.to_vec::<f32>().unwrap()); // fresh each call
/// ```
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    counter: Variable,
}

impl Generator {
    /// A generator whose draws are determined by `seed` and how many draws came before.
    pub fn new(seed: u64) -> Generator {
        let counter = crate::init_scope(|| {
            Variable::with_options(Tensor::scalar(0i64), &format!("Generator:{seed}/counter"), false)
        });
        Generator { seed, counter }
    }

    /// The Variable counting the draws so far.
    pub fn counter(&self) -> &Variable {
        &self.counter
    }

    /// Uniform values in `[0, 1)`.
    pub fn uniform(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        self.draw(Distribution::Uniform, shape, dtype)
    }

    /// Standard normal values.
    pub fn normal(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        self.draw(Distribution::Normal, shape, dtype)
    }

    fn draw(&self, dist: Distribution, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let k = self.counter.read();
        let out = crate::context::random(dist, self.seed, TensorType::new(dtype, shape), Some(&k))?;
        self.counter.assign_add(&Tensor::scalar(1i64))?;
        Ok(out)
    }
}
