//! Syntax errors: message, position and rendering; no input may panic.

use super::*;
use crate::diag::Source;

/// `(line, column, message)` of the error for `src`.
fn error_at(src: &str) -> (usize, usize, String) {
    let err = parse(src).expect_err(src);
    let span = err
        .span
        .unwrap_or_else(|| panic!("{src:?}: error without span: {err:?}"));
    let (line, col) = Source::new("t", src).line_col(span.start);
    (line, col, err.message)
}

#[test]
fn errors_name_what_was_expected_at_the_right_place() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("BEGIN { @x = 1 @y = 2 }", 1, 16, "expected `;` or `}`"),
        ("BEGIN { @x = ; }", 1, 14, "expected an expression"),
        (
            "BEGIN {\n  @x = 1;\n",
            3,
            1,
            "unexpected end of input, expected `}` or a statement",
        ),
        (
            "BEGIN { @x = 1",
            1,
            15,
            "unexpected end of input, expected `;` or `}`",
        ),
        ("BEGIN { @x = 1 # 2; }", 1, 16, "unexpected character `#`"),
        ("BEGIN {\n  $x = \"abc;\n}", 2, 8, "unterminated string"),
        ("BEGIN { /* never closed }", 1, 9, "unterminated comment"),
        ("BEGIN { foo(1 2); }", 1, 15, "expected `)` or `,`"),
        ("BEGIN { @x[1 = 2; }", 1, 14, "expected `,` or `]`"),
        ("BEGIN { if x {} }", 1, 12, "expected `(`"),
        ("BEGIN { $x->; }", 1, 13, "expected a field name"),
        (
            "BEGIN { unroll(n) {} }",
            1,
            16,
            "expected an integer literal",
        ),
        ("BEGIN { $x = (struct) 1; }", 1, 21, "expected a name"),
        ("kprobe: { }", 1, 8, "expected a probe target after `:`"),
        ("kprobe:f /pid == 1 { }", 1, 20, "expected `/`"),
        (
            "{ }",
            1,
            1,
            "expected a probe such as `BEGIN` or `kprobe:name`",
        ),
        (
            "BEGIN { } }",
            1,
            11,
            "expected a probe such as `BEGIN` or `kprobe:name`",
        ),
        (
            "BEGIN { }\nkprobe",
            2,
            7,
            "unexpected end of input, expected `:`",
        ),
        ("BEGIN { while; }", 1, 14, "expected `(`"),
        ("BEGIN { $x = 1 +; }", 1, 17, "expected an expression"),
        (
            "BEGIN { $x = 09; }",
            1,
            14,
            "octal integer literal has an invalid digit",
        ),
        (
            "BEGIN { $x = 0x1_0000_0000_0000_0000; }",
            1,
            14,
            "hexadecimal integer literal does not fit in 64 bits",
        ),
        (
            "BEGIN { $x = \"\\q\"; }",
            1,
            15,
            "unknown escape sequence `\\q`",
        ),
        (
            "BEGIN { $x = \"\\xZ\"; }",
            1,
            15,
            "unknown escape sequence `\\x`",
        ),
        (
            "BEGIN { unroll(0) { } }",
            1,
            16,
            "unroll count must be between 1 and 100",
        ),
    ];
    for (src, line, col, message) in cases {
        assert_eq!(
            error_at(src),
            (*line, *col, message.to_string()),
            "source: {src:?}"
        );
    }
}

#[test]
fn keywords_are_not_identifiers() {
    for src in [
        "BEGIN { if = 1; }",
        "BEGIN { $x = while; }",
        "BEGIN { struct(1); }",
        "BEGIN { $x = fn; }",
        "BEGIN { $x = sizeof; }",
    ] {
        assert!(parse(src).is_err(), "{src:?} should not parse");
    }
}

#[test]
fn rendered_errors_show_line_column_and_caret() {
    let cases = [
        (
            "BEGIN {\n  @x = 1 @y = 2\n}\n",
            "s.bt:2:10: error: expected `;` or `}`\n  @x = 1 @y = 2\n         ^\n",
        ),
        ("kprobe:f {\n\t@x = ;\n}", "s.bt:2:7: error: expected an expression\n\t@x = ;\n      ^\n"),
        (
            "BEGIN { printf(\"oops); }",
            "s.bt:1:16: error: unterminated string\nBEGIN { printf(\"oops); }\n               ^^^^^^^^^\n",
        ),
        ("BEGIN { @x = 1;", "s.bt:1:16: error: unexpected end of input, expected `}` or a statement\nBEGIN { @x = 1;\n               ^\n"),
    ];
    assert_rendered_errors("s.bt", &cases);
}

#[test]
fn truncated_and_mangled_inputs_never_panic() {
    let src = "kprobe:tcp_* , t:net:x /(a / b) > 1 && comm == \"a\\x41\"/ { $s = (struct sk_buff **)arg0; \
               @m[$s->len, args.x] += sizeof(struct foo) + offsetof(struct foo, a.b); \
               if ($s) { unroll(2) { @c++ } } else if (!$s) { while (1) { return; } } /* c */ }";
    for end in (0..=src.len()).filter(|i| src.is_char_boundary(*i)) {
        let _ = parse(&src[..end]);
        let without_one: String = src[..end]
            .chars()
            .chain(src[end..].chars().skip(1))
            .collect();
        let _ = parse(&without_one);
    }
    assert!(parse(src).is_ok());
}
