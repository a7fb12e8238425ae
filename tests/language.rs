//! Language features run end to end in the kernel (BEGIN programs run
//! through BPF_PROG_TEST_RUN): compile-time kernel tests and the metrics
//! they switch off, tuple elements, records larger than the stack allows,
//! `config map_keys`, values that need many spill slots, `walltime()` and
//! long flat sums.

mod common;

use common::{assert_within, clock_ns, date_ns, netscript};

/// Runs a one-liner; (exit code, stdout, stderr).
fn run(program: &str) -> (i32, String, String) {
    netscript(&["-e", program])
}

#[test]
fn kernel_has_keeps_one_branch_and_reports_the_metrics_it_switches_off() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // The branch not taken names a field this kernel lacks: not checked.
    let (code, out, err) = run(r#"BEGIN {
             if (kernel_has("struct sock.no_such_member")) { @gone = sum(((struct sock *)0)->no_such_member); }
             else { @kept = count(); }
             if (kernel_has("struct sock.__sk_common.skc_family") && kernel_has("TCP_ESTABLISHED")) { @both = count(); }
             printf("%d %d %d\n", kernel_has("enum tcp_ca_state.TCP_CA_Loss"), kernel_has("tracepoint:sock:inet_sock_set_state.newstate"), kernel_has("tracepoint:sock:no_such_event"));
             print(@gone);
             exit();
           }"#);
    assert_eq!(code, 0, "{}", err);
    assert!(out.contains("1 1 0\n"), "{}", out);
    assert!(
        out.contains("@kept: 1") && out.contains("@both: 1"),
        "{}",
        out
    );
    assert_eq!(
        err.lines()
            .filter(
                |l| l.contains("metric @gone off: this kernel has no struct sock.no_such_member")
            )
            .count(),
        1,
        "{}",
        err
    );
    // A false kernel_has() predicate drops its probe; a malformed test is
    // an error at its place.
    let (code, _, err) = run(
        r#"kprobe:tcp_sendmsg /kernel_has("struct sock.nope")/ { @x = count(); } BEGIN { exit(); }"#,
    );
    assert_eq!(code, 0, "{}", err);
    assert!(
        err.contains("metric @x off: this kernel has no struct sock.nope"),
        "{}",
        err
    );
    let (code, _, err) = run(r#"BEGIN { printf("%d", kernel_has("sock.nope")); }"#);
    assert_eq!(code, 1);
    assert!(
        err.contains("-e:1:33: error: kernel_has(\"sock.nope\"): expected"),
        "{}",
        err
    );
}

#[test]
fn tuple_elements_from_variables_and_maps() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (code, out, err) = run(r#"BEGIN {
             @t[1] = (5, "abc", -7);
             @t[2] = (6, "a longer string", 1);
             $v = (1, "x");
             $v = (2, "a wider one");
             $e = @t[2];
             printf("%d %s %d|%s %d|%d %s|%d\n", @t[1].0, @t[1].1, @t[1].2, $e.1, $e.0, $v.0, $v.1, @t[3].0);
             exit();
           }"#);
    assert_eq!(code, 0, "{}", err);
    assert!(
        out.contains("5 abc -7|a longer string 6|2 a wider one|0\n"),
        "{}",
        out
    );
    let (code, _, err) = run(r#"BEGIN { $v = (1, 2); printf("%d", $v.2); }"#);
    assert_eq!(code, 1);
    assert!(
        err.contains("the tuple has 2 elements: .0 to .1"),
        "{}",
        err
    );
}

#[test]
fn long_sums_compile_and_add_up() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // A constant sum of 100 terms and one of 1000 variables: flat chains
    // are not deep nesting.
    let program = format!(
        "BEGIN {{ $y = 3; @c = {}; @v = $y{}; exit(); }}",
        vec!["1"; 100].join("+"),
        " + $y".repeat(999)
    );
    let (code, out, err) = run(&program);
    assert_eq!(code, 0, "{}", err);
    assert!(
        out.contains("@c: 100\n") && out.contains("@v: 3000\n"),
        "{}",
        out
    );
}

#[test]
fn printf_records_larger_than_the_stack_allows() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // 40 arguments of 8 bytes and 8 strings of 64: far over 512 bytes.
    let ints: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    let strings: Vec<String> = (0..8)
        .map(|i| format!("\"{}\"", "s".repeat(40 + i)))
        .collect();
    let format = format!(
        "{}\\n",
        vec!["%d"; 40]
            .into_iter()
            .chain(vec!["%s"; 8])
            .collect::<Vec<_>>()
            .join(" ")
    );
    let program = format!(
        "BEGIN {{ printf(\"{}\", {}, {}); exit(); }}",
        format,
        ints.join(", "),
        strings.join(", ")
    );
    let (code, out, err) = run(&program);
    assert_eq!(code, 0, "{}", err);
    let expected: Vec<String> = ints
        .iter()
        .cloned()
        .chain((0..8).map(|i| "s".repeat(40 + i)))
        .collect();
    assert!(
        out.contains(&format!("{}\n", expected.join(" "))),
        "{}",
        out
    );
}

