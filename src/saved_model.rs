//! SavedModel-like bundles: a directory holding every traced signature of a
//! [`crate::Function`] as a graph, with its input and output types and the Variables it
//! uses, loadable and callable in another process without the Rust closure that made it.
//!
//! Layout (format `kiln.saved_model`, version 1):
//! - `saved_model.json`: the manifest — format name and version, then per signature the file of
//!   its graph, its input and output types, and the names of its Variables in `VarId` order;
//!   then every Variable's name and trainability;
//! - `signature_<i>.json`: the traced graph of signature `i` in kiln's JSON IR (as
//!   `Graph::to_json` writes it; a bundle's version pins that format);
//! - `variables.safetensors`: every Variable's value (`checkpoint::save`).
//!
//! A bundle of another format or version is an `Err`, never a misread; so is a missing or
//! malformed file, and loading it creates no Variable anyone else holds. Each file is
//! written atomically. Loaded signatures run compiled; their Variables are Variables, so a
//! loaded training step keeps training.

use std::path::Path;

use serde_json::{json, Value};

use crate::function::{Backend, ConcreteFunction};
use kiln_ir::TensorType;

use crate::{Error, Function, Graph, Result, Tensor, Variable};

/// The format name and version a bundle's manifest carries.
pub const FORMAT: &str = "kiln.saved_model";
pub const VERSION: u64 = 1;

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid("saved_model", format!("{}: {msg}", path.display()))
}

/// Writes every signature `f` has traced (call it once per signature first) to `dir`.
///
/// ```
/// use kiln::{DType, Tensor, Variable};
/// let w = Variable::with_options(Tensor::new(&[2.0f32]), "w", true);
/// let f = kiln::function(move |x: &Tensor| x * &w.read());
/// let x = Tensor::new(&[1.0f32, 3.0]);
/// let want = f.call(&x).unwrap();
/// let dir = std::env::temp_dir().join(format!("kiln-saved-model-doc-{}", std::process::id()));
/// kiln::saved_model::save(&f, &dir).unwrap();
/// let loaded = kiln::saved_model::load(&dir).unwrap();
/// assert_eq!(loaded.call(&[x]).unwrap()[0].to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn save<O: crate::Outputs>(f: &Function<O>, dir: impl AsRef<Path>) -> Result<()> {
    let dir = dir.as_ref();
    let signatures = f.concrete_functions();
    if signatures.is_empty() {
        return Err(err(dir, "the function has no traced signature yet: call it (or `concrete_function`) first"));
    }
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let mut all: Vec<Variable> = Vec::new();
    let mut entries = Vec::new();
    for (i, c) in signatures.iter().enumerate() {
        let g = c.traced();
        let file = format!("signature_{i}.json");
        crate::atomic_file::write(&dir.join(&file), g.to_json().as_bytes()).map_err(|e| err(dir, e))?;
        for v in c.variables() {
            if !all.iter().any(|a| a.same_as(v)) {
                all.push(v.clone());
            }
        }
        let types =
            |ids: &[kiln_ir::NodeId]| -> Vec<String> { ids.iter().map(|&n| g.node(n).ty.to_string()).collect() };
        let vars: Vec<&str> = c.variables().iter().map(Variable::name).collect();
        entries.push(
            json!({ "graph": file, "inputs": types(g.inputs()), "outputs": types(g.outputs()), "variables": vars }),
        );
    }
    crate::checkpoint::save(dir.join("variables.safetensors"), &all.iter().collect::<Vec<_>>())?;
    let variables: Vec<Value> = all.iter().map(|v| json!({ "name": v.name(), "trainable": v.trainable() })).collect();
    let manifest = json!({ "format": FORMAT, "version": VERSION, "signatures": entries, "variables": variables });
    let text = serde_json::to_string_pretty(&manifest).expect("a JSON tree of strings");
    crate::atomic_file::write(&dir.join("saved_model.json"), text.as_bytes()).map_err(|e| err(dir, e))
}

/// A loaded bundle: its signatures, compiled, and its Variables.
pub struct SavedModel {
    signatures: Vec<ConcreteFunction>,
    variables: Vec<Variable>,
}

