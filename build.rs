//! Embeds the bundled tools: writes `$OUT_DIR/bundled_scripts.rs`, the
//! name and text of every `scripts/*.ns` (sorted by name), for
//! `src/bundled.rs`.

use std::path::Path;

fn main() {
    // Read at run time: a build script binary reused by another checkout
    // sharing the target directory must not read the first one's scripts.
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = Path::new(&root).join("scripts");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut scripts: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("the scripts/ directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "ns"))
        .map(|path| {
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path.file_stem().expect("a file name").to_string_lossy();
            (name.into_owned(), path.display().to_string())
        })
        .collect();
    scripts.sort();
    let entries: String = scripts
        .iter()
        .map(|(name, path)| format!("    ({name:?}, include_str!({path:?})),\n"))
        .collect();
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("bundled_scripts.rs");
    std::fs::write(
        out,
        format!("/// The bundled scripts: (name, text), by name.\npub const SCRIPTS: &[(&str, &str)] = &[\n{entries}];\n"),
    )
    .expect("write bundled_scripts.rs");
}
