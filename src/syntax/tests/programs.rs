//! Probe blocks, predicates, statements and whole one-liners.

use super::*;

/// The body of `BEGIN { <body> }` as a block S-expression.
fn body_shape(body: &str) -> String {
    block_sexpr(&only_probe(&parse_ok(&format!("BEGIN {{ {body} }}"))).body)
}

#[test]
fn statements() {
    let cases = [
        ("$x = 1", "{(= $x 1)}"),
        ("@m = 1;", "{(= @m 1)}"),
        ("@m[1, comm] = 2;", "{(= @m[1 b:comm] 2)}"),
        ("@ = 3", "{(= @ 3)}"),
        (
            "$x += 1; $x -= 2; $x *= 3; $x /= 4; $x %= 5",
            "{(+= $x 1); (-= $x 2); (*= $x 3); (/= $x 4); (%= $x 5)}",
        ),
        (
            "@m[1] &= 1; @m |= 2; @m ^= 3; @m <<= 4; @m >>= 5",
            "{(&= @m[1] 1); (|= @m 2); (^= @m 3); (<<= @m 4); (>>= @m 5)}",
        ),
        (
            "$x++; $x--; ++$x; --@m[k]",
            "{(++ $x); (-- $x); (++ $x); (-- @m[i:k])}",
        ),
        ("@u++", "{(++ @u)}"),
        ("$x == 1", "{(== $x 1)}"),
        (
            "printf(\"%d\\n\", pid); exit();",
            "{(printf \"%d\\n\" b:pid); (exit)}",
        ),
        ("return;", "{return}"),
        ("return", "{return}"),
        (";;; $x = 1;;", "{(= $x 1)}"),
        ("", "{}"),
        ("if ($x) { @a = 1 }", "{(if $x {(= @a 1)})}"),
        ("if ($x) { } else { @b = 1; }", "{(if $x {} {(= @b 1)})}"),
        (
            "if ($x > 1) { @a = 1 } else if ($x) { @b = 1 } else { @c = 1 } @d = 1",
            "{(if (> $x 1) {(= @a 1)} {(if $x {(= @b 1)} {(= @c 1)})}); (= @d 1)}",
        ),
        (
            "if (a) { if (b) { return } }",
            "{(if i:a {(if i:b {return})})}",
        ),
        ("while ($i < 10) { $i++; }", "{(while (< $i 10) {(++ $i)})}"),
        (
            "unroll(3) { @u++; } @v = 1",
            "{(unroll 3 {(++ @u)}); (= @v 1)}",
        ),
        ("if (1) {} ; while (0) {};", "{(if 1 {}); (while 0 {})}"),
    ];
    for (body, want) in cases {
        assert_eq!(body_shape(body), want, "body: {body}");
    }
}

#[test]
fn unroll_counts_are_limited_to_1_through_100() {
    for ok in ["1", "100", "0x10"] {
        assert!(
            parse(&format!("BEGIN {{ unroll({ok}) {{ }} }}")).is_ok(),
            "unroll({ok})"
        );
    }
    for bad in ["0", "101", "1000"] {
        let src = format!("BEGIN {{ unroll({bad}) {{ }} }}");
        let err = parse(&src).expect_err(bad);
        assert_eq!(err.message, "unroll count must be between 1 and 100");
        let span = err.span.expect("span");
        assert_eq!(&src[span.start..span.end], bad);
    }
}

/// `(provider, target)` of every probe spec of the only probe block.
fn specs_of(src: &str) -> Vec<(String, Vec<String>)> {
    only_probe(&parse_ok(src))
        .specs
        .iter()
        .map(|s| (s.provider.clone(), s.target.clone()))
        .collect()
}

/// `(provider, target parts)` expected for one probe spec.
type ExpectedSpec<'a> = (&'a str, &'a [&'a str]);

