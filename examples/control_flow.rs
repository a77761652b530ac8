//! Graph control flow, as the issue that asked for it wrote it: cond, while_loop with a
//! data-dependent trip count, fori_loop as one loop node, scan, gradients through loops,
//! TensorArray, switch_case and print. `cargo run --release --example control_flow`.
// Kept as the issue wrote it (`&[x.clone()]` rather than `std::slice::from_ref(x)`).
#![allow(clippy::cloned_ref_to_slice_refs)]

use kiln::{DType, GradientTape, Tensor, TensorArray, Variable};

fn main() -> kiln::Result<()> {
    let x = Tensor::new(&[1.0f32, -2.0, 3.0]);
    // cond: both branches traced into the graph when tracing; eagerly, only the taken one runs.
    let f = kiln::function(|x: &Tensor| {
        kiln::cond(&x.sum_all().greater(&Tensor::scalar(0.0f32)), || Ok(x * 2.0), || Ok(x.neg()))
    });
    assert_eq!(f.call(&x)?.to_vec::<f32>()?, vec![2.0, -4.0, 6.0]);
    // while_loop with a data-dependent trip count (Newton's method for sqrt).
    let sqrt = kiln::function(|a: &Tensor| -> kiln::Result<Tensor> {
        let out = kiln::while_loop(
            |v: &[Tensor]| Ok((&v[0] * &v[0] - a).abs().max_all().greater(&Tensor::scalar(1e-6f32))),
            |v: &[Tensor]| Ok(vec![0.5 * (&v[0] + a / &v[0])]),
            &[a.clone()],
        )?;
        Ok(out[0].clone())
    });
    let r = sqrt.call(&Tensor::new(&[4.0f32, 9.0]))?;
    // fori_loop: the book's add_10, one loop node whatever the trip count.
    let add_n = kiln::function(|x: &Tensor| {
        Ok(kiln::fori_loop(0, 10_000, |_i: &Tensor, v: &[Tensor]| Ok(vec![&v[0] + 1.0]), &[x.clone()])?[0].clone())
    });
    assert_eq!(add_n.call(&Tensor::scalar(0.0f32))?.to_scalar::<f32>()?, 10_000.0);
    let graph = add_n.graph(&Tensor::scalar(0.0f32))?.to_text();
    assert!(graph.lines().count() < 40);
    println!("the loop's graph:\n{graph}");
    // scan: carry and per-step outputs, stacked along axis 0 (jax.lax.scan).
    let xs = Tensor::new(&[[1.0f32], [2.0], [3.0]]);
    let (carry, ys) = kiln::scan(
        |c: &[Tensor], x: &[Tensor]| {
            let s = &c[0] + &x[0];
            Ok((vec![s.clone()], vec![s]))
        },
        &[Tensor::zeros(&[1], DType::F32)],
        &[xs],
    )?;
    // gradients flow through cond, scan and while_loop, eagerly and compiled.
    let w = Variable::new(Tensor::scalar(0.5f32));
    let tape = GradientTape::new();
    let y = kiln::fori_loop(0, 3, |_i: &Tensor, v: &[Tensor]| Ok(vec![&v[0] * &w.read()]), &[Tensor::scalar(2.0f32)])?;
    let g = tape.gradient(&y[0], &[&w])?; // d(2 w^3)/dw = 6 w^2 = 1.5
                                          // TensorArray, switch_case and print.
    let ta = TensorArray::new(DType::F32, 3).write(0, &Tensor::scalar(1.0f32))?;
    let k =
        kiln::switch_case(&Tensor::scalar(1i32), &[&|| Ok(Tensor::scalar(0.0f32)), &|| Ok(Tensor::scalar(1.0f32))])?;
    kiln::print("k =", &[&k])?; // prints when it runs, also compiled
    println!("{r} {carry:?} {ys:?} {g:?} {}", ta.size());
    Ok(())
}
