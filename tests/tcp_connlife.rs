//! `scripts/tcp_connlife.ns`, live: TCP connections over IPv4 and IPv6
//! between two network namespaces, opened and closed by the test, give
//! exactly the expected state-change lines for the client socket, the
//! accepted socket and the listener, attributed to the processes that own
//! them, with the connect time on the client's ESTABLISHED line; `--pid`
//! keeps one process's sockets only. Where kprobes cannot attach, each
//! kprobe block is skipped with one notice and the script still runs.

mod common;

use common::netns::NetnsPair;
use common::{netscript, netscript_bin, Tracer};
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

/// One state-change line: (pid, ip, saddr, sport, daddr, dport, state,
/// description, connect time).
#[derive(Debug, Clone, PartialEq)]
struct StateLine {
    pid: u32,
    ip: String,
    saddr: String,
    sport: u16,
    daddr: String,
    dport: u16,
    state: String,
    desc: String,
    connect_us: Option<u64>,
}

/// The inet_sock_set_state lines that involve one of `addrs`.
fn state_lines(out: &str, addrs: &[&str]) -> Vec<StateLine> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 11 || f[8] != "inet_sock_set_state" {
                return None;
            }
            if !addrs.contains(&f[3]) && !addrs.contains(&f[5]) {
                return None;
            }
            Some(StateLine {
                pid: f[0].parse().ok()?,
                ip: f[2].into(),
                saddr: f[3].into(),
                sport: f[4].parse().ok()?,
                daddr: f[5].into(),
                dport: f[6].parse().ok()?,
                state: f[9].into(),
                desc: f[10].into(),
                connect_us: f.get(11).and_then(|c| c.parse().ok()),
            })
        })
        .collect()
}

/// (pid, sport, dport, description) of each line, in order.
fn summary(lines: &[StateLine]) -> Vec<(u32, u16, u16, String)> {
    lines
        .iter()
        .map(|l| (l.pid, l.sport, l.dport, l.desc.clone()))
        .collect()
}

/// The lines of one connection or listener, in order.
fn of_socket(lines: &[StateLine], sport: u16, dport: u16) -> Vec<StateLine> {
    lines
        .iter()
        .filter(|l| l.sport == sport && l.dport == dport)
        .cloned()
        .collect()
}

/// The lines a client socket (SPORT -> PORT) goes through, owned by `pid`.
fn client_life(pid: u32, sport: u16) -> Vec<(u32, u16, u16, String)> {
    [
        "CLOSE->SYN_SENT",
        "SYN_SENT->ESTABLISHED",
        "ESTABLISHED->FIN_WAIT1",
        "FIN_WAIT1->FIN_WAIT2",
        "FIN_WAIT2->CLOSE",
    ]
    .iter()
    .map(|d| (pid, sport, PORT, d.to_string()))
    .collect()
}

/// The lines of the accepted socket (PORT -> client's SPORT), owned by the server.
fn server_life(pid: u32, client_port: u16) -> Vec<(u32, u16, u16, String)> {
    [
        "LISTEN->SYN_RECV",
        "SYN_RECV->ESTABLISHED",
        "ESTABLISHED->CLOSE_WAIT",
        "CLOSE_WAIT->LAST_ACK",
        "LAST_ACK->CLOSE",
    ]
    .iter()
    .map(|d| (pid, PORT, client_port, d.to_string()))
    .collect()
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
    let lines = state_lines(&out, &[&p.ip4[0], &p.ip4[1], &p.ip6[0], &p.ip6[1]]);

    for (ip, client_port, client_addr, server_addr) in [
        ("4", 41001, &p.ip4[0], &p.ip4[1]),
        ("6", 41002, &p.ip6[0], &p.ip6[1]),
    ] {
        let client = of_socket(&lines, client_port, PORT);
        assert_eq!(
            summary(&client),
            client_life(client_pid, client_port),
            "{out}"
        );
        let server_side = of_socket(&lines, PORT, client_port);
        assert_eq!(
            summary(&server_side),
            server_life(server_pid, client_port),
            "{out}"
        );
        let listener = of_socket(&lines, PORT, 0);
        let listener: Vec<_> = listener
            .iter()
            .filter(|l| &l.saddr == server_addr)
            .collect();
        assert_eq!(
            listener.iter().map(|l| l.desc.as_str()).collect::<Vec<_>>(),
            ["CLOSE->LISTEN", "LISTEN->CLOSE"],
            "{out}"
        );
        assert!(listener.iter().all(|l| l.pid == server_pid), "{out}");
        for l in client.iter().chain(&server_side) {
            assert_eq!(l.ip, ip, "{l:?}");
            let (local, remote) = if l.sport == PORT {
                (server_addr, client_addr)
            } else {
                (client_addr, server_addr)
            };
            assert_eq!((&l.saddr, &l.daddr), (local, remote), "{l:?}");
        }
        // The state is the one after the change; the connect time only on
        // the client's ESTABLISHED line.
        for l in client.iter().chain(&server_side) {
            assert!(l.desc.ends_with(&format!("->{}", l.state)), "{l:?}");
            let established = l.sport == client_port && l.state == "ESTABLISHED";
            assert_eq!(l.connect_us.is_some(), established, "{l:?}");
        }
        let connect_us = client[1].connect_us.expect("connect time");
        assert!(connect_us > 0 && connect_us < 1_000_000, "{connect_us}");
    }
    // Nothing else of these namespaces: 2 connections x 10 lines + 2 x 2 listener lines.
    assert_eq!(lines.len(), 24, "{out}");
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
    let tracer = start_tracer(&["--pid", &traced_pid.to_string()]);
    traced.go();
    traced.finish();
    let other = connect(&p, &[format!("{}:42002", p.ip4[1])]);
    server.finish();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines = state_lines(&out, &[&p.ip4[0], &p.ip4[1]]);
    assert_eq!(summary(&lines), client_life(traced_pid, 42001), "{out}");
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
        help.contains("--pid N") && help.contains("--port PORT|any"),
        "{help}"
    );
}
