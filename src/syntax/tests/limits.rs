//! The nesting limits: long flat chains and reasonable nesting compile,
//! deeper input is a located error, never a stack overflow (these tests
//! run on cargo's 2 MiB test threads, in debug builds too).

use super::*;
use crate::diag::{Diagnostic, Source};
use crate::pipeline;
use crate::syntax::{MAX_DEPTH, MAX_NESTING};

/// A named generator of an expression nested `n` levels deep.
type NestedShape = (&'static str, fn(usize) -> String);

/// Expressions and blocks inside one another: held to [`MAX_NESTING`].
const NESTED: [NestedShape; 5] = [
    ("parentheses", |n| {
        format!("{}1{}", "(".repeat(n), ")".repeat(n))
    }),
    ("ternaries", |n| format!("{}1", "1 ? 1 : ".repeat(n))),
    ("calls", |n| {
        format!("{}1{}", "abs(".repeat(n), ")".repeat(n))
    }),
    ("map keys", |n| {
        format!("{}1{}", "@m[".repeat(n), "]".repeat(n))
    }),
    ("blocks", |n| {
        format!("1; {}{}", "if (1) { ".repeat(n), "}".repeat(n))
    }),
];

/// Flat chains of operators, nested only in the AST: held to [`MAX_DEPTH`].
const CHAINS: [NestedShape; 5] = [
    ("negations", |n| format!("{}1", "-".repeat(n))),
    ("additions", |n| format!("1{}", " + 1".repeat(n))),
    ("indexes", |n| format!("$a{}", "[1]".repeat(n))),
    ("fields", |n| format!("$a{}", ".f".repeat(n))),
    ("casts", |n| format!("{}1", "(u8)".repeat(n))),
];

/// `BEGIN { $x = <e>; }`.
fn script(e: &str) -> String {
    format!("BEGIN {{ $x = {e}; }}")
}

/// Fails unless `err` is a located "nested too deeply" error.
fn assert_nesting_error(what: &str, src: &str, err: &Diagnostic) {
    let rendered = err.render(Some(&Source::new("t", src)));
    let (place, message) = rendered.split_once(": error: ").unwrap_or_default();
    assert!(
        place.starts_with("t:") && message.contains("nested too deeply"),
        "{what}: {err:?}"
    );
}

#[test]
fn deep_nesting_is_a_located_error_not_a_stack_overflow() {
    for (name, shape) in NESTED {
        let nested = MAX_NESTING - 4;
        assert!(parse(&script(&shape(nested))).is_ok(), "{name} x{nested}");
        for n in [MAX_NESTING + 1, 100_000] {
            let src = script(&shape(n));
            assert_nesting_error(&format!("{name} x{n}"), &src, &parse(&src).expect_err(name));
        }
    }
    for (name, shape) in CHAINS {
        assert!(parse(&script(&shape(1000))).is_ok(), "{name} x1000");
        // Long chains are slow to parse in a debug build.
        for n in [MAX_DEPTH + 1, 20_000] {
            let src = script(&shape(n));
            assert_nesting_error(&format!("{name} x{n}"), &src, &parse(&src).expect_err(name));
        }
    }
}

/// Compiles `src` (a `BEGIN` probe, with no kernel dependence).
fn compile(src: &str) -> crate::diag::Result<pipeline::Compiled> {
    pipeline::compile(&Source::new("t", src), &Default::default(), 0)
}

#[test]
fn long_flat_chains_compile_up_to_the_depth_limit() {
    // 63 operators once counted as 63 levels of nesting.
    let sum = vec!["1"; 100].join("+");
    compile(&format!("BEGIN {{ @x = {sum}; exit(); }}")).expect("a sum of 100 terms");
    // The deepest accepted: chains just within the limit, alone or inside
    // parentheses nested just within theirs.
    let chain = |n| format!("$y{}", " + $y".repeat(n));
    let nested = MAX_NESTING - 3;
    let cases = [
        chain(MAX_DEPTH - 4),
        format!("-{}", chain(MAX_DEPTH - 5)),
        format!(
            "{}{}{}",
            "(".repeat(nested),
            chain(MAX_DEPTH - nested - 4),
            ")".repeat(nested)
        ),
        // Each of 60 nested parentheses holding a chain.
        format!("{}$y{}", "($y * 3 - 1 + ".repeat(60), ")".repeat(60)),
    ];
    for e in cases {
        let src = format!("BEGIN {{ $y = 2; @x = {e}; exit(); }}");
        if let Err(err) = compile(&src) {
            panic!("{}...: {err:?}", &e[..80]);
        }
    }
    let src = format!("BEGIN {{ $y = 2; @x = {}; }}", chain(MAX_DEPTH));
    assert_nesting_error(
        "one level too deep",
        &src,
        &compile(&src).expect_err("too deep"),
    );
}

#[test]
fn inlined_calls_are_held_to_the_depth_limit() {
    // 16 functions, each calling the next at the far end of a chain: the
    // inlined script is 16 chains deep.
    let nest = |terms: usize| {
        let mut src = String::from("fn f0($a) { return $a; }\n");
        for k in 1..16 {
            let chain = " + $a".repeat(terms);
            src += &format!("fn f{k}($a) {{ return f{}($a){chain}; }}\n", k - 1);
        }
        src + "BEGIN { @x = f15(2); exit(); }"
    };
    compile(&nest(MAX_DEPTH / 16 - 8)).expect("within the limit");
    let src = nest(MAX_DEPTH / 15);
    let err = compile(&src).expect_err("too deep");
    assert_nesting_error("inlined", &src, &err);
    assert!(err.message.contains("inlined"), "{err:?}");
}
