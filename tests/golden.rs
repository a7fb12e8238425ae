//! Golden tests of the pipeline: small scripts compiled to IR and to BPF,
//! compared with the files next to them in tests/golden/. Run with
//! `NETSCRIPT_BLESS=1` to rewrite the expected files after a deliberate
//! change, then review the diff.

mod common;

use common::check_golden;
use netscript::diag::Source;
use netscript::{codegen, pipeline, sema};
use std::path::Path;

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
        let name = script.file_stem().unwrap().to_string_lossy();
        check_golden(&format!("{name}.ir"), &ir);
        check_golden(&format!("{name}.bpf"), &bpf);
    }
}