impl SavedModel {
    /// Runs the signature whose input types match `args`; an `Err` listing the signatures
    /// otherwise. Variable writes commit as in any compiled call.
    pub fn call(&self, args: &[Tensor]) -> Result<Vec<Tensor>> {
        let matches = |c: &ConcreteFunction| {
            let g = c.traced();
            g.inputs().len() == args.len() && g.inputs().iter().zip(args).all(|(&n, a)| g.node(n).ty == a.tensor_type())
        };
        match self.signatures.iter().find(|c| matches(c)) {
            Some(c) => c.run(args),
            None => {
                let have: Vec<String> = self.signatures.iter().map(|c| signature_text(c.traced())).collect();
                let got: Vec<String> = args.iter().map(|a| a.tensor_type().to_string()).collect();
                Err(Error::invalid(
                    "saved_model",
                    format!("no signature takes ({}); the bundle has: {}", got.join(", "), have.join("; ")),
                ))
            }
        }
    }

    /// The bundle's Variables (their values as loaded, then as calls change them).
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// Each signature's traced graph.
    pub fn graphs(&self) -> Vec<&Graph> {
        self.signatures.iter().map(ConcreteFunction::traced).collect()
    }
}

fn signature_text(g: &Graph) -> String {
    let ins: Vec<String> = g.inputs().iter().map(|&n| g.node(n).ty.to_string()).collect();
    format!("({})", ins.join(", "))
}

/// Reads a bundle written by [`save`] and compiles its signatures.
pub fn load(dir: impl AsRef<Path>) -> Result<SavedModel> {
    let dir = dir.as_ref();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| err(&dir.join(name), e));
    let manifest: Value =
        serde_json::from_str(&read("saved_model.json")?).map_err(|e| err(dir, format!("manifest: {e}")))?;
    let (format, version) = (manifest["format"].as_str(), manifest["version"].as_u64());
    if format != Some(FORMAT) || version != Some(VERSION) {
        return Err(err(
            dir,
            format!("not a {FORMAT} version {VERSION} bundle (format {format:?}, version {version:?})"),
        ));
    }
    let bad = |what: &str| err(dir, format!("manifest: {what}"));
    // Every signature's graph first, so the Variables' types come from their declarations.
    let mut graphs = Vec::new();
    for s in manifest["signatures"].as_array().ok_or_else(|| bad("no `signatures` list"))? {
        let file = s["graph"]
            .as_str()
            .filter(|f| !f.contains(['/', '\\']))
            .ok_or_else(|| bad("a signature without a graph file"))?;
        let g = Graph::from_json(&read(file)?).map_err(|e| err(&dir.join(file), e))?;
        let names: Vec<&str> = s["variables"]
            .as_array()
            .ok_or_else(|| bad("a signature without `variables`"))?
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect();
        if names.len() != g.vars().len() || names.iter().zip(g.vars()).any(|(n, d)| *n != d.name) {
            return Err(err(&dir.join(file), "its variables differ from the manifest's"));
        }
        graphs.push(g);
    }
    let mut variables: Vec<Variable> = Vec::new();
    for v in manifest["variables"].as_array().ok_or_else(|| bad("no `variables` list"))? {
        let name = v["name"].as_str().ok_or_else(|| bad("a variable without a name"))?;
        let ty: &TensorType = graphs
            .iter()
            .flat_map(|g| g.vars())
            .find(|d| d.name == name)
            .map(|d| &d.ty)
            .ok_or_else(|| bad(&format!("variable `{name}` is used by no signature")))?;
        let trainable = v["trainable"].as_bool().unwrap_or(true);
        variables.push(crate::init_scope(|| {
            Variable::try_with_options(Tensor::zeros(&ty.shape, ty.dtype), Some(name), trainable)
        })?);
    }
    crate::checkpoint::load(dir.join("variables.safetensors"), &variables.iter().collect::<Vec<_>>())?;
    let signatures = graphs
        .into_iter()
        .map(|g| {
            let vars = g
                .vars()
                .iter()
                .map(|d| variables.iter().find(|v| v.name() == d.name).expect("listed above").clone())
                .collect();
            ConcreteFunction::from_graph(
                g,
                vars,
                Backend::Compiled,
                &crate::function::default_pipeline(),
                crate::function::no_dump(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SavedModel { signatures, variables })
}
