//! The command line as a user meets it: errors with places and exit codes,
//! probe listing, dry runs through the verifier, debug dumps, output
//! files, `-c`, `--duration`, `--verbose`, no programs left
//! behind, and scripts' own options: aliases, enum values' other
//! spellings, interface lists that add up, `--help`.

mod common;

use common::netns::NetnsPair;
use common::{netscript, netscript_bin, Tracer};
use std::process::Command;
use std::time::Duration;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");

#[test]
fn syntax_errors_point_at_the_place_and_exit_1() {
    let (code, _, err) = netscript(&["-e", "BEGIN { @x = ; }"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "-e:1:14: error: expected an expression\nBEGIN { @x = ; }\n             ^\n"
    );
    // A program left open ends at the end of the user's text, not in the
    // library appended after it.
    let program = "tracepoint:net:netif_receive_skb { @x = hist(args->len) ";
    let (code, _, err) = netscript(&["-e", program]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "-e:1:56: error: unexpected end of input, expected `;` or `}}`\n{program}\n{}^\n",
            " ".repeat(55)
        )
    );
}

#[test]
fn script_file_errors_name_the_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("ns-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.ns");
    std::fs::write(&path, "BEGIN {\n  @x = count();\n  nosuch(1);\n}\n").unwrap();
    let (code, _, err) = netscript(&[path.to_str().unwrap()]);
    assert_eq!(code, 1);
    let expected = format!(
        "{}:3:3: error: unknown function 'nosuch'\n  nosuch(1);\n  ^^^^^^^^^\n",
        path.display()
    );
    assert_eq!(err, expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every definition, path and probe is checked, and each one's errors
/// are reported, in source order, each once.
#[test]
fn every_probe_and_definition_reports_its_error() {
    let dir = std::env::temp_dir().join(format!("ns-cli-all-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.ns");
    std::fs::write(
        &path,
        "BEGIN { @a = nosuch(1); }\n\
         interval:s:1 { @b = $undefined; }\n\
         fn twice($x, $x) { return 1; }\n",
    )
    .unwrap();
    let (code, _, err) = netscript(&["-d", "ast", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    let at: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(|l| l.rsplit_once(".ns:").map_or(l, |(_, at)| at))
        .collect();
    assert_eq!(
        at,
        [
            "1:14: error: unknown function 'nosuch'",
            "2:21: error: variable $undefined is used before it is assigned",
            "3:1: error: function twice: parameter $x is declared twice",
        ],
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A probe body is checked on after a failing statement: each mistake
/// is reported at its place, and none that only follows from another.
#[test]
fn every_failing_statement_of_a_probe_is_reported() {
    let program =
        r#"BEGIN { $x = nosuch(); printf("%d\n", $x + 1); @a = 1 + "s"; if (pid) { bad(); } }"#;
    let (code, _, err) = netscript(&["-e", program]);
    assert_eq!(code, 1);
    let caret = |col: usize, width: usize| format!("{}{}", " ".repeat(col - 1), "^".repeat(width));
    assert_eq!(
        err,
        format!(
            "-e:1:14: error: unknown function 'nosuch'\n{program}\n{}\n\
             -e:1:57: error: an operand must be an integer, not string[2]\n{program}\n{}\n\
             -e:1:73: error: unknown function 'bad'\n{program}\n{}\n",
            caret(14, 8),
            caret(57, 3),
            caret(73, 5),
        )
    );
}

#[test]
fn bad_usage_exits_2_and_missing_files_exit_1() {
    let (code, _, err) = netscript(&["--no-such-flag"]);
    assert_eq!(code, 2, "{}", err);
    let (code, _, err) = netscript(&["-f", "yaml", "-e", "BEGIN {}"]);
    assert_eq!(code, 2, "{}", err);
    let (code, _, err) = netscript(&["/no/such/script.ns"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: cannot read /no/such/script.ns"),
        "{}",
        err
    );
    // No program: the REPL, which leaves cleanly at the end of its input.
    let (code, out, err) = netscript(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("netscript REPL"), "{out}");
}

#[test]
fn unknown_probes_are_errors_unless_told_to_warn() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let prog = "kprobe:no_such_function_xyz { @a = count(); } BEGIN { exit(); }";
    let (code, _, err) = netscript(&["-e", prog]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("-e:1:1: error: kernel function no_such_function_xyz not found\n"),
        "{}",
        err
    );
    let (code, out, err) = netscript(&["--missing-probes", "warn", "-e", prog]);
    assert_eq!(code, 0, "{}", err);
    // The map only that probe wrote is the metric that goes with it.
    assert!(
        err.contains("warning: metric @a off: kernel function no_such_function_xyz not found"),
        "{}",
        err
    );
    assert!(out.starts_with("Attaching 1 probe..."), "{}", out);
    let (code, _, err) = netscript(&[
        "--missing-probes",
        "warn",
        "-e",
        "kprobe:no_such_function_xyz { printf(\"x\"); } BEGIN { exit(); }",
    ]);
    assert_eq!(code, 0, "{}", err);
    // Placed in the script's text, which the driver kept to render it.
    assert!(
        err.contains(
            "warning: kernel function no_such_function_xyz not found, probe skipped\n  --> -e:1:1\n"
        ),
        "{}",
        err
    );
}

#[test]
fn listing_tracepoints_and_functions_with_arguments() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (code, out, _) = netscript(&["-l", "tracepoint:net:*"]);
    assert_eq!(code, 0);
    assert!(
        out.lines().any(|l| l == "tracepoint:net:netif_receive_skb"),
        "{}",
        out
    );
    assert!(out.lines().all(|l| l.starts_with("tracepoint:net:")));
    let (_, out, _) = netscript(&["-lv", "tracepoint:net:netif_receive_skb"]);
    assert_eq!(out, "tracepoint:net:netif_receive_skb\n    void * skbaddr\n    unsigned int len\n    __data_loc char[] name\n");
    let (_, out, _) = netscript(&["-l", "kprobe:tcp_sendm*"]);
    assert!(out.lines().any(|l| l == "kprobe:tcp_sendmsg"), "{}", out);
    let (_, out, _) = netscript(&["-lv", "fentry:tcp_sendmsg"]);
    assert_eq!(
        out,
        "fentry:tcp_sendmsg\n    struct sock * sk\n    struct msghdr * msg\n    size_t size\n"
    );
    let (_, out, _) = netscript(&["-lv", "fexit:tcp_sendmsg"]);
    assert!(out.ends_with("    size_t size\n    int retval\n"), "{out}");
}

/// Every provider with targets lists them: raw tracepoints by name, XDP
/// by interface; one without (BEGIN) says which can be listed.
#[test]
fn listing_raw_tracepoints_and_interfaces() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (code, out, _) = netscript(&["-l", "rawtracepoint:netif_receive_skb"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "rawtracepoint:netif_receive_skb\n")
    );
    let (code, out, _) = netscript(&["-l", "xdp:l*"]);
    assert_eq!((code, out.as_str()), (0, "xdp:lo\n"));
    let (code, _, err) = netscript(&["-l", "BEGIN:*"]);
    assert_eq!(code, 1);
    assert!(err.contains("'BEGIN' probes cannot be listed"), "{err}");
}

#[test]
fn dry_run_passes_kprobe_programs_through_the_verifier() {
    if !netscript::testing::bpf_available() {
        return;
    }
    for prog in [
        "kprobe:tcp_sendmsg { @bytes[comm] = sum(arg2); @sk[((struct sock *)arg0)->__sk_common.skc_dport] = count(); }",
        "kretprobe:tcp_sendmsg /retval > 0/ { @ret = hist(retval); }",
        "kprobe:ip_rcv { $skb = (struct sk_buff *)arg0; @dev[$skb->dev->name] = count(); @st[kstack] = count(); }",
        "fentry:tcp_sendmsg { @s = stats(args->size); }",
        "fexit:tcp_sendmsg { @r = lhist(retval, 0, 1000, 100); }",
    ] {
        let (code, out, err) = netscript(&["--dry-run", "-e", prog]);
        assert_eq!(code, 0, "{}: {}", prog, err);
        assert!(err.contains("passed the kernel verifier"), "{}", err);
        assert!(out.is_empty());
    }
}

#[test]
fn no_fentry_compiles_fentry_probes_as_kprobes_and_says_so() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let prog =
        "fentry:tcp_sendmsg { @s = sum(args.size); } fexit:tcp_sendmsg { @r = sum(retval); }";
    // Before -e and, like the other global options, after the script.
    for args in [
        vec!["--no-fentry", "--dry-run", "-e", prog],
        vec!["--dry-run", "-e", prog, "--no-fentry"],
    ] {
        let (code, _, err) = netscript(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            err.contains("fentry/fexit disabled by --no-fentry; using kprobe/kretprobe instead"),
            "{err}"
        );
        assert!(
            err.contains("2 program(s) passed the kernel verifier"),
            "{err}"
        );
    }
    let (_, out, _) = netscript(&["--no-fentry", "-d", "bpf", "-e", prog]);
    assert!(out.contains("kprobe") && !out.contains("fentry"), "{out}");
}

#[test]
fn verifier_rejections_point_at_the_script_line() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (code, _, err) = netscript(&[
        "--dry-run",
        "-e",
        "BEGIN {\n  $i = 1;\n  while ($i) { @x = 1; }\n}",
    ]);
    assert_eq!(code, 1);
    let mut lines = err.lines();
    assert_eq!(
        lines.next(),
        Some("-e:3:21: error: the kernel verifier rejected the program for BEGIN")
    );
    assert_eq!(lines.next(), Some("  while ($i) { @x = 1; }"));
    assert!(err.contains("infinite loop detected"), "{}", err);
    assert!(err.lines().count() < 25, "the log is summarised:\n{}", err);
}

#[test]
fn emitted_objects_are_valid_bpf_elf() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let path = std::env::temp_dir().join(format!("ns-elf-{}.o", std::process::id()));
    let prog = "tracepoint:net:netif_receive_skb { @[args->len] = count(); }";
    let (code, _, err) = netscript(&[
        "--dry-run",
        "--emit-elf",
        path.to_str().unwrap(),
        "-e",
        prog,
    ]);
    assert_eq!(code, 0, "{}", err);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    let dump = Command::new("bpftool")
        .args(["btf", "dump", "file", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(dump.status.success());
    assert!(String::from_utf8_lossy(&dump.stdout).contains("DATASEC '.maps'"));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn debug_dumps_show_each_stage() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let prog = "BEGIN { @x = count(); }";
    let (_, ast, _) = netscript(&["-d", "ast", "-e", prog]);
    assert!(
        ast.contains("ProbeBlock") && ast.contains("\"count\""),
        "{}",
        ast
    );
    let (_, ir, _) = netscript(&["-d", "ir", "-e", prog]);
    assert!(
        ir.starts_with("fn p0_BEGIN(ctx=%0):") && ir.contains("call 1("),
        "{}",
        ir
    );
    let (_, bpf, _) = netscript(&["-d", "bpf", "-e", prog]);
    assert!(
        bpf.starts_with("p0_BEGIN:\n")
            && bpf.contains("call 1")
            && bpf.trim_end().ends_with("exit"),
        "{}",
        bpf
    );
}

#[test]
fn output_file_command_and_duration() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let path = std::env::temp_dir().join(format!("ns-out-{}.txt", std::process::id()));
    let prog = "tracepoint:net:netif_receive_skb /args->len == 151/ { @rx = count(); }";
    let cmd = "ping -q -c 3 -i 0.05 -s 123 127.0.0.1 >/dev/null";
    // An existing file is truncated, and everything goes into it.
    std::fs::write(&path, "old contents that must go\n".repeat(10)).unwrap();
    let (code, out, err) = netscript(&["-o", path.to_str().unwrap(), "-c", cmd, "-e", prog]);
    assert_eq!(code, 0, "{}", err);
    assert_eq!(out, "", "nothing on stdout with -o");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "Attaching 1 probe...\n\n\n@rx: 6\n"
    );
    std::fs::remove_file(&path).unwrap();
    // A new file is 0644 whatever the umask (the test's child inherits 000).
    // SAFETY: umask only changes this process's file creation mask.
    let old_mask = unsafe { libc::umask(0) };
    let (code, _, err) = netscript(&["-o", path.to_str().unwrap(), "-c", "true", "-e", prog]);
    // SAFETY: as above.
    unsafe { libc::umask(old_mask) };
    assert_eq!(code, 0, "{}", err);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // A symbolic link is not followed: its target is left as it was.
    let target = path.with_extension("target");
    std::fs::write(&target, "precious\n").unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let (code, _, err) = netscript(&["-o", path.to_str().unwrap(), "-c", "true", "-e", prog]);
    assert_eq!(code, 1, "{}", err);
    assert!(
        err.contains("it is a symbolic link; give the file it points to"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&target).unwrap();

    let started = std::time::Instant::now();
    let (code, out, _) = netscript(&[
        "--duration",
        "0.5",
        "-e",
        "interval:ms:100 { @ticks = count(); }",
    ]);
    assert_eq!(code, 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    let ticks: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("@ticks: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((3..=6).contains(&ticks), "{} ticks in 0.5 s", ticks);
}

#[test]
fn exit_in_a_probe_ends_the_run() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (code, out, err) = netscript(&[
        "-e",
        "interval:ms:50 { @n++; if (@n == 3) { printf(\"done\\n\"); exit(); } }",
    ]);
    assert_eq!(code, 0, "{}", err);
    assert_eq!(out.matches("done\n").count(), 1, "{}", out);
    // exit() is seen by the run loop at its next poll: on a loaded machine
    // the timer may fire again before.
    let n: u64 = out
        .rsplit_once("@n: ")
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(n >= 3, "{}", out);
}

#[test]
fn functions_run_inlined() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let prog = "fn clamp($x, $lo, $hi) { if ($x < $lo) { return $lo; } if ($x > $hi) { return $hi; } return $x; }\n\
                BEGIN { printf(\"%d %d %d\\n\", clamp(5, 0, 10), clamp(-5, 0, 10), clamp(50, 0, 10) + clamp(7, 0, 3)); exit(); }";
    let (code, out, err) = netscript(&["-e", prog]);
    assert_eq!(code, 0, "{}", err);
    assert_eq!(out, "Attaching 1 probe...\n5 0 13\n\n\n");
}

#[test]
fn a_path_whose_record_set_is_too_large_is_refused_at_its_key() {
    let stages: String = (0..140)
        .map(|i| format!("  stage S{i} = tracepoint:net:net_dev_queue -> args->skbaddr if args->len == {i};\n"))
        .collect();
    let script = format!("path many {{\n  key = 1;\n{stages}}}\n");
    let (code, _, err) = netscript(&["-d", "ir", "-e", &script]);
    assert_eq!(code, 1, "{}", err);
    assert!(
        err.starts_with("-e:2:9: error: path 'many' keeps 8896 bytes per packet"),
        "{}",
        err
    );
}

#[test]
fn path_records_must_be_a_count_of_packets() {
    let script = "tracepoint:net:net_dev_queue { @n = count(); }";
    for bad in ["0", "16777217", "many"] {
        let (code, _, err) = netscript(&["--path-records", bad, "-d", "ir", "-e", script]);
        assert_eq!(code, 2, "{}", err);
        assert!(err.contains("--path-records"), "{}", err);
    }
}

#[test]
fn a_path_whose_record_table_would_take_over_a_gib_is_refused() {
    let script = "path p { key = 1; records = 16777216;\n  stage A = tracepoint:net:net_dev_queue -> args->skbaddr;\n  stage B = tracepoint:net:netif_receive_skb -> args->skbaddr; }";
    let (code, _, err) = netscript(&["-d", "ir", "-e", script]);
    assert_eq!(code, 1, "{}", err);
    assert!(
        err.starts_with(
            "-e:1:16: error: path 'p': a record table of 16777216 packets in flight of 64 bytes \
             each would take 1280 MiB of kernel memory (at most 1024 MiB); set `records` lower"
        ),
        "{}",
        err
    );
}

/// Runs `netscript -e PROGRAM ARGS...` in network namespace `ns`.
fn in_netns(ns: &str, program: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["netns", "exec", ns, netscript_bin(), "-e", program];
    all.extend_from_slice(args);
    Tracer::start("ip", &all).finish()
}

#[test]
fn script_options_take_their_aliases_and_lists_add_up() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsal", 51);
    let out = Command::new("ip")
        .args(["netns", "exec", &p.ns[0], "cat"])
        .arg(format!("/sys/class/net/{}/ifindex", p.dev[0]))
        .output()
        .expect("ip runs");
    let veth: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // lo is ifindex 1 in every namespace.
    let program = format!(
        "param dev: ifaces = any \"devices\" alias(dev1, dev2)\n\
         param n: int = 0 \"a number\" alias(n)\n\
         param mode: enum(detail alias(detailed), histogram) = histogram \"mode\"\n\
         BEGIN {{ printf(\"%d %d %d %d %s\\n\", matches(1, dev), matches({veth}, dev), matches(1000, dev), n, mode); exit(); }}"
    );
    let veth_dev = p.dev[0].as_str();
    for (args, expected) in [
        (vec![], "1 1 1 0 histogram"),
        (vec!["--dev1", "lo"], "1 0 0 0 histogram"),
        (
            vec!["--dev1", "lo", "--dev2", veth_dev],
            "1 1 0 0 histogram",
        ),
        (vec!["--dev", "lo", "--dev", veth_dev], "1 1 0 0 histogram"),
        (
            vec!["--dev2", &format!("{veth_dev},lo")],
            "1 1 0 0 histogram",
        ),
        (vec!["-n", "7", "--mode", "detailed"], "1 1 1 7 detail"),
        (vec!["--n=3", "-n", "4", "--mode=detail"], "1 1 1 4 detail"),
    ] {
        let (code, out, err) = in_netns(&p.ns[0], &program, &args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(
            out,
            format!("Attaching 1 probe...\n{expected}\n\n\n"),
            "{args:?}"
        );
    }
    for (args, message) in [
        (vec!["-x"], "error: unknown option '-x' for this script (its options: --dev --dev1 --dev2 -n --n --mode)\n"),
        (vec!["-n"], "error: -n needs a value (N)\n"),
        (vec!["--dev1", "lo", "--dev2", "any"], "error: --dev: 'any' cannot be listed with interface names ('lo,any')\n"),
        (vec!["--mode", "detailled"], "error: --mode: 'detailled' is not one of detail (or detailed), histogram\n"),
    ] {
        let (code, out, err) = in_netns(&p.ns[0], &program, &args);
        assert_eq!((code, out.as_str(), err.as_str()), (2, "", message), "{args:?}");
    }
}

#[test]
fn a_flag_spelt_like_another_is_an_error_at_its_declaration() {
    for (program, message) in [
        (
            "param dev: iface = any alias(d)\nBEGIN { }",
            "-e:1:1: error: parameter dev: -d is already netscript's own option\n",
        ),
        (
            "param pid: int = 0\nparam port: port = any alias(pid)\nBEGIN { }",
            "-e:2:1: error: parameter port: --pid is already the flag of parameter pid\n",
        ),
    ] {
        let (code, _, err) = netscript(&["-d", "ast", "-e", program]);
        assert_eq!(code, 1, "{err}");
        assert!(err.starts_with(message), "{err}");
    }
}

#[test]
fn script_help_shows_aliases_and_the_spellings_of_values() {
    let help = |script: &str| {
        let (code, out, err) = netscript(&[&format!("{SCRIPTS}/{script}"), "--help"]);
        assert_eq!(code, 0, "{err}");
        out
    };
    let tcp = help("ovs_tcp_latency.ns");
    assert!(
        tcp.contains("\n  --phy-iface IFACE[,IFACE...]|any  the physical NICs attached to OVS: one, or a bond's ports (eth0,eth1 or the option repeated; any: every device but OVS internal ports) [default: any] [also: --phy-iface1, --phy-iface2]\n"),
        "{tcp}"
    );
    let vm = help("vm_network_latency.ns");
    assert!(
        vm.contains("\n  --mode detail|histogram|both    per-packet reports, latency histograms (p50/p90/p99), or both [default: detail] [also: detailed for detail]\n"),
        "{vm}"
    );
    // netscript's own options end every script's help, from their definitions.
    let metrics = help("tcp_metrics.ns");
    let own = metrics
        .split_once(
            "\nnetscript's own options (for every script; they may stand among the script's):\n",
        )
        .map(|(_, own)| own)
        .unwrap_or_else(|| panic!("no own options: {metrics}"));
    for row in [
        "  -f text|json ",
        "  -o FILE ",
        "  --duration SECONDS ",
        "  --prometheus ADDR:PORT ",
        "  --anonymize ",
        "  -v, --verbose ",
        "  --stages auto|kprobe|tracepoint ",
    ] {
        assert!(own.lines().any(|l| l.starts_with(row)), "{row}: {own}");
    }
    assert!(!own.contains("  -e ") && !own.contains("  -l "), "{own}");
    assert!(help("tcp_connlife.ns").contains(
        "\n  -p, --pid N      log only the sockets of this process (0: all) [default: 0]\n"
    ));
    assert!(help("kernel_icmp_rtt.ns").contains("\n  --interface IFACE[,IFACE...]|any "));
}

#[test]
fn mode_values_are_spelt_one_way_across_the_scripts() {
    use netscript::params::{declared, Kind};
    let mut files: Vec<_> = std::fs::read_dir(SCRIPTS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut modes = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        // Scripts compare a mode with its value, never with an alias.
        assert!(!text.contains("\"detailed\""), "{}", path.display());
        let ast = netscript::syntax::parse(&text).unwrap();
        for param in declared(&ast, &netscript::cli::reserved_flags()).unwrap() {
            let Kind::Enum(choices) = &param.kind else {
                continue;
            };
            if param.name != "mode" {
                continue;
            }
            // Each value with its aliases: `detail|detailed`.
            let words: Vec<String> = choices
                .iter()
                .map(|c| {
                    [vec![c.value.clone()], c.aliases.clone()]
                        .concat()
                        .join("|")
                })
                .collect();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            modes.push((name, words.join(", ")));
        }
    }
    let expected = [
        ("kernel_icmp_rtt.ns", "detail, histogram, both"),
        ("ovs_icmp_rtt.ns", "detail, histogram, both"),
        ("ovs_tcp_latency.ns", "detail, histogram, both"),
        ("skb_path_latency.ns", "detail, histogram, both"),
        ("tcp_metrics.ns", "summary, detail, both"),
        ("vm_network_latency.ns", "detail|detailed, histogram, both"),
    ];
    let modes: Vec<(&str, &str)> = modes
        .iter()
        .map(|(f, m)| (f.as_str(), m.as_str()))
        .collect();
    assert_eq!(modes, expected);
}

#[test]
fn verbose_says_what_attached_and_how_often_it_ran() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let prog = "tracepoint:net:netif_receive_skb /args->len == 171/ { @n = count(); }";
    let cmd = "ping -q -c 3 -i 0.05 -s 143 127.0.0.1 >/dev/null";
    // -v and --verbose, before the program and after it.
    for args in [
        vec!["-v", "-c", cmd, "-e", prog],
        vec!["-c", cmd, "-e", prog, "--verbose"],
    ] {
        let (code, out, err) = netscript(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "Attaching 1 probe...\n\n\n@n: 6\n");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines[0], "netscript: attached tracepoint:net:netif_receive_skb",
            "{err}"
        );
        let runs: u64 = lines[1]
            .strip_prefix("netscript: tracepoint:net:netif_receive_skb: ran ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        // Every packet received anywhere on the host runs the program.
        assert!(runs >= 6, "{err}");
        assert!(lines[1].ends_with(" ns per run"), "{err}");
        assert_eq!(lines.len(), 2, "{err}");
    }
}
