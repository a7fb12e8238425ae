//! The path expansion pass alone: what it makes of paths before any
//! expression is typed.

use super::{expand, Expanded};
use crate::sema::{Options, StageChoice};
use crate::syntax::{ast, parse, walk};

/// The items of `src` once its paths are expanded, what the pass found,
/// and `src` to show the places of its diagnostics.
fn expand_paths(src: &str, options: &Options) -> (Vec<ast::Item>, Expanded) {
    let mut program = parse(src).unwrap_or_else(|e| panic!("parse {}: {}", src, e.message));
    let expanded = expand(&mut program.items, options);
    (program.items, expanded)
}

/// The stage programs among `items`.
fn stage_programs(items: &[ast::Item]) -> Vec<&ast::StageProgram> {
    items
        .iter()
        .filter_map(|item| match item {
            ast::Item::StageProgram(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// The source text at a diagnostic's place.
fn place<'s>(src: &'s str, d: &crate::diag::Diagnostic) -> &'s str {
    let span = d.span.expect("a place");
    &src[span.start..span.end]
}

#[test]
fn a_stage_left_out_is_skipped_with_one_warning_at_it() {
    let src = "path p {\n  key = 1;\n\
               stage A = kprobe:tcp_sendmsg -> arg0;\n\
               stage B = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
               stage C = tracepoint:net:netif_receive_skb -> args->skbaddr;\n}";
    let options = Options {
        stage_choice: StageChoice::Tracepoint,
        ..Options::default()
    };
    let (items, expanded) = expand_paths(src, &options);
    assert!(expanded.errors.is_empty(), "{:?}", expanded.errors);
    let [warning] = &expanded.warnings[..] else {
        panic!("{:?}", expanded.warnings)
    };
    assert_eq!(
        warning.message,
        "kprobe:tcp_sendmsg: left out by --stages tracepoint, stage skipped: A (p)"
    );
    assert_eq!(place(src, warning), "stage A = kprobe:tcp_sendmsg -> arg0;");
    // B and C are measured, as the path's stages 0 and 1.
    let stages: Vec<&str> = (expanded.paths[0].info.stages.iter())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(stages, ["B", "C"]);
    let indices: Vec<Vec<u32>> = stage_programs(&items)
        .iter()
        .map(|p| p.stages.iter().map(|s| s.index).collect())
        .collect();
    assert_eq!(indices, [[0], [1]]);
}

#[test]
fn stages_of_two_paths_on_one_probe_and_packet_make_one_stage_program() {
    let src = "path p {\n  key = 1;\n  filter = args->len > 1;\n\
               stage A = tracepoint:net:net_dev_queue -> args->skbaddr if args->len == 1;\n\
               stage B = tracepoint:net:netif_receive_skb -> args->skbaddr;\n}\n\
               path q {\n  key = 2;\n\
               stage C = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
               stage D = tracepoint:net:netif_rx -> args->skbaddr;\n}\n\
               BEGIN { }";
    let (items, expanded) = expand_paths(src, &Options::default());
    assert!(expanded.errors.is_empty(), "{:?}", expanded.errors);
    // The paths are gone; the probe stays first, the stage programs follow.
    assert!(matches!(items[0], ast::Item::Probe(_)), "{:?}", items[0]);
    assert!(!items.iter().any(|i| matches!(i, ast::Item::Path(_))));
    let programs = stage_programs(&items);
    let stages: Vec<Vec<(u32, u32)>> = programs
        .iter()
        .map(|p| p.stages.iter().map(|s| (s.path, s.index)).collect())
        .collect();
    assert_eq!(stages, [vec![(0, 0), (1, 0)], vec![(0, 1)], vec![(1, 1)]]);
    let points: Vec<String> = programs
        .iter()
        .map(|p| expanded.points[p.point].display())
        .collect();
    assert_eq!(
        points,
        [
            "tracepoint:net:net_dev_queue",
            "tracepoint:net:netif_receive_skb",
            "tracepoint:net:netif_rx"
        ]
    );
    // Each stage keeps its own guard and its path's key and filter, as
    // written; the first starts records, so it has `info` if given.
    let shared = &programs[0].stages;
    let text = |e: &ast::Expr| &src[e.span.start..e.span.end];
    assert_eq!(shared[0].guard.as_ref().map(text), Some("args->len == 1"));
    assert_eq!(shared[1].guard, None);
    let ast::StageRecord::Packet(first) = &shared[0].record else {
        panic!("{:?}", shared[0].record)
    };
    assert_eq!(text(&first.key), "1");
    assert_eq!(first.filter.as_ref().map(text), Some("args->len > 1"));
    let ast::StageRecord::Packet(second) = &shared[1].record else {
        panic!("{:?}", shared[1].record)
    };
    assert_eq!((text(&second.key), &second.filter), ("2", &None));
}

