//! Faults and hostile input, as a user meets them: printf widths, programs
//! the kernel would refuse (a while loop past the verifier's budget too),
//! missing privileges, every signal that ends a run (at start-up too),
//! write errors, a flood of idle `--prometheus` connections, a consumer
//! that falls behind, an XDP interface deleted under its probe. Each asserts what the user sees, and that nothing was
//! lost silently or left loaded in the kernel.

mod common;

use common::{netscript, netscript_bin, ping_loopback, Tracer};
use std::process::Command;
use std::time::Duration;

/// A printf width or precision past 4096 is refused where it is written,
/// not a panic or a gigabyte line per event at run time.
#[test]
fn huge_printf_widths_are_compile_errors() {
    for (width, shown) in [
        ("99999999999999999999", "18446744073709551615"),
        ("-999999999", "999999999"),
        (".5000", "5000"),
    ] {
        let prog = format!("BEGIN {{ printf(\"%{width}d\\n\", 1); exit(); }}");
        let (code, out, err) = netscript(&["-e", &prog]);
        assert_eq!(code, 1, "{err}");
        assert!(out.is_empty(), "{out}");
        let expected = format!(
            "-e:1:16: error: printf: the field width or precision {shown} in '%{width}d' \
             is too large (at most 4096)\n"
        );
        assert!(err.starts_with(&expected), "{err}");
    }
}

/// What the kernel would refuse is refused at compile time, at its place,
/// and quickly: constant shifts out of 0..63, `kstack` in XDP, more than
/// 64 maps in one program (64 load), unrolls past 4096 statements, scripts
/// past 1 MiB.
#[test]
fn programs_the_kernel_would_reject_are_compile_errors() {
    let maps = |n: usize| -> String {
        let counts: String = (0..n).map(|i| format!("@m{i} = count(); ")).collect();
        format!("tracepoint:net:netif_receive_skb {{ {counts}}}")
    };
    let cases = [
        (
            "BEGIN { @x = 1 << 64; exit(); }".to_string(),
            "-e:1:19: error: cannot shift by 64: a shift count is 0 to 63\n",
        ),
        (
            "BEGIN { $a = 3; @x = $a >> -1; exit(); }".to_string(),
            "-e:1:28: error: cannot shift by -1: a shift count is 0 to 63\n",
        ),
        (
            "xdp:lo { @s[kstack] = count(); }".to_string(),
            "-e:1:13: error: kstack is not available in xdp programs",
        ),
        (
            "BEGIN { unroll(100) { unroll(100) { @a = count(); } } }".to_string(),
            "-e:1:9: error: unroll: 100 copies of this body make 10000 statements; at most 4096",
        ),
        (
            maps(65),
            "-e:1:1: error: tracepoint:net:netif_receive_skb: uses 65 maps (netscript's own \
             included); the kernel allows at most 64 in one program",
        ),
    ];
    for (prog, expected) in &cases {
        let started = std::time::Instant::now();
        let (code, _, err) = netscript(&["-d", "bpf", "-e", prog]);
        assert_eq!(code, 1, "{err}");
        assert!(err.starts_with(expected), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{expected}");
    }
    let big = std::env::temp_dir().join(format!("ns-big-{}.ns", std::process::id()));
    std::fs::write(&big, "BEGIN { @a = count(); }\n".repeat(50_000)).unwrap();
    let (code, _, err) = netscript(&["-d", "bpf", big.to_str().unwrap()]);
    std::fs::remove_file(&big).unwrap();
    assert_eq!(code, 1, "{err}");
    let expected = format!(
        "error: {}: the script is 1200000 bytes; at most 1048576",
        big.display()
    );
    assert!(err.starts_with(&expected), "{err}");
    if netscript::testing::bpf_available() {
        let (code, _, err) = netscript(&["--dry-run", "-e", &maps(64)]);
        assert_eq!(code, 0, "{err}");
    }
}

/// A while loop whose passes add up past the verifier's budget: the error
/// points at the loop and says so, not at a stdlib line inside it.
#[test]
fn a_while_loop_past_the_verifiers_budget_is_named() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let prog = "tracepoint:net:netif_receive_skb { $i = 0;\n  while ($i < 100000) { $i++; \
                @a[pkt_proto((struct sk_buff *)args->skbaddr)] = count(); } }";
    let (code, _, err) = netscript(&["--dry-run", "-e", prog]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with(
            "-e:2:10: error: the kernel verifier gave up on the program for \
             tracepoint:net:netif_receive_skb: it checks every pass of this while loop"
        ),
        "{err}"
    );
    assert!(err.contains("loop fewer times"), "{err}");
    let (code, _, err) = netscript(&["--dry-run", "-e", &prog.replace("100000", "4")]);
    assert_eq!(code, 0, "{err}");
}

