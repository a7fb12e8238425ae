//! Helpers of the scripts/tcp_metrics.ns tests (tests/tcp_metrics_*.rs):
//! a dual-stack server and clients in network namespaces, packet loss with
//! nftables, starting the script and reading its text and JSON output.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::{sh, NetnsPair};
use super::{netscript_bin, Tracer};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tcp_metrics.ns");

/// A dual-stack TCP server: every connection is read to its end, answered
/// with 500 bytes and closed; with a second argument `stall`, connections
/// are accepted and never read.
pub const SERVER: &str = r#"
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
pub const CLIENT: &str = r#"
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
pub fn python(p: &NetnsPair, i: usize, program: &str, args: &[String]) -> String {
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
pub struct Server(std::process::Child);

impl Server {
    pub fn start(p: &NetnsPair, port: u16) -> Server {
        Server::with_args(p, port, &[])
    }

    pub fn with_args(p: &NetnsPair, port: u16, extra: &[&str]) -> Server {
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

/// Runs [`CLIENT`] in namespace 0: `count` connections to `host` `port`,
/// each sending `size` bytes; the total_retrans (TCP_INFO) of each.
pub fn client(p: &NetnsPair, host: &str, port: u16, count: u32, size: u32) -> Vec<u64> {
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
pub fn lose_segments(p: &NetnsPair, port: u16, one_in: u32) {
    sh(&format!(
        "ip netns exec {} nft 'add table inet loss; add chain inet loss input {{ type filter hook input priority 0; }}; add rule inet loss input tcp dport {} meta length > 1000 numgen random mod {} == 0 drop'",
        p.ns[1], port, one_in
    ));
}

/// Starts the script on the connections to remote `port`, summaries
/// printed only at the end and never cleared, plus `extra` arguments.
pub fn watch(port: u16, extra: &[&str]) -> Tracer {
    let port = port.to_string();
    let mut args = vec!["--rport", &port, "--interval", "100", "--reset=false"];
    args.extend_from_slice(extra);
    start(&args)
}

/// Starts the script with `args` and waits until its probes are attached;
/// its summaries are bpftrace's map dumps (`--summary maps`), which these
/// tests read entry by entry.
pub fn start(args: &[&str]) -> Tracer {
    let mut all = vec![SCRIPT, "--summary", "maps"];
    all.extend_from_slice(args);
    let mut t = Tracer::start(netscript_bin(), &all);
    t.wait_for("Attaching", Duration::from_secs(30));
    t
}

/// The value printed for `@name[key]` (or `@name` with an empty key).
pub fn value(out: &str, entry: &str) -> Option<u64> {
    let prefix = format!("{}: ", entry);
    out.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str())?.trim().parse().ok())
}

/// The detail events (JSON lines) of the output.
pub fn json_events(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {}", e, l)))
        .collect()
}

/// The detail events of one trigger.
pub fn triggered(out: &str, trigger: &str) -> Vec<serde_json::Value> {
    json_events(out)
        .into_iter()
        .filter(|e| e["trigger"] == trigger)
        .collect()
}

/// A counter of the namespace's TCP MIB (`nstat` name, e.g. TcpExtTCPTimeouts).
pub fn nstat(p: &NetnsPair, i: usize, counter: &str) -> u64 {
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
pub fn hist_count(out: &str, entry: &str) -> u64 {
    hist_buckets(out, entry).iter().map(|b| b.2).sum()
}

/// The buckets of the histogram printed as `@name[key]:`, each as (low,
/// high, count) with `high` exclusive; bounds written `1K`, `2M`, ... are
/// expanded.
pub fn hist_buckets(out: &str, entry: &str) -> Vec<(u64, u64, u64)> {
    let bound = |text: &str| -> u64 {
        let text = text.trim();
        let (digits, scale) = match text.chars().last() {
            Some('K') => (&text[..text.len() - 1], 1u64 << 10),
            Some('M') => (&text[..text.len() - 1], 1 << 20),
            Some('G') => (&text[..text.len() - 1], 1 << 30),
            Some('T') => (&text[..text.len() - 1], 1 << 40),
            _ => (text, 1),
        };
        digits.parse::<u64>().expect("a bucket bound") * scale
    };
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
            let close = l.find([')', ']']).expect("a bucket");
            let (low, high) = match l[1..close].split_once(',') {
                Some((a, b)) => (bound(a), bound(b)),
                None => (bound(&l[1..close]), bound(&l[1..close]) + 1),
            };
            let count = l[close + 1..]
                .split('|')
                .next()
                .and_then(|n| n.trim().parse().ok())
                .expect("a bucket count");
            (low, high, count)
        })
        .collect()
}

/// The packets counted by the nftables rule with comment `comment` in
/// table `inet TABLE` of namespace `i`.
pub fn nft_counter(p: &NetnsPair, i: usize, table: &str, comment: &str) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns", "exec", &p.ns[i], "nft", "list", "table", "inet", table,
        ])
        .output()
        .expect("nft runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("comment \"{}\"", comment)))
        .unwrap_or_else(|| panic!("no rule {} in:\n{}", comment, text));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "packets")
        .unwrap_or_else(|| panic!("no counter in {}", line));
    words[at + 1].parse().expect("a packet count")
}

/// Connects to `host` `port` `count` times from namespace 0; every
/// connection is refused with a reset (nothing listens there).
pub fn refused(p: &NetnsPair, host: &str, port: u16, count: u32) {
    let program = format!(
        "import socket\nfor _ in range({}):\n  try:\n    socket.create_connection(('{}', {}))\n  except ConnectionRefusedError:\n    print('refused')\n",
        count, host, port
    );
    let out = python(p, 0, &program, &[]);
    assert_eq!(out.lines().count(), count as usize, "{}", out);
}

/// The hits of `probe` the kernel skipped, as netscript reports them at
/// exit (`netscript: warning: PROBE: N hits missed: ...`), 0 if none.
pub fn missed_hits(err: &str, probe: &str) -> u64 {
    let prefix = format!("netscript: warning: {}: ", probe);
    err.lines()
        .filter_map(|l| {
            l.strip_prefix(prefix.as_str())?
                .split(" hits missed")
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}
