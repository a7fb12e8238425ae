//! Expressions: precedence, associativity, casts, postfix, literals, spans.

use super::*;

/// Asserts every `(source, expected S-expression)` pair.
fn check_exprs(cases: &[(&str, &str)]) {
    for (src, want) in cases {
        assert_eq!(sexpr(&parse_expr(src)), *want, "source: {src}");
    }
}

#[test]
fn binary_precedence_follows_c() {
    check_exprs(&[
        ("1 + 2 * 3", "(+ 1 (* 2 3))"),
        ("1 * 2 + 3", "(+ (* 1 2) 3)"),
        ("a || b && c", "(|| i:a (&& i:b i:c))"),
        ("a && b || c", "(|| (&& i:a i:b) i:c)"),
        ("a == b & c", "(& (== i:a i:b) i:c)"),
        ("a | b ^ c & d", "(| i:a (^ i:b (& i:c i:d)))"),
        ("a < b == c > d", "(== (< i:a i:b) (> i:c i:d))"),
        ("1 << 2 + 3", "(<< 1 (+ 2 3))"),
        ("a <= b >> 1", "(<= i:a (>> i:b 1))"),
        ("a >= b != c", "(!= (>= i:a i:b) i:c)"),
        ("a % b / c * d", "(* (/ (% i:a i:b) i:c) i:d)"),
        ("1 - 2 - 3", "(- (- 1 2) 3)"),
        ("8 / 4 / 2", "(/ (/ 8 4) 2)"),
        ("(1 + 2) * 3", "(* (+ 1 2) 3)"),
        ("a ? b : c ? d : e", "(? i:a i:b (? i:c i:d i:e))"),
        ("a || b ? 1 + 2 : 3", "(? (|| i:a i:b) (+ 1 2) 3)"),
        ("a ? b ? 1 : 2 : 3", "(? i:a (? i:b 1 2) 3)"),
    ]);
}

#[test]
fn unary_binds_tighter_than_binary_and_looser_than_postfix() {
    check_exprs(&[
        ("-a * b", "(* (Neg i:a) i:b)"),
        ("!a && ~b", "(&& (Not i:a) (BitNot i:b))"),
        ("- -1", "(Neg (Neg 1))"),
        ("!!pid", "(Not (Not b:pid))"),
        ("*$p + 1", "(+ (Deref $p) 1)"),
        ("&$s->f", "(AddrOf (-> $s f))"),
        ("-$a[1]", "(Neg ([] $a 1))"),
        ("a * *b", "(* i:a (Deref i:b))"),
        ("a & &b", "(& i:a (AddrOf i:b))"),
    ]);
}

#[test]
fn casts_versus_parenthesised_expressions() {
    check_exprs(&[
        ("(struct sk_buff *)arg0", "(cast struct sk_buff* b:arg0)"),
        ("(struct foo **)$p", "(cast struct foo** $p)"),
        ("(union u)$x", "(cast union u $x)"),
        ("(enum e)1", "(cast enum e 1)"),
        ("(uint32)$x", "(cast uint32 $x)"),
        ("(int8)$x", "(cast int8 $x)"),
        ("(u64 *)$x", "(cast u64* $x)"),
        ("(unsigned int)$x", "(cast unsigned int $x)"),
        ("(unsigned  long long)$x", "(cast unsigned long long $x)"),
        ("(long)$x", "(cast long $x)"),
        ("(char)$x", "(cast char $x)"),
        ("(uint32)$x + 1", "(+ (cast uint32 $x) 1)"),
        (
            "(struct sk_buff *)arg0->len",
            "(cast struct sk_buff* (-> b:arg0 len))",
        ),
        (
            "((struct sk_buff *)arg0)->len",
            "(-> (cast struct sk_buff* b:arg0) len)",
        ),
        ("-(int8)$x", "(Neg (cast int8 $x))"),
        ("(x)", "i:x"),
        ("(integer)", "i:integer"),
        ("(u32x) + 1", "(+ i:u32x 1)"),
        ("(x) - 1", "(- i:x 1)"),
        ("(pid)", "b:pid"),
        ("(a, b)", "(tuple i:a i:b)"),
        ("(1, \"s\", $x)", "(tuple 1 \"s\" $x)"),
    ]);
}

#[test]
fn postfix_fields_indexes_and_calls() {
    check_exprs(&[
        ("args->len", "(-> b:args len)"),
        ("args.len", "(. b:args len)"),
        ("$s->a.b->c", "(-> (. (-> $s a) b) c)"),
        ("$p[2]", "([] $p 2)"),
        ("$p -> x", "(-> $p x)"),
        ("$s.type", "(. $s type)"),
        ("@m[1, 2]", "@m[1 2]"),
        ("@m[1][2]", "([] @m[1] 2)"),
        ("@", "@"),
        ("@[comm]", "@[b:comm]"),
        ("exit()", "(exit)"),
        ("count( )", "(count)"),
        (
            "lhist(args->len, 0, 1500, 100)",
            "(lhist (-> b:args len) 0 1500 100)",
        ),
        ("str(args->name)", "(str (-> b:args name))"),
        ("kstack", "b:kstack"),
        ("kstack()", "(kstack)"),
        ("kstack(5)", "(kstack 5)"),
        ("sizeof(struct sk_buff)", "(sizeof-type struct sk_buff)"),
        ("sizeof(u32 *)", "(sizeof-type u32*)"),
        ("sizeof($x)", "(sizeof-expr $x)"),
        ("sizeof(x)", "(sizeof-expr i:x)"),
        ("offsetof(struct foo, field)", "(offsetof struct foo field)"),
        ("offsetof(struct foo, a.b)", "(offsetof struct foo a.b)"),
    ]);
}

