//! `kiln::queue`: FIFO order, padding, shuffling (properties: TF's generator differs),
//! element checks, blocking with timeouts, close semantics, and 8 producers × 8 consumers
//! moving 10^5 items with nothing lost or duplicated. Every wait has a timeout, so a bug
//! fails a test rather than hanging it.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use kiln::queue::{FifoQueue, PaddingFifoQueue, RandomShuffleQueue};
use kiln::{DType, Tensor};

const PATIENCE: Duration = Duration::from_secs(20);

fn id(e: &[Tensor]) -> i64 {
    e[0].to_scalar::<i64>().unwrap()
}

#[test]
fn issue_program() {
    let q = FifoQueue::new(8, &[DType::F32], &[&[2]]).unwrap();
    q.enqueue(&[Tensor::new(&[1.0f32, 2.0])]).unwrap();
    let item = q.dequeue().unwrap();
    assert!(format!("{item:?}").contains('['));
    assert_eq!(item[0].to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
}

#[test]
fn fifo_order_and_dequeue_many_stacks() {
    let q = FifoQueue::new(10, &[DType::I64, DType::F32], &[&[], &[2]]).unwrap();
    for i in 0..5i64 {
        q.enqueue(&[Tensor::scalar(i), Tensor::new(&[i as f32, -(i as f32)])]).unwrap();
    }
    assert_eq!(id(&q.dequeue().unwrap()), 0);
    let b = q.dequeue_many(3).unwrap();
    assert_eq!(b[0].to_vec::<i64>().unwrap(), vec![1, 2, 3]);
    assert_eq!(b[1].shape(), &[3, 2]);
    assert_eq!(b[1].to_vec::<f32>().unwrap(), vec![1.0, -1.0, 2.0, -2.0, 3.0, -3.0]);
    assert_eq!(q.size(), 1);
}

#[test]
fn elements_are_checked() {
    let q = FifoQueue::new(4, &[DType::F32, DType::I64], &[&[2], &[]]).unwrap();
    let e = q.enqueue(&[Tensor::new(&[1.0f32, 2.0]), Tensor::scalar(1i32)]).unwrap_err().to_string();
    assert!(e.contains("component 1") && e.contains("i64") && e.contains("i32"), "{e}");
    let e = q.enqueue(&[Tensor::new(&[1.0f32, 2.0])]).unwrap_err().to_string();
    assert!(e.contains("expected 2 components, got 1"), "{e}");
    let e = q.enqueue_many(&[Tensor::new(&[[1.0f32, 2.0]]), Tensor::new(&[1i64, 2])]).unwrap_err().to_string();
    assert!(e.contains("same first dimension"), "{e}");
    assert!(q.dequeue_many(5).is_err(), "more than the capacity can never be served");
    assert_eq!(q.size(), 0);
    let traced = kiln::function(move |x: &Tensor| {
        assert!(q.enqueue(&[x.clone(), Tensor::scalar(0i64)]).unwrap_err().to_string().contains("symbolic"));
        x.clone()
    });
    traced.call(&Tensor::new(&[1.0f32, 2.0])).unwrap();
}

#[test]
fn padding_queue_pads_to_the_largest_in_the_batch() {
    let q = PaddingFifoQueue::new(8, &[DType::I64, DType::F32], &[&[None, Some(2)], &[]]).unwrap();
    q.enqueue(&[Tensor::new(&[[1i64, 2]]), Tensor::scalar(0.5f32)]).unwrap();
    q.enqueue(&[Tensor::new(&[[3i64, 4], [5, 6], [7, 8]]), Tensor::scalar(1.5f32)]).unwrap();
    q.enqueue(&[Tensor::new(&[[9i64, 9], [9, 9]]), Tensor::scalar(2.5f32)]).unwrap();
    let b = q.dequeue_many(2).unwrap();
    assert_eq!(b[0].shape(), &[2, 3, 2]);
    assert_eq!(b[0].to_vec::<i64>().unwrap(), vec![1, 2, 0, 0, 0, 0, 3, 4, 5, 6, 7, 8]);
    assert_eq!(b[1].to_vec::<f32>().unwrap(), vec![0.5, 1.5]);
    q.close(false);
    assert_eq!(q.dequeue_up_to(4).unwrap()[0].shape(), &[1, 2, 2]);
    let e = q.enqueue(&[Tensor::new(&[[1i64, 2]]), Tensor::scalar(0.0f32)]).unwrap_err().to_string();
    assert!(e.contains("closed"), "{e}");
    let e = PaddingFifoQueue::new(8, &[DType::I64], &[&[None]]).unwrap();
    assert!(e.enqueue(&[Tensor::new(&[[1i64]])]).unwrap_err().to_string().contains("expected i64[?]"));
}

fn drain_shuffled(seed: u64) -> Vec<i64> {
    let q = RandomShuffleQueue::new(64, 10, &[DType::I64], &[&[]], seed).unwrap();
    let mut out = Vec::new();
    for i in 0..50i64 {
        q.enqueue(&[Tensor::scalar(i)]).unwrap();
        if q.size() > 20 {
            out.push(id(&q.dequeue().unwrap()));
        }
    }
    // Open, 10 must stay behind: a dequeue that would take the 10th waits.
    while q.size() > 10 {
        out.push(id(&q.dequeue().unwrap()));
    }
    assert!(q.dequeue_timeout(Duration::from_millis(20)).unwrap_err().to_string().contains("timed out"));
    q.close(false);
    while let Ok(e) = q.dequeue() {
        out.push(id(&e));
    }
    out
}

#[test]
fn shuffle_queue_is_a_seeded_permutation() {
    let a = drain_shuffled(1);
    assert_eq!(a, drain_shuffled(1), "same seed, same single-threaded order");
    assert_ne!(a, drain_shuffled(2));
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    assert_ne!(a, sorted, "shuffled");
    // Position of each element is spread: over many seeds, element 0 leaves at many places.
    let places: std::collections::HashSet<usize> =
        (0..40).map(|s| drain_shuffled(s).iter().position(|&v| v == 0).unwrap()).collect();
    assert!(places.len() > 10, "{places:?}");
    assert!(RandomShuffleQueue::new(8, 8, &[DType::I64], &[&[]], 0).is_err());
    let q = RandomShuffleQueue::new(8, 4, &[DType::I64], &[&[]], 0).unwrap();
    assert!(q.dequeue_many(5).is_err(), "5 + 4 kept behind exceeds the capacity");
}

#[test]
fn enqueue_blocks_when_full_until_room() {
    let q = FifoQueue::new(2, &[DType::I64], &[&[]]).unwrap();
    q.enqueue_many(&[Tensor::new(&[0i64, 1])]).unwrap();
    assert!(q.enqueue_timeout(&[Tensor::scalar(2i64)], Duration::from_millis(20)).is_err());
    let producer = {
        let q = q.clone();
        thread::spawn(move || q.enqueue_timeout(&[Tensor::scalar(2i64)], PATIENCE))
    };
    thread::sleep(Duration::from_millis(20));
    assert_eq!(id(&q.dequeue_timeout(PATIENCE).unwrap()), 0);
    producer.join().unwrap().unwrap();
    assert_eq!(q.dequeue_many_timeout(2, PATIENCE).unwrap()[0].to_vec::<i64>().unwrap(), vec![1, 2]);
}

#[test]
fn close_wakes_waiting_dequeues_with_an_error() {
    let q = FifoQueue::new(4, &[DType::I64], &[&[]]).unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let q = q.clone();
            thread::spawn(move || {
                let t = Instant::now();
                let r = if i == 0 { q.dequeue_timeout(PATIENCE) } else { q.dequeue_many_timeout(2, PATIENCE) };
                (r, t.elapsed())
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(50));
    q.enqueue(&[Tensor::scalar(7i64)]).unwrap();
    thread::sleep(Duration::from_millis(20));
    q.close(false);
    let results: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    for (r, waited) in &results {
        assert!(*waited < PATIENCE, "woke by the close, not the timeout");
        if let Err(e) = r {
            assert!(e.to_string().contains("closed"), "{e}");
        }
    }
    // The single dequeue got the 7 (or a dequeue_many left it, and it is still there).
    let served = results.iter().filter(|(r, _)| r.is_ok()).count();
    assert_eq!(served + q.size(), 1);
}

#[test]
fn close_cancels_pending_enqueues_only_if_asked() {
    for cancel in [false, true] {
        let q = FifoQueue::new(1, &[DType::I64], &[&[]]).unwrap();
        q.enqueue(&[Tensor::scalar(0i64)]).unwrap();
        let (started, ready) = std::sync::mpsc::channel();
        let pending = {
            let q = q.clone();
            thread::spawn(move || {
                started.send(()).unwrap();
                q.enqueue_timeout(&[Tensor::scalar(1i64)], PATIENCE)
            })
        };
        // The enqueue must be waiting before the close: the thread is about to call it.
        ready.recv_timeout(PATIENCE).unwrap();
        thread::sleep(Duration::from_millis(100));
        q.close(cancel);
        assert!(q.enqueue(&[Tensor::scalar(2i64)]).is_err(), "new enqueues fail after close");
        assert_eq!(id(&q.dequeue_timeout(PATIENCE).unwrap()), 0);
        let r = pending.join().unwrap();
        if cancel {
            assert!(r.unwrap_err().to_string().contains("cancelled"));
            assert!(q.dequeue_timeout(PATIENCE).is_err());
        } else {
            r.unwrap();
            assert_eq!(id(&q.dequeue_timeout(PATIENCE).unwrap()), 1, "the pending enqueue completed");
            assert!(q.dequeue_timeout(PATIENCE).unwrap_err().to_string().contains("closed"));
        }
    }
}

#[test]
fn many_producers_and_consumers_lose_and_duplicate_nothing() {
    const PRODUCERS: i64 = 8;
    const PER: i64 = 12_500; // 8 × 12 500 = 10^5 items
    let q = FifoQueue::new(64, &[DType::I64], &[&[]]).unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..PER {
                    q.enqueue_timeout(&[Tensor::scalar(p * PER + i)], PATIENCE).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..8)
        .map(|c| {
            let q = q.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    // Some consumers take batches, to mix dequeue and dequeue_up_to.
                    let r = if c % 2 == 0 { q.dequeue_timeout(PATIENCE) } else { q.dequeue_up_to(3) };
                    match r {
                        Ok(e) => got.extend(e[0].to_vec::<i64>().unwrap()),
                        Err(e) if e.to_string().contains("closed") => return got,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close(false);
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for c in consumers {
        for v in c.join().unwrap() {
            *seen.entry(v).or_default() += 1;
        }
    }
    assert_eq!(seen.len() as i64, PRODUCERS * PER, "nothing lost");
    assert!(seen.values().all(|&n| n == 1), "nothing duplicated");
    assert!((0..PRODUCERS * PER).all(|v| seen.contains_key(&v)));
}
