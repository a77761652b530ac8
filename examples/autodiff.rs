//! Autodiff in kiln: the seed's example on a GradientTape, checked against finite differences.
//!
//! Run: `cargo run --release --example autodiff`

use kiln::{GradientTape, Result, Tensor, Variable};

fn main() -> Result<()> {
    let (w1, w2) = (Variable::new(Tensor::scalar(5.0f32)), Variable::new(Tensor::scalar(3.0f32)));
    let f = |a: &Tensor, b: &Tensor| 3.0 * a.square() + 2.0 * a * b;

    // Reverse mode on a tape: exact.
    let tape = GradientTape::new();
    let z = f(&w1.read(), &w2.read());
    let g = tape.gradient(&z, &[&w1, &w2])?;
    let exact: Vec<f32> =
        g.iter().map(|g| g.as_ref().expect("both are used").to_scalar::<f32>()).collect::<Result<_>>()?;

    // Forward finite differences in f64 (eps = 1e-6): close, but not exact.
    let fd = |x1: f64, x2: f64| {
        let (a, b) = (Tensor::scalar(x1), Tensor::scalar(x2));
        f(&a, &b).to_scalar::<f64>()
    };
    let eps = 1e-6;
    let base = fd(5.0, 3.0)?;
    let d1 = (fd(5.0 + eps, 3.0)? - base) / eps;
    let d2 = (fd(5.0, 3.0 + eps)? - base) / eps;

    println!("f(w1, w2) = 3*w1^2 + 2*w1*w2 at (5, 3) = {}", z.to_scalar::<f32>()?);
    println!("df/dw1: tape {:<5} finite differences {d1}", exact[0]);
    println!("df/dw2: tape {:<5} finite differences {d2}", exact[1]);

    // The same with the functional form.
    let g = kiln::grad(f).call((&Tensor::scalar(5.0f32), &Tensor::scalar(3.0f32)))?;
    println!("kiln::grad: [{}, {}]", g[0].to_scalar::<f32>()?, g[1].to_scalar::<f32>()?);
    Ok(())
}
