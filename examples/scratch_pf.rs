#[path = "../benches/common/mlp.rs"]
mod mlp;
use kiln::Tensor;
use mlp::{batch, Mlp};
use std::io::{Read, Write};
fn ctl(cmd: &str) {
    if let Ok(p) = std::env::var("PCTL") {
        let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all(cmd.as_bytes()).unwrap();
        let mut a = std::fs::File::open(std::env::var("PACK").unwrap()).unwrap();
        let mut b = [0u8; 5];
        let _ = a.read(&mut b);
    }
}
fn main() {
    let (x, y) = batch();
    let model = Mlp::new();
    if std::env::var("PREWARM").is_ok() {
        let w = Tensor::zeros(&[784, 512], kiln::DType::F32);
        let h = x.matmul(&w);
        let _ = h.matmul(&Tensor::zeros(&[512, 512], kiln::DType::F32)).to_vec::<f32>().unwrap();
    }
    if std::env::var("PREWARM_WORKER").is_ok() {
        let x2 = x.clone();
        std::thread::spawn(move || {
            let w = Tensor::zeros(&[784, 512], kiln::DType::F32);
            let h = x2.matmul(&w);
            let _ = h.matmul(&Tensor::zeros(&[512, 512], kiln::DType::F32)).to_vec::<f32>().unwrap();
        })
        .join()
        .unwrap();
    }
    let p = model.params.clone();
    let step = kiln::function(move |x: &Tensor, y: &Tensor| Mlp::step(&p, x, y));
    step.concrete_function((&x, &y)).unwrap();
    if std::env::var("TINY_OTHER").is_ok() {
        std::thread::spawn(|| {
            let a = Tensor::ones(&[8, 8], kiln::DType::F32);
            let _ = a.matmul(&a).to_vec::<f32>().unwrap();
        })
        .join()
        .unwrap();
    }
    if std::env::var("TINY").is_ok() {
        let a = Tensor::ones(&[8, 8], kiln::DType::F32);
        let t = std::time::Instant::now();
        let _ = a.matmul(&a).to_vec::<f32>().unwrap();
        eprint!("tiny {:?} ", t.elapsed());
    }
    ctl("enable\n");
    let t = std::time::Instant::now();
    step.call((&x, &y)).unwrap();
    let first = t.elapsed();
    ctl("disable\n");
    let t = std::time::Instant::now();
    step.call((&x, &y)).unwrap();
    println!("first {:?} second {:?}", first, t.elapsed());
}
