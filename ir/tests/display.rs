//! `Display for Array` against the strings numpy's `str()` printed (tests/golden/display.json).

mod common;

use common::{array, golden};

#[test]
fn prints_like_numpy() {
    let g = golden("display.json");
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for c in cases {
        let a = array(&c["array"]);
        let want = c["str"].as_str().unwrap();
        let got = a.to_string();
        if got != want {
            failures.push(format!("{}{:?}:\n--- numpy\n{want}\n--- kiln\n{got}", a.dtype(), a.shape()));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
