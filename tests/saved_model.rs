//! SavedModel-like bundles (`kiln::saved_model`): every traced signature saved and loaded,
//! called in a fresh process without the closure, a loaded training step that keeps
//! training, and bad bundles refused with an `Err`.

use std::sync::Arc;

use kiln::losses::{Loss, MeanSquaredError};
use kiln::nn::{Dense, Layer, Sequential};
use kiln::optim::{Optimizer, SGD};
use kiln::{DType, GradientTape, Tensor};

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-saved-model-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn example_function() -> kiln::Function<Tensor> {
    kiln::function(|x: &Tensor| (x.matmul(&x.t()) + 1.0).tanh().sum(&[1], false))
}

/// The program, part 1: two signatures saved, then called from the bundle alone —
/// here, and in a new process (this test binary run again, told where the bundle is).
#[test]
fn every_signature_round_trips_also_in_a_fresh_process() {
    if let Some(d) = std::env::var_os("KILN_TEST_BUNDLE") {
        // The child: no closure here, only the bundle.
        let loaded = kiln::saved_model::load(d).unwrap();
        let x = Tensor::random_normal(&[4, 3], DType::F32, 1);
        let want = Tensor::from_vec(
            std::env::var("KILN_TEST_WANT").unwrap().split(',').map(|v| v.parse::<f32>().unwrap()).collect(),
            &[4],
        )
        .unwrap();
        assert_eq!(loaded.call(&[x]).unwrap()[0].to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
        return;
    }
    let d = dir("signatures");
    let f = example_function();
    let (x, x64) = (Tensor::random_normal(&[4, 3], DType::F32, 1), Tensor::random_normal(&[2, 5], DType::F64, 2));
    let (want, want64) = (f.call(&x).unwrap(), f.call(&x64).unwrap());
    kiln::saved_model::save(&f, &d).unwrap();
    let loaded = kiln::saved_model::load(&d).unwrap();
    assert_eq!(loaded.graphs().len(), 2);
    assert_eq!(
        loaded.call(std::slice::from_ref(&x)).unwrap()[0].to_vec::<f32>().unwrap(),
        want.to_vec::<f32>().unwrap()
    );
    assert_eq!(loaded.call(&[x64]).unwrap()[0].to_vec::<f64>().unwrap(), want64.to_vec::<f64>().unwrap());
    let e = loaded.call(&[Tensor::zeros(&[3], DType::F32)]).unwrap_err().to_string();
    assert!(e.contains("no signature takes (f32[3])") && e.contains("f32[4,3]"), "{e}");
    // A fresh process.
    let csv: Vec<String> = want.to_vec::<f32>().unwrap().iter().map(|v| v.to_string()).collect();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "every_signature_round_trips_also_in_a_fresh_process", "--test-threads=1"])
        .env("KILN_TEST_BUNDLE", &d)
        .env("KILN_TEST_WANT", csv.join(","))
        .status()
        .unwrap();
    assert!(status.success(), "the child process failed");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A saved training step, loaded: its Variables are Variables, and it keeps training.
