//! TensorBoard logging (`tf.summary`): a [`SummaryWriter`] appends scalars, histograms,
//! text and graphs to an event file that TensorBoard reads (`tensorboard --logdir <dir>`).
//!
//! The record framing (length, masked CRC-32C) and TensorFlow's `Event`/`Summary` messages
//! come from the `tfrecord` crate; a kiln graph is written as a TensorFlow `GraphDef` (just
//! the messages TensorBoard's graph view reads, encoded with `prost`): one node per kiln
//! node, named `%N`, region and kernel bodies nested under their node's name, each node
//! carrying its type.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_ir::{Graph, NodeId};
use tfrecord::protobuf::summary::value::Value as SummaryValue;
use tfrecord::protobuf::summary_metadata::PluginData;
use tfrecord::protobuf::{event, summary, DataType, Event, Summary, SummaryMetadata, TensorProto, TensorShapeProto};
use tfrecord::{EventMeta, EventWriter, EventWriterConfig};

use crate::{DType, Error, Result, Tensor};

/// A TensorBoard event file under a log directory; every method appends one event and
/// flushes. Safe to share between threads.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("kiln-summary-doc-{}", std::process::id()));
/// let w = kiln::summary::SummaryWriter::create(&dir).unwrap();
/// w.scalar("loss", 0, 0.5).unwrap();
/// w.histogram("weights", 0, &kiln::Tensor::new(&[1.0f32, 2.0, 2.5])).unwrap();
/// w.text("note", 0, "first run").unwrap();
/// assert!(w.path().exists());
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct SummaryWriter {
    writer: Mutex<EventWriter<BufWriter<fs::File>>>,
    path: PathBuf,
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid("summary", format!("{}: {e}", path.display()))
}

impl SummaryWriter {
    /// A new event file `events.out.tfevents.<seconds>.<pid>.kiln` in `logdir` (created if
    /// missing), starting with the file-version event TensorBoard expects.
    pub fn create(logdir: impl AsRef<Path>) -> Result<SummaryWriter> {
        let dir = logdir.as_ref();
        fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let path = dir.join(format!("events.out.tfevents.{secs}.{}.kiln", std::process::id()));
        let config = EventWriterConfig { auto_flush: true };
        let writer = EventWriter::create(&path, config).map_err(|e| err(&path, e))?;
        let w = SummaryWriter { writer: Mutex::new(writer), path };
        w.event(0, event::What::FileVersion("brain.Event:2".into()))?;
        Ok(w)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, e: Event) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_event(e).map_err(|e| err(&self.path, e))
    }

    fn event(&self, step: i64, what: event::What) -> Result<()> {
        let mut e = EventMeta::with_step(step).build_with_summary(Summary { value: Vec::new() });
        e.what = Some(what);
        self.write(e)
    }

    /// A scalar (TensorBoard's Scalars tab).
    pub fn scalar(&self, tag: &str, step: i64, value: f64) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_scalar(tag, step, value as f32).map_err(|e| err(&self.path, e))
    }

    /// A histogram of a tensor's values (the Histograms and Distributions tabs).
    pub fn histogram(&self, tag: &str, step: i64, values: &Tensor) -> Result<()> {
        let v = values.try_cast(DType::F64)?.to_vec::<f64>()?;
        if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid("summary", format!("histogram `{tag}`: values must be finite and non-empty")));
        }
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_histogram(tag, step, v).map_err(|e| err(&self.path, e))
    }

    /// A text entry (the Text tab; markdown).
    pub fn text(&self, tag: &str, step: i64, text: &str) -> Result<()> {
        let tensor = TensorProto {
            dtype: DataType::DtString as i32,
            tensor_shape: Some(TensorShapeProto { dim: Vec::new(), unknown_rank: false }),
            string_val: vec![text.as_bytes().to_vec()],
            ..Default::default()
        };
        let metadata = SummaryMetadata {
            plugin_data: Some(PluginData { plugin_name: "text".into(), content: Vec::new() }),
            ..Default::default()
        };
        let value = summary::Value {
            tag: tag.into(),
            metadata: Some(metadata),
            value: Some(SummaryValue::Tensor(tensor)),
            ..Default::default()
        };
        let e = EventMeta::with_step(step).build_with_summary(Summary { value: vec![value] });
        self.write(e)
    }

    /// A graph (the Graphs tab), e.g. a traced function's `f.graph(args)`.
    pub fn graph(&self, g: &Graph) -> Result<()> {
        let mut nodes = Vec::new();
        graph_def(g, "", &mut nodes)?;
        let bytes = prost::Message::encode_to_vec(&GraphDef { node: nodes });
        self.event(0, event::What::GraphDef(bytes))
    }
}

/// The parts of TensorFlow's `GraphDef` (graph.proto, node_def.proto, attr_value.proto)
/// TensorBoard's graph view reads: nodes with a name, an op, inputs and attributes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphDef {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeDef {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub op: String,
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    #[prost(map = "string, message", tag = "5")]
    pub attr: std::collections::HashMap<String, AttrValue>,
}

/// An attribute value; kiln writes strings (`s`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttrValue {
    #[prost(bytes = "vec", tag = "2")]
    pub s: Vec<u8>,
}

/// Appends the nodes of `g` named under `scope`, and those of the bodies inside them.
fn graph_def(g: &Graph, scope: &str, out: &mut Vec<NodeDef>) -> Result<()> {
    let order = g.topo_order()?;
    let number: std::collections::HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let name = |n: NodeId| format!("{scope}%{}", number[&n]);
    for &n in &order {
        let node = g.node(n);
        let attr =
            std::collections::HashMap::from([("type".to_string(), AttrValue { s: node.ty.to_string().into_bytes() })]);
        let input = g.args(n).iter().map(|&a| name(a)).collect();
        out.push(NodeDef { name: name(n), op: node.op.name().to_string(), input, attr });
        let bodies: Vec<&Graph> = match &node.op {
            kiln_ir::Op::Fused(k) => vec![&k.body],
            op => op.regions().into_iter().map(|r| &r.graph).collect(),
        };
        for (k, body) in bodies.into_iter().enumerate() {
            graph_def(body, &format!("{}/body{k}/", name(n)), out)?;
        }
    }
    Ok(())
}
