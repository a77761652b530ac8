//! A seeded training run on scikit-learn's digits reaches at least 0.95 accuracy on its
//! held-out 20% (the example's baseline MLP, compiled step, 20 epochs, seed 0).

#[allow(dead_code)]
#[path = "../examples/train_digits.rs"]
mod train_digits;

#[test]
fn the_digits_mlp_reaches_95_percent_held_out_accuracy() {
    let (accuracy, f1) = train_digits::run(train_digits::VARIANTS[0], 20, 0, false).unwrap();
    assert!(accuracy >= 0.95, "held-out accuracy {accuracy}");
    assert!(f1 >= 0.94, "held-out macro F1 {f1}");
}
