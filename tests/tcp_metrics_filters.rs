//! Live tests of scripts/tcp_metrics.ns, filters: --netns, --iface,
//! --cgroup, --max-flows, --pid and --anonymize.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::netns::{sh, NetnsPair};
use common::tcp_metrics::*;

#[test]
fn netns_cgroup_and_iface_filters_and_max_flows() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstn", 39);
    let _server = Server::start(&p, 7011);
    let transitions = |out: &str| value(out, "@transitions[SYN_SENT, ESTABLISHED]").unwrap_or(0);

    // --netns: the pair's client namespace only, not the server's.
    let t = start(&[
        "--netns",
        &format!("/run/netns/{}", p.ns[0]),
        "--interval",
        "100",
        "--reset=false",
    ]);
    client(&p, &p.ip4[1], 7011, 2, 1000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(transitions(&out), 2, "{}", out);
    assert_eq!(
        value(&out, "@transitions[LISTEN, SYN_RECV]"),
        None,
        "{}",
        out
    );

    // --iface: lo is ifindex 1 in every namespace, the pair's veth is not.
    let t = watch(7011, &["--iface", "lo"]);
    client(&p, &p.ip4[1], 7011, 1, 1000);
    let loopback = ["127.0.0.1", "7011", "1", "1000"].map(String::from);
    python(&p, 1, CLIENT, &loopback);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(transitions(&out), 1, "{}", out);

    // --cgroup: only the client started inside the test's cgroup.
    let root = std::fs::read_to_string("/proc/mounts")
        .expect("mounts")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_string())
        })
        .expect("a cgroup2 mount");
    let dir = format!("{}/netscript-tcpm-{}", root, std::process::id());
    std::fs::create_dir_all(&dir).expect("cgroup created");
    let t = watch(7011, &["--cgroup", &dir]);
    client(&p, &p.ip4[1], 7011, 1, 1000);
    let program = format!(
        "{}/netscript-tcpm-client-{}.py",
        std::env::temp_dir().display(),
        std::process::id()
    );
    std::fs::write(&program, CLIENT).expect("client written");
    sh(&format!(
        "echo $$ > {}/cgroup.procs && exec ip netns exec {} python3 {} {} 7011 3 1000",
        dir, p.ns[0], program, p.ip4[1]
    ));
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    let _ = std::fs::remove_dir(&dir);
    let _ = std::fs::remove_file(&program);
    assert_eq!(code, 0, "{}", err);
    assert_eq!(transitions(&out), 3, "{}", out);

    // --max-flows 2: no per-connection map holds more than 2 connections.
    let t = watch(7011, &["--max-flows", "2"]);
    client(&p, &p.ip4[1], 7011, 5, 1000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let connections = out
        .lines()
        .filter(|l| l.starts_with("@sent_bytes[("))
        .count();
    assert!((1..=2).contains(&connections), "{}", out);
}

#[test]
fn anonymize_hides_addresses_and_ports() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsta", 40);
    let _server = Server::start(&p, 7012);
    let t = watch(
        7012,
        &["--anonymize", "--mode", "both", "--rtt-threshold", "0"],
    );
    client(&p, &p.ip4[1], 7012, 2, 100_000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert!(out.contains("@sent_bytes[(v4-"), "{}", out);
    assert!(
        !out.contains(&p.ip4[0]) && !out.contains(&p.ip4[1]),
        "{}",
        out
    );
    let events = triggered(&out, "rtt");
    assert!(!events.is_empty(), "{}", out);
    for e in &events {
        assert!(
            e["daddr"].as_str().unwrap_or("").starts_with("v4-"),
            "{}",
            e
        );
        assert_ne!(e["dport"], 7012, "{}", e);
    }
    // Stable within the run: one hashed server port for both connections.
    let ports: std::collections::BTreeSet<u64> =
        events.iter().filter_map(|e| e["dport"].as_u64()).collect();
    assert_eq!(ports.len(), 1, "{:?}", ports);
}

/// Runs a Python program with `args` in namespace `i`, first waiting for a
/// line on its standard input: its pid is known before it does anything.
fn gated(p: &NetnsPair, i: usize, program: &str, args: &[&str]) -> std::process::Child {
    let program = format!("import sys\nsys.stdin.readline()\n{}", program);
    std::process::Command::new("ip")
        .args(["netns", "exec", &p.ns[i], "python3", "-c", &program])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 starts")
}

/// Lets a [`gated`] program go on.
fn release(child: &mut std::process::Child) {
    use std::io::Write;
    let stdin = child.stdin.as_mut().expect("stdin");
    stdin.write_all(b"go\n").expect("the program reads");
    stdin.flush().expect("flushed");
}

#[test]
fn pid_selects_the_connections_of_one_process() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstq", 54);
    // A server that listens once released, serving 5 connections, and a
    // client that connects 3 times once released; another client
    // connects twice.
    let serve = "import socket\ns = socket.socket(socket.AF_INET6)\ns.bind(('::', 7019))\ns.listen(8)\nfor _ in range(5):\n  c, _ = s.accept()\n  while c.recv(65536):\n    pass\n  c.sendall(b'r' * 500)\n  c.close()\n";
    let mut server = gated(&p, 1, serve, &[]);
    let mut first = gated(&p, 0, CLIENT, &[&p.ip4[1], "7019", "3", "1000"]);
    let by_pid = |pid: u32, side: &str| {
        let pid = pid.to_string();
        start(&["--pid", &pid, side, "7019", "--interval", "100"])
    };
    let server_side = by_pid(server.id(), "--lport");
    let client_side = by_pid(first.id(), "--rport");
    release(&mut server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "exec", &p.ns[1], "ss", "-Hltn", "sport = :7019"])
            .output()
            .expect("ss runs")
            .stdout,
    )
    .contains("7019")
    {
        assert!(Instant::now() < deadline, "the server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    release(&mut first);
    assert!(first.wait().expect("the client ends").success());
    client(&p, &p.ip4[1], 7019, 2, 1000);
    assert!(server.wait().expect("the server ends").success());
    std::thread::sleep(Duration::from_millis(300));

    // The first client's 3 connections, not the other client's 2.
    let (code, out, err) = client_side.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(
        value(&out, "@transitions[CLOSE, SYN_SENT]"),
        Some(3),
        "{}",
        out
    );
    assert_eq!(value(&out, "@sent_bytes_overall"), Some(3000), "{}", out);
    assert_eq!(
        value(&out, "@received_bytes_overall"),
        Some(1500),
        "{}",
        out
    );
    // The server's: its listener and every connection it accepted, from
    // the handshake on (softirq work included).
    let (code, out, err) = server_side.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(
        value(&out, "@transitions[CLOSE, LISTEN]"),
        Some(1),
        "{}",
        out
    );
    assert_eq!(
        value(&out, "@transitions[SYN_RECV, ESTABLISHED]"),
        Some(5),
        "{}",
        out
    );
    assert_eq!(hist_count(&out, "@connect_us[passive]"), 5, "{}", out);
    assert_eq!(
        value(&out, "@received_bytes_overall"),
        Some(5000),
        "{}",
        out
    );
    assert_eq!(value(&out, "@sent_bytes_overall"), Some(2500), "{}", out);
}
