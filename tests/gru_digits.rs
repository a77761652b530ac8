//! The GRU example reaches at least 0.95 held-out accuracy on scikit-learn's digits read as
//! 8 rows of 8 pixels (compiled training step, 10 epochs, seed 0).

#[allow(dead_code)]
#[path = "../examples/gru_digits.rs"]
mod gru_digits;

#[test]
fn the_digits_gru_reaches_95_percent_held_out_accuracy() {
    let accuracy = gru_digits::run(10, 0, false).unwrap();
    assert!(accuracy >= 0.95, "held-out accuracy {accuracy}");
}
