//! docs/architecture.md's table of which top-level module uses which is
//! the one the source's `crate::` paths give (tests and `#[cfg(test)]`
//! modules aside), so a newcomer can trust it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The non-test source of a file: up to its `#[cfg(test)]` module.
fn non_test(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

/// Every `.rs` file under `dir` that is not a test file.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "tests" {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && !name.starts_with("tests") {
            out.push(path);
        }
    }
}

/// Top-level module -> the other top-level modules its code names.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let used = out.entry(top.clone()).or_default();
        for (at, _) in non_test(&text).match_indices("crate::") {
            let name: String = text[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                used.insert(name);
            }
        }
    }
    out
}

#[test]
fn the_documented_module_dependencies_are_the_sources() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    let table: String = uses()
        .iter()
        .map(|(module, used)| {
            let used: Vec<&str> = used.iter().map(String::as_str).collect();
            let used = if used.is_empty() {
                "(none: a leaf)".to_string()
            } else {
                used.join(", ")
            };
            format!("| `{module}` | {used} |\n")
        })
        .collect();
    assert!(
        doc.contains(&table),
        "docs/architecture.md should hold this table (## Module dependencies):\n{table}"
    );
}

/// Each module's layer: 0 for a leaf, else one above the highest module it
/// uses. Panics naming a cycle when modules use each other.
fn layers(uses: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, usize> {
    fn layer(
        module: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeMap<String, usize>,
        trail: &mut Vec<String>,
    ) -> usize {
        if let Some(&n) = done.get(module) {
            return n;
        }
        if let Some(at) = trail.iter().position(|m| m == module) {
            panic!(
                "modules use each other: {} -> {module}",
                trail[at..].join(" -> ")
            );
        }
        trail.push(module.to_string());
        let n = uses
            .get(module)
            .into_iter()
            .flatten()
            .map(|used| layer(used, uses, done, trail) + 1)
            .max()
            .unwrap_or(0);
        trail.pop();
        done.insert(module.to_string(), n);
        n
    }
    let mut done = BTreeMap::new();
    for module in uses.keys() {
        layer(module, uses, &mut done, &mut Vec::new());
    }
    done
}

/// Every stage depends only on the stages below it: the modules form no
/// cycle, and docs/architecture.md's picture of the layers is the one the
/// imports give.
#[test]
fn the_modules_form_layers_and_the_documented_picture_is_theirs() {
    let by_module = layers(&uses());
    let mut by_layer: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (module, n) in &by_module {
        by_layer.entry(*n).or_default().push(module);
    }
    let picture: String = by_layer
        .iter()
        .rev()
        .map(|(n, modules)| format!("layer {n}: {}\n", modules.join(" ")))
        .collect();
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    assert!(
        doc.contains(&picture),
        "docs/architecture.md should hold this picture (## Module dependencies):\n{picture}"
    );
}
