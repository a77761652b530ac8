//! `data::Pipeline` against TensorFlow's tf.data (tests/golden/tf_data.json, made by
//! tests/golden/tf_data.py): take/skip/repeat, batch, filter and map (compiled), interleave
//! order, padded_batch shapes and values, concatenate, zip, flat_map, unbatch, decode_csv
//! with defaults and its errors. Then what TF cannot be compared on: shuffle's properties,
//! error propagation, prefetch's thread (errors, early drop, no leaked thread), CSV files,
//! and `Dataset::pipeline`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kiln::data::{decode_csv, CsvColumn, Dataset, Pipeline, TextLineDataset};
use kiln::{DType, Error, Tensor};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/tf_data.json")).unwrap()
}

fn dtype(name: &str) -> DType {
    match name {
        "int64" => DType::I64,
        "int32" => DType::I32,
        "float32" => DType::F32,
        "float64" => DType::F64,
        other => panic!("dtype {other}"),
    }
}

/// Compares a tensor with a golden component exactly (every value is exact in f64).
fn same(got: &Tensor, want: &Value, what: &str) {
    let shape: Vec<usize> = want["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f64> = want["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    assert_eq!(got.dtype(), dtype(want["dtype"].as_str().unwrap()), "{what}: dtype");
    assert_eq!(got.shape(), shape.as_slice(), "{what}: shape");
    assert_eq!(got.cast(DType::F64).to_vec::<f64>().unwrap(), data, "{what}: values");
}

fn check(name: &str, p: &Pipeline) {
    let g = golden();
    let want = g["cases"][name].as_array().unwrap_or_else(|| panic!("no golden {name}"));
    let got: Vec<Vec<Tensor>> = p.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), want.len(), "{name}: element count");
    for (i, (e, w)) in got.iter().zip(want).enumerate() {
        let w = w.as_array().unwrap();
        assert_eq!(e.len(), w.len(), "{name}[{i}]: components");
        for (c, (t, wc)) in e.iter().zip(w).enumerate() {
            same(t, wc, &format!("{name}[{i}][{c}]"));
        }
    }
}

fn range(a: i64, b: i64) -> Pipeline {
    Pipeline::range(a, b)
}

fn scalar(e: &[Tensor]) -> i64 {
    e[0].to_scalar::<i64>().unwrap()
}

#[test]
fn take_skip_repeat_batch_match_tf() {
    check("skip_take_repeat", &range(0, 7).skip(2).take(3).repeat(Some(2)));
    check("repeat_skip_take", &range(0, 5).repeat(Some(3)).skip(4).take(6));
    check("empty_repeat_forever", &range(0, 0).repeat(None).take(5));
    check("batch_drop_remainder", &range(0, 7).batch(3, true));
    check("batch_keep_remainder", &range(0, 7).batch(3, false));
}

#[test]
fn compiled_map_and_filter_match_tf() {
    let multiple_of_3 = kiln::function(|x: &Tensor| {
        let three = x.scalar_like(3.0);
        (x - &((x / &three) * &three)).equal(&x.scalar_like(0.0))
    });
    check("filter_batch", &range(0, 20).filter(&multiple_of_3).batch(2, false));
    let square_plus_one = kiln::function(|x: &Tensor| x * x + 1.0);
    let even = kiln::function(|x: &Tensor| {
        let two = x.scalar_like(2.0);
        (x - &((x / &two) * &two)).equal(&x.scalar_like(0.0))
    });
    check("map_filter", &range(0, 10).map(&square_plus_one).filter(&even));
    // Traced once for the scalar-i64 signature, then run compiled for every element.
    assert_eq!(square_plus_one.trace_count(), 1);
    assert_eq!(even.trace_count(), 1);
    let not_bool = kiln::function(|x: &Tensor| x * 2.0);
    let e = range(0, 2).filter(&not_bool).iter().next().unwrap().unwrap_err().to_string();
    assert!(e.contains("scalar bool"), "{e}");
}

