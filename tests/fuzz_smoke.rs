//! The fuzzing targets' smoke run on the stable toolchain (CI): the seed
//! corpus and deterministic mutants of it through the parser, the semantic
//! analysis and the whole compile pipeline, with no panic; and generated
//! well-formed programs loaded through the kernel verifier, where a
//! program the compiler accepts and the verifier rejects is a bug. The
//! long runs are cargo-fuzz's (`fuzz/`, docs/fuzzing.md).

use std::panic::{catch_unwind, AssertUnwindSafe};

use netscript::testing::fuzz::{self, Mutator, Outcome, Target};

/// Runs `input` through `target`, a panic caught as a bug.
fn outcome(target: Target, input: &[u8]) -> Outcome {
    catch_unwind(AssertUnwindSafe(|| fuzz::run(target, input))).unwrap_or_else(|_| {
        Outcome::Bug(format!(
            "{target:?} panicked on:\n{}",
            String::from_utf8_lossy(input)
        ))
    })
}

/// The bugs among `outcomes`.
fn bugs(outcomes: &[Outcome]) -> Vec<&str> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Bug(b) => Some(b.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn seeds_and_mutants_never_panic_the_compiler() {
    let seeds = fuzz::seeds();
    assert!(seeds.len() >= 15, "seed corpus: {} files", seeds.len());
    let mut m = Mutator::new(0x5eed);
    for target in [Target::Parse, Target::Check, Target::Compile] {
        let mut outcomes: Vec<Outcome> = seeds
            .iter()
            .map(|(_, text)| outcome(target, text.as_bytes()))
            .collect();
        // The bundled scripts and the stdlib are valid: most seeds pass.
        let passed = outcomes.iter().filter(|o| **o == Outcome::Passed).count();
        assert!(
            passed * 2 > seeds.len(),
            "{target:?}: {passed} of {} seeds passed",
            seeds.len()
        );
        for _ in 0..400 {
            let (_, a) = &seeds[m.below(seeds.len())];
            let (_, b) = &seeds[m.below(seeds.len())];
            outcomes.push(outcome(target, &m.mutate(a.as_bytes(), b.as_bytes())));
        }
        let found = bugs(&outcomes);
        assert!(found.is_empty(), "{target:?}: {}", found.join("\n---\n"));
    }
}

#[test]
fn generated_programs_the_compiler_accepts_pass_the_verifier() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let mut m = Mutator::new(0xb0f);
    let outcomes: Vec<Outcome> = (0..120)
        .map(|i| {
            outcome(
                Target::Verify,
                fuzz::generate(&mut m, 1 + i % 12).as_bytes(),
            )
        })
        .collect();
    let found = bugs(&outcomes);
    assert!(found.is_empty(), "{}", found.join("\n---\n"));
    // The generator writes valid programs: nearly all load.
    let passed = outcomes.iter().filter(|o| **o == Outcome::Passed).count();
    assert!(
        passed >= 110,
        "{passed} of 120 generated programs loaded: {outcomes:?}"
    );
}
