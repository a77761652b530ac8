//! `Pipeline::prefetch` overlapping input work with a compiled training step. The input:
//! scikit-learn's digits sliced into batches of 64 (`from_tensor_slices` + `batch`), then a
//! host-side augmentation (3x3 blurs of every image, as many rounds as cost about 1 ms per
//! batch). The step: one compiled SGD step of an MLP 64→512→512→10 with softmax
//! cross-entropy. Prints the time per epoch (28 batches) of the input alone, the steps
//! alone, both in turn (no prefetch) and both overlapped (`prefetch(2)`), alternating; medians of 15. Then input that waits 1 ms
//! per batch instead of computing, and how much of a second core the sitting offers.
//! Also the cost of reading the same data as CSV lines (`TextLineDataset` + `decode_csv`).
//! Results: docs/PERFORMANCE.md.
//!
//! `cargo bench --bench prefetch`

use std::time::{Duration, Instant};

use kiln::data::{decode_csv, CsvColumn, Pipeline, TextLineDataset};
use kiln::{DType, GradientTape, Result, Tensor, Variable};

const BATCH: usize = 64;
const REPEATS: usize = 15;
const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/digits.csv");

/// One SGD step on a batch; returns the loss.
fn step(params: &[Variable], x: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let tape = GradientTape::new();
    let mut h = x.clone();
    for (i, pair) in params.chunks(2).enumerate() {
        h = h.try_matmul(&pair[0].read())?.try_add(&pair[1].read())?;
        if i < 2 {
            h = h.relu();
        }
    }
    let loss = kiln::sparse_softmax_cross_entropy_with_logits(&h, labels)?.mean_all();
    let refs: Vec<&Variable> = params.iter().collect();
    for (p, g) in params.iter().zip(tape.gradient(&loss, &refs)?) {
        p.assign_sub(&(g.expect("every parameter is used") * 0.01))?;
    }
    Ok(loss)
}

fn mlp() -> Vec<Variable> {
    let dims = [64usize, 512, 512, 10];
    let mut params = Vec::new();
    for (i, w) in dims.windows(2).enumerate() {
        let scale = (2.0 / w[0] as f64).sqrt();
        params.push(Variable::new(Tensor::random_normal(&[w[0], w[1]], DType::F32, i as u64) * scale));
        params.push(Variable::new(Tensor::zeros(&[w[1]], DType::F32)));
    }
    params
}

