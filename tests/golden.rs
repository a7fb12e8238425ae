//! Golden tests of the pipeline: small scripts compiled to IR and to BPF,
//! compared with the files next to them in tests/golden/. Run with
//! `NETSCRIPT_BLESS=1` to rewrite the expected files after a deliberate
//! change, then review the diff.

use netscript::diag::Source;
use netscript::{codegen, pipeline, sema};
use std::path::Path;

fn check(expected_path: &Path, actual: &str) {
    if std::env::var("NETSCRIPT_BLESS").as_deref() == Ok("1") {
        std::fs::write(expected_path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(expected_path)
        .unwrap_or_else(|e| panic!("{}: {}", expected_path.display(), e));
    assert_eq!(
        actual,
        expected,
        "{} differs (NETSCRIPT_BLESS=1 rewrites it)",
        expected_path.display()
    );
}

#[test]
fn scripts_compile_to_the_expected_ir_and_bpf() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ns"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 4);
    for script in scripts {
        let text = std::fs::read_to_string(&script).unwrap();
        let source = Source::new(script.display().to_string(), text);
        let compiled = pipeline::compile(&source, &sema::Options::default(), 0)
            .unwrap_or_else(|e| panic!("{}", e.render(Some(&source))));
        let ir: String = compiled.ir.iter().map(|f| f.to_string()).collect();
        let bpf: String = compiled
            .code
            .iter()
            .map(|c| format!("{}:\n{}", c.name, codegen::disassemble(c)))
            .collect();
        check(&script.with_extension("ir"), &ir);
        check(&script.with_extension("bpf"), &bpf);
    }
}
