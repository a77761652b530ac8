//! The repository explains itself: no text file names a path of a particular machine or a
//! file outside the repository (the design brief and the measurements it relied on are
//! copied into `docs/`).

use std::path::{Path, PathBuf};

fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                text_files(&p, out);
            }
        } else if ["rs", "md", "py", "toml", "txt"].iter().any(|x| name.ends_with(&format!(".{x}"))) {
            out.push(p);
        }
    }
}

#[test]
fn no_machine_paths_or_outside_files_are_referenced() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join(".ci/run")];
    text_files(root, &mut files);
    // Written in pieces so this file does not match itself.
    let banned =
        [["/wo", "rk/"].concat(), ["/ro", "ot/"].concat(), ["/ho", "me/"].concat(), ["../sha", "red"].concat()];
    let mut found = vec![];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            for b in &banned {
                if line.contains(b.as_str()) {
                    found.push(format!("{}:{}: {}", f.strip_prefix(root).unwrap().display(), i + 1, line.trim()));
                }
            }
            // A design-brief section reference must name the repo's copy, docs/DESIGN.md.
            if line.contains(&["DESIGN ", "§"].concat()) && !line.contains("DESIGN.md") {
                found.push(format!("{}:{}: {}", f.strip_prefix(root).unwrap().display(), i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "references outside the repository:\n{}", found.join("\n"));
}