#[test]
fn config_map_keys_bounds_keyed_maps() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (code, out, err) = run(
        "config map_keys = 3; BEGIN { @m[1] = 1; @m[2] = 2; @m[3] = 3; @m[4] = 4; @m[5] = 5; exit(); }",
    );
    assert_eq!(code, 0, "{}", err);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("@m[")).count(),
        3,
        "{}",
        out
    );
    let (code, _, err) = run("config map_keys = 0; BEGIN { exit(); }");
    assert_eq!(code, 1);
    assert!(err.contains("map_keys must be between 1 and"), "{}", err);
    let (code, _, err) = run("config no_such = 1; BEGIN { exit(); }");
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown config setting 'no_such' (known: map_keys, print_maps_on_exit)"),
        "{}",
        err
    );
}

#[test]
fn many_values_live_in_turn_share_spill_slots() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // Three rounds of 30 values live at once across helper calls: each
    // round's spill slots are free again for the next.
    let round = |base: usize| {
        let sets: Vec<String> = (0..30)
            .map(|i| format!("$v{} = nsecs * 0 + {};", i, base + i))
            .collect();
        let sum: Vec<String> = (0..30).map(|i| format!("$v{}", i)).collect();
        format!("{} @s[{}] = {};", sets.join(" "), base, sum.join(" + "))
    };
    let program = format!(
        "BEGIN {{ {} {} {} exit(); }}",
        round(0),
        round(100),
        round(1000)
    );
    let (code, out, err) = run(&program);
    assert_eq!(code, 0, "{}", err);
    for (base, total) in [(0, 435), (100, 3435), (1000, 30435)] {
        assert!(out.contains(&format!("@s[{}]: {}", base, total)), "{}", out);
    }
}

#[test]
fn walltime_is_the_wall_clock_of_a_monotonic_time() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (wall_before, mono_before) = (date_ns(), clock_ns(libc::CLOCK_MONOTONIC));
    let (code, out, err) =
        run(r#"BEGIN { $t = nsecs; printf("%lu %lu\n", $t, walltime($t)); exit(); }"#);
    let (mono_after, wall_after) = (clock_ns(libc::CLOCK_MONOTONIC), date_ns());
    assert_eq!(code, 0, "{}", err);
    let values: Vec<u64> = out
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(values.len(), 2, "{}", out);
    // One instant on both clocks, each between the test's own readings
    // of that clock around the run.
    assert_within(values[0], mono_before, mono_after);
    assert_within(values[1], wall_before, wall_after);
}

#[test]
fn table_prints_maps_as_one_table_and_print_clear_take_groups() {
    let (code, out, err) = run(r#"BEGIN {
  @sent["a"] = sum(100); @sent["b"] = sum(7); @lost["b"] = count();
  @all = count(); @all = count(); @lat = hist(1000); @lat = hist(1000); // [512, 1024): 768
  table(@sent, @lost);
  table(@all, @lat);
  print(@all, @lost);
  clear(@sent, @lost, @all, @lat);
  table(@sent, @lost);
  exit();
}"#);
    assert_eq!(code, 0, "{err}");
    let body = out
        .strip_prefix("Attaching 1 probe...\n")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        body.starts_with(
            "   @sent  @lost\n\
             a    100      -\n\
             b      7      1\n\
             \x20     value  p50  p90  p99\n\
             @all      2    -    -    -\n\
             @lat      2  768  768  768\n\
             @all: 2\n\
             @lost[b]: 1\n\
             \x20             @sent  @lost\n\
             (no entries)\n"
        ),
        "{body}"
    );
    let (code, _, err) = run("BEGIN { @a[1] = count(); @b = count(); table(@a, @b); }");
    assert_eq!(code, 1);
    assert!(
        err.contains("table() prints one row per key: @a and @b have different keys"),
        "{err}"
    );
}

#[test]
fn config_print_maps_on_exit_false_leaves_the_exit_dump_out() {
    let (code, out, err) =
        run("config print_maps_on_exit = false; BEGIN { @x = count(); print(@x); exit(); }");
    assert_eq!(
        (code, out.as_str()),
        (0, "Attaching 1 probe...\n@x: 1\n"),
        "{err}"
    );
    let (code, _, err) = run("config print_maps_on_exit = 2; BEGIN { exit(); }");
    assert_eq!(code, 1);
    assert!(err.contains("print_maps_on_exit is true or false"), "{err}");
}

#[test]
fn consts_and_extended_paths_compile_as_written_out() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let bpf = |program: &str| {
        let (code, out, err) = netscript(&["-d", "bpf", "-e", program]);
        assert_eq!(code, 0, "{}\n{}", program, err);
        out
    };
    assert_eq!(
        bpf(
            "const LIMIT = 2 * SIZE; const SIZE = 700;\n\
             tracepoint:net:netif_receive_skb /args->len > LIMIT/ { @big[IPPROTO_TCP] = count(); }"
        ),
        bpf("tracepoint:net:netif_receive_skb /args->len > 2 * 700/ { @big[6] = count(); }")
    );
    assert_eq!(
        bpf("template t { key = pkt_key($skb); detail = 0; histogram = 1; stage Q = dev_queue_xmit; }\n\
             template done { stage D = dev_xmit_done; }\n\
             path p extends t { stages done; }\n\
             path s extends p { stage S replaces Q = dev_start_xmit; }"),
        bpf("path p { key = pkt_key($skb); detail = 0; histogram = 1; stage Q = dev_queue_xmit; stage D = dev_xmit_done; }\n\
             path s { key = pkt_key($skb); detail = 0; histogram = 1; stage S = dev_start_xmit; stage D = dev_xmit_done; }")
    );
}
