//! kiln in two minutes: eager tensors, then the same code traced into a graph and compiled.
//!
//! Run with `cargo run --release --example quickstart`.

use kiln::{DType, Tensor, Variable};

fn main() -> Result<(), kiln::Error> {
    // ---- Eager tensors, numpy-style ----
    let a = Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let b = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], &[3])?;
    assert_eq!(a.shape(), &[2, 3]);
    assert_eq!(a.dtype(), DType::F32);
    let c = &a + &b; // broadcast [2,3] + [3]
    let d = (&c * 2.0).exp().log(); // scalar literal takes f32
    let e = a.matmul(&a.transpose(&[1, 0])); // [2,2]
    let rows = a.sum(&[1], false); // [2]
    let all = a.mean(&[0, 1], true); // [1,1]
    let x = a.cast(DType::F64);
    assert!(a.try_add(&x).is_err()); // no implicit promotion
    let v = Variable::new(Tensor::zeros(&[2, 3], DType::F32));
    v.assign_add(&a)?;
    assert!(v.assign(&Tensor::zeros(&[3], DType::F32)).is_err());
    println!("{c}\n{d}\n{e}\n{rows}\n{all}\n{}", v.read());
    let _: Vec<f32> = e.to_vec::<f32>()?;
    if let Err(err) = a.try_matmul(&a) {
        println!("a clear error: {err}");
    }

    // ---- Tracing: the same Rust code, run once with symbolic tensors ----
    let scale = Variable::new(Tensor::scalar(1.0f32));
    let s = scale.clone();
    let f = kiln::function(move |x: &Tensor, y: &Tensor| {
        println!("  (tracing: this line runs once per signature)");
        (x * y + 1.0).tanh() * &s.read()
    })
    .with_name("tanh_mul");
    let (p, q) = (Tensor::new(&[0.5f32, 1.0, 2.0]), Tensor::new(&[2.0f32, -1.0, 0.25]));
    println!("first call:  {}", f.call((&p, &q))?);
    println!("second call: {}  (no retrace)", f.call((&q, &p))?);
    scale.assign(&Tensor::scalar(10.0f32))?;
    println!("after scale.assign(10): {}  (Variables are read at call time)", f.call((&p, &q))?);
    let bigger = Tensor::ones(&[2, 3], DType::F32);
    f.call((&bigger, &bigger))?;
    println!("traced {} times (a new shape traces again)", f.trace_count());
    println!("the graph for f32[3] arguments:\n{}", f.graph((&p, &q))?.to_text());
    Ok(())
}
