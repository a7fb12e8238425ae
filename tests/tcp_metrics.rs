//! Live tests of scripts/tcp_metrics.ns: connections opened and closed in
//! network namespaces are counted exactly, retransmissions forced with an
//! nftables rule agree with the kernel's own TCP_INFO, RSTs, IPv6, the
//! detail mode's global rate limit under a burst, and a real Prometheus
//! server scraping `--prometheus`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{sh, NetnsPair};
use common::{netscript_bin, Tracer};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tcp_metrics.ns");

/// A dual-stack TCP server: every connection is read to its end, answered
/// with 500 bytes and closed; with a second argument `stall`, connections
/// are accepted and never read.
const SERVER: &str = r#"
import socket, sys, threading, time
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
def serve(c):
    if sys.argv[2:] == ["stall"]:
        time.sleep(3600)
    while c.recv(65536):
        pass
    c.sendall(b"r" * 500)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,)).start()
"#;

/// Connects to HOST PORT COUNT times, sends BYTES, reads the answer to its
/// end and prints the connection's total_retrans from TCP_INFO.
const CLIENT: &str = r#"
import socket, struct, sys
host, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for _ in range(count):
    c = socket.create_connection((host, port))
    c.sendall(b"x" * size)
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    print(struct.unpack_from("I", info, 100)[0])
    c.close()
"#;

/// Runs a Python program inside namespace `i`, returning its stdout.
fn python(p: &NetnsPair, i: usize, program: &str, args: &[String]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &p.ns[i], "python3", "-c", program])
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python in {} failed: {}",
        p.ns[i],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server, listening on `port` in namespace 1 (killed on drop).
struct Server(std::process::Child);

impl Server {
    fn start(p: &NetnsPair, port: u16) -> Server {
        Server::with_args(p, port, &[])
    }

    fn with_args(p: &NetnsPair, port: u16, extra: &[&str]) -> Server {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &p.ns[1], "python3", "-c", SERVER])
            .arg(port.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        let probe = format!("ip netns exec {} ss -Hltn sport = :{}", p.ns[1], port);
        while Instant::now() < deadline {
            let out = Command::new("sh")
                .arg("-c")
                .arg(&probe)
                .output()
                .expect("ss runs");
            if !out.stdout.is_empty() {
                return Server(child);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the test server did not listen on port {}", port);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client(p: &NetnsPair, host: &str, port: u16, count: u32, size: u32) -> Vec<u64> {
    let args = [
        host.to_string(),
        port.to_string(),
        count.to_string(),
        size.to_string(),
    ];
    python(p, 0, CLIENT, &args)
        .lines()
        .map(|l| l.trim().parse().expect("a retransmission count"))
        .collect()
}

/// Drops one full-sized segment in `one_in` on its way to the server's
/// `port` (small ones, SYN, ACK and FIN, pass).
fn lose_segments(p: &NetnsPair, port: u16, one_in: u32) {
    sh(&format!(
        "ip netns exec {} nft 'add table inet loss; add chain inet loss input {{ type filter hook input priority 0; }}; add rule inet loss input tcp dport {} meta length > 1000 numgen random mod {} == 0 drop'",
        p.ns[1], port, one_in
    ));
}

/// Starts the script on the connections to remote `port`, summaries
/// printed only at the end and never cleared, plus `extra` arguments.
fn watch(port: u16, extra: &[&str]) -> Tracer {
    let port = port.to_string();
    let mut args = vec!["--rport", &port, "--interval", "100", "--reset=false"];
    args.extend_from_slice(extra);
    start(&args)
}

/// Starts the script with `args` and waits until its probes are attached.
fn start(args: &[&str]) -> Tracer {
    let mut all = vec![SCRIPT];
    all.extend_from_slice(args);
    let mut t = Tracer::start(netscript_bin(), &all);
    t.wait_for("Attaching", Duration::from_secs(30));
    t
}

/// The value printed for `@name[key]` (or `@name` with an empty key).
fn value(out: &str, entry: &str) -> Option<u64> {
    let prefix = format!("{}: ", entry);
    out.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str())?.trim().parse().ok())
}

/// The detail events (JSON lines) of the output.
fn json_events(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {}", e, l)))
        .collect()
}

/// The detail events of one trigger.
fn triggered(out: &str, trigger: &str) -> Vec<serde_json::Value> {
    json_events(out)
        .into_iter()
        .filter(|e| e["trigger"] == trigger)
        .collect()
}

/// A counter of the namespace's TCP MIB (`nstat` name, e.g. TcpExtTCPTimeouts).
fn nstat(p: &NetnsPair, i: usize, counter: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", &p.ns[i], "nstat", "-az", counter])
        .output()
        .expect("nstat runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix(counter)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {} from nstat", counter))
}

