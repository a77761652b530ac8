//! `Dropout`: zeroes a random fraction of inputs in training, with a fresh mask every call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::Layer;
use crate::models::{Config, ObjectConfig};
use crate::random::Generator;
use crate::{Error, Result, Tensor, Variable};

/// Keras's `Dropout`: in training, each element is kept with probability `1 - rate` and
/// scaled by `1 / (1 - rate)`; in inference it is the identity. The mask comes from a
/// [`Generator`] whose counter Variable advances every call, so a compiled step draws a
/// new mask each time it runs.
///
/// ```
/// use kiln::nn::{Dropout, Layer};
/// use kiln::{DType, Tensor};
/// let d = Dropout::new(0.5).seed(3);
/// let x = Tensor::ones(&[1000], DType::F32);
/// let a = d.call(&x, true).unwrap().to_vec::<f32>().unwrap();
/// assert!(a.iter().all(|&v| v == 0.0 || v == 2.0));
/// let kept = a.iter().filter(|&&v| v == 2.0).count();
/// assert!((400..600).contains(&kept));
/// assert_ne!(a, d.call(&x, true).unwrap().to_vec::<f32>().unwrap()); // a new mask
/// assert_eq!(d.call(&x, false).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 1000]);
/// ```
pub struct Dropout {
    rate: f64,
    seed: u64,
    generator: OnceLock<Generator>,
    trainable: AtomicBool,
}

impl Dropout {
    /// Drops a fraction `rate` in `[0, 1)`; panics otherwise (a programming error).
    #[track_caller]
    pub fn new(rate: f64) -> Dropout {
        assert!((0.0..1.0).contains(&rate), "Dropout rate must be in [0, 1), got {rate}");
        Dropout { rate, seed: crate::random::next_seed(), generator: OnceLock::new(), trainable: AtomicBool::new(true) }
    }

    /// Seeds the mask stream.
    pub fn seed(self, seed: u64) -> Dropout {
        Dropout { seed, ..self }
    }

    /// The layer of a config written by [`Layer::get_config`].
    pub fn from_config(c: &Config) -> Result<Dropout> {
        let rate: f64 = c.get("rate")?;
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::invalid("Dropout", format!("rate must be in [0, 1), got {rate}")));
        }
        let d = Dropout::new(rate).seed(c.get("seed")?);
        d.trainable.store(c.get_or("trainable", true)?, Ordering::Relaxed);
        Ok(d)
    }

    fn generator(&self) -> &Generator {
        self.generator.get_or_init(|| Generator::new(self.seed))
    }
}

impl Layer for Dropout {
    fn call(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        if !x.dtype().is_float() {
            return Err(Error::invalid("Dropout", format!("takes float inputs, got {}", x.tensor_type())));
        }
        // Made on the first call, training or not, so a model's Variables do not depend on
        // which mode ran first (a saved model's weights are matched in order).
        let generator = self.generator();
        if !training || self.rate == 0.0 {
            return Ok(x.clone());
        }
        let u = generator.uniform(x.shape(), x.dtype())?;
        let keep = u.try_greater_equal(&u.scalar_like(self.rate))?;
        keep.try_select(&(x / (1.0 - self.rate)), &x.zeros_like())
    }

    /// The mask generator's counter (non-trainable), once the layer has run in training.
    fn variables(&self) -> Vec<Variable> {
        self.generator.get().map(|g| vec![g.counter().clone()]).unwrap_or_default()
    }

    fn is_trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    fn set_trainable(&self, trainable: bool) {
        self.trainable.store(trainable, Ordering::Relaxed)
    }

    fn name(&self) -> String {
        "dropout".to_string()
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("Dropout")
            .with("rate", self.rate)
            .with("seed", self.seed)
            .with("trainable", self.is_trainable()))
    }
}
