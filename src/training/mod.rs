//! Keras-like training helpers: [`Trainer::fit`].
mod fit;
pub use fit::{History, Trainer};
