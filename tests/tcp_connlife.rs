//! `scripts/tcp_connlife.ns`, live: TCP connections over IPv4 and IPv6
//! between two network namespaces, opened and closed by the test, give
//! exactly the expected state-change lines, in the original tool's columns
//! and words, for the client socket, the accepted socket and the listener,
//! attributed to the processes that own them, with the connect time on the
//! client's ESTABLISHED line: the output (process ids named, times masked)
//! is compared with tests/golden/reports/tcp_connlife.txt. `-p`/`--pid` keeps one
//! process's sockets only. Where kprobes cannot attach, each kprobe block
//! is skipped with one notice and the script still runs.

mod common;

use common::netns::NetnsPair;
use common::{check_golden, netscript, netscript_bin, Tracer};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tcp_connlife.ns");
const PORT: u16 = 9999;
/// kprobe probes of the script (one skip notice each without kprobes).
const KPROBES: usize = 9;

/// Listens on PORT at argv[1] (IPv4) and argv[2] (IPv6); accepts argv[3]
/// IPv4 then argv[4] IPv6 connections, echoes one message on each and
/// closes it after the client did; prints its pid first and "done" last.
const SERVER: &str = r#"
import socket, sys, os
listeners = []
for family, addr, n in ((socket.AF_INET, sys.argv[1], int(sys.argv[3])), (socket.AF_INET6, sys.argv[2], int(sys.argv[4]))):
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 9999))
    s.listen(8)
    listeners.append((s, n))
print(os.getpid(), flush=True)
for s, n in listeners:
    for _ in range(n):
        c, _ = s.accept()
        c.sendall(c.recv(100))
        assert c.recv(100) == b""
        c.close()
for s, _ in listeners:
    s.close()
print("done", flush=True)
"#;

/// Prints its pid, waits for a line on stdin, then for each `ADDR:SPORT`
/// argument connects from SPORT to PORT at ADDR, sends a message, reads the
/// echo and closes; prints "done".
const CLIENT: &str = r#"
import socket, sys, os
print(os.getpid(), flush=True)
sys.stdin.readline()
for arg in sys.argv[1:]:
    addr, sport = arg.rsplit(":", 1)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    c = socket.socket(family)
    c.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", int(sport)))
    c.connect((addr, 9999))
    c.sendall(b"hello")
    assert c.recv(100) == b"hello"
    c.close()
print("done", flush=True)
"#;

/// A python process in a namespace whose first output line is its pid.
struct Py {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    pid: u32,
}

impl Py {
    fn start(ns: &str, code: &str, args: &[String]) -> Py {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", code])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let pid = lines
            .next()
            .and_then(|l| l.ok())
            .and_then(|l| l.trim().parse().ok())
            .expect("the pid line");
        Py {
            child,
            stdin,
            lines,
            pid,
        }
    }

    /// Lets a waiting client go on.
    fn go(&mut self) {
        let mut stdin = self.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("write to the client");
    }

    /// Waits for "done" and the exit.
    fn finish(mut self) {
        let line = self.lines.next().and_then(|l| l.ok());
        assert_eq!(line.as_deref(), Some("done"), "python did not finish");
        assert!(self.child.wait().expect("wait").success());
    }
}

/// Columns of a line: PID COMM IP SADDR DADDR DPORT SPORT TIMESTAMP(us)
/// FUNC TCP_STATE, then the description's words and, on the line where a
/// connection this host opened became established, the connect time.
const IP: usize = 2;
const SADDR: usize = 3;
const DADDR: usize = 4;
const DPORT: usize = 5;
const SPORT: usize = 6;
const TIMESTAMP: usize = 7;
const FUNC: usize = 8;
const STATE: usize = 9;

/// The byte ranges of the whitespace-separated fields of a line.
fn field_spans(line: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (c == ' ', start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    spans
}

/// The event lines (header excluded) that involve one of `addrs`.
fn lines_of<'a>(out: &'a str, addrs: &[&str]) -> Vec<&'a str> {
    out.lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > STATE
                && f[0] != "PID"
                && (addrs.contains(&f[SADDR]) || addrs.contains(&f[DADDR]))
        })
        .collect()
}

/// A line with its process id replaced by the name of its owner in
/// `names` (padded to the PID column's width), its timestamp and connect
/// time by `<us>`; returns it with the connect time, if it has one.
fn masked(line: &str, names: &[(u32, &str)]) -> (String, Option<u64>) {
    let spans = field_spans(line);
    let field = |i: usize| &line[spans[i].0..spans[i].1];
    let pid: u32 = field(0).parse().expect("a pid");
    let name = names
        .iter()
        .find(|(p, _)| *p == pid)
        .map_or_else(|| pid.to_string(), |(_, n)| n.to_string());
    let last = spans.len() - 1;
    let connect_us = field(last).parse::<u64>().ok();
    let mut out = format!("{:<6} {}", name, &line[spans[1].0..spans[TIMESTAMP].0]);
    out.push_str("<us>");
    match connect_us {
        Some(_) => {
            out.push_str(&line[spans[TIMESTAMP].1..spans[last].0]);
            out.push_str("<us>");
        }
        None => out.push_str(&line[spans[TIMESTAMP].1..]),
    }
    (out, connect_us)
}

