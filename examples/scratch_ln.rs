use kiln::Tensor;
fn ln(x: &Tensor) -> Tensor {
    let mean = x.mean(-1, true);
    let c = x - &mean;
    let var = (&c * &c).mean(-1, true);
    &c * &(var + 1e-5).rsqrt()
}
fn main() {
    let x = Tensor::random_normal(&[4096, 1024], kiln::DType::F32, 2);
    let f = kiln::function(ln);
    let cf = f.concrete_function(&x).unwrap();
    if std::env::var("SHOW").is_ok() {
        println!("{}", cf.executable().unwrap().schedule_text());
    }
    for round in 0..2 {
        for (name, g) in [
            ("eager", Box::new(|x: &Tensor| ln(x)) as Box<dyn Fn(&Tensor) -> Tensor>),
            ("compiled", Box::new(|x: &Tensor| f.call(x).unwrap())),
        ] {
            let mut v = vec![];
            for _ in 0..60 {
                let t = std::time::Instant::now();
                let y = g(&x);
                let _ = y.array();
                v.push(t.elapsed().as_secs_f64() * 1e3);
            }
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("{round} {name}: {:.3} ms", v[30]);
        }
    }
}