#[test]
fn interleave_matches_tf() {
    let repeat_self =
        |e: Vec<Tensor>| -> kiln::Result<Pipeline> { Ok(Pipeline::from_tensors(&e).repeat(Some(scalar(&e) as usize))) };
    check("interleave_repeat_c2_b2", &range(1, 6).interleave(repeat_self, 2, 2));
    let tens = |e: Vec<Tensor>| -> kiln::Result<Pipeline> {
        let x = scalar(&e);
        Ok(range(10 * x, 10 * x + x))
    };
    check("interleave_range_c3_b1", &range(1, 5).interleave(tens, 3, 1));
    check("interleave_range_c2_b3", &range(1, 5).interleave(tens, 2, 3));
}

/// Element x (from 1) as `fill([x], x)`.
fn ramps() -> Pipeline {
    range(1, 6).map_with(|e| {
        let x = scalar(&e);
        Ok(vec![Tensor::from_vec(vec![x; x as usize], &[x as usize])?])
    })
}

#[test]
fn padded_batch_matches_tf() {
    check("padded_batch_default", &ramps().padded_batch(2, None, None, false));
    check("padded_batch_fixed_drop", &ramps().padded_batch(2, Some(&[&[Some(6)]]), None, true));
    let two = range(1, 6).map_with(|e| {
        let x = scalar(&e);
        let rows = (x % 3 + 1) as usize;
        Ok(vec![
            Tensor::from_vec(vec![x; x as usize], &[x as usize])?,
            Tensor::try_fill(&[rows, 2], x as f64, DType::F32)?,
        ])
    });
    check(
        "padded_batch_shapes_values",
        &two.clone().padded_batch(2, Some(&[&[None], &[Some(3), None]]), Some(&[-1.0, 0.5]), false),
    );
    // An element larger than its padded shape, and mismatched ranks, are errors.
    let e = ramps().padded_batch(5, Some(&[&[Some(3)]]), None, false).iter().next().unwrap().unwrap_err();
    assert!(e.to_string().contains("cannot pad i64[4]"), "{e}");
    let mixed = Pipeline::from_generator(|| vec![Ok(vec![Tensor::new(&[1.0f32])]), Ok(vec![Tensor::new(&[[1.0f32]])])]);
    let e = mixed.padded_batch(2, None, None, false).iter().next().unwrap().unwrap_err();
    assert!(e.to_string().contains("different ranks"), "{e}");
    let e = two.padded_batch(2, None, Some(&[0.0]), false).iter().next().unwrap().unwrap_err();
    assert!(e.to_string().contains("padding_values has 1 entries for elements of 2 components"), "{e}");
    // Plain batch refuses differing shapes, naming them.
    let e = ramps().batch(2, false).iter().next().unwrap().unwrap_err();
    assert!(e.to_string().contains("i64[1]") && e.to_string().contains("i64[2]"), "{e}");
}

#[test]
fn concatenate_zip_flat_map_unbatch_match_tf() {
    check("concatenate", &range(0, 3).concatenate(&range(10, 12)));
    let doubled = kiln::function(|x: &Tensor| x * 2.0);
    check("zip", &range(0, 5).zip(&[range(10, 13).map(&doubled)]));
    check("flat_map", &range(1, 4).flat_map(|e| Ok(range(0, scalar(&e)))));
    check("padded_batch_unbatch", &ramps().padded_batch(2, None, None, false).unbatch());
    let e = Pipeline::from_tensors(&[Tensor::new(&[1i64, 2]), Tensor::new(&[1i64])]).unbatch();
    assert!(e.iter().next().unwrap().unwrap_err().to_string().contains("same first dimension"));
}

