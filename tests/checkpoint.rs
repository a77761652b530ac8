//! safetensors checkpoints: an exact round trip, and every mismatch is an `Err` naming it
//! with all variables left unchanged.

use kiln::{checkpoint, DType, Tensor, Variable};

fn vars() -> (Variable, Variable, Variable) {
    (
        Variable::with_options(Tensor::new(&[[1.5f32, -2.25], [3.0, f32::MIN_POSITIVE]]), "w", true),
        Variable::with_options(Tensor::new(&[0.1f64, 0.2, 0.3]), "b", true),
        Variable::with_options(Tensor::scalar(7i64), "steps", false),
    )
}

fn path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("kiln_test_{}_{name}.safetensors", std::process::id()))
}

fn snapshot(vs: &[&Variable]) -> Vec<Vec<u8>> {
    vs.iter().map(|v| v.value().data().as_bytes().to_vec()).collect()
}

fn zero(vs: &[&Variable]) {
    for v in vs {
        v.assign(&Tensor::zeros(v.shape(), v.dtype())).unwrap();
    }
}

#[test]
fn round_trip_is_bit_exact() {
    let (w, b, s) = vars();
    let all = [&w, &b, &s];
    let p = path("round_trip");
    let before = snapshot(&all);
    checkpoint::save(&p, &all).unwrap();
    zero(&all);
    checkpoint::load(&p, &all).unwrap();
    assert_eq!(snapshot(&all), before);
}

/// Loads `p` into fresh zeroed variables and expects an `Err` containing `needle`, with
/// every variable still zero.
fn expect_err(p: &std::path::Path, vs: &[&Variable], needle: &str) {
    zero(vs);
    let before = snapshot(vs);
    let e = checkpoint::load(p, vs).unwrap_err().to_string();
    assert!(e.contains(needle), "error {e:?} should name {needle:?}");
    assert_eq!(snapshot(vs), before, "a failed load must change nothing");
}

#[test]
fn missing_and_extra_tensors_are_errors() {
    let (w, b, s) = vars();
    let p = path("two");
    checkpoint::save(&p, &[&w, &b]).unwrap();
    expect_err(&p, &[&w, &b, &s], "missing tensor `steps`");
    expect_err(&p, &[&w], "no matching variable: b");
}

#[test]
fn wrong_shape_and_dtype_are_errors() {
    let (w, b, _) = vars();
    let p = path("shape");
    checkpoint::save(&p, &[&w, &b]).unwrap();
    let w3 = Variable::with_options(Tensor::zeros(&[3, 2], DType::F32), "w", true);
    expect_err(&p, &[&b, &w3], "tensor `w` is f32[2,2] but the variable is f32[3,2]");
    let b32 = Variable::with_options(Tensor::zeros(&[3], DType::F32), "b", true);
    expect_err(&p, &[&w, &b32], "tensor `b` is f64[3]");
}

#[test]
fn corrupt_and_truncated_files_are_errors() {
    let (w, b, s) = vars();
    let all = [&w, &b, &s];
    let p = path("corrupt");
    checkpoint::save(&p, &all).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let truncated = path("truncated");
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    expect_err(&truncated, &all, "not a valid safetensors file");
    let mut garbled = bytes.clone();
    for byte in &mut garbled[8..20] {
        *byte = b'#';
    }
    let corrupt = path("garbled");
    std::fs::write(&corrupt, &garbled).unwrap();
    expect_err(&corrupt, &all, "not a valid safetensors file");
    expect_err(&path("does_not_exist"), &all, "does_not_exist");
}

#[test]
fn duplicate_names_are_errors() {
    let a = Variable::with_options(Tensor::scalar(1.0f32), "same", true);
    let b = Variable::with_options(Tensor::scalar(2.0f32), "same", true);
    let e = checkpoint::save(path("dup"), &[&a, &b]).unwrap_err().to_string();
    assert!(e.contains("`same`"), "{e}");
}

/// A save that dies half-way (here: a file-size limit the child process hits, as a full disk
/// would stop it) leaves the previous checkpoint loadable.
#[test]
fn an_interrupted_save_keeps_the_old_checkpoint() {
    const CHILD: &str = "KILN_TEST_INTERRUPTED_SAVE";
    if let Some(p) = std::env::var_os(CHILD) {
        // The child: overwrite the checkpoint with 4 MiB, past its 64 KiB file-size limit.
        let w = Variable::with_options(Tensor::zeros(&[1 << 20], DType::F32), "w", true);
        let _ = checkpoint::save(std::path::Path::new(&p), &[&w]);
        return;
    }
    let p = path("interrupted");
    let w = Variable::with_options(Tensor::new(&[1.0f32, 2.0]), "w", true);
    checkpoint::save(&p, &[&w]).unwrap();
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -f 64 && exec "$0" --exact an_interrupted_save_keeps_the_old_checkpoint --test-threads 1"#)
        .arg(std::env::current_exe().unwrap())
        .env(CHILD, &p)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have been stopped by the file-size limit");
    let back = Variable::with_options(Tensor::zeros(&[2], DType::F32), "w", true);
    checkpoint::load(&p, &[&back]).expect("the old checkpoint must still load");
    assert_eq!(back.read().to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    let _ = std::fs::remove_file(&p);
}

#[test]
fn two_dense_layers_get_keras_names_and_save_their_weights() {
    use kiln::nn::{Dense, Layer, Sequential};
    let model = Sequential::new().add(Dense::new(4).seed(1)).add(Dense::new(2).seed(2));
    model.call(&Tensor::ones(&[1, 3], DType::F32), false).unwrap();
    let names: Vec<String> = model.variables().iter().map(|v| v.name().to_string()).collect();
    let (first, second) = (names[0].trim_end_matches("/kernel"), names[2].trim_end_matches("/kernel"));
    assert!(first.starts_with("dense") && second.starts_with("dense_") && first != second, "{names:?}");
    let p = path("two_dense.safetensors");
    checkpoint::save_weights(&model, &p).unwrap();
    let before = model.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect::<Vec<_>>();
    model.variables().iter().for_each(|v| v.assign(&v.read().zeros_like()).unwrap());
    checkpoint::load_weights(&model, &p).unwrap();
    let after = model.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect::<Vec<_>>();
    assert_eq!(before, after);
}
