//! The fuzzing targets, shared by the cargo-fuzz harness (`fuzz/`, nightly,
//! libFuzzer) and the stable smoke run in CI (`tests/fuzz_smoke.rs`): what
//! one input goes through, the seed corpus, a deterministic mutator and a
//! generator of well-formed programs. See docs/fuzzing.md.

use crate::diag::Source;
use crate::stack::{on_stack, COMPILE_STACK_BYTES};
use crate::{params, pipeline, runtime, sema, stdlib, syntax};

/// What an input is run through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The parser alone.
    Parse,
    /// Parsing and semantic analysis (BTF, tracefs), with the stdlib.
    Check,
    /// The whole pipeline to the BPF ELF object.
    Compile,
    /// Compile, then load through the kernel verifier: a program the
    /// compiler accepts and the verifier rejects is a bug (needs root).
    Verify,
}

/// What became of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with an error message, as bad input should be.
    Refused,
    /// Went through the whole target.
    Passed,
    /// A bug: a program the compiler accepted and the verifier rejected
    /// (a panic anywhere is the other kind of bug).
    Bug(String),
}

/// Runs `input` through `target`.
pub fn run(target: Target, input: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(input) else {
        return Outcome::Refused;
    };
    if text.len() > 1 << 16 {
        return Outcome::Refused;
    }
    let Ok(ast) = syntax::parse(text) else {
        return Outcome::Refused;
    };
    if target == Target::Parse {
        return Outcome::Passed;
    }
    let Ok(declared) = params::declared(&ast, &crate::cli::reserved_flags()) else {
        return Outcome::Refused;
    };
    let Ok(params::Request::Run(values)) = params::bind(&declared, &[]) else {
        return Outcome::Refused;
    };
    let mut source = Source::new("fuzz", text.to_string());
    stdlib::attach(&mut source);
    let options = sema::Options {
        params: values,
        library_start: Some(source.script_end()),
        skip_missing_probes: true,
        // fentry loads are refused on kernels without it: not the
        // verifier's rejection of our code.
        fentry_as_kprobe: true,
        ..Default::default()
    };
    if target == Target::Check {
        let checked = syntax::parse(&source.text)
            .and_then(|ast| on_stack(COMPILE_STACK_BYTES, || sema::check(&ast, &options)));
        return match checked {
            Ok(_) => Outcome::Passed,
            Err(_) => Outcome::Refused,
        };
    }
    let Ok(compiled) = pipeline::compile(&source, &options, 0) else {
        return Outcome::Refused;
    };
    if target == Target::Compile {
        return Outcome::Passed;
    }
    match runtime::session::load_checked(&compiled) {
        Err(e) if e.message.starts_with("the kernel verifier rejected") => Outcome::Bug(format!(
            "{}\n{}\nprogram:\n{}",
            e.message,
            e.notes.join("\n"),
            text
        )),
        Err(_) => Outcome::Refused,
        Ok(_) => Outcome::Passed,
    }
}

/// The seed corpus: the bundled scripts, the stdlib and the test scripts,
/// as `(name, text)`.
pub fn seeds() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, String)> = ["scripts", "stdlib", "tests/golden", "tests/lab"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(root.join(dir)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ns"))
        .filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(&p).ok()?)))
        .collect();
    out.sort();
    out
}

/// Pieces a mutation inserts: keywords, operators, edge-case numbers and
/// constructs that once broke something.
const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    ";",
    ",",
    "[",
    "]",
    "$x",
    "@m",
    "@m[1]",
    "<<",
    ">>",
    "64",
    "-1",
    "0",
    "4096",
    "99999999999999999999",
    "unroll(100) {",
    "while ($x < 10) {",
    "kstack",
    "pkt[0]",
    "%d",
    "%-999s",
    "printf(\"%d\\n\", 1);",
    "args->len",
    "arg0",
    "comm",
    "pid",
    "nsecs",
    "hist(",
    "count()",
    "(struct sk_buff *)",
    "->",
    ".",
    "?",
    ":",
    "&&",
    "||",
    "!",
    "~",
    "interval:hz:",
    "kprobe:",
    "tracepoint:net:",
    "xdp:lo",
    "BEGIN",
    "END",
    "path p {",
    "stage ",
    "fn f($a) {",
    "return",
    "exit();",
    "\"",
    "'",
    "/*",
    "*/",
    "//",
    "\n",
];