#[test]
fn constant_settings_are_evaluated_and_others_rejected_at_their_place() {
    let path = |settings: &str| {
        format!(
            "path p {{\n  key = 1;\n  {}\n\
             stage A = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
             stage B = tracepoint:net:netif_receive_skb -> args->skbaddr;\n}}",
            settings
        )
    };
    let src = path(
        "threshold = 2 * 1000 + 1; detail = \"a\" != \"b\"; title = 0 ? \"x\" : \"y\"; \
         halves = (\"%d\", \"%d\"); rate_limit = (0 - 1) / sizeof(uint16);",
    );
    let (_, expanded) = expand_paths(&src, &Options::default());
    assert!(expanded.errors.is_empty(), "{:?}", expanded.errors);
    let info = &expanded.paths[0].info;
    assert_eq!(info.threshold_ns, 2001);
    // `sizeof` is unsigned, as the checker types it: so is the division.
    assert_eq!(info.rate_limit, i64::MAX as u64);
    assert!(info.detail);
    assert_eq!(info.report.title, "y");
    assert_eq!(info.report.halves, ["%d", "%d"]);
    // The formats keep their setting's place, to check once typed.
    let formats: Vec<(&str, &str)> = (expanded.paths[0].formats.iter())
        .map(|(f, span)| (f.as_str(), &src[span.start..span.end]))
        .collect();
    assert_eq!(formats, [("%d", "(\"%d\", \"%d\")"); 2]);
    let cases = [
        (
            "threshold = pid * 2;",
            "expected a constant integer",
            "pid * 2",
        ),
        ("title = 5;", "expected a constant string", "5"),
        (
            "timeout = 1 << 70;",
            "cannot shift by 70: a shift count is 0 to 63",
            "70",
        ),
        (
            "stacks = \"yes\" + 1;",
            "an operand must be an integer, not string[4]",
            "\"yes\"",
        ),
    ];
    for (setting, message, at) in cases {
        let src = path(setting);
        let (items, expanded) = expand_paths(&src, &Options::default());
        let [error] = &expanded.errors[..] else {
            panic!("{}: {:?}", setting, expanded.errors)
        };
        assert_eq!((error.message.as_str(), place(&src, error)), (message, at));
        // A path in error is dropped.
        assert!(stage_programs(&items).is_empty() && expanded.paths.is_empty());
    }
}

#[test]
fn a_path_not_enabled_is_dropped_without_a_word() {
    // Not even its missing key is reported.
    let src = "path p {\n  enabled = 1 - 1;\n\
               stage A = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
               stage B = tracepoint:net:netif_receive_skb -> args->skbaddr;\n}\nBEGIN { }";
    let (items, expanded) = expand_paths(src, &Options::default());
    assert!(expanded.errors.is_empty() && expanded.warnings.is_empty());
    assert!(expanded.paths.is_empty() && expanded.points.is_empty());
    assert_eq!(items.len(), 1);
    assert!(matches!(items[0], ast::Item::Probe(_)));
}

#[test]
fn later_passes_walk_into_the_stages_of_a_stage_program() {
    let src = "path p {\n  key = size;\n  filter = args->len > size;\n  info = size + 1;\n\
               stage A = tracepoint:net:net_dev_queue -> args->skbaddr if args->len != size;\n\
               stage B = tracepoint:net:netif_receive_skb -> args->skbaddr;\n}";
    let (mut items, expanded) = expand_paths(src, &Options::default());
    assert!(expanded.errors.is_empty(), "{:?}", expanded.errors);
    // How many times the walk meets the parameter `size`.
    let named = |items: &mut [ast::Item]| {
        let mut found = 0;
        walk::program(items, &mut |e| {
            found += usize::from(matches!(&e.kind, ast::ExprKind::Ident(n) if n == "size"));
            true
        });
        found
    };
    // The key and filter at both stages, the guard and `info` at the first.
    assert_eq!(named(&mut items), 6);
    let params = [("size".to_string(), crate::params::Value::Int(64))].into();
    let errors = crate::sema::params::substitute(&mut items, &params);
    assert!(errors.is_empty(), "{:?}", errors);
    assert_eq!(named(&mut items), 0);
}
