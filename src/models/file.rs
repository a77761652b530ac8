//! The saved-model file (format `kiln.model`, version 1): one safetensors file whose
//! metadata holds the format, the version and the model's JSON header — architecture,
//! input types, the weights' names and types, the compiled loss, optimizer and metrics —
//! and whose tensors are the weights (`weights/<i>`, in `Layer::variables` order) and the
//! optimizer's state (`optimizer/iterations`, `optimizer/learning_rate`,
//! `optimizer/state/<name>`, `optimizer/slots/<weight index>/<slot index>`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use super::{CustomObjects, Model, ObjectConfig};
use crate::checkpoint::{check_fits, decode, write_file};
use crate::losses::Loss;
use crate::metrics::LabelMetric;
use crate::nn::Layer;
use crate::optim::Optimizer;
use crate::{Array, DType, Error, Result, Tensor, Variable};

/// The format name a saved model's metadata carries.
pub const FORMAT: &str = "kiln.model";
/// The format version this kiln writes and reads.
pub const VERSION: u64 = 1;

/// The largest input (elements) a loaded model is built with.
const MAX_BUILD_ELEMENTS: usize = 1 << 24;

#[derive(Serialize, Deserialize)]
struct TypeSpec {
    dtype: String,
    shape: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
struct Compiled {
    loss: ObjectConfig,
    optimizer: ObjectConfig,
    metrics: Vec<ObjectConfig>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    architecture: ObjectConfig,
    inputs: Vec<TypeSpec>,
    /// Each weight's name and type, for messages and checks.
    weights: Vec<(String, TypeSpec)>,
    compile: Option<Compiled>,
}

/// What one save writes: the header and the named tensors.
pub(super) struct Snapshot {
    header: Header,
    tensors: Vec<(String, Array)>,
}

fn spec(dtype: DType, shape: &[usize]) -> TypeSpec {
    TypeSpec { dtype: dtype.to_string(), shape: shape.to_vec() }
}

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid("load_model", format!("{}: {msg}", path.display()))
}

impl Snapshot {
    pub(super) fn capture(
        layer: &dyn Layer,
        loss: Option<&dyn Loss>,
        optimizer: Option<&dyn Optimizer>,
        metrics: &[Arc<dyn LabelMetric>],
    ) -> Result<Snapshot> {
        let architecture = layer.get_config()?;
        let inputs = layer.build_inputs().ok_or_else(|| {
            Error::invalid(
                "save_model",
                format!("model `{}` has not been called yet: call it once so its weights exist", layer.name()),
            )
        })?;
        let vars = layer.variables();
        let mut tensors: Vec<(String, Array)> =
            vars.iter().enumerate().map(|(i, v)| (format!("weights/{i}"), v.value())).collect();
        let compile = match (loss, optimizer) {
            (Some(loss), Some(opt)) => {
                tensors.extend(optimizer_state(opt, &vars));
                Some(Compiled {
                    loss: loss.get_config()?,
                    optimizer: opt.get_config()?,
                    metrics: metrics.iter().map(|m| m.get_config()).collect::<Result<_>>()?,
                })
            }
            _ => None,
        };
        let header = Header {
            architecture,
            inputs: inputs.iter().map(|t| spec(t.dtype, &t.shape)).collect(),
            weights: vars.iter().map(|v| (v.name().to_string(), spec(v.dtype(), v.shape()))).collect(),
            compile,
        };
        Ok(Snapshot { header, tensors })
    }
}

/// The optimizer's Variables under their file names; slots are keyed by their weight's index.
fn optimizer_state(opt: &dyn Optimizer, vars: &[Variable]) -> Vec<(String, Array)> {
    let base = opt.base();
    let mut out = vec![("optimizer/iterations".to_string(), base.iterations().value())];
    out.extend(base.learning_rate_variable().map(|v| ("optimizer/learning_rate".to_string(), v.value())));
    for (name, v) in base.state_variables() {
        out.push((format!("optimizer/state/{name}"), v.value()));
    }
    for (i, v) in vars.iter().enumerate() {
        for (k, s) in base.existing_slots(v).unwrap_or_default().iter().enumerate() {
            out.push((format!("optimizer/slots/{i}/{k}"), s.value()));
        }
    }
    out
}

pub(super) fn write(path: &Path, snap: &Snapshot) -> Result<()> {
    let header = serde_json::to_string(&snap.header).map_err(|e| Error::invalid("save_model", e.to_string()))?;
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("model".to_string(), header),
    ]);
    write_file(path, &snap.tensors, Some(metadata))
}