#[test]
fn probe_specs() {
    let cases: &[(&str, &[ExpectedSpec])] = &[
        ("BEGIN {}", &[("BEGIN", &[])]),
        ("END{}", &[("END", &[])]),
        ("kprobe:tcp_sendmsg {}", &[("kprobe", &["tcp_sendmsg"])]),
        ("kprobe:tcp_* {}", &[("kprobe", &["tcp_*"])]),
        ("k:ip_rcv.isra.0 {}", &[("k", &["ip_rcv.isra.0"])]),
        (
            "t:net:netif_receive_skb {}",
            &[("t", &["net", "netif_receive_skb"])],
        ),
        ("tracepoint:net:* {}", &[("tracepoint", &["net", "*"])]),
        ("interval:s:1 {}", &[("interval", &["s", "1"])]),
        ("interval:ms:100 {}", &[("interval", &["ms", "100"])]),
        (
            "fentry:openvswitch:ovs_dp_process_packet {}",
            &[("fentry", &["openvswitch", "ovs_dp_process_packet"])],
        ),
        ("xdp:veth0 {}", &[("xdp", &["veth0"])]),
        ("kprobe:a-b?c {}", &[("kprobe", &["a-b?c"])]),
        ("nosuch:x {}", &[("nosuch", &["x"])]),
        (
            "kprobe:tcp_sendmsg,\n  kretprobe:tcp_recvmsg , BEGIN {}",
            &[
                ("kprobe", &["tcp_sendmsg"]),
                ("kretprobe", &["tcp_recvmsg"]),
                ("BEGIN", &[]),
            ],
        ),
    ];
    for (src, want) in cases {
        let want: Vec<(String, Vec<String>)> = want
            .iter()
            .map(|(p, t)| (p.to_string(), t.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(specs_of(src), want, "source: {src}");
    }
}

#[test]
fn predicates_including_division() {
    let cases = [
        ("kprobe:f /pid == 1/ { }", "(== b:pid 1)"),
        ("kprobe:f /pid/{ }", "b:pid"),
        ("kprobe:f /(a / b) > 1/ { }", "(> (/ i:a i:b) 1)"),
        ("kprobe:f / a / 2 > 1 / { }", "(> (/ i:a 2) 1)"),
        (
            "kprobe:f\n/comm == \"x/y\" && pid != 0/\n{ }",
            "(&& (== b:comm \"x/y\") (!= b:pid 0))",
        ),
        ("k:a, k:b /retval > 0/ {}", "(> b:retval 0)"),
    ];
    for (src, want) in cases {
        let program = parse_ok(src);
        let pred = only_probe(&program).predicate.as_ref().map(sexpr);
        assert_eq!(pred.as_deref(), Some(want), "source: {src}");
    }
    assert!(only_probe(&parse_ok("BEGIN { }")).predicate.is_none());
}

#[test]
fn comments_and_whitespace_anywhere() {
    let src = "// leading\nkprobe:f /* c */ , /* d */ k:g // trailing\n/ pid /* in pred */ > 1 /\n{\n  @x /* mid */ = 1; // end\n  /* before brace */ }\n";
    let program = parse_ok(src);
    let probe = only_probe(&program);
    assert_eq!(probe.specs.len(), 2);
    assert_eq!(block_sexpr(&probe.body), "{(= @x 1)}");
}

#[test]
fn several_probe_blocks_in_order() {
    let program = parse_ok("BEGIN { @a = 1 }\nkprobe:f { @b = 2; }\nEND { print(@a); }");
    let providers: Vec<&str> = program
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Probe(p) => Some(p.specs[0].provider.as_str()),
            Item::Param(_)
            | Item::Config(_)
            | Item::Const(_)
            | Item::Fn(_)
            | Item::Path(_)
            | Item::Stage(_)
            | Item::StageProgram(_) => None,
        })
        .collect();
    assert_eq!(providers, ["BEGIN", "kprobe", "END"]);
    assert!(parse_ok("  // only a comment\n").items.is_empty());
}