/// The number of values in the histogram printed as `@name[key]:`.
fn hist_count(out: &str, entry: &str) -> u64 {
    let header = format!("{}: ", entry);
    let mut lines = out
        .lines()
        .skip_while(|l| *l != header.as_str() && *l != entry);
    assert!(
        lines.next().is_some(),
        "no histogram {} in:\n{}",
        entry,
        out
    );
    lines
        .take_while(|l| l.starts_with('['))
        .map(|l| {
            let count = l.split(')').nth(1).or_else(|| l.split(']').nth(1));
            count
                .and_then(|rest| rest.split('|').next())
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn connections_transitions_bytes_and_rsts_are_counted_exactly() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstm", 31);
    let _server = Server::start(&p, 7001);
    // Only the client side passes --rport 7001: 3 IPv4 and 2 IPv6 connections.
    let t = watch(7001, &[]);
    client(&p, &p.ip4[1], 7001, 3, 1000);
    client(&p, &p.ip6[1], 7001, 2, 1000);
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    for (entry, expected) in [
        ("@transitions[CLOSE, SYN_SENT]", 5),
        ("@transitions[SYN_SENT, ESTABLISHED]", 5),
        ("@transitions[ESTABLISHED, FIN_WAIT1]", 5),
    ] {
        assert_eq!(value(&out, entry), Some(expected), "{} in:\n{}", entry, out);
    }
    assert_eq!(hist_count(&out, "@connect_us[active]"), 5, "{}", out);
    assert!(out.contains("p50="), "percentiles missing:\n{}", out);
    assert!(hist_count(&out, "@srtt_us") > 0, "{}", out);
    // Per connection: exactly the bytes the client sent and read, for
    // both address families.
    let tuples = |family: &str, local: &str, remote: &str| {
        out.lines()
            .filter(|l| l.starts_with(&format!("@{}[({}, {}, ", family, local, remote)))
            .filter(|l| l.contains(", 7001)]: "))
            .map(|l| l.rsplit(": ").next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tuples("sent_bytes", &p.ip4[0], &p.ip4[1]),
        vec!["1000"; 3],
        "{}",
        out
    );
    assert_eq!(
        tuples("sent_bytes", &p.ip6[0], &p.ip6[1]),
        vec!["1000"; 2],
        "{}",
        out
    );
    assert_eq!(
        tuples("received_bytes", &p.ip6[0], &p.ip6[1]),
        vec!["500"; 2],
        "{}",
        out
    );
    assert_eq!(value(&out, "@sent_bytes_overall"), Some(5000), "{}", out);
    assert_eq!(
        value(&out, "@received_bytes_overall"),
        Some(2500),
        "{}",
        out
    );

    // A connection to a closed port: refused with an RST.
    let t = watch(7002, &[]);
    let refused = format!(
        "import socket\ntry:\n  socket.create_connection(('{}', 7002))\nexcept ConnectionRefusedError:\n  print('refused')\n",
        p.ip4[1]
    );
    assert_eq!(python(&p, 0, &refused, &[]).trim(), "refused");
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(value(&out, "@rst[received]"), Some(1), "{}", out);
    assert!(value(&out, "@rst[sent]").unwrap_or(0) >= 1, "{}", out);
    assert_eq!(
        value(&out, "@transitions[SYN_SENT, CLOSE]"),
        Some(1),
        "{}",
        out
    );
    assert!(
        value(&out, "@drops[NO_SOCKET]").unwrap_or(0) >= 1,
        "{}",
        out
    );
}

#[test]
fn retransmissions_forced_by_packet_loss_agree_with_tcp_info() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstr", 32);
    let _server = Server::start(&p, 7003);
    // The server's side drops one full-sized data segment in four; small
    // segments (SYN, ACK, FIN) pass, so every retransmission is of data
    // and happens before the client reads TCP_INFO.
    lose_segments(&p, 7003, 4);
    // Both modes: the summary and a detail event per retransmission.
    let t = watch(
        7003,
        &[
            "--mode",
            "both",
            "--rtt-threshold",
            "10000000",
            "--max-events-per-sec",
            "100000",
        ],
    );
    let retrans = client(&p, &p.ip4[1], 7003, 1, 2_000_000);
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let traced = value(&out, "@retransmits_overall").unwrap_or(0);
    let per_connection: u64 = out
        .lines()
        .filter(|l| l.starts_with(&format!("@retransmits[({}, {}, ", p.ip4[0], p.ip4[1])))
        .filter_map(|l| l.rsplit(": ").next()?.parse::<u64>().ok())
        .sum();
    assert!(traced > 0, "no retransmission seen:\n{}", out);
    assert_eq!(per_connection, traced, "{}", out);
    // The tracepoint fires once per retransmitted skb, TCP_INFO counts
    // segments (an skb may hold several).
    assert!(
        traced <= retrans[0],
        "traced {} > TCP_INFO total_retrans {}",
        traced,
        retrans[0]
    );
    assert!(out.contains("@retransmits_by_state["), "{}", out);
    let events = triggered(&out, "retransmit");
    assert_eq!(events.len() as u64, traced, "{}", out);
    assert_eq!(events[0]["dport"], 7003);
    assert_eq!(events[0]["role"], "client");
    assert!(events
        .iter()
        .all(|e| e["total_retrans"].as_u64() < Some(retrans[0] + 1)));
}

#[test]
fn detail_events_hold_the_global_rate_limit_under_a_burst() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstd", 33);
    let _server = Server::start(&p, 7004);
    // Every tcp_probe hit is a trigger (srtt > 0): thousands per second.
    let started = Instant::now();
    let t = start(&[
        "--mode",
        "detail",
        "--rtt-threshold",
        "0",
        "--max-events-per-sec",
        "20",
        "--rport",
        "7004",
        "--duration",
        "3",
    ]);
    client(&p, &p.ip4[1], 7004, 20, 2_000_000);
    let (code, out, err) = t.finish();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{}", err);
    let events = json_events(&out);
    // At most 20 per second plus the burst allowance (2), for all CPUs.
    let limit = (20.0 * seconds).ceil() as usize + 2;
    assert!(
        !events.is_empty() && events.len() <= limit,
        "{} events in {:.1} s (limit {})",
        events.len(),
        seconds,
        limit
    );
    let first = &events[0];
    assert_eq!(first["trigger"], "rtt");
    assert_eq!(first["dport"], 7004);
    assert_eq!(first["saddr"], p.ip4[0].as_str());
    assert!(first["srtt_us"].as_u64().is_some() && first["cwnd"].as_u64() > Some(0));
    assert!(
        value(&out, "@suppressed_events[rtt, rate]").unwrap_or(0) > 0,
        "nothing suppressed:\n{}",
        out
    );
}

/// GET `url` with curl; the body.
fn http_get(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn prometheus_scrapes_the_summary_and_promtool_accepts_it() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstp", 34);
    let _server = Server::start(&p, 7005);
    let t = watch(7005, &["--prometheus", "127.0.0.1:19464"]);
    client(&p, &p.ip4[1], 7005, 2, 1000);

    let exposition = http_get("http://127.0.0.1:19464/metrics");
    assert!(
        exposition.contains("# TYPE netscript_srtt_seconds histogram"),
        "{}",
        exposition
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("promtool reads");
    let checked = promtool.wait_with_output().expect("promtool runs");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let dir = std::env::temp_dir().join(format!("tcpm-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netscript\n    static_configs:\n      - targets: ['127.0.0.1:19464']\n",
    )
    .expect("config written");
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:19090")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package prometheus) is installed");
    let query = "http://127.0.0.1:19090/api/v1/query?query=netscript_transitions_total%7Bkey1%3D%22SYN_SENT%22%2Ckey2%3D%22ESTABLISHED%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answer = String::new();
    while Instant::now() < deadline && !answer.contains("\"result\":[{") {
        std::thread::sleep(Duration::from_millis(500));
        answer = http_get(query);
    }
    let histogram = http_get(
        "http://127.0.0.1:19090/api/v1/query?query=netscript_connect_seconds_count%7Bkey%3D%22active%22%7D",
    );
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let (code, _, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let parsed: serde_json::Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("Prometheus answered {:?}: {}", answer, e));
    assert_eq!(parsed["status"], "success", "{}", answer);
    let sample = &parsed["data"]["result"][0];
    assert_eq!(sample["metric"]["job"], "netscript", "{}", answer);
    assert_eq!(sample["value"][1], "2", "{}", answer);
    let parsed: serde_json::Value = serde_json::from_str(&histogram).expect("JSON");
    assert_eq!(
        parsed["data"]["result"][0]["value"][1], "2",
        "{}",
        histogram
    );
}

#[test]
fn a_receiver_that_stops_reading_shows_a_zero_window() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstz", 35);
    let _server = Server::with_args(&p, 7006, &["stall"]);
    let t = watch(7006, &[]);
    // The server never reads: its receive buffer fills, it advertises a
    // zero window, and the client's window probes are answered with it.
    let stuck = format!(
        "import socket\nc = socket.create_connection(('{}', 7006))\nc.settimeout(3)\ntry:\n  c.sendall(b'x' * 50000000)\nexcept socket.timeout:\n  print('stuck')\n",
        p.ip4[1]
    );
    assert_eq!(python(&p, 0, &stuck, &[]).trim(), "stuck");
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert!(
        value(&out, "@zero_window[peer]").unwrap_or(0) > 0,
        "no zero window seen:\n{}",
        out
    );
}

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
    // Without kprobes, the TLP and listen-overflow metrics are off, each
    // said once, and everything else runs.
    for metric in ["@tlp", "@tlp_overall", "@listen_overflows"] {
        let line = format!("metric {} off: ", metric);
        assert_eq!(err.matches(&line).count(), 1, "{}:\n{}", line, err);
    }
    assert!(err.contains("this kernel has no kprobes"), "{}", err);
    assert!(!err.contains("metric @rto"), "{}", err);
}

