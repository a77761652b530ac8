//! Keras-like training helpers: [`Trainer::fit`] / [`Trainer::fit_with`] and the
//! [`callbacks`] they run.
pub mod callbacks;
mod fit;
pub use callbacks::{
    log_value, Callback, Context, CsvLogger, EarlyStopping, LearningRateScheduler, Logs, Mode, ModelCheckpoint,
    TensorBoard,
};
pub use fit::{FitOptions, History, Trainer};
