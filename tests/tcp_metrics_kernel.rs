//! Live tests of scripts/tcp_metrics.ns against the kernel's own counters:
//! RTO expiries equal TcpExtTCPTimeouts, accept-queue overflows from the
//! drop tracepoint equal TcpExtListenOverflows, and the metrics this
//! kernel cannot feed are reported off.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::netns::{sh, NetnsPair};
use common::tcp_metrics::*;

#[test]
fn rto_expiries_equal_the_kernels_tcp_timeouts_and_missing_probes_switch_metrics_off() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsto", 36);
    let _server = Server::start(&p, 7007);
    let t = watch(
        7007,
        &[
            "--mode",
            "both",
            "--rtt-threshold",
            "100000000",
            "--rtt-p99=false",
            "--max-events-per-sec",
            "100000",
        ],
    );
    // Everything the client sends is dropped for 1.5 s in the middle of a
    // transfer: the retransmission timer fires, backing off, until the
    // rule goes.
    let blackout = format!(
        "sleep 0.3; ip netns exec {ns} nft 'add table inet rto; add chain inet rto input {{ type filter hook input priority 0; }}; add rule inet rto input tcp dport 7007 drop'; sleep 1.5; ip netns exec {ns} nft delete table inet rto",
        ns = p.ns[1]
    );
    let rule = Command::new("sh")
        .arg("-c")
        .arg(&blackout)
        .spawn()
        .expect("sh runs");
    let slow = format!(
        "import socket, time\nc = socket.create_connection(('{}', 7007))\nfor _ in range(40):\n  c.sendall(b'x' * 20000)\n  time.sleep(0.05)\nc.shutdown(socket.SHUT_WR)\nwhile c.recv(65536):\n  pass\n",
        p.ip4[1]
    );
    python(&p, 0, &slow, &[]);
    let _ = rule.wait_with_output();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let timeouts = nstat(&p, 0, "TcpExtTCPTimeouts");
    assert!(timeouts > 0, "the blackout caused no RTO");
    // tcp_sock.total_rto (6.7+) is read at each retransmission.
    assert_eq!(value(&out, "@rto_overall"), Some(timeouts), "{}", out);
    assert_eq!(triggered(&out, "rto").len() as u64, timeouts, "{}", out);
    assert!(triggered(&out, "rto")
        .iter()
        .all(|e| e["retrans_reason"] == "rto" && e["dport"] == 7007));
    // Without kprobes, the TLP metrics are off, each said once, and
    // everything else runs: the accept-queue overflows come from the drop
    // tracepoint here, the SYN side's kprobe is skipped with its line.
    for metric in ["@tlp", "@tlp_overall", "@tlp_per_connection"] {
        let line = format!("metric {} off: ", metric);
        assert_eq!(err.matches(&line).count(), 1, "{}:\n{}", line, err);
    }
    assert_eq!(err.matches(" off: ").count(), 3, "{}", err);
    assert!(
        err.contains("kprobe:tcp_conn_request: this kernel has no kprobes, probe skipped"),
        "{}",
        err
    );
    // Each line is placed at the probe that did not attach (a metric's at
    // the first probe writing it).
    for (line, probe) in [
        (
            "kprobe:tcp_conn_request: this kernel has no kprobes, probe skipped",
            "optional kprobe:tcp_conn_request {",
        ),
        (
            "metric @tlp off: kretprobe:tcp_send_loss_probe: this kernel has no kprobes",
            "optional kretprobe:tcp_send_loss_probe {",
        ),
    ] {
        let place = format!("{line}\n  --> {SCRIPT}:{}:10\n", line_of(probe));
        assert!(err.contains(&place), "{place} in:\n{err}");
    }
}

/// The line of scripts/tcp_metrics.ns that starts with `text`.
fn line_of(text: &str) -> usize {
    let lines = std::fs::read_to_string(SCRIPT).expect("the script");
    let index = lines.lines().position(|l| l.starts_with(text));
    index.expect("the probe is in the script") + 1
}

#[test]
fn accept_queue_overflows_from_the_drop_tracepoint_equal_listen_overflows() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstl", 55);
    // A listener with backlog 1 that never accepts.
    let listener = p.spawn(
        1,
        "exec python3 -c 'import socket, time\ns = socket.socket()\ns.bind((\"0.0.0.0\", 7020))\ns.listen(1)\ntime.sleep(3600)'",
    );
    // The Recv-Q of each socket `ss -Htan state STATE ...` lists in the
    // server's namespace (a listener's: its accept queue).
    let ss = |filter: &str| -> Vec<u64> {
        let out = Command::new("ip")
            .args(["netns", "exec", &p.ns[1], "ss", "-Htan"])
            .args(filter.split_whitespace())
            .output()
            .expect("ss runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    };
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{}", what);
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_until("no listener", &|| {
        !ss("state listening sport = :7020").is_empty()
    });
    let t = start(&[
        "--mode",
        "both",
        "--lport",
        "7020",
        "--netns",
        &format!("/run/netns/{}", p.ns[1]),
        "--interval",
        "100",
        "--rtt-p99=false",
        "--max-events-per-sec",
        "100000",
    ]);
    // The handshake of a client from port 40000 is held half done (its
    // last ACK dropped) while two others fill the accept queue; let go,
    // each ACK it sends for the listener's repeated SYN-ACKs finds the
    // queue full. No SYN arrives at a full queue.
    sh(&format!(
        "ip netns exec {} nft 'add table inet hold; add chain inet hold input {{ type filter hook input priority 0; }}; add rule inet hold input tcp sport 40000 tcp flags & (syn|ack|fin|rst|psh) == ack drop'",
        p.ns[1]
    ));
    let connect = |sport: u16, count: u32| {
        format!(
            "import socket, time\ncs = []\nfor _ in range({count}):\n  c = socket.socket()\n  c.bind(('0.0.0.0', {sport}))\n  c.connect(('{}', 7020))\n  cs.append(c)\ntime.sleep(5)\n",
            p.ip4[1]
        )
    };
    let held = p.spawn(0, &format!("exec python3 -c \"{}\"", connect(40000, 1)));
    wait_until("no held handshake", &|| {
        ss("state syn-recv sport = :7020").len() == 1
    });
    let full = p.spawn(0, &format!("exec python3 -c \"{}\"", connect(0, 2)));
    wait_until("the accept queue did not fill", &|| {
        ss("state listening sport = :7020") == [2]
    });
    sh(&format!(
        "ip netns exec {} nft delete table inet hold",
        p.ns[1]
    ));
    std::thread::sleep(Duration::from_millis(4000));
    // The listener goes, and its half-done handshake with it.
    drop(listener);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    drop((held, full));
    assert_eq!(code, 0, "{}", err);
    let overflows = nstat(&p, 1, "TcpExtListenOverflows");
    assert!(overflows > 0, "no overflow happened");
    assert_eq!(
        value(&out, "@listen_overflows[7020, ack]"),
        Some(overflows),
        "{}",
        out
    );
    assert_eq!(value(&out, "@listen_overflows[7020, syn]"), None, "{}", out);
    let events = triggered(&out, "listen_overflow");
    assert_eq!(events.len() as u64, overflows, "{}", out);
    for e in &events {
        assert_eq!(e["threshold"], 1, "{}", e);
        assert_eq!(e["drop_reason"], "TCP_LISTEN_OVERFLOW", "{}", e);
        assert_eq!(e["sport"], 7020, "{}", e);
    }
}