#[test]
fn decode_csv_matches_tf() {
    let g = golden();
    let d = &g["decode_csv"];
    let records: Vec<&str> = d["records"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    let cols = [
        CsvColumn::with_default(DType::I32, 0.0),
        CsvColumn::with_default(DType::F32, 1.5),
        CsvColumn::with_default(DType::F64, 9.0),
    ];
    let got = decode_csv(&records, &cols, b',').unwrap();
    for (c, (t, w)) in got.iter().zip(d["columns"].as_array().unwrap()).enumerate() {
        same(t, w, &format!("decode_csv column {c}"));
    }
    let cols = [CsvColumn::required(DType::I64), CsvColumn::with_default(DType::I64, -5.0)];
    let got = decode_csv(&["10,20", "30,"], &cols, b',').unwrap();
    for (t, w) in got.iter().zip(d["i64"].as_array().unwrap()) {
        same(t, w, "decode_csv i64");
    }
    let f = CsvColumn::with_default(DType::F32, 0.0);
    let cases: [(&str, &[&str], Vec<CsvColumn>, &str); 4] = [
        ("required_missing", &[",1"], vec![CsvColumn::required(DType::F32), f], "field 0 is required"),
        ("too_few_fields", &["1"], vec![f, f], "expected 2 fields but have 1"),
        ("too_many_fields", &["1,2,3"], vec![f, f], "expected 2 fields but have 3"),
        ("not_an_int", &["1.5"], vec![CsvColumn::with_default(DType::I32, 0.0)], "is not an integer"),
    ];
    for (name, records, cols, msg) in cases {
        assert!(d["errors"][name].as_bool().unwrap(), "TF errs on {name}");
        let e = decode_csv(records, &cols, b',').unwrap_err().to_string();
        assert!(e.contains(msg), "{name}: {e}");
    }
    let e = decode_csv(&["1"], &[CsvColumn::required(DType::Bool)], b',').unwrap_err().to_string();
    assert!(e.contains("bool"), "{e}");
}

#[test]
fn text_lines_over_files_with_headers() {
    let dir = std::env::temp_dir().join(format!("kiln_text_lines_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
    std::fs::write(&a, "x,label\n1.5,0\n2.5,1\r\n").unwrap();
    std::fs::write(&b, "x,label\n\n-1,\n").unwrap();
    let lines = TextLineDataset::new(&[&a, &b]).skip_header(1);
    let all: Vec<String> = lines.lines().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, vec!["1.5,0", "2.5,1", "", "-1,"]);
    let cols = [CsvColumn::required(DType::F32), CsvColumn::with_default(DType::I64, 2.0)];
    let rows = lines.decode_csv(&cols, b',').batch(4, false);
    let batch = rows.iter().next().unwrap().unwrap();
    assert_eq!(batch[0].to_vec::<f32>().unwrap(), vec![1.5, 2.5, -1.0]);
    assert_eq!(batch[1].to_vec::<i64>().unwrap(), vec![0, 1, 2]);
    // A missing file is an error item naming it; the other file still reads.
    let missing = dir.join("missing.csv");
    let mixed: Vec<_> = TextLineDataset::new(&[&missing, &a]).lines().collect();
    assert!(matches!(&mixed[0], Err(Error::Io(m)) if m.contains("missing.csv")));
    assert_eq!(mixed.len(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_pass_through_stages_in_place() {
    let p = Pipeline::from_generator(|| {
        (0..6i64).map(|i| if i == 2 { Err(Error::invalid("gen", "bad row")) } else { Ok(vec![Tensor::scalar(i)]) })
    });
    let items: Vec<_> = p.clone().map_with(|e| Ok(vec![&e[0] * Tensor::scalar(10i64)])).iter().collect();
    assert_eq!(items.len(), 6);
    assert!(items[2].is_err());
    assert_eq!(scalar(items[3].as_ref().unwrap()), 30);
    let batches: Vec<_> = p.batch(2, false).iter().collect();
    // [0, 1], the error, then [3, 4] (the error left the batch being gathered intact), [5].
    assert_eq!(batches.len(), 4);
    assert!(batches[1].is_err());
    assert_eq!(batches[2].as_ref().unwrap()[0].to_vec::<i64>().unwrap(), vec![3, 4]);
    assert!(Pipeline::from_tensor_slices(&[]).is_err());
}

#[test]
fn shuffle_is_a_reproducible_permutation_new_each_pass() {
    let p = range(0, 100).shuffle(100, 7);
    let pass = |p: &Pipeline| -> Vec<i64> { p.iter().map(|e| scalar(&e.unwrap())).collect() };
    let (first, second) = (pass(&p), pass(&p));
    assert_ne!(first, second, "reshuffled each pass");
    let again = range(0, 100).shuffle(100, 7);
    assert_eq!((pass(&again), pass(&again)), (first.clone(), second), "same seed, same passes");
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    assert_ne!(first, sorted);
    // A buffer of 1 keeps the order; a small buffer moves elements only a little ahead.
    assert_eq!(pass(&range(0, 10).shuffle(1, 3)), (0..10).collect::<Vec<_>>());
    let local = pass(&range(0, 100).shuffle(4, 3));
    assert!(local.iter().enumerate().all(|(i, &v)| v <= i as i64 + 3), "{local:?}");
}

#[test]
fn prefetch_delivers_everything_in_order_and_surfaces_errors() {
    let p = range(0, 1000).map_with(|e| Ok(vec![&e[0] + Tensor::scalar(1i64)])).prefetch(3);
    let v: Vec<i64> = p.iter().map(|e| scalar(&e.unwrap())).collect();
    assert_eq!(v, (1..=1000).collect::<Vec<_>>());
    let failing = Pipeline::from_generator(|| {
        (0..10i64)
            .map(|i| if i == 4 { Err(Error::invalid("gen", "row 4 is broken")) } else { Ok(vec![Tensor::scalar(i)]) })
    })
    .prefetch(2);
    let items: Vec<_> = failing.iter().collect();
    assert_eq!(items.len(), 5, "four elements, then the error ends the pass");
    assert!(items[..4].iter().all(Result::is_ok));
    assert!(items[4].as_ref().unwrap_err().to_string().contains("row 4 is broken"));
}

/// Counts live iterators of an endless generator: the prefetch thread owns one.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn prefetch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|c| c.trim() == "kiln-prefetch")
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn dropping_the_consumer_stops_the_prefetch_thread() {
    let live = Arc::new(AtomicUsize::new(0));
    let counter = live.clone();
    let endless = Pipeline::from_generator(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let guard = Live(counter.clone());
        (0i64..).map(move |i| {
            let _ = &guard;
            Ok(vec![Tensor::scalar(i)])
        })
    })
    .prefetch(4);
    for _ in 0..5 {
        let mut it = endless.iter();
        assert_eq!(scalar(&it.next().unwrap().unwrap()), 0);
        std::thread::sleep(std::time::Duration::from_millis(5)); // let the producer fill and block
        assert_eq!(live.load(Ordering::SeqCst), 1);
        drop(it);
        assert_eq!(live.load(Ordering::SeqCst), 0, "the upstream iterator died with its thread");
    }
    if cfg!(target_os = "linux") {
        assert_eq!(prefetch_threads(), 0, "no prefetch thread outlives its pass");
    }
}

#[test]
fn dataset_tables_stream_their_epochs() {
    let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[6, 2]).unwrap();
    let ds = Dataset::from_tensors(&[x, Tensor::new(&[0i64, 1, 2, 3, 4, 5])]).unwrap().shuffle(1).batch(4, false);
    let p = ds.pipeline();
    for epoch in 0..3 {
        let streamed: Vec<Vec<i64>> = p.iter().map(|b| b.unwrap()[1].to_vec::<i64>().unwrap()).collect();
        let table: Vec<Vec<i64>> = ds.epoch(epoch).map(|b| b.unwrap()[1].to_vec::<i64>().unwrap()).collect();
        assert_eq!(streamed, table, "pass {epoch} is epoch {epoch}");
    }
}