/// A deterministic mutator (xorshift), so a smoke run is reproducible.
pub struct Mutator {
    state: u64,
}

impl Mutator {
    /// A mutator seeded with `seed` (any value but 0 works; 0 is replaced).
    pub fn new(seed: u64) -> Mutator {
        Mutator { state: seed | 1 }
    }

    /// The next pseudo-random number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % n.max(1) as u64) as usize
    }

    /// `input` changed by one to four edits: a range deleted, duplicated
    /// or replaced by a dictionary piece or by a range of `other`.
    pub fn mutate(&mut self, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len() + 1);
            let len = self.below(16).min(out.len() - at);
            match self.below(4) {
                0 => {
                    out.drain(at..at + len);
                }
                1 => {
                    let copy = out[at..at + len].to_vec();
                    out.splice(at..at, copy);
                }
                2 => {
                    let piece = DICTIONARY[self.below(DICTIONARY.len())].as_bytes();
                    out.splice(at..at + len.min(2), piece.iter().copied());
                }
                _ => {
                    let from = self.below(other.len() + 1);
                    let take = self.below(64).min(other.len() - from);
                    out.splice(at..at + len, other[from..from + take].iter().copied());
                }
            }
        }
        out
    }
}

/// Expressions a generated program computes with (valid on a
/// `net:netif_receive_skb` tracepoint).
const EXPRESSIONS: &[&str] = &[
    "args->len",
    "pid",
    "cpu",
    "nsecs",
    "$x",
    "(uint32)args->len",
    "args->len >> 3",
    "args->len << 63",
    "args->len % 7",
    "args->len / 3",
    "-args->len",
    "~args->len",
    "args->len > 100 ? 1 : 2",
    "((struct sk_buff *)args->skbaddr)->len",
    "((struct sk_buff *)args->skbaddr)->protocol",
    "ntohs(((struct sk_buff *)args->skbaddr)->protocol)",
    "skb_ifindex((struct sk_buff *)args->skbaddr)",
];

/// Statements of a generated program, `E` standing for an expression.
const STATEMENTS: &[&str] = &[
    "$x = E;",
    "$x += E;",
    "@c[E] = count();",
    "@s = sum(E);",
    "@h = hist(E);",
    "@l = lhist(E, 0, 1000, 100);",
    "@mx = max(E);",
    "@st = stats(E);",
    "@k[comm, E] = count();",
    "if (E > 10) { @i = count(); } else { @j = count(); }",
    "unroll(3) { $x = $x + E; }",
    "$i = 0; while ($i < 4) { $i++; @w[$i] = E; }",
    "printf(\"%d %d\\n\", E, E);",
    "@ks[kstack(3)] = count();",
    "@v = E & 0xff;",
];

/// A well-formed program of `n` statements on `net:netif_receive_skb`,
/// drawn with `m`: for [`Target::Verify`], where most mutants would not
/// compile at all.
pub fn generate(m: &mut Mutator, n: usize) -> String {
    let mut body = String::from("$x = 1; ");
    for _ in 0..n {
        let stmt = STATEMENTS[m.below(STATEMENTS.len())];
        let mut s = String::new();
        for (i, part) in stmt.split('E').enumerate() {
            if i > 0 {
                s += EXPRESSIONS[m.below(EXPRESSIONS.len())];
            }
            s += part;
        }
        body += &s;
        body.push(' ');
    }
    format!("tracepoint:net:netif_receive_skb {{ {body}}}")
}
