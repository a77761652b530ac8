//! Issue 16's program, as written there: a traced function saved as a SavedModel-like bundle
//! and as ONNX, both loaded back and run (`docs/SAVING.md`).
//! Run: `cargo run --release --example export`.

use kiln::{DType, Tensor};

// `&[x.clone()]` as the issue writes it.
#[allow(clippy::cloned_ref_to_slice_refs)]
pub fn main() -> kiln::Result<()> {
    let x = Tensor::random_normal(&[4, 3], DType::F32, 1);
    let f = kiln::function(|x: &Tensor| (x.matmul(&x.t()) + 1.0).tanh().sum(&[1], false));
    let want = f.call(&x)?;
    let dir = std::env::temp_dir().join("kiln-export-demo");
    // 1. SavedModel-like bundle: every traced signature's graph + the Variables, loadable and
    //    callable in another process without the Rust closure.
    kiln::saved_model::save(&f, &dir)?;
    let loaded = kiln::saved_model::load(&dir)?;
    assert_eq!(loaded.call(&[x.clone()])?[0].to_vec::<f32>()?, want.to_vec::<f32>()?);
    // 2. ONNX out and in.
    let onnx = dir.join("f.onnx");
    kiln::onnx::save(&f.concrete_function(&x)?, &onnx)?;
    let g = kiln::onnx::load(&onnx)?; // runs through kiln's passes and JIT
    let got = g.call(&[x.clone()])?;
    assert!((&got[0] - &want).abs().max_all().to_scalar::<f32>()? < 1e-5);
    Ok(())
}