/// `rounds` 3x3 box blurs of each 8x8 image, on the host: the input work per batch.
fn blur(x: &[f32], rounds: usize) -> Vec<f32> {
    let mut cur = x.to_vec();
    let mut next = vec![0.0f32; cur.len()];
    for _ in 0..rounds {
        for (img, out) in cur.chunks(64).zip(next.chunks_mut(64)) {
            for r in 0..8i32 {
                for c in 0..8i32 {
                    let (mut s, mut n) = (0.0, 0.0);
                    for (dr, dc) in (-1..=1).flat_map(|a| (-1..=1).map(move |b| (a, b))) {
                        let (rr, cc) = (r + dr, c + dc);
                        if (0..8).contains(&rr) && (0..8).contains(&cc) {
                            s += img[(rr * 8 + cc) as usize];
                            n += 1.0;
                        }
                    }
                    out[(r * 8 + c) as usize] = 0.5 * img[(r * 8 + c) as usize] + 0.5 * s / n;
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    cur
}

/// Digits read as CSV lines and decoded, batched: `[x f32 [64, 64], y i64 [64]]`.
fn csv_input() -> Pipeline {
    let mut columns = vec![CsvColumn::required(DType::F32); 64];
    columns.push(CsvColumn::required(DType::I64));
    TextLineDataset::new(&[DIGITS]).decode_csv(&columns, b',').batch(BATCH, true).map_with(|cols| {
        let refs: Vec<&Tensor> = cols[..64].iter().collect();
        Ok(vec![Tensor::try_stack(&refs, 1)? / 16.0, cols[64].clone()])
    })
}

/// The digits as tensors `x f32 [1797, 64]` (scaled to [0, 1]) and `y i64 [1797]`.
fn digits() -> Result<Vec<Tensor>> {
    let text = std::fs::read_to_string(DIGITS)?;
    let records: Vec<&str> = text.lines().collect();
    let mut columns = vec![CsvColumn::required(DType::F32); 64];
    columns.push(CsvColumn::required(DType::I64));
    let cols = decode_csv(&records, &columns, b',')?;
    let refs: Vec<&Tensor> = cols[..64].iter().collect();
    Ok(vec![Tensor::try_stack(&refs, 1)? / 16.0, cols[64].clone()])
}

/// Batches of `data` augmented with `rounds` blurs.
fn input(data: &[Tensor], rounds: usize) -> Result<Pipeline> {
    Ok(Pipeline::from_tensor_slices(data)?.batch(BATCH, true).map_with(move |b| {
        let x = blur(&b[0].to_vec::<f32>()?, rounds);
        Ok(vec![Tensor::from_vec(x, b[0].shape())?, b[1].clone()])
    }))
}

fn median(mut t: Vec<Duration>) -> Duration {
    t.sort();
    t[t.len() / 2]
}

fn time(mut epoch: impl FnMut() -> Result<usize>) -> Result<(Duration, usize)> {
    let mut times = Vec::new();
    let mut steps = 0;
    for _ in 0..REPEATS {
        let t = Instant::now();
        steps = epoch()?;
        times.push(t.elapsed());
    }
    Ok((median(times), steps))
}

fn main() -> Result<()> {
    let params = mlp();
    let p = params.clone();
    let train = kiln::function(move |x: &Tensor, y: &Tensor| step(&p, x, y));
    let data = digits()?;
    let batch = input(&data, 0)?.iter().next().expect("digits has a batch")?;
    train.call((&batch[0], &batch[1]))?; // trace and compile
    let steps_alone = time(|| {
        for _ in 0..1797 / BATCH {
            train.call((&batch[0], &batch[1]))?;
        }
        Ok(1797 / BATCH)
    })?;
    // Blur rounds so that the input costs about 1 ms per batch.
    let base = time(|| Ok(input(&data, 0)?.iter().count()))?;
    let with_20 = time(|| Ok(input(&data, 20)?.iter().count()))?;
    let per_round = with_20.0.saturating_sub(base.0).as_secs_f64() / 20.0 / base.1 as f64;
    let rounds = (1e-3 / per_round.max(1e-9)).round() as usize;
    let epoch = |p: &Pipeline| -> Result<usize> {
        let mut n = 0;
        for b in p.iter() {
            let b = b?;
            train.call((&b[0], &b[1]))?;
            n += 1;
        }
        Ok(n)
    };
    // The two ways alternate, so that load from other processes hits both alike.
    let (plain, ahead) = (input(&data, rounds)?, input(&data, rounds)?.prefetch(2));
    let (mut serial, mut overlapped) = (Vec::new(), Vec::new());
    let mut steps = 0;
    for _ in 0..REPEATS {
        let t = Instant::now();
        steps = epoch(&plain)?;
        serial.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(epoch(&ahead)?, steps);
        overlapped.push(t.elapsed());
    }
    let (serial, overlapped) = ((median(serial), steps), (median(overlapped), steps));
    // Input that waits instead of computing (a disk or network read): overlaps even when
    // no core is free.
    let waiting = |prefetch: bool| -> Result<Pipeline> {
        let p = input(&data, 0)?.map_with(|b| {
            std::thread::sleep(Duration::from_millis(1));
            Ok(b)
        });
        Ok(if prefetch { p.prefetch(2) } else { p })
    };
    let (wait_plain, wait_ahead) = (waiting(false)?, waiting(true)?);
    let (mut w_serial, mut w_overlapped) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        let t = Instant::now();
        epoch(&wait_plain)?;
        w_serial.push(t.elapsed());
        let t = Instant::now();
        epoch(&wait_ahead)?;
        w_overlapped.push(t.elapsed());
    }
    let (w_serial, w_overlapped) = (median(w_serial), median(w_overlapped));
    let input_alone = time(|| Ok(input(&data, rounds)?.iter().count()))?;
    let csv = time(|| Ok(csv_input().iter().count()))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let per = |(d, n): (Duration, usize)| ms(d) / n as f64;
    println!("prefetch bench: digits batches of {BATCH}, {rounds} blur rounds; MLP 64-512-512-10 SGD step; {} steps/epoch, median of {REPEATS}", serial.1);
    println!("  input alone        {:8.2} ms/epoch ({:.3} ms/batch)", ms(input_alone.0), per(input_alone));
    println!("  steps alone        {:8.2} ms/epoch ({:.3} ms/step)", ms(steps_alone.0), per(steps_alone));
    println!("  input then step    {:8.2} ms/epoch (no prefetch)", ms(serial.0));
    println!(
        "  prefetch(2)        {:8.2} ms/epoch ({:.2}x faster)",
        ms(overlapped.0),
        serial.0.as_secs_f64() / overlapped.0.as_secs_f64()
    );
    println!(
        "  input waiting 1 ms/batch: {:.2} ms/epoch without prefetch, {:.2} with prefetch(2) ({:.2}x faster)",
        ms(w_serial),
        ms(w_overlapped),
        w_serial.as_secs_f64() / w_overlapped.as_secs_f64()
    );
    // How much of a second core this sitting offers: the same pure-host work (blurs) on one
    // thread, then on two at once.
    let x = data[0].to_vec::<f32>()?;
    let work = || blur(&x, rounds.max(1) * 4).len();
    let one = time(|| Ok(work()))?.0;
    let two = time(|| {
        Ok(std::thread::scope(|s| {
            let other = s.spawn(work);
            work() + other.join().expect("blur thread")
        }))
    })?
    .0;
    println!(
        "  second core: the same host work takes {:.2} ms on one thread, {:.2} ms twice on two (equal = a free core)",
        ms(one),
        ms(two)
    );
    println!(
        "  CSV lines decoded  {:8.2} ms/epoch ({:.3} ms/batch: TextLineDataset + decode_csv per line + batch)",
        ms(csv.0),
        per(csv)
    );
    Ok(())
}
