//! Consts and paths that extend another: what the parser hands on is the
//! program written out in full; mistakes are errors at their place.

use super::*;

/// The program `src` parses to, written out in full (consts and
/// templates removed, paths merged), compared with `written_out`.
fn same_program(src: &str, written_out: &str) {
    assert_eq!(
        outline(parse_ok(src)),
        outline(parse_ok(written_out)),
        "{src}"
    );
}

/// A stage alternative: the probe or catalogue entry, and the guard.
fn alternative(alt: &StageAlt) -> String {
    let (place, guard) = match alt {
        StageAlt::Probe(p) => (
            format!("{}:{}", p.spec.provider, p.spec.target.join(":")),
            &p.guard,
        ),
        StageAlt::Named { name, guard, .. } => (name.clone(), guard),
    };
    format!(
        "{} {}",
        place,
        guard.as_ref().map(sexpr).unwrap_or_default()
    )
}

/// What a program does, item by item, for [`same_program`].
fn outline(p: Program) -> Vec<String> {
    p.items
        .iter()
        .filter(|item| !matches!(item, Item::Const(_)))
        .map(|item| match item {
            Item::Probe(probe) => format!(
                "probe {} {}",
                probe.predicate.as_ref().map(sexpr).unwrap_or_default(),
                block_sexpr(&probe.body)
            ),
            Item::Path(path) => {
                let mut options: Vec<String> = path
                    .options
                    .iter()
                    .map(|(name, value)| format!("{}={}", name, sexpr(value)))
                    .collect();
                options.sort();
                let stages: Vec<String> = path
                    .stages
                    .iter()
                    .map(|s| {
                        format!(
                            "{}{}={:?}",
                            s.name,
                            if s.optional { "?" } else { "" },
                            s.alternatives.iter().map(alternative).collect::<Vec<_>>()
                        )
                    })
                    .collect();
                format!("path {} {:?} {:?}", path.name, options, stages)
            }
            other => format!("{:?}", std::mem::discriminant(other)),
        })
        .collect()
}

#[test]
fn consts_are_put_in_place_of_their_uses() {
    same_program(
        "const B = A + 1; const A = 6; param mode: enum(a, b) = a\n\
         const ON = mode != \"a\";\n\
         BEGIN /ON/ { @x[B] = A; if (ON && B > 2) { printf(\"%d\\n\", (uint8)A); } }",
        "param mode: enum(a, b) = a\n\
         BEGIN /mode != \"a\"/ { @x[6 + 1] = 6; if (mode != \"a\" && 6 + 1 > 2) { printf(\"%d\\n\", (uint8)6); } }",
    );
    // A name that is no const is left as written (a parameter, a kernel enum).
    same_program("BEGIN { @x = TCP_CLOSE; }", "BEGIN { @x = TCP_CLOSE; }");
}

#[test]
fn a_scripts_const_or_parameter_hides_the_librarys() {
    let mut source =
        crate::diag::Source::new("s", "param N: int = 1\nconst M = 2;\nBEGIN { @x = N + M; }");
    source.append("lib", "const N = 5;\nconst M = 3;");
    let program = crate::syntax::parse_source(&source).unwrap();
    assert_eq!(
        outline(program),
        outline(parse_ok("param N: int = 1\nBEGIN { @x = N + 2; }"))
    );
}

#[test]
fn a_path_takes_its_bases_settings_and_stages() {
    same_program(
        "template t { key = pkt_key($skb); threshold = 1; stage A = ip_output; }\n\
         path p extends t { threshold = 2; stage B = netif_receive; }\n\
         path q extends p { filter = 1; stage? A6 replaces A = ip6_output; stage B = netif_rx or netif_receive; }\n\
         template middle { stage M1 = ip_rcv if $skb != 0; stage M2 = ip_local_deliver; }\n\
         path r { key = 1; stage F = netif_receive; stages middle2; stage L = tcp_v4_rcv; }\n\
         template middle2 extends middle { stage M2 = udp_rcv; }",
        "path p { key = pkt_key($skb); threshold = 2; stage A = ip_output; stage B = netif_receive; }\n\
         path q { key = pkt_key($skb); threshold = 2; filter = 1; stage? A6 = ip6_output; stage B = netif_rx or netif_receive; }\n\
         path r { key = 1; stage F = netif_receive; stage M1 = ip_rcv if $skb != 0; stage M2 = udp_rcv; stage L = tcp_v4_rcv; }",
    );
}

#[test]
fn const_and_extension_mistakes_are_errors_at_their_place() {
    let cases = [
        ("const A = 1;\nconst A = 2;", "t:2:1: error: const A is declared twice\nconst A = 2;\n^^^^^^^^^^^^\n"),
        (
            "const A = B;\nconst B = A;",
            "t:1:1: error: const A is defined by itself (A -> B -> A)\nconst A = B;\n^^^^^^^^^^^^\n",
        ),
        (
            "BEGIN { exit(); }\nconst N = @m + 1;",
            "t:2:11: error: const N: a map is not known at compile time (a const holds literals, parameters, other consts and operators on them)\nconst N = @m + 1;\n          ^^\n",
        ),
        (
            "const X = 1 + pid;",
            "t:1:15: error: const X: a builtin is not known at compile time (a const holds literals, parameters, other consts and operators on them)\nconst X = 1 + pid;\n              ^^^\n",
        ),
        ("const pid = 1;", "t:1:7: error: pid is a builtin variable and cannot name a const\nconst pid = 1;\n      ^^^\n"),
        (
            "param n: int = 1\nconst n = 2;",
            "t:2:1: error: const n: a parameter has that name\nconst n = 2;\n^^^^^^^^^^^^\n",
        ),
        (
            "path p extends nope { key = 1; }",
            "t:1:16: error: no path or template is named nope\npath p extends nope { key = 1; }\n               ^^^^\n",
        ),
        (
            "path a extends b { }\npath b extends a { }",
            "t:2:16: error: paths take from each other in a circle (a -> b -> a)\npath b extends a { }\n               ^\n",
        ),
        (
            "path a { stage A = ip_output; }\npath b extends a { stage B replaces C = ip6_output; }",
            "t:2:37: error: stage B replaces C, but a has no stage C\npath b extends a { stage B replaces C = ip6_output; }\n                                    ^\n",
        ),
        (
            "path a {\n  stage B replaces C = ip6_output;\n}",
            "t:2:3: error: stage B replaces a stage, but path a extends no other\n  stage B replaces C = ip6_output;\n  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
        ),
        (
            "stage s replaces t = ip_output;",
            "t:1:18: error: only a stage of a path that extends another replaces a stage\nstage s replaces t = ip_output;\n                 ^\n",
        ),
        (
            "path a { stages b; }\ntemplate b { stages a; }",
            "t:2:21: error: paths take from each other in a circle (a -> b -> a)\ntemplate b { stages a; }\n                    ^\n",
        ),
        ("path a { stages x; }", "t:1:17: error: no path or template is named x\npath a { stages x; }\n                ^\n"),
        ("path a { }\npath a { }", "t:2:1: error: path a is declared twice\npath a { }\n^^^^^^^^^^\n"),
    ];
    assert_rendered_errors("t", &cases);
}
