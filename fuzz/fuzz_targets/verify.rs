//! cargo-fuzz target: netscript::testing::fuzz, Target::Verify.
#![no_main]

use netscript::testing::fuzz::{run, Outcome, Target};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Outcome::Bug(bug) = run(Target::Verify, data) {
        panic!("{bug}");
    }
});
