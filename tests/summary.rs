//! TensorBoard event files (`kiln::summary`, the `TensorBoard` callback): read back with the
//! `tfrecord` crate's reader, which checks every record's masked CRC-32C, and decoded as
//! TensorFlow `Event`s; each scalar, histogram, text and graph is what was written.

use std::sync::Arc;

use kiln::data::Dataset;
use kiln::losses::MeanSquaredError;
use kiln::nn::{Dense, Layer, Sequential};
use kiln::optim::SGD;
use kiln::summary::{GraphDef, SummaryWriter};
use kiln::training::{FitOptions, TensorBoard, Trainer};
use kiln::{DType, Tensor};
use prost::Message;
use tfrecord::protobuf::event::What;
use tfrecord::protobuf::summary::value::Value;
use tfrecord::{Event, EventIter, RecordReaderConfig};

fn read(path: &std::path::Path) -> Vec<Event> {
    EventIter::open(path, RecordReaderConfig { check_integrity: true }).unwrap().map(|e| e.unwrap()).collect()
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-summary-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn event_file(dir: &std::path::Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn every_kind_of_summary_reads_back() {
    let d = dir("kinds");
    let w = SummaryWriter::create(&d).unwrap();
    w.scalar("loss", 3, 0.25).unwrap();
    w.histogram("w", 3, &Tensor::new(&[1.0f32, 2.0, 2.0, 5.0])).unwrap();
    w.text("note", 4, "hello *TensorBoard*").unwrap();
    let f = kiln::function(|x: &Tensor| (x.matmul(&x.t()) + 1.0).tanh().sum(&[1], false));
    let graph = f.graph(&Tensor::ones(&[3, 2], DType::F32)).unwrap();
    w.graph(&graph).unwrap();
    assert!(w.histogram("bad", 0, &Tensor::new(&[f32::NAN])).is_err());
    let events = read(w.path());
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
    let summary = |e: &Event| match &e.what {
        Some(What::Summary(s)) => s.value[0].clone(),
        other => panic!("not a summary: {other:?}"),
    };
    let s = summary(&events[1]);
    assert_eq!((s.tag.as_str(), events[1].step), ("loss", 3));
    assert_eq!(s.value, Some(Value::SimpleValue(0.25)));
    match summary(&events[2]).value {
        Some(Value::Histo(h)) => assert_eq!((h.num, h.sum, h.min, h.max), (4.0, 10.0, 1.0, 5.0)),
        other => panic!("{other:?}"),
    }
    let t = summary(&events[3]);
    assert_eq!(t.metadata.unwrap().plugin_data.unwrap().plugin_name, "text");
    match t.value {
        Some(Value::Tensor(p)) => assert_eq!(p.string_val, vec![b"hello *TensorBoard*".to_vec()]),
        other => panic!("{other:?}"),
    }
    let Some(What::GraphDef(bytes)) = &events[4].what else { panic!("not a graph") };
    let g = GraphDef::decode(bytes.as_slice()).unwrap();
    assert!(g.node.len() >= graph.len(), "every node, kernel bodies included");
    assert!(g.node.iter().any(|n| n.op == "matmul"));
    assert!(g.node.iter().any(|n| n.op == "fused" && !n.input.is_empty()));
    // A corrupted byte fails the CRC check.
    let mut raw = std::fs::read(w.path()).unwrap();
    let last = raw.len() - 10;
    raw[last] ^= 0xff;
    let bad = d.join("corrupt");
    std::fs::write(&bad, raw).unwrap();
    assert!(EventIter::open(&bad, RecordReaderConfig { check_integrity: true }).unwrap().any(|e| e.is_err()));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_tensorboard_callback_logs_every_epoch_the_weights_and_the_step_graph() {
    let d = dir("callback");
    let x = Tensor::random_normal(&[32, 3], DType::F32, 2);
    let y = x.sum(-1, true);
    let model = Arc::new(Sequential::new().add(Dense::new(1).seed(1)));
    let trainer = Trainer::new(model.clone(), Arc::new(MeanSquaredError), Arc::new(SGD::new(0.1)), vec![]);
    let options = FitOptions {
        epochs: 3,
        verbose: false,
        validation_split: 0.25,
        callbacks: vec![Box::new(TensorBoard::new(&d))],
        ..FitOptions::default()
    };
    let h = trainer.fit_with(&Dataset::from_tensors(&[x, y]).unwrap().batch(8, false), options).unwrap();
    let events = read(&event_file(&d));
    let scalars = |tag: &str| -> Vec<(i64, f32)> {
        events
            .iter()
            .filter_map(|e| match &e.what {
                Some(What::Summary(s)) if s.value[0].tag == tag => match s.value[0].value {
                    Some(Value::SimpleValue(v)) => Some((e.step, v)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    let loss = scalars("epoch_loss");
    assert_eq!(loss.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![0, 1, 2]);
    for ((_, v), want) in loss.iter().zip(&h.loss) {
        assert_eq!(*v, *want as f32);
    }
    assert_eq!(scalars("epoch_val_loss").len(), 3);
    let kernel = model.variables()[0].name().to_string();
    let histos =
        events.iter().filter(|e| matches!(&e.what, Some(What::Summary(s)) if s.value[0].tag == kernel)).count();
    assert_eq!(histos, 3);
    assert_eq!(events.iter().filter(|e| matches!(e.what, Some(What::GraphDef(_)))).count(), 1);
    std::fs::remove_dir_all(&d).unwrap();
}
