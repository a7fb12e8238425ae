//! XDP, live: `scripts/xdp_packet_log.ns` on one end of a veth pair between
//! two network namespaces logs exactly the packets to the port it is given,
//! with their 4-tuples, in the original logger's words (compared with
//! tests/golden/reports/xdp_packet_log.txt, times masked), drops nothing, and
//! leaves no XDP program behind; `pkt[i]` reads the right bytes.

mod common;

use common::netns::{NetnsPair, Spawned};
use common::{check_golden, netscript, netscript_bin, Tracer};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/xdp_packet_log.ns");
/// The logged port and another one.
const PORT: u16 = 9999;
const OTHER_PORT: u16 = 8888;
/// Datagrams to PORT (IPv4, IPv6), datagrams to OTHER_PORT, TCP connections to PORT.
const UDP4: usize = 20;
const UDP6: usize = 5;
const UDP_OTHER: usize = 7;
const TCP: usize = 3;
/// Truncated IPv4 frames.
const SHORT: usize = 2;

/// Echoes UDP datagrams and TCP connections on PORT (IPv4 and IPv6).
const SERVER: &str = r#"
import socket, threading
def udp(family, addr):
    u = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.bind((addr, PORT))
    while True:
        d, a = u.recvfrom(2048)
        u.sendto(d, a)
def tcp():
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", PORT))
    t.listen(16)
    while True:
        c, _ = t.accept()
        c.sendall(c.recv(100))
        c.close()
