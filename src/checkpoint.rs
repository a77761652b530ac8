//! Weight checkpoints in the safetensors format, keyed by Variable name.
//!
//! Loading is all-or-nothing: the file is parsed and every tensor checked against its
//! Variable (name, dtype, shape, no missing or extra tensor) before any Variable is
//! assigned, so a failed load changes nothing.
//!
//! ```
//! use kiln::{checkpoint, Tensor, Variable};
//! let w = Variable::with_options(Tensor::new(&[1.0f32, 2.0]), "w", true);
//! let path = std::env::temp_dir().join("kiln_checkpoint_doc.safetensors");
//! checkpoint::save(&path, &[&w]).unwrap();
//! w.assign(&Tensor::new(&[0.0f32, 0.0])).unwrap();
//! checkpoint::load(&path, &[&w]).unwrap();
//! assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use kiln_ir::{Array, DType};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::nn::Layer;
use crate::{Error, Result, Tensor, Variable};

fn to_st(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::I32 => Dtype::I32,
        DType::I64 => Dtype::I64,
        DType::Bool => Dtype::BOOL,
    }
}

fn from_st(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::I32 => DType::I32,
        Dtype::I64 => DType::I64,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Checkpoint(format!("{}: {msg}", path.display()))
}

/// Names must be unique: they are the checkpoint's keys.
fn check_unique(path: &Path, vars: &[&Variable]) -> Result<()> {
    let mut seen = HashSet::new();
    for v in vars {
        if !seen.insert(v.name()) {
            return Err(err(path, format!("two variables are named `{}`; checkpoint keys must be unique", v.name())));
        }
    }
    Ok(())
}

/// Writes the current values of `vars` to `path`, one tensor per Variable name. The file is
/// replaced atomically: if the save fails or the process dies, the previous file remains.
pub fn save(path: impl AsRef<Path>, vars: &[&Variable]) -> Result<()> {
    let path = path.as_ref();
    check_unique(path, vars)?;
    let named: Vec<(String, Array)> = vars.iter().map(|v| (v.name().to_string(), v.value())).collect();
    write_file(path, &named, None)
}

/// Writes `named` arrays (and string `metadata`) as one safetensors file, atomically.
pub(crate) fn write_file(
    path: &Path,
    named: &[(String, Array)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let mut views = BTreeMap::new();
    for (name, a) in named {
        let view = TensorView::new(to_st(a.dtype()), a.shape().to_vec(), a.data().as_bytes())
            .map_err(|e| err(path, format!("tensor `{name}`: {e}")))?;
        views.insert(name.clone(), view);
    }
    let bytes = safetensors::serialize(views, metadata).map_err(|e| err(path, e))?;
    crate::atomic_file::write(path, &bytes).map_err(|e| err(path, e))
}

/// One tensor of a safetensors file as a Tensor; the message names what is wrong.
pub(crate) fn decode(name: &str, t: &TensorView<'_>) -> std::result::Result<Tensor, String> {
    let dtype = from_st(t.dtype()).ok_or_else(|| format!("tensor `{name}` has unsupported dtype {:?}", t.dtype()))?;
    let data = kiln_ir::Data::from_bytes(dtype, t.data()).map_err(|e| format!("tensor `{name}`: {e}"))?;
    let array = Array::new(data, t.shape()).map_err(|e| format!("tensor `{name}`: {e}"))?;
    Ok(Tensor::from_array(array))
}

/// Reads `path` and assigns each Variable the tensor of its name. Any mismatch (missing or
/// extra tensor, dtype, shape, a corrupt or truncated file) is an `Err` naming it, and then
/// no Variable has changed.
pub fn load(path: impl AsRef<Path>, vars: &[&Variable]) -> Result<()> {
    let path = path.as_ref();
    check_unique(path, vars)?;
    let bytes = std::fs::read(path).map_err(|e| err(path, e))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| err(path, format!("not a valid safetensors file: {e}")))?;
    let wanted: HashSet<&str> = vars.iter().map(|v| v.name()).collect();
    let mut extra: Vec<String> =
        file.names().into_iter().filter(|n| !wanted.contains(*n)).map(str::to_string).collect();
    if !extra.is_empty() {
        extra.sort();
        return Err(err(path, format!("tensors with no matching variable: {}", extra.join(", "))));
    }
    // Validate and decode everything first; assign only when all of it is good.
    let mut decoded = Vec::with_capacity(vars.len());
    for v in vars {
        let t = file.tensor(v.name()).map_err(|_| err(path, format!("missing tensor `{}`", v.name())))?;
        let t = decode(v.name(), &t).map_err(|e| err(path, e))?;
        check_fits(v, &t).map_err(|e| err(path, e))?;
        decoded.push(t);
    }
    for (v, t) in vars.iter().zip(&decoded) {
        v.assign(t)?;
    }
    Ok(())
}

/// Whether `t` may be assigned to `v` (same dtype and shape); the message names both.
pub(crate) fn check_fits(v: &Variable, t: &Tensor) -> std::result::Result<(), String> {
    if t.dtype() != v.dtype() || t.shape() != v.shape() {
        return Err(format!("tensor `{}` is {} but the variable is {}", v.name(), t.tensor_type(), v.tensor_type()));
    }
    Ok(())
}

/// Saves every Variable of `model` (weights and non-trainable state such as moving
/// statistics) with [`save`].
pub fn save_weights(model: &dyn Layer, path: impl AsRef<Path>) -> Result<()> {
    let vars = model.variables();
    save(path, &vars.iter().collect::<Vec<_>>())
}

/// Loads every Variable of `model` with [`load`]; the model must be built (called once) so
/// its Variables exist.
pub fn load_weights(model: &dyn Layer, path: impl AsRef<Path>) -> Result<()> {
    let vars = model.variables();
    if vars.is_empty() {
        return Err(err(
            path.as_ref(),
            format!("model `{}` has no variables yet; call it once to build it", model.name()),
        ));
    }
    load(path, &vars.iter().collect::<Vec<_>>())
}