#[test]
fn first_and_last_events_per_connection_sampling_and_top_k() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstf", 37);
    let _server = Server::start(&p, 7008);
    lose_segments(&p, 7008, 4);
    let detail = |extra: &[&str]| {
        let mut args = vec![
            "--mode",
            "detail",
            "--rtt-threshold",
            "100000000",
            "--rtt-p99=false",
            "--max-events-per-sec",
            "100000",
        ];
        args.extend_from_slice(extra);
        watch(7008, &args)
    };

    // One connection, many retransmissions: its first 3 events as they
    // happen, its last 2 when it closes, the others counted.
    let t = detail(&["--first", "3", "--last", "2"]);
    client(&p, &p.ip4[1], 7008, 1, 3_000_000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let events = json_events(&out);
    let positions: Vec<&str> = events
        .iter()
        .map(|e| e["position"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        positions,
        ["first", "first", "first", "last", "last"],
        "{}",
        out
    );
    let ts: Vec<u64> = events.iter().filter_map(|e| e["ts_ns"].as_u64()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "not in order: {:?}", ts);
    let held: u64 = out
        .lines()
        .filter(|l| l.starts_with("@suppressed_events[") && l.contains(", first_last]: "))
        .filter_map(|l| l.rsplit(": ").next()?.parse::<u64>().ok())
        .sum();
    assert!(held > 0, "nothing held back:\n{}", out);

    // One connection in a million: none of these.
    let t = detail(&["--sample", "1000000"]);
    client(&p, &p.ip4[1], 7008, 2, 1_000_000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert!(json_events(&out).is_empty(), "{}", out);
    assert!(
        out.contains(", sample]: "),
        "no event counted as sampled out:\n{}",
        out
    );

    // Three connections at once, --top-k 1: one reports, the others are
    // held back while it is open.
    let t = detail(&["--top-k", "1"]);
    let parallel = format!(
        "import socket, threading\ndef send():\n  c = socket.create_connection(('{}', 7008))\n  c.sendall(b'x' * 3000000)\n  c.shutdown(socket.SHUT_WR)\n  while c.recv(65536):\n    pass\nts = [threading.Thread(target=send) for _ in range(3)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n",
        p.ip4[1]
    );
    python(&p, 0, &parallel, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let ports: std::collections::BTreeSet<u64> = json_events(&out)
        .iter()
        .filter_map(|e| e["sport"].as_u64())
        .collect();
    assert!(!ports.is_empty(), "{}", out);
    assert!(
        out.contains(", top_k]: "),
        "nothing held back by --top-k:\n{}",
        out
    );
}

#[test]
fn rtt_samples_above_the_running_p99_are_reported() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nst9", 38);
    let _server = Server::start(&p, 7009);
    let t = watch(
        7009,
        &[
            "--mode",
            "both",
            "--rtt-threshold",
            "100000000",
            "--max-events-per-sec",
            "100000",
        ],
    );
    // Many small writes, each acknowledged: thousands of RTT samples.
    let chatty = format!(
        "import socket\nc = socket.create_connection(('{}', 7009))\nc.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\nfor _ in range(8000):\n  c.sendall(b'x' * 100)\nc.shutdown(socket.SHUT_WR)\nwhile c.recv(65536):\n  pass\n",
        p.ip4[1]
    );
    python(&p, 0, &chatty, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let samples = hist_count(&out, "@rtt_sample_us");
    let above = triggered(&out, "rtt_p99");
    assert!(samples > 500, "{} samples:\n{}", samples, out);
    // Each reported sample is above the estimate it was compared with, and
    // only a few percent of the samples are.
    assert!(!above.is_empty(), "{}", out);
    assert!(above
        .iter()
        .all(|e| e["rtt_sample_us"].as_u64() > e["threshold"].as_u64()));
    assert!(
        (above.len() as u64) * 10 < samples,
        "{} of {} samples above the running p99",
        above.len(),
        samples
    );
}

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
