//! Callbacks for [`super::Trainer::fit_with`] (Keras's `keras.callbacks`): code that runs
//! at the start and end of training, of each epoch and after each batch, sees the epoch's
//! figures (`Logs`) and may stop training. Built-ins: [`EarlyStopping`], [`ModelCheckpoint`],
//! [`LearningRateScheduler`], [`CsvLogger`], [`TensorBoard`]; anything implementing
//! [`Callback`] works too.

use std::cell::Cell;
use std::path::PathBuf;

use crate::nn::Layer;
use crate::optim::Optimizer;
use crate::{Array, DType, Error, Result, Tensor};

/// Named figures, in a fixed order: `loss`, each metric by name, then `val_loss` and
/// `val_<metric>` when there is validation data (Keras's `logs` dict).
pub type Logs = Vec<(String, f64)>;

/// The value named `key` in `logs`.
pub fn log_value(logs: &Logs, key: &str) -> Option<f64> {
    logs.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// What a callback may touch: the model, the optimizer, and the stop flag.
pub struct Context<'a> {
    pub model: &'a dyn Layer,
    pub optimizer: &'a dyn Optimizer,
    pub(crate) stop: &'a Cell<bool>,
    pub(crate) chief: bool,
    pub(crate) graph: &'a std::cell::OnceCell<kiln_ir::Graph>,
}

impl Context<'_> {
    /// Whether this process writes files and logs: always, except in a data-parallel job
    /// (`Trainer::distributed`), where only rank 0 does (the built-in writers obey it).
    pub fn is_chief(&self) -> bool {
        self.chief
    }

    /// The compiled training step's graph, once the first batch has traced it.
    pub fn step_graph(&self) -> Option<&kiln_ir::Graph> {
        self.graph.get()
    }

    /// Ends training after the current epoch (Keras's `model.stop_training = True`).
    pub fn stop_training(&self) {
        self.stop.set(true);
    }
}

/// Hooks into [`super::Trainer::fit_with`]; every method has an empty default. An `Err`
/// stops training and is returned by `fit_with`.
///
/// ```
/// use kiln::training::{Callback, Context, Logs};
/// /// Stops once the loss is below a bound.
/// struct GoodEnough(f64);
/// impl Callback for GoodEnough {
///     fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, ctx: &Context) -> kiln::Result<()> {
///         if kiln::training::log_value(logs, "loss").is_some_and(|l| l < self.0) {
///             ctx.stop_training();
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Callback {
    fn on_train_begin(&mut self, _ctx: &Context) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: usize, _ctx: &Context) -> Result<()> {
        Ok(())
    }
    /// After each training batch, with the running `loss` and metrics of the epoch so far.
    fn on_batch_end(&mut self, _batch: usize, _logs: &Logs, _ctx: &Context) -> Result<()> {
        Ok(())
    }
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, _ctx: &Context) -> Result<()> {
        Ok(())
    }
    fn on_train_end(&mut self, _ctx: &Context) -> Result<()> {
        Ok(())
    }
}

/// Whether a monitored figure should go down or up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Min,
    Max,
    /// `Max` for accuracies, AUC, precision, recall and F1 (by name), `Min` otherwise (Keras).
    Auto,
}

/// Tracks the best value of a monitored figure.
struct Best {
    monitor: String,
    max: bool,
    min_delta: f64,
    best: Option<f64>,
}

impl Best {
    fn new(monitor: &str, mode: Mode, min_delta: f64) -> Best {
        let up = ["acc", "accuracy", "auc", "precision", "recall", "f1"];
        let max = match mode {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => up.iter().any(|u| monitor.trim_start_matches("val_").contains(u)),
        };
        Best { monitor: monitor.to_string(), max, min_delta: min_delta.abs(), best: None }
    }

    /// The monitored value in `logs`, an `Err` naming what is there when it is missing.
    fn value(&self, who: &str, logs: &Logs) -> Result<f64> {
        log_value(logs, &self.monitor).ok_or_else(|| {
            let have: Vec<&str> = logs.iter().map(|(k, _)| k.as_str()).collect();
            Error::Training(format!("{who}: no `{}` in the logs (have: {})", self.monitor, have.join(", ")))
        })
    }

