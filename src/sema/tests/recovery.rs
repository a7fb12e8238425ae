//! A probe body is checked on after a failing statement: every mistake is
//! reported once, at its place, in source order, and none that only
//! follows from another.

use super::super::{check, Options};
use crate::diag::Source;
use crate::syntax::parse;

/// Every error reported for `src`, as `line:col: message`, in order.
fn reported(src: &str) -> Vec<String> {
    let ast = parse(src).unwrap_or_else(|e| panic!("parse {}: {}", src, e.message));
    let error = check(&ast, &Options::default())
        .err()
        .unwrap_or_else(|| panic!("{} should not check", src));
    let source = Source::new("t.ns", src);
    std::iter::once(&error)
        .chain(&error.also)
        .map(|e| {
            let (line, col) = source.line_col(e.span.map_or(0, |s| s.start));
            format!("{}:{}: {}", line, col, e.message)
        })
        .collect()
}

#[test]
fn every_failing_statement_of_a_probe_is_reported_in_order() {
    let src = "BEGIN {\n\
               \x20 nosuch(1);\n\
               \x20 $s = (struct sk_buff *)0;\n\
               \x20 @len = $s->no_such_field;\n\
               \x20 $n = \"text\" + 1;\n\
               \x20 if (pid > 1) {\n\
               \x20   @x = count(1);\n\
               \x20 }\n\
               \x20 @ok = 1;\n\
               }\n";
    assert_eq!(
        reported(src),
        [
            "2:3: unknown function 'nosuch'",
            "4:10: struct sk_buff has no field named 'no_such_field'",
            "5:8: an operand must be an integer, not string[5]",
            "7:10: count() takes 0 argument(s), got 1",
        ]
    );
}

#[test]
fn a_variable_whose_assignment_failed_is_not_a_second_error() {
    assert_eq!(
        reported(r#"BEGIN { $x = nosuch(); printf("%d", $x); }"#),
        ["1:14: unknown function 'nosuch'"]
    );
    // Nor what is computed from it, in a loop or a branch alike.
    assert_eq!(
        reported(
            r#"BEGIN { if (pid) { $x = nosuch(); } $y = $x + 1; $y++; while ($y < 3) { $z = $y; } printf("%d", $z); }"#
        ),
        ["1:25: unknown function 'nosuch'"]
    );
    // A variable assigned before keeps its type, and later mistakes count.
    assert_eq!(
        reported(r#"BEGIN { $x = 1; $x = nosuch(); $x = "s"; }"#),
        [
            "1:22: unknown function 'nosuch'",
            "1:32: $x was int64 and is assigned string[2] here",
        ]
    );
}

#[test]
fn a_map_whose_assignments_failed_is_not_a_second_error() {
    assert_eq!(
        reported(r#"END { printf("%d", @m); } BEGIN { @m = nosuch(); print(@m); delete(@m[1]); }"#),
        ["1:40: unknown function 'nosuch'"]
    );
    // A map never assigned at all is still an error of its own.
    assert_eq!(
        reported(r#"BEGIN { @m = nosuch(); printf("%d", @never); }"#),
        [
            "1:14: unknown function 'nosuch'",
            "1:37: map @never is read but never assigned",
        ]
    );
}

#[test]
fn errors_in_conditions_loops_and_functions_are_each_reported_once() {
    let src = r#"fn f($a) { $b = nosuch($a); return $b + 1; }
BEGIN { $r = f(1); $q = f(2); printf("%d %d", $r, $q); if ("s") { bad(); } while ($u) { worse(); } }"#;
    assert_eq!(
        reported(src),
        [
            "1:17: unknown function 'nosuch'",
            "2:60: an if condition must be an integer, not string[2]",
            "2:67: unknown function 'bad'",
            "2:83: variable $u is used before it is assigned",
            "2:89: unknown function 'worse'",
        ]
    );
    // An unroll too large is not checked inside: what it assigns is quiet.
    assert_eq!(
        reported(r#"BEGIN { unroll(100) { unroll(100) { $i = 1; } } printf("%d", $i); }"#),
        ["1:9: unroll: 100 copies of this body make 10000 statements; at most 4096 (a larger program would not pass the kernel's verifier): use a while loop"]
    );
}

#[test]
fn a_probe_with_an_error_does_not_stop_the_next() {
    assert_eq!(
        reported("BEGIN { nosuch(); @a = 1; } END { @b = $none; bad(); }"),
        [
            "1:9: unknown function 'nosuch'",
            "1:40: variable $none is used before it is assigned",
            "1:47: unknown function 'bad'",
        ]
    );
}
