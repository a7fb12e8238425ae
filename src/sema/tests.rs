//! Semantic analysis tests: what is accepted, the types inferred, and the
//! errors (message and the exact source text they point at).

use super::tast::{Agg, MapValue};
use super::{check, Options};
use crate::diag::Diagnostic;
use crate::syntax::parse;
use crate::types::Ty;

mod recovery;

fn checked(src: &str) -> super::tast::Script {
    let ast = parse(src).unwrap_or_else(|e| panic!("parse {}: {}", src, e.message));
    check(&ast, &Options::default()).unwrap_or_else(|e| panic!("check {}: {}", src, e.message))
}

/// The error message and the source text its span covers.
fn error(src: &str) -> (String, String) {
    let ast = parse(src).unwrap_or_else(|e| panic!("parse {}: {}", src, e.message));
    let e = check(&ast, &Options::default())
        .err()
        .unwrap_or_else(|| panic!("{} should not check", src));
    let text = e
        .span
        .map(|s| src[s.start..s.end].to_string())
        .unwrap_or_default();
    (e.message, text)
}

#[test]
fn infers_map_types_across_probes() {
    let s = checked(
        r#"BEGIN { @c[1, "ab"] = count(); @v = 5; } END { @c[2, "abcdef"] = count(); @h = hist(@v); @l = lhist(3, 0, 10, 2); }"#,
    );
    let by_name = |n: &str| {
        s.maps
            .iter()
            .find(|m| m.name == n)
            .unwrap_or_else(|| panic!("no {}", n))
    };
    assert_eq!(by_name("@c").keys, vec![Ty::I64, Ty::Str(7)]);
    assert_eq!(by_name("@c").value, MapValue::Agg(Agg::Count));
    assert_eq!(by_name("@v").value, MapValue::Plain(Ty::I64));
    assert_eq!(by_name("@h").value, MapValue::Agg(Agg::Hist { bits: 0 }));
    assert_eq!(
        by_name("@l").value,
        MapValue::Agg(Agg::Lhist {
            min: 0,
            max: 10,
            step: 2
        })
    );
    assert_eq!(s.programs.len(), 2);
}

