//! W4 in new processes: the compile latency of W3's training step (time to the first result
//! minus a steady call) in a process that compiles every kernel (the on-disk kernel cache
//! off), and in one that loads them from a warm disk cache; with the breakdown of where a
//! cold first call goes. Each measurement is a fresh child process (this binary with
//! `KILN_W4_CHILD` set); the parent prints medians. Results: docs/PERFORMANCE.md, "W4".
//!
//! `cargo bench --bench w4_disk_cache` (46 processes, about 10 s)

use std::process::Command;
use std::time::{Duration, Instant};

use kiln::Tensor;

#[path = "common/mlp.rs"]
mod mlp;
use mlp::{batch, Mlp};

/// What one child measures, in milliseconds.
const FIELDS: [&str; 11] = [
    "W4 (first result - steady)",
    "  trace + passes + build (concrete_function)",
    "  first call - steady call",
    "    page faults in the first call",
    "    page faults in the second call",
    "  kernel compile, summed over threads",
    "  kernel load from disk, summed over threads",
    "steady call (median of calls 3-9)",
    "  cost of 1000 page faults (fresh 4 KiB pages touched)",
    "in-process warm W4 (fresh function, kernels cached)",
    "kernels compiled / loaded",
];

/// The process's minor page faults so far (Linux `/proc/self/stat`, field 10); 0 elsewhere.
fn minor_faults() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or("");
    rest.split_whitespace().nth(7).and_then(|f| f.parse().ok()).unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One process's figures; with `KILN_W4_PREWARM=gemm`, eager matmuls of the step's shapes
/// run first (gemm's and the thread pool's start-up leave the first call).
fn child() {
    let (x, y) = batch();
    let model = Mlp::new();
    if std::env::var("KILN_W4_PREWARM").as_deref() == Ok("gemm") {
        let w = Tensor::zeros(&[784, 512], kiln::DType::F32);
        let h = x.matmul(&w);
        let _ = h.matmul(&Tensor::zeros(&[512, 512], kiln::DType::F32)).to_vec::<f32>().unwrap();
    }
    let p = model.params.clone();
    let step = kiln::function(move |x: &Tensor, y: &Tensor| Mlp::step(&p, x, y));
    let t0 = Instant::now();
    step.concrete_function((&x, &y)).unwrap();
    let prep = t0.elapsed();
    let f1 = minor_faults();
    let t1 = Instant::now();
    step.call((&x, &y)).unwrap();
    let first = t1.elapsed();
    let f2 = minor_faults();
    step.call((&x, &y)).unwrap();
    let f3 = minor_faults();
    // The second call still faults pages in and now and then runs at half speed: the
    // median of the next seven is the steady call.
    let mut calls: Vec<Duration> = (0..7)
        .map(|_| {
            let t = Instant::now();
            step.call((&x, &y)).unwrap();
            t.elapsed()
        })
        .collect();
    calls.sort();
    let steady = calls[calls.len() / 2];
    let s = kiln_jit::disk_cache::stats();
    // The same step as a fresh function: traced again, every kernel from the in-process cache.
    let p = model.params.clone();
    let again = kiln::function(move |x: &Tensor, y: &Tensor| Mlp::step(&p, x, y));
    let t3 = Instant::now();
    again.call((&x, &y)).unwrap();
    let warm_first = t3.elapsed();
    let t4 = Instant::now();
    again.call((&x, &y)).unwrap();
    let warm = warm_first.saturating_sub(t4.elapsed());
    let values = [
        ms((prep + first).saturating_sub(steady)),
        ms(prep),
        ms(first.saturating_sub(steady)),
        f2 - f1,
        f3 - f2,
        ms(s.compile_time),
        ms(s.load_time),
        ms(steady),
        fault_cost(),
        ms(warm),
        (s.compiled * 1000 + s.hits) as f64,
    ];
    println!("{}", values.map(|v| v.to_string()).join(" "));
}

/// The time to touch 1000 fresh pages (a first write each: the kernel maps and zeroes them).
fn fault_cost() -> f64 {
    let pages = 4096;
    let mut v: Vec<u8> = Vec::with_capacity(pages * 4096);
    let t = Instant::now();
    let spare = v.spare_capacity_mut();
    for p in 0..pages {
        spare[p * 4096].write(1);
    }
    let per_thousand = ms(t.elapsed()) * 1000.0 / pages as f64;
    std::hint::black_box(&mut v);
    per_thousand
}

/// Runs `n` children with `env`; the median of each field.
fn median_of(n: usize, env: &[(&str, &str)]) -> Vec<f64> {
    let mut runs: Vec<Vec<f64>> = Vec::new();
    for _ in 0..n {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env("KILN_W4_CHILD", "1").env_remove("KILN_CACHE").env_remove("KILN_CACHE_DIR");
        cmd.envs(env.iter().copied());
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8(out.stdout).unwrap();
        runs.push(line.split_whitespace().map(|v| v.parse().unwrap()).collect());
    }
    (0..FIELDS.len())
        .map(|f| {
            let mut v: Vec<f64> = runs.iter().map(|r| r[f]).collect();
            v.sort_by(f64::total_cmp);
            v[n / 2]
        })
        .collect()
}

fn main() {
    if std::env::var_os("KILN_W4_CHILD").is_some() {
        return child();
    }
    // `cargo bench` passes `--bench`; any other argument is a filter this bench ignores.
    let dir = std::env::temp_dir().join(format!("kiln-w4-cache-{}", std::process::id()));
    let dir_s = dir.to_str().unwrap().to_string();
    let n = 15;
    let cold = median_of(n, &[]);
    let warm_gemm = median_of(n, &[("KILN_W4_PREWARM", "gemm")]);
    median_of(1, &[("KILN_CACHE_DIR", &dir_s)]); // fills the cache
    let disk = median_of(n, &[("KILN_CACHE_DIR", &dir_s)]);
    let _ = std::fs::remove_dir_all(&dir);
    println!("W4 in new processes, median of {n} each, ms:");
    println!("{:<52} {:>10} {:>14} {:>12}", "", "cold", "cold, gemm", "disk cache");
    for (i, name) in FIELDS.iter().enumerate() {
        if i == FIELDS.len() - 1 {
            let k = |v: f64| format!("{} / {}", (v / 1000.0).floor(), v % 1000.0);
            println!("{name:<52} {:>10} {:>14} {:>12}", k(cold[i]), k(warm_gemm[i]), k(disk[i]));
        } else {
            println!("{name:<52} {:>10.2} {:>14.2} {:>12.2}", cold[i], warm_gemm[i], disk[i]);
        }
    }
}