    /// Records `v`; whether it improved on the best so far by more than `min_delta`.
    fn improved(&mut self, v: f64) -> bool {
        let better = match self.best {
            None => !v.is_nan(),
            Some(b) if self.max => v > b + self.min_delta,
            Some(b) => v < b - self.min_delta,
        };
        if better {
            self.best = Some(v);
        }
        better
    }
}

/// Keras `EarlyStopping`: stops when `monitor` (default `val_loss`) has not improved by more
/// than `min_delta` for `patience` epochs; with `restore_best_weights`, the model's Variables
/// go back to their values at the best epoch when training stops (early or not).
pub struct EarlyStopping {
    best: Best,
    patience: usize,
    restore_best_weights: bool,
    wait: usize,
    weights: Option<Vec<Array>>,
}

impl EarlyStopping {
    /// Watches `monitor` (`"val_loss"`, `"loss"`, `"val_accuracy"`, …) in `mode`.
    pub fn new(monitor: &str, mode: Mode, patience: usize) -> EarlyStopping {
        EarlyStopping {
            best: Best::new(monitor, mode, 0.0),
            patience,
            restore_best_weights: false,
            wait: 0,
            weights: None,
        }
    }

    pub fn min_delta(self, min_delta: f64) -> EarlyStopping {
        EarlyStopping { best: Best { min_delta: min_delta.abs(), ..self.best }, ..self }
    }

    pub fn restore_best_weights(self, restore: bool) -> EarlyStopping {
        EarlyStopping { restore_best_weights: restore, ..self }
    }

    /// The best value seen.
    pub fn best(&self) -> Option<f64> {
        self.best.best
    }

    fn restore(&self, ctx: &Context) -> Result<()> {
        if let (true, Some(w)) = (self.restore_best_weights, &self.weights) {
            for (v, a) in ctx.model.variables().iter().zip(w) {
                v.assign(&Tensor::from_array(a.clone()))?;
            }
        }
        Ok(())
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _ctx: &Context) -> Result<()> {
        (self.wait, self.best.best, self.weights) = (0, None, None);
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, ctx: &Context) -> Result<()> {
        let v = self.best.value("EarlyStopping", logs)?;
        if self.best.improved(v) {
            self.wait = 0;
            if self.restore_best_weights {
                self.weights = Some(ctx.model.variables().iter().map(|v| v.value()).collect());
            }
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                ctx.stop_training();
            }
        }
        Ok(())
    }

    fn on_train_end(&mut self, ctx: &Context) -> Result<()> {
        self.restore(ctx)
    }
}

/// Keras `ModelCheckpoint` (weights only): after each epoch, writes the model's Variables to
/// `path` (safetensors, atomically: `checkpoint::save_weights`; its directory is created if
/// missing); with `save_best_only`, only when `monitor` improved.
pub struct ModelCheckpoint {
    path: PathBuf,
    best: Best,
    save_best_only: bool,
}

impl ModelCheckpoint {
    pub fn new(path: impl Into<PathBuf>, monitor: &str, mode: Mode) -> ModelCheckpoint {
        ModelCheckpoint { path: path.into(), best: Best::new(monitor, mode, 0.0), save_best_only: false }
    }

    pub fn save_best_only(self, best_only: bool) -> ModelCheckpoint {
        ModelCheckpoint { save_best_only: best_only, ..self }
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, ctx: &Context) -> Result<()> {
        let save = match self.save_best_only {
            true => self.best.improved(self.best.value("ModelCheckpoint", logs)?),
            false => true,
        };
        if save && ctx.is_chief() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Training(format!("ModelCheckpoint: {}: {e}", dir.display())))?;
            }
            crate::checkpoint::save_weights(ctx.model, &self.path)?;
        }
        Ok(())
    }
}

