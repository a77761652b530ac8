//! `Dataset`: batching, remainders, shuffling (a permutation, reproducible, new each epoch).

use kiln::data::Dataset;
use kiln::Tensor;

fn rows(n: usize) -> Dataset {
    let x = Tensor::from_vec((0..n * 2).map(|v| v as f32).collect(), &[n, 2]).unwrap();
    let y = Tensor::from_vec((0..n as i64).collect(), &[n]).unwrap();
    Dataset::from_tensors(&[x, y]).unwrap()
}

fn labels(ds: &Dataset, epoch: u64) -> Vec<Vec<i64>> {
    ds.epoch(epoch).map(|b| b.unwrap()[1].to_vec::<i64>().unwrap()).collect()
}

#[test]
fn batches_keep_or_drop_the_remainder() {
    let ds = rows(7).batch(3, false);
    assert_eq!(labels(&ds, 0), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    assert_eq!(ds.batches_per_epoch(), 3);
    let ds = rows(7).batch(3, true);
    assert_eq!(labels(&ds, 0), vec![vec![0, 1, 2], vec![3, 4, 5]]);
    let first = ds.epoch(0).next().unwrap().unwrap();
    assert_eq!(first[0].shape(), &[3, 2]);
    assert_eq!(first[0].to_vec::<f32>().unwrap(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn shuffling_is_a_seeded_permutation_that_changes_each_epoch() {
    let ds = rows(50).shuffle(4).batch(50, false);
    let e0 = labels(&ds, 0).concat();
    let e1 = labels(&ds, 1).concat();
    let mut sorted = e0.clone();
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<i64>>());
    assert_ne!(e0, (0..50).collect::<Vec<i64>>());
    assert_ne!(e0, e1);
    assert_eq!(e0, labels(&rows(50).shuffle(4).batch(50, false), 0).concat());
    assert_ne!(e0, labels(&rows(50).shuffle(5).batch(50, false), 0).concat());
    // Features and labels stay paired.
    for b in ds.epoch(3) {
        let b = b.unwrap();
        let (x, y) = (b[0].to_vec::<f32>().unwrap(), b[1].to_vec::<i64>().unwrap());
        for (i, label) in y.iter().enumerate() {
            assert_eq!(x[2 * i], (2 * label) as f32);
        }
    }
}

#[test]
fn mismatched_or_empty_inputs_are_errors() {
    assert!(Dataset::from_tensors(&[]).is_err());
    let e = Dataset::from_tensors(&[Tensor::zeros(&[3, 2], kiln::DType::F32), Tensor::zeros(&[4], kiln::DType::I64)])
        .unwrap_err();
    assert!(e.to_string().contains("first dimension"), "{e}");
    assert!(Dataset::from_tensors(&[Tensor::scalar(1.0f32)]).is_err());
}