/// Without privileges, one line says what is missing, and exit 1; printing
/// a stage needs none (but tracepoints need a readable tracefs, said so).
#[test]
fn unprivileged_users_are_told_what_is_missing() {
    if !netscript::testing::bpf_available() {
        return;
    }
    use std::os::unix::process::CommandExt;
    // A copy of the binary any user may run, wherever the build is.
    let dir = std::env::temp_dir().join(format!("ns-unpriv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("netscript");
    std::fs::copy(netscript_bin(), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        let out = Command::new(&bin)
            .args(args)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run netscript as nobody");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let tracepoint = "tracepoint:net:netif_receive_skb { @ = count(); }";
    for run in [vec!["-e", tracepoint], vec!["--dry-run", "-e", tracepoint]] {
        let (code, out, err) = as_nobody(&run);
        assert_eq!(code, Some(1), "{err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(
            err,
            "error: netscript needs root to load BPF programs, or the capabilities CAP_BPF and \
             CAP_PERFMON (CAP_NET_ADMIN too for xdp probes) and read access to tracefs; this \
             process lacks CAP_BPF and CAP_PERFMON (run it with sudo)\n"
        );
    }
    let (code, out, _) = as_nobody(&["-d", "bpf", "-e", "kprobe:tcp_sendmsg { @ = count(); }"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("p0_kprobe_tcp_sendmsg:\n"), "{out}");
    let (code, _, err) = as_nobody(&["-d", "bpf", "-e", tracepoint]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with(
            "-e:1:1: error: cannot read tracefs at /sys/kernel/tracing: permission denied"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cap_bpf_and_cap_perfmon_alone_find_the_same_kernel_features_as_root() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // ratelimit() takes its slot with compare-and-exchange where the
    // kernel has it; the probe for it must not need more than the script.
    let program = "tracepoint:net:netif_receive_skb { if (ratelimit(10)) { @ = count(); } }";
    let run = |prefix: &[&str]| {
        let out = Command::new(prefix[0])
            .args(&prefix[1..])
            .args([netscript_bin(), "--dry-run", "-e", program])
            .output()
            .expect("run netscript");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let as_root = run(&["env"]);
    assert_eq!(as_root.0, Some(0), "{}", as_root.1);
    let capabilities = run(&[
        "setpriv",
        "--inh-caps=-all,+bpf,+perfmon",
        "--bounding-set=-all,+bpf,+perfmon",
    ]);
    assert_eq!(capabilities, as_root);
    assert!(!as_root.1.contains("compare-and-exchange"), "{}", as_root.1);
}

/// Ids of the BPF programs that process `pid` holds open (from the
/// `prog_id` lines of its /proc fdinfo).
fn program_ids_of(pid: u32) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(format!("/proc/{}/fdinfo", pid))
        .expect("the tracer is running")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("prog_id:").map(|v| v.trim().parse().ok()))?
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Whether a BPF program with this id is still loaded.
fn program_exists(id: u64) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every signal that ends a run (TERM, INT, HUP from a closed terminal,
/// QUIT, ALRM) prints the maps and leaves no program behind; USR1 prints
/// them and the run goes on, as in bpftrace.
#[test]
fn ending_signals_print_maps_and_leave_no_program_behind() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let prog = "tracepoint:net:netif_receive_skb /args->len == 161/ { @pings = count(); } interval:s:1 { @secs = count(); }";
    for signal in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGALRM,
    ] {
        let mut t = Tracer::start(netscript_bin(), &["-e", prog]);
        t.wait_for("Attaching 2 probes...", Duration::from_secs(20));
        let ids = program_ids_of(t.pid());
        assert_eq!(ids.len(), 2, "one program per probe");
        ping_loopback(2, 133);
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(t.pid() as i32, libc::SIGUSR1) };
        t.wait_for("@pings: 4", Duration::from_secs(5));
        ping_loopback(1, 133);
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(t.pid() as i32, signal) };
        let (code, out, err) = t.finish();
        assert_eq!(code, 0, "signal {signal}: {err}");
        // USR1's print, then the one at exit.
        let usr1 = out.find("\n@pings: 4\n");
        let exit = out.find("\n@pings: 6\n");
        assert!(usr1.is_some() && usr1 < exit, "signal {signal}: {out}");
        let left: Vec<u64> = ids.into_iter().filter(|id| program_exists(*id)).collect();
        assert!(
            left.is_empty(),
            "signal {signal}: programs left behind: {left:?}"
        );
    }
}

/// A write error (here a full disk) loses nothing: it is said once, what
/// follows goes to stderr, maps included, and the exit status is 1.
#[test]
fn a_write_error_sends_the_rest_to_stderr() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let prog = "interval:ms:10 { @n = count(); if (@n == 5) { printf(\"five\\n\"); } \
                if (@n == 20) { exit(); } }";
    let (code, out, err) = netscript(&["-o", "/dev/full", "-e", prog]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert_eq!(
        err.matches("netscript: error: cannot write output: No space left on device")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("Attaching 1 probe...\nfive\n"), "{err}");
    assert!(err.contains("\n@n: 2"), "{err}");
}

/// `--prometheus` under 300 idle connections: no thread per connection,
/// idle ones closed after 5 s, and scrapes answered again after that.
#[test]
fn prometheus_connections_are_bounded_and_time_out() {
    if !netscript::testing::bpf_available() {
        return;
    }
    use std::io::{Read, Write};
    let addr = "127.0.0.1:19471";
    let mut t = Tracer::start(
        netscript_bin(),
        &[
            "--prometheus",
            addr,
            "-e",
            "interval:ms:100 { @ticks = count(); }",
        ],
    );
    t.wait_for("Attaching 1 probe...", Duration::from_secs(20));
    let mut idle: Vec<std::net::TcpStream> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let threads = std::fs::read_dir(format!("/proc/{}/task", t.pid()))
        .unwrap()
        .count();
    assert!(threads <= 4, "{threads} threads with 300 connections open");
    let scrape = || -> Option<String> {
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        body.contains("200 OK").then_some(body)
    };
    let started = std::time::Instant::now();
    let body = loop {
        if let Some(body) = scrape() {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no scrape answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.contains("netscript_ticks_total "), "{body}");
    // The idle connections the server took were closed by it.
    let closed = idle
        .iter_mut()
        .map(|s| {
            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
            match s.read(&mut [0u8; 1]) {
                Ok(n) => n == 0,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        })
        .filter(|&closed| closed)
        .count();
    assert_eq!(closed, idle.len());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(t.pid() as i32, libc::SIGTERM) };
    let (code, _, err) = t.finish();
    assert_eq!(code, 0, "{err}");
}

/// A signal while the programs load ends the run with the maps printed.
#[test]
fn a_signal_during_start_up_still_prints_the_maps() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // Enough programs that loading takes a while.
    let prog: String = (0..40)
        .map(|i| format!("tracepoint:net:netif_receive_skb {{ @c{i} = count(); }} "))
        .chain(["BEGIN { @begun = 1; }".to_string()])
        .collect();
    let t = Tracer::start(netscript_bin(), &["-e", &prog]);
    // Loading: the first program is in the kernel.
    let start = std::time::Instant::now();
    let ids = loop {
        let ids = program_ids_of(t.pid());
        if !ids.is_empty() {
            break ids;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "nothing loaded");
        std::thread::sleep(Duration::from_millis(2));
    };
    // SAFETY: signalling our own child.
    unsafe { libc::kill(t.pid() as i32, libc::SIGINT) };
    let (code, out, err) = t.finish();
    assert_eq!(code, 0, "{err}");
    // Some of the 40 programs attached, then the maps were printed.
    let attached: usize = out
        .strip_prefix("Attaching ")
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    // The signal may land while loading or attaching (fewer than 41), or
    // just after: the maps are printed either way.
    assert!(attached <= 41, "{out:?}");
    assert!(out.contains("\n@begun: 1\n"), "{out:?}");
    let left: Vec<u64> = ids.into_iter().filter(|id| program_exists(*id)).collect();
    assert!(left.is_empty(), "programs left behind: {left:?}");
}

/// A consumer that falls behind (stopped while events flood in): the ring
/// buffer's losses are shown as `Lost N events` while the run goes on,
/// not only at exit, and every event is either printed or counted lost.
#[test]
fn a_slow_consumer_sees_its_losses_while_it_runs() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // 1139: the IP length of a ping of 1111 bytes, which no other test sends.
    let script = "tracepoint:net:netif_receive_skb /args->len == 1139/ { @events = count(); \
                  printf(\"event %d %d %d %d %d\\n\", args->len, nsecs, cpu, pid, tid); }";
    let mut tracer = Tracer::start(netscript_bin(), &["-e", script]);
    tracer.wait_for("Attaching", Duration::from_secs(20));
    let signal = |sig: i32| {
        // SAFETY: kill with the pid of our own child.
        assert_eq!(unsafe { libc::kill(tracer.pid() as i32, sig) }, 0);
    };
    signal(libc::SIGSTOP);
    // 40000 echoes of 1111 bytes over loopback (request and reply each an
    // event): more than the stopped consumer's 1 MiB ring buffer holds.
    let ping = Command::new("ping")
        .args(["-f", "-q", "-c", "40000", "-s", "1111", "127.0.0.1"])
        .output()
        .expect("ping runs");
    assert!(ping.status.success(), "{ping:?}");
    signal(libc::SIGCONT);
    tracer.wait_for("Lost ", Duration::from_secs(5));
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, 0, "{err}");
    let printed = out.lines().filter(|l| l.starts_with("event 1139 ")).count() as u64;
    let lost: u64 = out
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Lost ")?
                .strip_suffix(" events")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    let events = common::map_value(&out, "@events");
    assert!(lost > 0 && printed > 0, "{printed} printed, {lost} lost");
    assert_eq!(
        printed + lost,
        events,
        "every event printed or counted lost"
    );
}

/// The interface of an XDP probe deleted under it: a warning names it, and
/// with nothing else attached the run ends with its maps printed, exit 1.
#[test]
fn a_deleted_xdp_interface_is_said_and_ends_the_run() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let ns = "nsfx";
    let _ = Command::new("ip").args(["netns", "del", ns]).status();
    let ip = |args: &str| {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("ip {args}"))
            .status();
        assert!(status.expect("ip runs").success(), "ip {args}");
    };
    ip(&format!("netns add {ns}"));
    ip(&format!("-n {ns} link add fx0 type veth peer name fx1"));
    ip(&format!("-n {ns} link set fx0 up"));
    ip(&format!("-n {ns} link set fx1 up"));
    let mut tracer = Tracer::start(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            netscript_bin(),
            "-e",
            "BEGIN { @begun = 1; } xdp:fx0 { @packets = count(); }",
        ],
    );
    tracer.wait_for("Attaching", Duration::from_secs(20));
    ip(&format!("-n {ns} link del fx0"));
    let started = std::time::Instant::now();
    let (code, out, err) = tracer.finish();
    ip(&format!("netns del {ns}"));
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("netscript: warning: xdp:fx0: the interface was deleted; its XDP program no longer runs\n")
            && err.contains("nothing attached can run any more; ending the run"),
        "{err}"
    );
    assert!(out.contains("\n@begun: 1\n"), "{out}");
}
