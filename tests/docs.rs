//! Every ```netscript example in docs/*.md compiles and passes the kernel
//! verifier (`--dry-run`).

mod common;

use common::netscript;

/// The ```netscript blocks of a markdown file.
fn examples(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```netscript") => current = Some(String::new()),
            (Some(block), "```") => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn documented_examples_pass_the_verifier() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        for example in examples(&std::fs::read_to_string(&path).unwrap()) {
            let (code, _, err) = netscript(&["--dry-run", "-e", &example]);
            assert_eq!(
                code,
                0,
                "{} example failed:\n{}\n{}",
                path.display(),
                example,
                err
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {} examples found", checked);
}