#[test]
fn identifiers_builtins_and_variables() {
    let builtins = [
        "pid", "tid", "uid", "gid", "comm", "nsecs", "elapsed", "cpu", "probe", "func", "retval",
        "args", "arg0", "arg9", "kstack", "curtask", "cgroup", "ctx",
    ];
    for b in builtins {
        assert_eq!(parse_expr(b).kind, ExprKind::Builtin(b.to_string()));
    }
    for ident in [
        "AF_INET",
        "arg10",
        "pids",
        "_x",
        "ifx",
        "structure",
        "iff",
        "x1",
    ] {
        assert_eq!(parse_expr(ident).kind, ExprKind::Ident(ident.to_string()));
    }
    assert_eq!(parse_expr("$my_var1").kind, ExprKind::Var("my_var1".into()));
}

#[test]
fn integer_literals() {
    let cases: &[(&str, u64)] = &[
        ("0", 0),
        ("42", 42),
        ("1_000_000", 1_000_000),
        ("0x1f", 31),
        ("0XFF", 255),
        ("0xdead_beef", 0xdead_beef),
        ("010", 8),
        ("0777", 0o777),
        ("18446744073709551615", u64::MAX),
    ];
    for (src, want) in cases {
        assert_eq!(parse_expr(src).kind, ExprKind::Int(*want), "source: {src}");
    }
}

#[test]
fn string_escapes_are_decoded() {
    let cases = [
        (r#""plain""#, "plain"),
        (r#""""#, ""),
        (r#""a\nb\tc""#, "a\nb\tc"),
        (r#""q\"q""#, "q\"q"),
        (r#""back\\slash""#, "back\\slash"),
        (r#""nul\0""#, "nul\0"),
        (r#""\x41\x4a!""#, "AJ!"),
        (r#""%-16s %6d\n""#, "%-16s %6d\n"),
        (r#""// not a comment""#, "// not a comment"),
    ];
    for (src, want) in cases {
        assert_eq!(
            parse_expr(src).kind,
            ExprKind::Str(want.to_string()),
            "source: {src}"
        );
    }
}

/// Every expression node of a tree with the source text its span covers.
fn spanned_texts<'s>(src: &'s str, e: &Expr, out: &mut Vec<(String, &'s str)>) {
    out.push((sexpr(e), &src[e.span.start..e.span.end]));
    let children: Vec<&Expr> = match &e.kind {
        ExprKind::Unary { expr, .. }
        | ExprKind::Field { expr, .. }
        | ExprKind::Cast { expr, .. }
        | ExprKind::Sizeof(SizeofArg::Expr(expr)) => vec![expr],
        ExprKind::Binary { lhs, rhs, .. } => vec![lhs, rhs],
        ExprKind::Index { expr, index } => vec![expr, index],
        ExprKind::Ternary {
            cond,
            then_expr,
            else_expr,
        } => vec![cond, then_expr, else_expr],
        ExprKind::Call { args, .. } | ExprKind::Tuple(args) => args.iter().collect(),
        ExprKind::Map(m) => m.keys.iter().collect(),
        _ => Vec::new(),
    };
    for child in children {
        spanned_texts(src, child, out);
    }
}

#[test]
fn expression_spans_cover_their_source_text() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "1 + 2 * 3",
            &[
                ("(+ 1 (* 2 3))", "1 + 2 * 3"),
                ("(* 2 3)", "2 * 3"),
                ("3", "3"),
            ],
        ),
        ("(a / b) > 1", &[("(/ i:a i:b)", "(a / b)"), ("i:b", "b")]),
        (
            "-(struct sk_buff *)arg0->len",
            &[
                (
                    "(Neg (cast struct sk_buff* (-> b:arg0 len)))",
                    "-(struct sk_buff *)arg0->len",
                ),
                (
                    "(cast struct sk_buff* (-> b:arg0 len))",
                    "(struct sk_buff *)arg0->len",
                ),
                ("(-> b:arg0 len)", "arg0->len"),
            ],
        ),
        (
            "foo(1, \"x\")",
            &[("(foo 1 \"x\")", "foo(1, \"x\")"), ("\"x\"", "\"x\"")],
        ),
        (
            "@m[$k, 2] ? 1 : 0",
            &[("@m[$k 2]", "@m[$k, 2]"), ("$k", "$k")],
        ),
        (
            "$a[$i].f",
            &[("(. ([] $a $i) f)", "$a[$i].f"), ("([] $a $i)", "$a[$i]")],
        ),
    ];
    for (src, wanted) in cases {
        let mut texts = Vec::new();
        let full = format!("BEGIN {{ {src}; }}");
        let program = parse_ok(&full);
        let Some(Stmt {
            kind: StmtKind::Expr(e),
            ..
        }) = only_probe(&program).body.stmts.first()
        else {
            panic!("{src:?}: not an expression statement");
        };
        spanned_texts(&full, e, &mut texts);
        for (shape, text) in *wanted {
            assert!(
                texts.iter().any(|(s, t)| s == shape && t == text),
                "{src:?}: no node {shape} spanning {text:?} in {texts:?}"
            );
        }
    }
}

#[test]
fn cast_type_span_covers_the_type() {
    let src = "BEGIN { (struct  sk_buff **)arg0; }";
    let program = parse_ok(src);
    let Some(Stmt {
        kind: StmtKind::Expr(e),
        ..
    }) = only_probe(&program).body.stmts.first()
    else {
        panic!("not an expression statement");
    };
    let ExprKind::Cast { ty, .. } = &e.kind else {
        panic!("not a cast: {e:?}")
    };
    assert_eq!(&src[ty.span.start..ty.span.end], "struct  sk_buff **");
    assert_eq!((ty.base.as_str(), ty.pointer_depth), ("struct sk_buff", 2));
}
