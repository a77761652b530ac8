//! `GaussianNoise`: additive zero-mean noise in training, a fresh draw every call.

use std::sync::OnceLock;

use super::{Layer, LayerState};
use crate::models::{Config, ObjectConfig};
use crate::random::Generator;
use crate::{Error, Result, Tensor};

/// Keras's `GaussianNoise`: in training, `x + N(0, stddev²)` elementwise; in inference the
/// identity. The noise comes from a [`Generator`] seeded from the process-wide sequence
/// ([`crate::random::set_global_seed`] makes a program reproducible) whose counter Variable
/// advances every call, so a compiled training step draws new noise each time it runs, with
/// no seed threaded by hand (the chapter's `MyGaussianNoise`).
///
/// ```
/// use kiln::nn::{GaussianNoise, Layer};
/// use kiln::{DType, Tensor};
/// let noise = GaussianNoise::new(0.5).seed(1);
/// let x = Tensor::zeros(&[10_000], DType::F32);
/// let a = noise.call(&x, true).unwrap();
/// let std = a.square().mean_all().sqrt().to_scalar::<f32>().unwrap();
/// assert!((std - 0.5).abs() < 0.02);
/// assert_ne!(a.to_vec::<f32>().unwrap(), noise.call(&x, true).unwrap().to_vec::<f32>().unwrap());
/// assert_eq!(noise.call(&x, false).unwrap().to_vec::<f32>().unwrap(), vec![0.0; 10_000]);
/// ```
pub struct GaussianNoise {
    stddev: f64,
    seed: u64,
    generator: OnceLock<Generator>,
    state: LayerState,
}

impl GaussianNoise {
    /// Noise of standard deviation `stddev` (non-negative; panics otherwise, a programming
    /// error).
    #[track_caller]
    pub fn new(stddev: f64) -> GaussianNoise {
        assert!(stddev >= 0.0, "GaussianNoise stddev must be >= 0, got {stddev}");
        GaussianNoise {
            stddev,
            seed: crate::random::next_seed(),
            generator: OnceLock::new(),
            state: LayerState::new("gaussian_noise"),
        }
    }

    /// Seeds the noise stream.
    pub fn seed(self, seed: u64) -> GaussianNoise {
        GaussianNoise { seed, ..self }
    }

    /// The layer of a config written by [`Layer::get_config`].
    pub fn from_config(c: &Config) -> Result<GaussianNoise> {
        let stddev: f64 = c.get("stddev")?;
        if stddev.is_nan() || stddev < 0.0 {
            return Err(Error::invalid("GaussianNoise", format!("stddev must be >= 0, got {stddev}")));
        }
        Ok(GaussianNoise {
            stddev,
            seed: c.get("seed")?,
            generator: OnceLock::new(),
            state: LayerState::from_config(c)?,
        })
    }
}

impl Layer for GaussianNoise {
    fn state(&self) -> Option<&LayerState> {
        Some(&self.state)
    }

    /// The generator's counter is the layer's state, made on the first call (training or
    /// not, so the layer's Variables do not depend on which mode ran first).
    fn build(&self, _input_shapes: &[&[usize]]) -> Result<()> {
        let _ = self.generator.get_or_init(|| {
            let g = Generator::new(self.seed);
            self.state.track_variable(g.counter().clone());
            g
        });
        Ok(())
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(self.state.config("GaussianNoise").with("stddev", self.stddev).with("seed", self.seed))
    }

    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        if !x.dtype().is_float() {
            return Err(Error::invalid("GaussianNoise", format!("takes float inputs, got {}", x.tensor_type())));
        }
        if !training || self.stddev == 0.0 {
            return Ok(vec![x.clone()]);
        }
        let g = self.generator.get().expect("made by build");
        Ok(vec![x.try_add(&g.normal(x.shape(), x.dtype())?.try_mul(&x.scalar_like(self.stddev))?)?])
    }
}