#[test]
fn statement_and_block_spans() {
    let src = "BEGIN { $x = 1; if ($x) { @a++ } else if ($y) { @b-- } }";
    let program = parse_ok(src);
    let probe = only_probe(&program);
    let text = |span: crate::diag::Span| &src[span.start..span.end];
    assert_eq!(text(probe.span), src);
    assert_eq!(text(probe.specs[0].span), "BEGIN");
    assert_eq!(text(probe.body.span), &src[6..]);
    let stmts = &probe.body.stmts;
    assert_eq!(text(stmts[0].span), "$x = 1");
    assert_eq!(
        text(stmts[1].span),
        "if ($x) { @a++ } else if ($y) { @b-- }"
    );
    let StmtKind::If {
        then_block,
        else_block: Some(else_block),
        ..
    } = &stmts[1].kind
    else {
        panic!("not an if/else: {:?}", stmts[1]);
    };
    assert_eq!(text(then_block.span), "{ @a++ }");
    assert_eq!(text(else_block.span), "if ($y) { @b-- }");
    assert_eq!(text(else_block.stmts[0].span), "if ($y) { @b-- }");
    let StmtKind::IncDec {
        target: LValue::Map(m),
        ..
    } = &then_block.stmts[0].kind
    else {
        panic!("not a map increment");
    };
    assert_eq!(text(m.span), "@a");
    let StmtKind::Assign {
        target: LValue::Var(_, var_span),
        ..
    } = &stmts[0].kind
    else {
        panic!("not a variable assignment");
    };
    assert_eq!(text(*var_span), "$x");
}

#[test]
fn reference_one_liners_parse() {
    let one_liners = [
        "tracepoint:net:netif_receive_skb { @rx[args->len] = count(); }",
        "kprobe:tcp_sendmsg { @bytes[comm] = sum(arg2); }",
        "kretprobe:tcp_sendmsg /retval > 0/ { @ret = hist(retval); }",
        "t:net:net_dev_queue { @q[str(args->name)] = lhist(args->len, 0, 1500, 100); }",
        "BEGIN { printf(\"%-16s %6d\\n\", comm, pid); exit(); }",
        "interval:s:1 { print(@x); clear(@x); }",
        "kprobe:__dev_queue_xmit { $skb = (struct sk_buff *)arg0; @len = stats($skb->len); }",
        "t:sock:inet_sock_set_state { @s[args.oldstate, args.newstate] = count(); }",
        "END { @a = avg(1); @m = min(-5); @M = max(7); }",
        "BEGIN { $i = 0; while ($i < 10) { $i++; } unroll(3) { @u++; } if ($i == 10) { @ok = 1 } else { @ok = 0 } }",
    ];
    for src in one_liners {
        parse_ok(src);
    }
    let program = parse_ok(one_liners[6]);
    assert_eq!(
        block_sexpr(&only_probe(&program).body),
        "{(= $skb (cast struct sk_buff* b:arg0)); (= @len (stats (-> $skb len)))}"
    );
}

#[test]
fn parameters_parse_with_type_default_and_help() {
    let program = parse_ok("param src_ip: addr = 10.0.0.0/8 \"source\" alias(s, source)\nparam mode: enum(tx alias(out, send), rx) = tx\nparam n: int\nBEGIN { }");
    let Item::Param(p) = &program.items[0] else {
        panic!("not a param")
    };
    assert_eq!(
        (
            p.name.as_str(),
            p.ty.as_str(),
            p.default.as_deref(),
            p.help.as_deref()
        ),
        ("src_ip", "addr", Some("10.0.0.0/8"), Some("source"))
    );
    assert_eq!(p.aliases, ["s", "source"]);
    let Item::Param(m) = &program.items[1] else {
        panic!("not a param")
    };
    assert_eq!(
        (m.ty.as_str(), m.choices.clone(), m.default.as_deref()),
        (
            "enum",
            vec![
                EnumChoice {
                    value: "tx".into(),
                    aliases: vec!["out".into(), "send".into()]
                },
                EnumChoice {
                    value: "rx".into(),
                    aliases: vec![]
                }
            ],
            Some("tx")
        )
    );
    let Item::Param(n) = &program.items[2] else {
        panic!("not a param")
    };
    assert_eq!(
        (n.default.clone(), n.help.clone(), n.aliases.len()),
        (None, None, 0)
    );
}
