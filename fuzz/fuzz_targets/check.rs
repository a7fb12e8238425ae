//! cargo-fuzz target: netscript::testing::fuzz, Target::Check.
#![no_main]

use netscript::testing::fuzz::{run, Outcome, Target};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Outcome::Bug(bug) = run(Target::Check, data) {
        panic!("{bug}");
    }
});
