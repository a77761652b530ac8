//! The chapter end to end (examples/custom_models.rs): both trainings' losses fall, and the
//! model trained by `fit` (custom loss, metric, layers, `add_loss`, callbacks, TensorBoard)
//! predicts the held-out diabetes targets better than their mean does, and saved whole with its
//! custom objects then loaded back, predicts the same.

#[allow(dead_code)]
#[path = "../examples/custom_models.rs"]
mod custom_models;

#[test]
fn the_chapters_models_train() {
    let logdir = std::env::temp_dir().join(format!("kiln-custom-models-test-{}", std::process::id()));
    let r = custom_models::run(12, &logdir, false).unwrap();
    assert!(r.custom_loop.last().unwrap() < &(0.5 * r.custom_loop[0]), "custom loop: {:?}", r.custom_loop);
    assert!(r.fit.last().unwrap() < &r.fit[0], "fit: {:?}", r.fit);
    // Predicting the (standardized) mean everywhere: mean |y|.
    let (_, y) = custom_models::diabetes::load().unwrap();
    let baseline = y.abs().mean_all().item().unwrap();
    assert!(r.held_out_mae < 0.9 * baseline, "held-out mae {} vs the mean's {baseline}", r.held_out_mae);
    assert!(logdir.join("best.safetensors").exists());
    assert!(r.reload_matches, "the model saved whole and loaded back predicts differently");
    let events = std::fs::read_dir(&logdir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("events.out.tfevents"));
    assert_eq!(events.count(), 1);
    std::fs::remove_dir_all(&logdir).unwrap();
}