#[test]
fn a_map_read_before_its_assignment_in_the_file_is_resolved() {
    let s = checked(r#"BEGIN { printf("%d\n", @later); } END { @later = 3; }"#);
    assert_eq!(s.printfs[0].args, vec![Ty::I64]);
}

#[test]
fn compound_assignments_and_increments_desugar() {
    let s = checked("BEGIN { $x = 1; $x += 2; $x++; @m[1] = 0; @m[1] += 4; @m[1]--; }");
    assert_eq!(s.programs[0].vars, vec![Ty::I64]);
}

#[test]
fn unroll_repeats_its_body() {
    let s = checked("BEGIN { unroll(3) { @x = 1; } }");
    assert_eq!(s.programs[0].body.len(), 3);
}

#[test]
fn errors_name_the_problem_and_point_at_it() {
    let cases: &[(&str, &str, &str)] = &[
        ("BEGIN { foo(1); }", "unknown function 'foo'", "foo(1)"),
        ("BEGIN { signal(9); }", "signal() would send a signal: netscript only observes, it never changes what it traces", "signal(9)"),
        ("BEGIN { system(\"ls\"); }", "system() would run a command: netscript only observes, it never changes what it traces", "system(\"ls\")"),
        ("BEGIN { @x = count(1); }", "count() takes 0 argument(s), got 1", "count(1)"),
        ("BEGIN { $y = $x; }", "variable $x is used before it is assigned", "$x"),
        ("BEGIN { printf(\"%d %d\\n\", 1); }", "printf: Not enough arguments for format string (1 supplied, 2 expected)", "printf(\"%d %d\\n\", 1)"),
        ("BEGIN { @x = 1; @x = \"s\"; }", "map @x holds string[2] here but int64 elsewhere", "@x"),
        ("BEGIN { @x[1] = 1; @x[1, 2] = 1; }", "map @x is used with 2 key(s) here but 1 elsewhere", "@x[1, 2]"),
        ("BEGIN { $a = count(); }", "count() must be assigned to a map, e.g. @x = count(...)", "count()"),
        ("BEGIN { @a = printf(\"x\"); }", "printf() has no value; use it as a statement", "printf(\"x\")"),
        ("BEGIN { @a = retval; }", "retval is only available in return probes, not BEGIN", "retval"),
        ("BEGIN { @a = arg0; }", "arg0 is not available in BEGIN probes", "arg0"),
        ("BEGIN { @a = lhist(1, 10, 5, 1); }", "lhist() needs 0 <= min < max and step > 0", "lhist(1, 10, 5, 1)"),
        ("BEGIN { @a = 1 + \"s\"; }", "an operand must be an integer, not string[2]", "\"s\""),
        ("BEGIN { @a = (struct no_such_struct_xyz *)0; }", "unknown type 'struct no_such_struct_xyz' (not in the kernel's BTF)", "struct no_such_struct_xyz *"),
        ("BEGIN { $s = (struct sk_buff *)0; @a = $s->no_such_field; }", "struct sk_buff has no field named 'no_such_field'", "$s->no_such_field"),
        ("BEGIN { clear(@nothing); }", "unknown map @nothing", "@nothing"),
        ("BEGIN { $a = 1; $a = \"str\"; }", "$a was int64 and is assigned string[4] here", "$a"),
        ("bogus:x { }", "unknown probe type 'bogus' (known: kprobe, kretprobe, fentry, fexit, tracepoint, rawtracepoint, interval, xdp, BEGIN, END)", "bogus:x"),
        ("interval:m:1 { }", "unknown interval unit 'm' (use s, ms, us or hz)", "interval:m:1"),
    ];
    for (src, message, text) in cases {
        let (m, t) = error(src);
        assert_eq!((m.as_str(), t.as_str()), (*message, *text), "for {}", src);
    }
}

#[test]
fn btf_field_access_resolves_offsets_and_types() {
    let s = checked("BEGIN { $s = (struct sk_buff *)0; @len = $s->len; @dev = $s->dev->name; @t = $s->pkt_type; }");
    let by_name = |n: &str| s.maps.iter().find(|m| m.name == n).map(|m| m.value.clone());
    assert_eq!(
        by_name("@len"),
        Some(MapValue::Plain(Ty::Int {
            size: 4,
            signed: false
        }))
    );
    assert_eq!(by_name("@dev"), Some(MapValue::Plain(Ty::Str(16))));
    assert_eq!(
        by_name("@t"),
        Some(MapValue::Plain(Ty::Int {
            size: 1,
            signed: false
        }))
    );
}

#[test]
fn tracepoint_fields_come_from_tracefs() {
    if !crate::testing::bpf_available() {
        return;
    }
    let s = checked("tracepoint:net:netif_receive_skb { @a[str(args->name)] = sum(args->len); @p = args.skbaddr; }");
    assert_eq!(s.maps[0].keys, vec![Ty::Str(64)]);
    assert!(matches!(s.maps[1].value, MapValue::Plain(Ty::Ptr(_))));
    let (m, t) = error("tracepoint:net:netif_receive_skb { @a = args->nope; }");
    assert!(
        m.starts_with(
            "tracepoint net:netif_receive_skb has no field 'nope' (fields: skbaddr, len, name"
        ),
        "{}",
        m
    );
    assert_eq!(t, "args->nope");
    let (m, t) = error("tracepoint:net:no_such_tracepoint_xyz { }");
    assert_eq!(m, "tracepoint net:no_such_tracepoint_xyz not found");
    assert_eq!(t, "tracepoint:net:no_such_tracepoint_xyz");
}

#[test]
fn wildcards_expand_to_one_program_per_probe() {
    if !crate::testing::bpf_available() {
        return;
    }
    let s = checked(
        "tracepoint:net:netif_receive_skb*, tracepoint:net:net_dev_queue { @[probe] = count(); }",
    );
    assert!(s.programs.len() >= 3, "{} programs", s.programs.len());
}

#[test]
fn function_arguments_are_typed_from_btf() {
    if !crate::testing::bpf_available() {
        return;
    }
    let s = checked("kprobe:tcp_sendmsg { @s[args->size] = count(); $sk = args.sk; @f = $sk->__sk_common.skc_family; }");
    assert_eq!(
        s.maps[0].keys,
        vec![Ty::Int {
            size: 8,
            signed: false
        }]
    );
    let (m, _) = error("kprobe:tcp_sendmsg { @s = args->nope; }");
    assert_eq!(
        m,
        "tcp_sendmsg has no parameter 'nope' (parameters: sk, msg, size)"
    );
}

#[test]
fn a_map_read_first_takes_the_type_assigned_later() {
    let s = checked(r#"BEGIN { printf("%s\n", @s); } END { @s = "text"; }"#);
    assert_eq!(s.maps.len(), 1);
    assert_eq!(s.maps[0].value, MapValue::Plain(Ty::Str(5)));
    assert_eq!(error("BEGIN { print(@never); }").0, "unknown map @never");
}

#[test]
fn hist_sub_bucket_bits_are_a_constant_from_0_to_5() {
    let s = checked("BEGIN { @a = hist(1, 3); @b = hist(1, 0); @c = hist(1, 2 + 3); }");
    let bits: Vec<MapValue> = s.maps.iter().map(|m| m.value.clone()).collect();
    assert_eq!(
        bits,
        [3, 0, 5].map(|bits| MapValue::Agg(Agg::Hist { bits }))
    );
    let message = "hist()'s second argument must be a constant from 0 to 5".to_string();
    assert_eq!(
        error("BEGIN { @h = hist(1, 6); }"),
        (message.clone(), "6".into())
    );
    assert_eq!(error("BEGIN { @h = hist(1, -1); }"), (message, "-1".into()));
    assert_eq!(
        error("BEGIN { $k = 1; @h = hist(1, $k); }"),
        ("expected a constant integer".into(), "$k".into())
    );
    assert_eq!(
        error("BEGIN { @h = hist(1, 2); @h = hist(1); }").0,
        "map @h is used with two different aggregations"
    );
}

#[test]
fn functions_are_inlined_with_the_argument_types() {
    let s = checked(
        r#"fn twice($x) { return $x * 2; } fn greet($s) { return $s; } BEGIN { @a = twice(21); @b = greet("hi"); }"#,
    );
    assert_eq!(s.maps[0].value, MapValue::Plain(Ty::I64));
    assert_eq!(s.maps[1].value, MapValue::Plain(Ty::Str(3)));
    let cases: &[(&str, &str, &str)] = &[
        (
            "fn f($a) { return $a; } BEGIN { @x = f(1, 2); }",
            "f() takes 1 argument(s), got 2",
            "f(1, 2)",
        ),
        (
            "fn f($a) { return f($a); } BEGIN { @x = f(1); }",
            "calls nest more than 16 deep (is f() recursive?)",
            "f($a)",
        ),
        (
            "fn f($a) { if ($a) { return 1; } return \"s\"; } BEGIN { @x = f(1); }",
            "this function returns string[2] here but int64 elsewhere",
            "return \"s\"",
        ),
        (
            "BEGIN { return 1; }",
            "only a function can return a value; a probe returns with `return;`",
            "1",
        ),
        (
            "fn count() { return 1; } BEGIN { }",
            "count is a built-in function and cannot be redefined",
            "fn count() { return 1; }",
        ),
        (
            "fn f() { } BEGIN { @x = f(); }",
            "this expression has no value",
            "f()",
        ),
    ];
    for (src, message, text) in cases {
        let (m, t) = error(src);
        assert_eq!((m.as_str(), t.as_str()), (*message, *text), "for {}", src);
    }
}

/// For each program, the first statement under each of its top-level
/// `if`s: a path stage's record or mark, under its guard.
fn guarded(s: &super::tast::Script) -> Vec<Vec<&super::tast::Stmt>> {
    s.programs
        .iter()
        .map(|p| {
            p.body
                .iter()
                .filter_map(|st| match st {
                    super::tast::Stmt::If(_, inner, _) => inner.first(),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn stages_on_one_probe_with_one_packet_share_a_program() {
    let s = checked(
        "path p {\n  key = 1;\n\
         stage A = tracepoint:net:net_dev_queue -> args->skbaddr if args->len == 1;\n\
         stage B = tracepoint:net:net_dev_queue -> args->skbaddr if args->len == 2;\n\
         stage C = tracepoint:net:net_dev_queue -> args->len;\n\
         stage D = tracepoint:net:netif_receive_skb -> args->skbaddr;\n\
         stage E = tracepoint:net:netif_rx -> (struct sk_buff *)*(uint64 *)args->skbaddr if args->len == 1;\n\
         stage F = tracepoint:net:netif_rx -> (struct sk_buff *)*(uint64 *)args->skbaddr;\n\
         stage G = tracepoint:net:netif_rx -> (struct sk_buff *)*(int64 *)args->skbaddr;\n}",
    );
    // A and B: one program with both stages; C's packet differs; D's probe;
    // E and F read the packet alike (a cast of a dereference), G's cast differs.
    let stages: Vec<Vec<u32>> = guarded(&s)
        .iter()
        .map(|p| {
            p.iter()
                .filter_map(|st| match st {
                    super::tast::Stmt::PathStage { stage, .. } => Some(*stage),
                    _ => None,
                })
                .collect()
        })
        .collect();
    assert_eq!(stages, [vec![0, 1], vec![2], vec![3], vec![4, 5], vec![6]]);
}

#[test]
fn path_stages_name_catalogue_stages_with_their_guards() {
    let s = checked(
        "stage xmit = kprobe:no_such_fn -> arg0 or tracepoint:net:net_dev_queue -> args->skbaddr;\n\
         stage recv = tracepoint:net:netif_receive_skb -> args->skbaddr if args->len > 0;\n\
         path p { key = 1; stage A = xmit if $skb != 0; stage B = recv if $skb != 1; }",
    );
    let probes: Vec<&str> = s.paths[0]
        .stages
        .iter()
        .map(|st| st.probe.as_str())
        .collect();
    assert_eq!(
        probes,
        [
            "tracepoint:net:net_dev_queue",
            "tracepoint:net:netif_receive_skb"
        ]
    );
    let cases: &[(&str, &str, &str)] = &[
        (
            "path p { key = 1; stage A = nowhere; stage B = nowhere; }",
            "unknown stage 'nowhere' (not in the stage catalogue)",
            "nowhere",
        ),
        (
            "stage a = b; stage b = a; path p { key = 1; stage A = a; stage B = a; }",
            "stage 'a' refers to itself through the catalogue",
            "a",
        ),
        (
            "stage a = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
             stage a = tracepoint:net:net_dev_queue -> args->skbaddr;",
            "stage a is defined twice",
            "stage a = tracepoint:net:net_dev_queue -> args->skbaddr;",
        ),
        (
            "path p { key = 1; stage A = tracepoint:net:net_dev_queue -> args->skbaddr; \
             stage A = tracepoint:net:netif_receive_skb -> args->skbaddr; }",
            "path p: stage A is declared twice",
            "stage A = tracepoint:net:netif_receive_skb -> args->skbaddr;",
        ),
        (
            "fn f($a, $a) { return $a; } BEGIN { @x = f(1, 2); }",
            "function f: parameter $a is declared twice",
            "fn f($a, $a) { return $a; }",
        ),
        (
            "interval:hz:2000000000 { @x = count(); }",
            "interval:hz:2000000000: the period must be 1 us to 1 day (at most 1000000 hz)",
            "interval:hz:2000000000",
        ),
        (
            "interval:s:99999999999 { @x = count(); }",
            "interval:s:99999999999: the period must be 1 us to 1 day (at most 1000000 hz)",
            "interval:s:99999999999",
        ),
    ];
    for (src, message, text) in cases {
        let (m, t) = error(src);
        assert_eq!((m.as_str(), t.as_str()), (*message, *text), "for {}", src);
    }
    let optional = parse("stage? a = tracepoint:net:net_dev_queue -> args->skbaddr;")
        .err()
        .map(|e| e.message);
    assert_eq!(
        optional.as_deref(),
        Some("only a path's stage can be optional (`stage?` inside the path)")
    );
}

/// The recalled first stage of [`recall_path`]'s path by default.
const SEND: &str = "stage? SEND = rawtracepoint:send -> recall (arg0, arg1) in ($skb, 10, 5)";

/// A path whose first stage is `send`, then XMIT and RECV.
fn recall_path(send: &str) -> String {
    format!(
        "path p {{\n  key = 1;\n  {send};\n  stage XMIT = rawtracepoint:xmit -> arg0;\n  \
         stage RECV = rawtracepoint:recv -> arg0;\n}}"
    )
}

#[test]
fn a_recalled_first_stage_is_marked_and_recalled_by_the_next_stage() {
    use super::tast::Stmt;
    let s = checked(&recall_path(SEND));
    // Each program's statements under its guard: the mark, or the stage
    // and whether it recalls.
    let shape: Vec<Vec<String>> = guarded(&s)
        .iter()
        .map(|p| {
            p.iter()
                .filter_map(|st| match st {
                    Stmt::PathMark { path, .. } => Some(format!("mark {path}")),
                    Stmt::PathStage { stage, recall, .. } => {
                        Some(format!("stage {stage} recall {}", recall.is_some()))
                    }
                    _ => None,
                })
                .collect()
        })
        .collect();
    assert_eq!(
        shape,
        [
            vec!["mark 0"],
            vec!["stage 1 recall true"],
            vec!["stage 2 recall false"]
        ]
    );
    let path = &s.paths[0];
    assert!(path.stages[0].recalled && path.stages[0].optional);
    assert_eq!(path.leader(), 1);
    // A catalogue entry may be recalled; the marks of two paths on one
    // probe share a program.
    let two = recall_path("stage? SEND = send");
    let s = checked(&format!(
        "stage send = rawtracepoint:send -> recall (arg0, arg1) in ($skb, 10, 5);\n{two}\n{}",
        two.replace("path p", "path q")
    ));
    assert_eq!(s.programs.len(), 3, "one program per probe");
}

#[test]
fn a_recalled_stage_in_a_wrong_place_or_shape_is_an_error_at_it() {
    let late = "stage? LATE = rawtracepoint:late -> recall (arg0, 1) in ($skb, 1, 1);";
    let two_stages = recall_path(SEND).replace("  stage RECV = rawtracepoint:recv -> arg0;\n", "");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            recall_path(&SEND.replace("stage?", "stage")),
            "stage SEND: a recalled stage is not recalled for every packet: declare it optional (`stage?`)",
            "stage SEND = rawtracepoint:send -> recall (arg0, arg1) in ($skb, 10, 5);",
        ),
        (
            recall_path(SEND).replace("  stage RECV", &format!("  {late}\n  stage RECV")),
            "stage LATE: a recalled stage must be its path's first stage (it happens before the packet exists)",
            late,
        ),
        (
            recall_path(&format!("{SEND} or rawtracepoint:other -> arg0")),
            "stage SEND: either every alternative of a stage is recalled or none is",
            "stage? SEND = rawtracepoint:send -> recall (arg0, arg1) in ($skb, 10, 5) or rawtracepoint:other -> arg0;",
        ),
        (
            recall_path(&SEND.replace("(arg0, arg1) in", "($skb, arg1) in")),
            "a recalled stage has no packet: $skb is bound at the stages that have one",
            "$skb",
        ),
        (
            recall_path(&SEND.replace("(arg0, arg1) in", "arg0 in")),
            "a recalled stage's mark must be a tuple (owner, position) of integers, not uint64",
            "arg0",
        ),
        (
            recall_path(&SEND.replace("($skb, 10, 5)", "($skb, \"x\", 5)")),
            "a recalled stage's span must be a tuple (owner, start, length) of integers, not (pointer, string[2], int64)",
            "($skb, \"x\", 5)",
        ),
        (
            two_stages.clone(),
            "path p has fewer than two stages with a packet this kernel can attach",
            &two_stages,
        ),
    ];
    for (src, message, text) in &cases {
        let (m, t) = error(src);
        assert_eq!((m.as_str(), t.as_str()), (*message, *text), "for {}", src);
    }
}

#[test]
fn enum_and_flag_names_are_resolved_when_printed() {
    use crate::types::Names;
    let s = checked(
        r#"BEGIN { @s = enum_name(1, "TCP_ESTABLISHED", "TCP_"); @r = enum_name(2, "skb_drop_reason"); @f = flagstr(0x12, "FSRPAU"); }"#,
    );
    let names = |i: usize| match &s.maps[i].value {
        MapValue::Plain(Ty::Named(n)) => n.clone(),
        other => panic!("not a name: {:?}", other),
    };
    assert_eq!(names(0).render(1), "ESTABLISHED");
    assert_eq!(names(0).render(10), "LISTEN");
    assert_eq!(names(0).render(99), "99");
    assert_eq!(names(1).render(2), "SKB_DROP_REASON_NOT_SPECIFIED");
    assert_eq!(*names(2), Names::Flags("FSRPAU".chars().collect()));
    assert_eq!(names(2).render(0x12), "SA");
    assert_eq!(names(2).render(0), "");
    let (m, t) = error(r#"BEGIN { @x = enum_name(1, "NO_SUCH_ENUM"); }"#);
    assert_eq!(
        (m.as_str(), t.as_str()),
        (
            "the kernel's BTF has no enum or enumerator 'NO_SUCH_ENUM'",
            "\"NO_SUCH_ENUM\""
        )
    );
    let (m, _) = error(r#"BEGIN { @x = flagstr(1, 2); }"#);
    assert_eq!(m, "expected a string literal");
}

#[test]
fn optional_probe_blocks_skip_missing_probes_with_a_warning() {
    let src = "optional kprobe:no_such_function_xyz, kprobe:tcp_sendmsg { @n = count(); }";
    let s = checked(src);
    assert_eq!(s.programs.len(), 1);
    assert!(s.programs[0].optional);
    let [warning] = &s.warnings[..] else {
        panic!("one warning: {:?}", s.warnings)
    };
    assert_eq!(
        warning.message,
        "kernel function no_such_function_xyz not found, probe skipped"
    );
    // At the probe it skips.
    let at = warning.span.expect("a place").start;
    assert!(src[at..].starts_with("kprobe:no_such_function_xyz"), "{at}");
    let (message, _) = error("kprobe:no_such_function_xyz { @n = count(); }");
    assert!(message.contains("no_such_function_xyz"), "{message}");
    assert!(!checked("kprobe:tcp_sendmsg { }").programs[0].optional);
}

fn checked_with(src: &str, params: &[(&str, crate::params::Value)]) -> super::tast::Script {
    let options = Options {
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    };
    let ast = parse(src).unwrap_or_else(|e| panic!("parse {}: {}", src, e.message));
    check(&ast, &options).unwrap_or_else(|e| panic!("check {}: {}", src, e.message))
}

#[test]
fn a_probe_part_naming_a_parameter_takes_its_value() {
    let s = checked_with(
        "interval:s:period { @n = count(); }",
        &[("period", crate::params::Value::Int(5))],
    );
    assert_eq!(
        s.programs[0].probe.target,
        crate::providers::Target::Interval(5_000_000_000)
    );
}

#[test]
fn each_ratelimit_call_in_the_source_is_one_limiter() {
    // One call inside a function inlined twice: one limiter, shared.
    let s = checked(
        "fn send() { if (ratelimit(10)) { printf(\"x\\n\"); } } BEGIN { send(); } END { send(); }",
    );
    assert_eq!(s.rate_limits, 1);
    let s = checked("BEGIN { @a = ratelimit(10); @b = ratelimit(5); }");
    assert_eq!(s.rate_limits, 2);
    let (message, text) = error("BEGIN { @a = ratelimit(0); }");
    assert_eq!(
        message,
        "ratelimit() needs a positive number of events per second"
    );
    assert_eq!(text, "0");
}

#[test]
fn a_parameter_named_like_a_builtin_variable_replaces_it() {
    let s = checked_with(
        "BEGIN { @p = pid; }",
        &[("pid", crate::params::Value::Int(42))],
    );
    let super::tast::Stmt::SetMap { value, .. } = &s.programs[0].body[0] else {
        panic!("an assignment: {:?}", s.programs[0].body[0]);
    };
    assert!(
        matches!(value.kind, super::tast::ExprKind::Int(42)),
        "{:?}",
        value.kind
    );
}

#[test]
fn redact_keeps_integers_integers_and_marks_their_type() {
    use crate::types::Names;
    let s = checked(
        r#"BEGIN { $p = 0; $p = redact((uint16)443); @m[$p] = count(); @a[redact(ntop(2, 0x0100000a))] = count(); printf("%d %u\n", redact(7), $p); if (redact(5) == 5) { exit(); } }"#,
    );
    // `$p = 0` first: the u16 widens to the literal's size, still redacted.
    let redacted = Ty::Named(std::sync::Arc::new(Names::Redacted(Ty::U64)));
    assert_eq!(s.maps[0].keys, vec![redacted]);
    // Addresses are always hashed under --anonymize: redact() leaves them as they are.
    assert_eq!(s.maps[1].keys, vec![Ty::Inet]);
    assert!(s.printfs[0].args.iter().all(|t| t.prints_as_integer()));
    let (m, t) = error(r#"BEGIN { @x = redact("text"); }"#);
    assert_eq!(
        (m.as_str(), t.as_str()),
        (
            "redact() takes an integer or an address (ntop()), not string[5]",
            "\"text\""
        )
    );
}

#[test]
fn kernel_has_decides_branches_and_names_the_metrics_it_switches_off() {
    let s = checked(
        r#"BEGIN { if (kernel_has("struct sock.nope")) { @a = sum(((struct sock *)0)->nope); } else { @b = count(); } print(@a); }"#,
    );
    let names: Vec<&str> = s.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["@b"]);
    assert_eq!(
        messages(&s.warnings),
        ["metric @a off: this kernel has no struct sock.nope"]
    );
    // A false predicate leaves its probe out.
    let s = checked(
        r#"tracepoint:sock:inet_sock_set_state /!kernel_has("TCP_ESTABLISHED")/ { @c = count(); } BEGIN { }"#,
    );
    assert_eq!(s.programs.len(), 1);
    assert_eq!(
        messages(&s.warnings),
        ["metric @c off: this kernel has TCP_ESTABLISHED"]
    );
    // Reading a map that is off says why.
    let (m, text) =
        error(r#"BEGIN { if (kernel_has("struct sock.nope")) { @a = count(); } $x = @a; }"#);
    assert_eq!(
        m,
        "map @a is off on this kernel (this kernel has no struct sock.nope) and cannot be read here"
    );
    assert_eq!(text, "@a");
}

#[test]
fn config_map_keys_takes_an_integer_or_a_parameter() {
    assert_eq!(checked("config map_keys = 64; BEGIN { }").map_keys, 64);
    assert_eq!(checked("BEGIN { }").map_keys, crate::bpf::MAP_ENTRIES);
    let s = checked_with(
        "param flows: int = 5 \"\"\nconfig map_keys = flows; BEGIN { }",
        &[("flows", crate::params::Value::Int(777))],
    );
    assert_eq!(s.map_keys, 777);
    let (m, _) = error("config map_keys = nosuch; BEGIN { }");
    assert_eq!(m, "config map_keys: 'nosuch' is not an integer parameter");
}

#[test]
fn tuple_elements_are_typed_and_bounded() {
    let s = checked(r#"BEGIN { $t = (1, "ab"); @n = $t.0; @s = $t.1; }"#);
    let value = |n: &str| s.maps.iter().find(|m| m.name == n).map(|m| m.value.clone());
    assert_eq!(value("@n"), Some(MapValue::Plain(Ty::I64)));
    assert_eq!(value("@s"), Some(MapValue::Plain(Ty::Str(3))));
    let (m, text) = error(r#"BEGIN { $t = (1, 2); @x = $t.5; }"#);
    assert_eq!(m, "the tuple has 2 elements: .0 to .1");
    assert_eq!(text, "$t.5");
}

#[test]
fn report_settings_are_checked_where_they_are_written() {
    const STAGES: &str = "stage A = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
                          stage B = tracepoint:net:netif_receive_skb -> args->skbaddr;";
    let cases: &[(&str, &str, &str)] = &[
        (
            "hist_by = 1;",
            "`hist_by` (a packet's group, 0 to N-1) and `hist_groups` (the N groups' names) go together",
            "1",
        ),
        (
            "info = (1, 2); halves = (\"a\", \"b\", \"c\");",
            "expected two strings, one per half: (\"...\", \"...\")",
            "(\"a\", \"b\", \"c\")",
        ),
        (
            "info = (1, 2); describe = \"%3$d\";",
            "format and info do not fit: %d asks for value 3 of 2",
            "\"%3$d\"",
        ),
        (
            "info = (1, \"x\"); half_fields = (\"%2$d\", \"\");",
            "format and info do not fit: %d (value 2) expects a value of type integer (string supplied)",
            "(\"%2$d\", \"\")",
        ),
        ("style = \"fancy\";", "unknown report style 'fancy' (trace, compact)", "\"fancy\""),
    ];
    for (settings, message, at) in cases {
        let src = format!("path p {{ key = 1; {settings}\n{STAGES} }}");
        let (m, t) = error(&src);
        assert_eq!((m.as_str(), t.as_str()), (*message, *at), "{src}");
    }
    let (m, _) = error("BEGIN { printf(\"%2$d\\n\", 1, 2); }");
    assert_eq!(
        m,
        "printf: %d names its argument by position; only path report formats (describe, halves) may"
    );
}

#[test]
fn split_paths_label_stages_by_half_and_function() {
    let s = checked(
        "path p { key = 1; split = 1;\n\
         stage P1_S0_X = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
         stage P2_S0_Y = tracepoint:net:netif_receive_skb -> args->skbaddr; }\n\
         path q { key = 1; stage A = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
         stage B = tracepoint:net:netif_receive_skb -> args->skbaddr; }",
    );
    let labels: Vec<Vec<&str>> = s
        .paths
        .iter()
        .map(|p| p.stages.iter().map(|st| st.label.as_str()).collect())
        .collect();
    assert_eq!(
        labels,
        [
            vec!["P1:S0 (net_dev_queue)", "P2:S0 (netif_receive_skb)"],
            vec!["A", "B"]
        ]
    );
}

#[test]
fn walltime_adds_the_clock_offset_of_the_options() {
    use super::tast::{ExprKind, Stmt};
    let options = Options {
        wall_offset_ns: 1_700_000_000_000_000_000,
        ..Default::default()
    };
    let ast = parse("BEGIN { @w = walltime(5); }").expect("parses");
    let s = check(&ast, &options).expect("checks");
    let Some(Stmt::SetMap { value, .. }) = s.programs[0].body.first() else {
        panic!("{:?}", s.programs[0].body);
    };
    // A constant time is converted at compile time.
    assert!(
        matches!(value.kind, ExprKind::Int(1_700_000_000_000_000_005)),
        "{:?}",
        value.kind
    );
    assert_eq!(
        error(r#"BEGIN { @w = walltime("now"); }"#),
        (
            "walltime()'s argument must be an integer, not string[4]".to_string(),
            r#""now""#.to_string()
        )
    );
}

/// The messages of some diagnostics.
fn messages(diagnostics: &[Diagnostic]) -> Vec<&str> {
    diagnostics.iter().map(|d| d.message.as_str()).collect()
}