threading.Thread(target=udp, args=(socket.AF_INET6, "::"), daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
udp(socket.AF_INET, "0.0.0.0")
"#;

/// Sends the traffic, waiting for every echo; prints the ports it used.
const CLIENT: &str = r#"
import socket, json
def echo_udp(family, dst, n):
    u = socket.socket(family, socket.SOCK_DGRAM)
    u.settimeout(3)
    for i in range(n):
        msg = b"datagram %d" % i
        u.sendto(msg, (dst, PORT))
        assert u.recvfrom(2048)[0] == msg
    return u.getsockname()[1]
v4 = echo_udp(socket.AF_INET, DST4, UDP4)
v6 = echo_udp(socket.AF_INET6, DST6, UDP6)
o = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(UDP_OTHER):
    o.sendto(b"elsewhere", (DST4, OTHER_PORT))
tcp = []
for i in range(TCP):
    c = socket.create_connection((DST4, PORT), timeout=3)
    tcp.append(c.getsockname()[1])
    c.sendall(b"hello %d" % i)
    assert c.recv(100) == b"hello %d" % i
    c.close()
# Frames too short for an IPv4 header (Ethernet header and 10 bytes).
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind((DEV, 0))
mac = bytes.fromhex(open("/sys/class/net/%s/address" % DEV).read().strip().replace(":", ""))
for i in range(SHORT):
    raw.send(b"\xff" * 6 + mac + b"\x08\x00\x45" + bytes(9))
print(json.dumps({"v4": v4, "v6": v6, "other": o.getsockname()[1], "tcp": tcp}))
"#;

/// The golden run: from fixed ports, 3 echoed datagrams over IPv4 and 2
/// over IPv6 to PORT, one datagram to OTHER_PORT, one ping.
const GOLDEN_CLIENT: &str = r#"
import socket, subprocess
def echo_udp(family, src, dst, n):
    u = socket.socket(family, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.bind(src)
    for i in range(n):
        msg = b"datagram %d" % i
        u.sendto(msg, (dst, PORT))
        assert u.recvfrom(2048)[0] == msg
    return u
u = echo_udp(socket.AF_INET, ("0.0.0.0", 43001), DST4, 3)
u.sendto(b"elsewhere", (DST4, OTHER_PORT))
echo_udp(socket.AF_INET6, ("::", 43002), DST6, 2)
subprocess.run(["ping", "-q", "-c", "1", "-W", "2", DST4], check=True, stdout=subprocess.DEVNULL)
"#;

/// A Python program file with the test's constants defined first.
fn python(name: &str, body: &str, p: &NetnsPair) -> String {
    let text = format!(
        "PORT={PORT}\nOTHER_PORT={OTHER_PORT}\nUDP4={UDP4}\nUDP6={UDP6}\nUDP_OTHER={UDP_OTHER}\nTCP={TCP}\nSHORT={SHORT}\nDST4='{}'\nDST6='{}'\nDEV='{}'\n{body}",
        p.ip4[1], p.ip6[1], p.dev[0]
    );
    let path = std::env::temp_dir().join(format!("netscript-xdp-{}-{name}.py", std::process::id()));
    std::fs::write(&path, text).expect("the temp dir is writable");
    path.to_string_lossy().into_owned()
}

/// Runs `args` in namespace `ns`; returns its stdout (panics on failure).
fn run_in(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip runs");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until namespace `ns` listens on PORT for UDP (v4, v6) and TCP.
fn wait_listening(ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let filter = format!("sport = :{PORT}");
    while run_in(ns, &["ss", "-Hlntu", &filter]).lines().count() < 3 {
        assert!(Instant::now() < deadline, "the echo server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A veth pair whose namespace 1 runs the echo server and the script on
/// its device (`--dev DEV --port PORT`, then `extra`), attached once its
/// output says `ready`. The tracer is dropped (killed) before the server
/// and the pair.
fn start_logging(tag: &str, n: u8, extra: &[&str], ready: &str) -> (NetnsPair, Spawned, Tracer) {
    let p = NetnsPair::new(tag, n);
    let server = p.spawn(1, &format!("exec python3 {}", python("server", SERVER, &p)));
    wait_listening(&p.ns[1]);
    let port = PORT.to_string();
    let mut args = vec![
        "netns",
        "exec",
        &p.ns[1],
        netscript_bin(),
        SCRIPT,
        "--dev",
        &p.dev[1],
        "--port",
        &port,
    ];
    args.extend_from_slice(extra);
    let mut tracer = Tracer::start("ip", &args);
    tracer.wait_for(ready, Duration::from_secs(20));
    (p, server, tracer)
}

/// A logged line's `key: value` fields, in order
/// (`Packet Data - src_ip: A,  src_port: P, ...`).
fn fields(line: &str) -> Vec<(String, String)> {
    let body = line
        .trim_end()
        .strip_prefix("Packet Data - ")
        .unwrap_or_else(|| panic!("not a packet line: {line:?}"));
    body.split(", ")
        .map(|f| {
            let (key, value) = f.trim().split_once(": ").expect("key: value");
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// The printf lines of a JSON run, as their fields.
fn logged(objects: &[Value]) -> Vec<std::collections::HashMap<String, String>> {
    objects
        .iter()
        .filter(|o| o["type"] == "printf")
        .filter_map(|o| o["data"].as_str())
        .map(|line| fields(line).into_iter().collect())
        .collect()
}

#[test]
fn logs_exactly_the_packets_to_its_port_and_drops_nothing() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (p, _server, tracer) = start_logging("nsxd", 31, &["-f", "json"], "attached_probes");
    let (ns, dev) = (&p.ns[1], &p.dev[1]);
    assert!(run_in(ns, &["ip", "link", "show", dev]).contains("prog/xdp"));

    let sent: Value = serde_json::from_str(&run_in(
        &p.ns[0],
        &["python3", &python("client", CLIENT, &p)],
    ))
    .expect("the client prints its ports");
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, 0, "{}", err);
    let objects: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {}", e, l)))
        .collect();
    let lines = logged(&objects);

    let with = |proto: &str, src: &str, sport: &Value, dst: &str| {
        let sport = sport.to_string();
        lines
            .iter()
            .filter(|l| {
                (
                    l["protocol"].as_str(),
                    l["src_ip"].as_str(),
                    l["dst_ip"].as_str(),
                ) == (proto, src, dst)
                    && (&l["src_port"], &l["dst_port"]) == (&sport, &PORT.to_string())
            })
            .count()
    };
    let (a4, b4, a6, b6) = (&p.ip4[0], &p.ip4[1], &p.ip6[0], &p.ip6[1]);
    assert_eq!(with("UDP", a4, &sent["v4"], b4), UDP4, "{out}");
    assert_eq!(with("UDP", a6, &sent["v6"], b6), UDP6, "{out}");
    let tcp_ports = sent["tcp"].as_array().expect("tcp ports");
    let mut tcp_lines = 0;
    for port in tcp_ports {
        // SYN, the request, ACKs and FIN: at least three segments each.
        let n = with("TCP", a4, port, b4);
        assert!(n >= 3, "connection from port {port}: {n} segments\n{out}");
        tcp_lines += n;
    }
    // Nothing else was logged: not the datagrams to the other port, not
    // the replies (they leave through this interface, XDP sees arrivals).
    assert_eq!(lines.len(), UDP4 + UDP6 + tcp_lines, "{out}");
    for l in &lines {
        let len: u32 = l["length"].parse().expect("a length");
        assert!(len >= 42, "{l:?}");
        assert!(l["timestamp(us)"].parse::<u64>().is_ok(), "{l:?}");
    }
    // The truncated frames are counted, nothing else was too short and no
    // line was lost.
    let short: Vec<&Value> = objects
        .iter()
        .filter(|o| o["type"] == "packets_too_short")
        .collect();
    assert_eq!(short.len(), 1, "{out}");
    assert_eq!(short[0]["data"]["probe"], format!("xdp:{dev}"));
    assert_eq!(short[0]["data"]["packets"], SHORT as u64);
    assert!(!out.contains("lost_events"), "{out}");
    assert!(!run_in(ns, &["ip", "link", "show", dev]).contains("xdp"));
}

#[test]
fn text_lines_are_the_original_loggers() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let (p, _server, tracer) = start_logging("nsxg", 33, &[], "Attaching");
    run_in(&p.ns[0], &["python3", &python("golden", GOLDEN_CLIENT, &p)]);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, 0, "{err}");
    // The ping is counted, not logged (an IPv6 neighbour probe may join it).
    let not_logged = out
        .lines()
        .find_map(|l| l.strip_prefix("@not_logged[not TCP/UDP]: "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(not_logged.is_some_and(|n| n >= 1), "{out}");
    // Times masked; the counters of what is not logged left out.
    let mut times = Vec::new();
    let masked: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with("@not_logged"))
        .map(|l| match l.split_once("timestamp(us): ") {
            Some((before, after)) => {
                let (time, rest) = after.split_once(',').expect("fields after the time");
                times.push(time.parse::<u64>().expect("a time in microseconds"));
                format!("{before}timestamp(us): <us>,{rest}")
            }
            None => l.to_string(),
        })
        .collect();
    check_golden("reports/xdp_packet_log.txt", &(masked.join("\n") + "\n"));
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

/// A veth pair whose namespace 1 runs the program `prog(DEV)` on its
/// device, attached.
fn start_program(tag: &str, n: u8, prog: impl Fn(&str) -> String) -> (NetnsPair, Tracer) {
    let p = NetnsPair::new(tag, n);
    let prog = prog(&p.dev[1]);
    let mut tracer = Tracer::start(
        "ip",
        &["netns", "exec", &p.ns[1], netscript_bin(), "-e", &prog],
    );
    tracer.wait_for("Attaching", Duration::from_secs(20));
    (p, tracer)
}

#[test]
fn exit_from_a_probe_detaches_the_program() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // exit() from a probe: the run ends by itself and detaches.
    let (p, tracer) = start_program("nsxe", 32, |dev| {
        format!("xdp:{dev} {{ @n = count(); exit(); }}")
    });
    let (ns, dev) = (&p.ns[1], &p.dev[1]);
    p.exec(0, &format!("ping -q -c 1 -W 2 {}", p.ip4[1]));
    let (code, out, err) = tracer.finish();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("@n: "), "{out}");
    assert!(!run_in(ns, &["ip", "link", "show", dev]).contains("xdp"));
}

/// The count of map entry `key` (`@b[8, 0]`) in text output, 0 if absent.
fn count_of(out: &str, key: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .map_or(0, |n| n.parse().expect("a count"))
}

#[test]
fn packet_bytes_read_by_index() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // The EtherType, bytes 12 and 13: by constant index, as the 16-bit
    // element 6, by a variable index the compiler cannot fold, and as a
    // field at a variable offset.
    let prog = |dev: &str| {
        format!(
            "xdp:{dev} {{
           @b[pkt[12], pkt[13]] = count();
           @w[ntohs(((uint16 *)pkt)[6])] = count();
           $i = pkt_len - pkt_len + 12;
           @v[pkt[$i], pkt[$i + 1]] = count();
           @e[ntohs(((struct ethhdr *)(pkt + ($i - 12)))->h_proto)] = count();
         }}"
        )
    };
    let (code, _, err) = netscript(&["--dry-run", "-e", &prog("lo")]);
    assert_eq!(code, 0, "{err}");
    let (p, tracer) = start_program("nsxi", 57, prog);
    p.exec(0, &format!("ping -q -c 3 -i 0.2 -W 2 {}", p.ip4[1]));
    p.exec(0, &format!("ping -q -c 2 -i 0.2 -W 2 {}", p.ip6[1]));
    let (code, out, err) = tracer.interrupt();
    assert_eq!(code, 0, "{err}");
    // IPv4 (0x0800) and IPv6 (0x86dd) frames, the same by every index.
    let (v4, v6) = (count_of(&out, "@b[8, 0]"), count_of(&out, "@b[134, 221]"));
    assert!(v4 >= 3 && v6 >= 2, "{out}");
    assert_eq!(count_of(&out, "@w[2048]"), v4, "{out}");
    assert_eq!(count_of(&out, "@w[34525]"), v6, "{out}");
    assert_eq!(count_of(&out, "@v[8, 0]"), v4, "{out}");
    assert_eq!(count_of(&out, "@v[134, 221]"), v6, "{out}");
    assert_eq!(count_of(&out, "@e[2048]"), v4, "{out}");
}

#[test]
fn an_unknown_interface_is_an_error_at_its_place() {
    let (code, _, err) = netscript(&["--dry-run", "-e", "BEGIN { }\nxdp:nosuchdev0 { }"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("-e:2:1: error: no network interface named 'nosuchdev0'"),
        "{err}"
    );
    assert!(err.contains("xdp:nosuchdev0 { }\n^^^^^^^^^^^^^^"), "{err}");
    let (code, _, err) = netscript(&[SCRIPT]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("xdp:dev needs one interface: pass --dev IFACE"),
        "{err}"
    );
}

#[test]
fn the_script_passes_the_verifier() {
    if !netscript::testing::bpf_available() {
        return;
    }
    for args in [
        vec!["--dev", "lo"],
        vec!["--dev", "lo", "--port", "53", "--proto", "udp"],
    ] {
        let mut all = vec!["--dry-run", SCRIPT];
        all.extend(args);
        let (code, _, err) = netscript(&all);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("1 program(s) passed the kernel verifier"),
            "{err}"
        );
    }
}
