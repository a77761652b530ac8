#[path = "../benches/common/mlp.rs"]
mod mlp;
use mlp::{batch, Mlp};
fn main() {
    let (x, y) = batch();
    let model = Mlp::new();
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    for _ in 0..10 {
        Mlp::step(&model.params, &x, &y);
    }
    let mut v = vec![];
    for _ in 0..n {
        let t = std::time::Instant::now();
        let l = Mlp::step(&model.params, &x, &y);
        let _ = l.array();
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("eager step median {:.3} ms", v[n / 2]);
}