#[test]
fn a_loaded_training_step_keeps_training() {
    let d = dir("train");
    let model = Arc::new(Sequential::new().add(Dense::new(4).activation("tanh").seed(1)).add(Dense::new(1).seed(2)));
    let opt = Arc::new(SGD::new(0.1));
    let (m, o) = (model.clone(), opt.clone());
    let step = kiln::function(move |x: &Tensor, y: &Tensor| -> kiln::Result<Tensor> {
        let tape = GradientTape::new();
        let loss = MeanSquaredError.call(y, &m.call(x, true)?)?;
        o.minimize(&loss, &m.trainable_variables(), &tape)?;
        Ok(loss)
    });
    let x = Tensor::random_normal(&[16, 3], DType::F32, 3);
    let y = x.sum(-1, true);
    step.call((&x, &y)).unwrap();
    kiln::saved_model::save(&step, &d).unwrap();
    let loaded = kiln::saved_model::load(&d).unwrap();
    // The loaded Variables start where the originals are now, and evolve as they would.
    let first = loaded.call(&[x.clone(), y.clone()]).unwrap()[0].to_scalar::<f32>().unwrap();
    let again = step.call((&x, &y)).unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(first, again, "the same step from the same state");
    let mut last = first;
    for _ in 0..30 {
        last = loaded.call(&[x.clone(), y.clone()]).unwrap()[0].to_scalar::<f32>().unwrap();
    }
    assert!(last < 0.5 * first, "{first} -> {last}");
    let names: Vec<&str> = loaded.variables().iter().map(|v| v.name()).collect();
    assert!(
        names.iter().any(|n| n.ends_with("/kernel")) && names.iter().any(|n| n.ends_with("iterations")),
        "{names:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_bundles_are_errors() {
    let d = dir("bad");
    let f = example_function();
    assert!(kiln::saved_model::save(&f, &d).unwrap_err().to_string().contains("no traced signature"));
    f.call(&Tensor::ones(&[2, 2], DType::F32)).unwrap();
    kiln::saved_model::save(&f, &d).unwrap();
    let manifest = d.join("saved_model.json");
    let good = std::fs::read_to_string(&manifest).unwrap();
    let check = |text: &str, needle: &str| {
        std::fs::write(&manifest, text).unwrap();
        let e = kiln::saved_model::load(&d).err().expect("an error").to_string();
        assert!(e.contains(needle), "{needle}: {e}");
    };
    check(&good.replace("\"version\": 1", "\"version\": 2"), "version");
    check(&good.replace("kiln.saved_model", "other"), "not a kiln.saved_model");
    check(&good[..good.len() / 2], "manifest");
    check(&good.replace("signature_0.json", "../signature_0.json"), "graph file");
    std::fs::write(&manifest, &good).unwrap();
    let graph = d.join("signature_0.json");
    let g = std::fs::read_to_string(&graph).unwrap();
    std::fs::write(&graph, &g[..g.len() / 3]).unwrap();
    assert!(kiln::saved_model::load(&d).is_err());
    std::fs::write(&graph, &g).unwrap();
    kiln::saved_model::load(&d).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}

/// Every file of a bundle mutated many times over (truncations and byte changes, seeded): a
/// load is an `Err` or a working bundle, never a panic.
#[test]
fn mutated_bundles_never_panic() {
    let d = dir("fuzz");
    let w = kiln::Variable::with_options(Tensor::new(&[0.5f32, -1.0, 2.0]), "w", true);
    let f = kiln::function(move |x: &Tensor| (x * &w.read()).tanh().sum(&[0], false));
    let x = Tensor::new(&[1.0f32, 2.0, 3.0]);
    f.call(&x).unwrap();
    kiln::saved_model::save(&f, &d).unwrap();
    let mut state = 12345u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut refused = 0;
    for name in ["saved_model.json", "signature_0.json", "variables.safetensors"] {
        let file = d.join(name);
        let good = std::fs::read(&file).unwrap();
        for round in 0..150 {
            let bad: Vec<u8> = if round % 5 == 0 {
                good[..next() % good.len()].to_vec()
            } else {
                let mut b = good.clone();
                for _ in 0..1 + next() % 3 {
                    let i = next() % b.len();
                    b[i] = match next() % 3 {
                        0 => b[i] ^ (1 << (next() % 8)),
                        1 => b"{}[]\",:0-9e"[next() % 11],
                        _ => next() as u8,
                    };
                }
                b
            };
            std::fs::write(&file, &bad).unwrap();
            let loaded = std::panic::catch_unwind(|| {
                kiln::saved_model::load(&d).map(|m| m.call(std::slice::from_ref(&x)).is_ok())
            });
            match loaded {
                Err(_) => panic!("{name}, round {round}: the load panicked"),
                Ok(Err(_)) => refused += 1,
                Ok(Ok(_)) => {}
            }
        }
        std::fs::write(&file, &good).unwrap();
    }
    assert!(refused > 150, "only {refused} of 450 mutated bundles were refused");
    kiln::saved_model::load(&d).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
}