pub(super) fn read(path: &Path, objects: &CustomObjects) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| err(path, format!("not a kiln model file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let (format, version) = (meta.get("format"), meta.get("version"));
    if format.map(String::as_str) != Some(FORMAT) || version.map(String::as_str) != Some(&VERSION.to_string()) {
        return Err(err(
            path,
            format!("not a {FORMAT} version {VERSION} file (format {format:?}, version {version:?})"),
        ));
    }
    let header: Header = serde_json::from_str(meta.get("model").map_or("", String::as_str))
        .map_err(|e| err(path, format!("header: {e}")))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| err(path, format!("not a valid safetensors file: {e}")))?;
    let tensor = |name: &str| -> Result<Tensor> {
        let view = file.tensor(name).map_err(|_| err(path, format!("missing tensor `{name}`")))?;
        decode(name, &view).map_err(|e| err(path, e))
    };

    let layer = objects.make_layer(&header.architecture)?;
    build(&layer, &header.inputs).map_err(|e| err(path, format!("building the model: {e}")))?;
    let vars = layer.variables();
    if vars.len() != header.weights.len() {
        return Err(err(
            path,
            format!("the rebuilt model has {} weights, the file {}", vars.len(), header.weights.len()),
        ));
    }
    let weights = (0..vars.len()).map(|i| tensor(&format!("weights/{i}"))).collect::<Result<Vec<_>>>()?;
    for (v, t) in vars.iter().zip(&weights) {
        check_fits(v, t).map_err(|e| err(path, e))?;
    }
    for (v, t) in vars.iter().zip(&weights) {
        v.assign(t)?;
    }
    let mut model = Model::new(layer);
    if let Some(c) = &header.compile {
        let optimizer = objects.make_optimizer(&c.optimizer)?;
        restore_optimizer(optimizer.as_ref(), &vars, &file, &tensor).map_err(|e| err(path, e))?;
        let metrics = c.metrics.iter().map(|m| objects.make_metric(m)).collect::<Result<Vec<_>>>()?;
        model = model.compile(objects.make_loss(&c.loss)?, optimizer, metrics);
    }
    Ok(model)
}

/// Calls the rebuilt model once, on zeros of the saved input types, so it makes its weights.
fn build(layer: &Arc<dyn Layer>, inputs: &[TypeSpec]) -> Result<()> {
    let zeros = inputs
        .iter()
        .map(|t| {
            let dtype: DType = t.dtype.parse().map_err(|e: String| Error::invalid("load_model", e))?;
            match kiln_ir::shape::checked_numel(&t.shape) {
                Some(n) if n <= MAX_BUILD_ELEMENTS => Tensor::try_zeros(&t.shape, dtype),
                _ => Err(Error::invalid("load_model", format!("input shape {:?} is too large to build with", t.shape))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    // A hand-written layer implements `call` (one input) only.
    crate::init_scope(|| match zeros.as_slice() {
        [x] => layer.call(x, false).map(|_| ()),
        _ => layer.call_many(&zeros, false).map(|_| ()),
    })
}

/// Sets the fresh optimizer's state from the file: the step, the rate, its own state and
/// each weight's slots (created for the rebuilt weight, then assigned).
fn restore_optimizer(
    opt: &dyn Optimizer,
    vars: &[Variable],
    file: &SafeTensors<'_>,
    tensor: &dyn Fn(&str) -> Result<Tensor>,
) -> Result<()> {
    let base = opt.base();
    let set = |v: &Variable, t: &Tensor| -> Result<()> {
        check_fits(v, t).map_err(|e| Error::invalid("load_model", format!("optimizer state: {e}")))?;
        v.assign(t)
    };
    for name in file.names() {
        let Some(key) = name.strip_prefix("optimizer/") else { continue };
        let t = tensor(name)?;
        if key == "iterations" {
            set(base.iterations(), &t)?;
        } else if key == "learning_rate" {
            let lr = base.learning_rate_variable().ok_or_else(|| {
                Error::invalid("load_model", "the file has a constant learning rate, the optimizer a schedule")
            })?;
            set(lr, &t)?;
        } else if let Some(state) = key.strip_prefix("state/") {
            let v = base.state_variable(state, || Ok(t.clone()))?;
            set(&v, &t)?;
        } else if let Some(slot) = key.strip_prefix("slots/") {
            let bad = || Error::invalid("load_model", format!("optimizer state: bad slot `{name}`"));
            let (i, k) = slot.split_once('/').ok_or_else(bad)?;
            let (i, k): (usize, usize) = (i.parse().map_err(|_| bad())?, k.parse().map_err(|_| bad())?);
            let var = vars.get(i).ok_or_else(bad)?;
            let slots = base.slots(var)?;
            set(slots.get(k).ok_or_else(bad)?, &t)?;
        } else {
            return Err(Error::invalid("load_model", format!("unknown optimizer state `{name}`")));
        }
    }
    Ok(())
}