/// The lines grouped by socket (IP, addresses and ports), the sockets in
/// the order of their first line: the order of one socket's lines is the
/// kernel's, while lines of different sockets may interleave differently
/// from run to run.
fn by_socket(lines: &[String]) -> Vec<String> {
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for line in lines {
        let f: Vec<String> = line.split_whitespace().map(String::from).collect();
        let key = f[IP..=SPORT].to_vec();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(line.clone()),
            None => groups.push((key, vec![line.clone()])),
        }
    }
    groups.into_iter().flat_map(|(_, g)| g).collect()
}

fn start_tracer(args: &[&str]) -> Tracer {
    let mut all = vec![SCRIPT];
    all.extend_from_slice(args);
    let mut t = Tracer::start(netscript_bin(), &all);
    t.wait_for("TCP_CONNECT_TIME(us)", Duration::from_secs(30));
    t
}

/// Runs the connections `targets` (`ADDR:SPORT`) from one client; returns its pid.
fn connect(p: &NetnsPair, targets: &[String]) -> u32 {
    let mut client = Py::start(&p.ns[0], CLIENT, targets);
    let pid = client.pid;
    client.go();
    client.finish();
    pid
}

#[test]
fn state_changes_of_client_server_and_listener_v4_and_v6() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nscl", 41);
    let tracer = start_tracer(&["--port", "9999"]);
    let server = Py::start(
        &p.ns[1],
        SERVER,
        &[p.ip4[1].clone(), p.ip6[1].clone(), "1".into(), "1".into()],
    );
    let server_pid = server.pid;
    let client_pid = connect(
        &p,
        &[format!("{}:41001", p.ip4[1]), format!("{}:41002", p.ip6[1])],
    );
    server.finish();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let header = out
        .lines()
        .find(|l| l.starts_with("PID"))
        .expect("the header");
    let names = [(server_pid, "SERVER"), (client_pid, "CLIENT")];
    let mut connect_times = Vec::new();
    let mut lines = Vec::new();
    for line in lines_of(&out, &[&p.ip4[0], &p.ip4[1], &p.ip6[0], &p.ip6[1]]) {
        let (line, connect_us) = masked(line, &names);
        connect_times.extend(connect_us);
        lines.push(line);
    }
    let mut golden = vec![header.to_string()];
    golden.extend(by_socket(&lines));
    check_golden("reports/tcp_connlife.txt", &(golden.join("\n") + "\n"));
    // The connect time of each connection (SYN and SYN-ACK across a veth).
    assert_eq!(connect_times.len(), 2, "{out}");
    assert!(
        connect_times.iter().all(|&us| us > 0 && us < 1_000_000),
        "{connect_times:?}"
    );
    if !netscript::kernel::symbols::kernel_features().kprobes {
        let notices = err
            .matches("this kernel has no kprobes, probe skipped")
            .count();
        assert_eq!(notices, KPROBES, "{err}");
    }
}

#[test]
fn pid_keeps_only_that_process_sockets() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nscp", 42);
    let server = Py::start(
        &p.ns[1],
        SERVER,
        &[p.ip4[1].clone(), p.ip6[1].clone(), "2".into(), "0".into()],
    );
    let server_pid = server.pid;
    let mut traced = Py::start(&p.ns[0], CLIENT, &[format!("{}:42001", p.ip4[1])]);
    let traced_pid = traced.pid;
    // -p: the original's spelling of --pid.
    let tracer = start_tracer(&["-p", &traced_pid.to_string()]);
    traced.go();
    traced.finish();
    let other = connect(&p, &[format!("{}:42002", p.ip4[1])]);
    server.finish();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines = lines_of(&out, &[&p.ip4[0], &p.ip4[1]]);
    let states: Vec<[&str; 4]> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            [f[FUNC], f[DPORT], f[SPORT], f[STATE]]
        })
        .collect();
    let port = PORT.to_string();
    let client = |sport, state| ["inet_sock_set_state", port.as_str(), sport, state];
    assert_eq!(
        states,
        [
            client("42001", "TCP_SYN_SENT"),
            client("42001", "TCP_ESTABLISHED"),
            client("42001", "TCP_FIN_WAIT1"),
            client("42001", "TCP_FIN_WAIT2"),
            client("42001", "TCP_CLOSE"),
        ],
        "{out}"
    );
    // No line of another process (the other client, the server), whatever its addresses.
    let pids: Vec<u32> = out
        .lines()
        .skip_while(|l| !l.starts_with("PID"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        !pids.is_empty() && pids.iter().all(|&p| p == traced_pid),
        "{out}"
    );
    assert!(other != traced_pid && server_pid != traced_pid);
}

#[test]
fn every_program_passes_the_verifier() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (code, out, err) = netscript(&[SCRIPT, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    // BEGIN, END, the tracepoint and the 9 kprobes.
    assert!(
        err.contains("12 program(s) passed the kernel verifier"),
        "{err}"
    );
    let (code, help, _) = netscript(&[SCRIPT, "--help"]);
    assert_eq!(code, 0);
    assert!(
        help.contains("  -p, --pid N  ") && help.contains("--port PORT|any"),
        "{help}"
    );
}