/// Keras `LearningRateScheduler`: before each epoch, sets the optimizer's (constant)
/// learning rate to `schedule(epoch, current_rate)`.
pub struct LearningRateScheduler {
    schedule: Box<dyn FnMut(usize, f64) -> f64>,
}

impl LearningRateScheduler {
    pub fn new(schedule: impl FnMut(usize, f64) -> f64 + 'static) -> LearningRateScheduler {
        LearningRateScheduler { schedule: Box::new(schedule) }
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &Context) -> Result<()> {
        let now = ctx.optimizer.learning_rate(DType::F64)?.to_scalar::<f64>()?;
        ctx.optimizer.base().set_learning_rate((self.schedule)(epoch, now))
    }
}

/// Keras `CSVLogger`: one row per epoch (`epoch`, then every log) in a CSV file; a new file
/// unless `append`.
pub struct CsvLogger {
    path: PathBuf,
    append: bool,
    writer: Option<csv::Writer<std::fs::File>>,
}

impl CsvLogger {
    pub fn new(path: impl Into<PathBuf>, append: bool) -> CsvLogger {
        CsvLogger { path: path.into(), append, writer: None }
    }
}

fn csv_err(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::Training(format!("CSVLogger: {}: {e}", path.display()))
}

impl Callback for CsvLogger {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &Context) -> Result<()> {
        if !ctx.is_chief() {
            return Ok(());
        }
        if self.writer.is_none() {
            let existed = self.append && self.path.metadata().is_ok_and(|m| m.len() > 0);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(self.append)
                .write(true)
                .truncate(!self.append)
                .open(&self.path)
                .map_err(|e| csv_err(&self.path, e))?;
            let mut w = csv::Writer::from_writer(file);
            if !existed {
                let header = std::iter::once("epoch").chain(logs.iter().map(|(k, _)| k.as_str()));
                w.write_record(header).map_err(|e| csv_err(&self.path, e))?;
            }
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("opened above");
        let row = std::iter::once(epoch.to_string()).chain(logs.iter().map(|(_, v)| v.to_string()));
        w.write_record(row).map_err(|e| csv_err(&self.path, e))?;
        w.flush().map_err(|e| csv_err(&self.path, e))
    }

    fn on_train_end(&mut self, _ctx: &Context) -> Result<()> {
        self.writer = None;
        Ok(())
    }
}

/// Keras `TensorBoard`: an event file in `logdir` with every log as a scalar per epoch
/// (`epoch_loss`, `epoch_val_loss`, …), a histogram of each model Variable per epoch, and the
/// compiled training step's graph (`kiln::summary`).
pub struct TensorBoard {
    logdir: PathBuf,
    histograms: bool,
    writer: Option<crate::summary::SummaryWriter>,
    graph_written: bool,
}

impl TensorBoard {
    pub fn new(logdir: impl Into<PathBuf>) -> TensorBoard {
        TensorBoard { logdir: logdir.into(), histograms: true, writer: None, graph_written: false }
    }

    /// Whether to write the weights' histograms (default true; Keras's `histogram_freq`).
    pub fn histograms(self, on: bool) -> TensorBoard {
        TensorBoard { histograms: on, ..self }
    }
}

impl Callback for TensorBoard {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctx: &Context) -> Result<()> {
        if !ctx.is_chief() {
            return Ok(());
        }
        if self.writer.is_none() {
            self.writer = Some(crate::summary::SummaryWriter::create(&self.logdir)?);
        }
        let w = self.writer.as_ref().expect("created above");
        if let (false, Some(g)) = (self.graph_written, ctx.step_graph()) {
            w.graph(g)?;
            self.graph_written = true;
        }
        for (k, v) in logs {
            w.scalar(&format!("epoch_{k}"), epoch as i64, *v)?;
        }
        if self.histograms {
            for v in ctx.model.variables().iter().filter(|v| v.dtype().is_float()) {
                w.histogram(v.name(), epoch as i64, &v.read())?;
            }
        }
        Ok(())
    }
}
