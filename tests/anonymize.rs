//! `--anonymize` on real TCP connections between two network namespaces:
//! addresses and the ports of stdlib/sock.ns are printed as keyed hashes
//! (printf, map keys, text and JSON), the same under one key file; and the
//! socket filters of issue #6: `sock_cgroup_id`, `sock_netns` and
//! `sock_ifindex` against a
//! cgroup v2 directory and a namespace the test makes, through `cgroup` and
//! `netns` parameters.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::netns::NetnsPair;
use common::{netscript_bin, Tracer};
use netscript::output::anonymize::Anonymizer;

const SERVER_PORT: u16 = 9231;
const CLIENT_PORT: u16 = 40231;

/// One IPv4 connection from namespace 0 (bound to `client_port`, its
/// process in `cgroup` if given) to a server in namespace 1 on
/// `server_port`, sending a little data.
fn connect_once(p: &NetnsPair, server_port: u16, client_port: u16, cgroup: Option<&Path>) {
    let server = format!(
        "import socket\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{}',{})); s.listen(1); c,_=s.accept()\n\
         while c.recv(65536): pass\n\
         c.close()",
        p.ip4[1], server_port
    );
    let client = format!(
        "import socket\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{}',{})); s.connect(('{}',{}))\n\
         s.sendall(b'x'*1000); s.close()",
        p.ip4[0], client_port, p.ip4[1], server_port
    );
    let mut srv = p.spawn(1, &format!("python3 -c \"{}\"", server));
    std::thread::sleep(Duration::from_millis(400));
    let client = format!("python3 -c \"{}\"", client);
    match cgroup {
        // `ip netns exec` mounts its own /sys: join the cgroup before it.
        Some(dir) => common::netns::sh(&format!(
            "echo $$ > {}/cgroup.procs && exec ip netns exec {} {}",
            dir.display(),
            p.ns[0],
            client
        )),
        None => p.exec(0, &client),
    }
    let _ = srv.wait();
}

/// Runs `args` (netscript's), opens one connection, stops it; its stdout.
fn traced(args: &[&str], traffic: impl FnOnce()) -> String {
    let mut t = Tracer::start(netscript_bin(), args);
    t.wait_for("ttach", Duration::from_secs(20));
    traffic();
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    out
}

/// Every socket of the connections to `server_port`: its 4-tuple printed
/// and counted, with the tracepoint's local port redacted too.
fn tuples(server_port: u16) -> String {
    format!(
        r#"
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && (args->sport == {server_port} || args->dport == {server_port})/ {{
  $sk = (struct sock *)args->skaddr;
  printf("conn %s %d %s %d\n", sock_saddr($sk), sock_sport($sk), sock_daddr($sk), sock_dport($sk));
  @t[sock_tuple($sk), redact(args->sport)] = count();
}}"#
    )
}

/// The whitespace- and punctuation-separated words of `out`.
fn words(out: &str) -> BTreeSet<String> {
    out.split(|c: char| c.is_whitespace() || "()[],:{}\"\\".contains(c))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn addresses_and_ports_are_hashed_consistently() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::on_subnets("nsan", "10.231", "fde7", 1);
    let dir = std::env::temp_dir().join(format!("netscript-anon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    std::fs::write(&key, b"a key of netscript's anonymize test").unwrap();
    let key_arg = key.to_string_lossy().into_owned();
    let anonymizer = Anonymizer::from_key_file(&key).unwrap();
    let run = |extra: &[&str]| {
        let program = tuples(SERVER_PORT);
        let mut args = vec!["-e", program.as_str()];
        args.extend_from_slice(extra);
        traced(&args, || {
            connect_once(&p, SERVER_PORT, CLIENT_PORT, None);
        })
    };
    let first = run(&["--anonymize-key", &key_arg]);
    let second = run(&["--anonymize-key", &key_arg]);
    let random = run(&["--anonymize", "-f", "json"]);
    std::fs::remove_dir_all(&dir).unwrap();

    let addr = |s: &str| anonymizer.address(s.parse::<IpAddr>().unwrap());
    let port = |n: u16| anonymizer.integer(u64::from(n), 2);
    let (client, server) = (addr(&p.ip4[0]), addr(&p.ip4[1]));
    let (cport, sport) = (port(CLIENT_PORT), port(SERVER_PORT));
    let real: Vec<String> = vec![
        p.ip4[0].clone(),
        p.ip4[1].clone(),
        SERVER_PORT.to_string(),
        CLIENT_PORT.to_string(),
    ];
    for out in [&first, &second, &random] {
        let w = words(out);
        for r in &real {
            assert!(!w.contains(r), "{} printed in:\n{}", r, out);
        }
        let v4: BTreeSet<&String> = w.iter().filter(|x| x.starts_with("v4-")).collect();
        assert!(!v4.is_empty(), "no hashed address in:\n{}", out);
        // The client, the server and 0.0.0.0 (unconnected sockets) at most.
        assert!(v4.len() <= 3, "{:?} in:\n{}", v4, out);
    }
    // The client's and the server's view of the connection, as the key gives them.
    for line in [
        format!("conn {client} {cport} {server} {sport}"),
        format!("conn {server} {sport} {client} {cport}"),
    ] {
        assert!(
            first.lines().any(|l| l == line),
            "no `{}` in:\n{}",
            line,
            first
        );
    }
    let established = format!("@t[({client}, {server}, {cport}, {sport}), {cport}]: ");
    assert!(
        first.lines().any(|l| l.starts_with(&established)),
        "no `{}` in:\n{}",
        established,
        first
    );
    assert!(cport <= 0xffff && sport <= 0xffff);
    // The same key file gives the same output; a random key other hashes.
    let lines = |out: &str| -> BTreeSet<String> {
        out.lines()
            .filter(|l| l.starts_with("conn ") || l.starts_with("@t["))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(lines(&first), lines(&second));
    assert!(!random.contains(&client), "{}", random);
    assert!(!random.contains(&server), "{}", random);
    // Within the random run, printf lines and map keys agree.
    let printf_lines: String = random
        .lines()
        .filter(|l| l.contains("\"printf\""))
        .collect();
    let map_line = random
        .lines()
        .find(|l| l.contains("\"@t\""))
        .unwrap_or_else(|| panic!("no map in:\n{}", random));
    let printf_addresses: BTreeSet<String> = words(&printf_lines)
        .into_iter()
        .filter(|x| x.starts_with("v4-"))
        .collect();
    let map_addresses: BTreeSet<String> = words(map_line)
        .into_iter()
        .filter(|x| x.starts_with("v4-"))
        .collect();
    assert!(
        !map_addresses.is_empty() && map_addresses.iter().all(|a| printf_addresses.contains(a)),
        "{}",
        random
    );
}

/// A cgroup v2 directory made for a test under the cgroup2 mount (found
/// in /proc/mounts), removed on drop.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(name: &str) -> Option<TestCgroup> {
        let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
        let root = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })?;
        let dir = root.join(name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).ok()?;
        Some(TestCgroup(dir))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Its processes have ended; an empty cgroup is removed with rmdir.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const SOCKET_IDS: &str = r#"
param cg: cgroup = any "cgroup"
param ns: netns = any "network namespace"
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->sport == 40232/ {
  $sk = (struct sock *)args->skaddr;
  @ids[sock_cgroup_id($sk), sock_netns($sk)] = count();
  @ifindex[sock_ifindex($sk)] = count();
}
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && (args->sport == 9232 || args->dport == 9232)/ {
  $sk = (struct sock *)args->skaddr;
  if (matches(sock_cgroup_id($sk), cg) && matches(sock_netns($sk), ns)) {
    @matched[args->sport] = count();
  }
  @all[args->sport] = count();
}"#;

#[test]
fn socket_cgroup_and_namespace_ids_match_the_directory_and_namespace_inodes() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let Some(cgroup) = TestCgroup::new(&format!("netscript-test-{}", std::process::id())) else {
        eprintln!("no cgroup2 mount to make a test cgroup in");
        return;
    };
    let cgroup_id = std::fs::metadata(&cgroup.0).unwrap().ino();
    let p = NetnsPair::on_subnets("nscg", "10.231", "fde7", 2);
    let netns_path = format!("/run/netns/{}", p.ns[0]);
    let netns_inode = std::fs::metadata(&netns_path).unwrap().ino();
    let cgroup_arg = cgroup.0.to_string_lossy().into_owned();
    let script = std::env::temp_dir().join(format!("netscript-ids-{}.ns", std::process::id()));
    std::fs::write(&script, SOCKET_IDS).unwrap();
    let script_arg = script.to_string_lossy().into_owned();
    let out = traced(
        &[&script_arg, "--cg", &cgroup_arg, "--ns", &netns_path],
        || connect_once(&p, 9232, 40232, Some(&cgroup.0)),
    );
    let _ = std::fs::remove_file(&script);
    let ids: Vec<&str> = out.lines().filter(|l| l.starts_with("@ids[")).collect();
    let expected = format!("@ids[{}, {}]: ", cgroup_id, netns_inode);
    assert!(
        !ids.is_empty() && ids.iter().all(|l| l.starts_with(&expected)),
        "expected only `{}` in:\n{}",
        expected,
        out
    );
    // Only the client's socket passes both filters; the server's, in the
    // other namespace and the root cgroup, does not.
    let matched: Vec<&str> = out.lines().filter(|l| l.starts_with("@matched[")).collect();
    assert!(
        !matched.is_empty() && matched.iter().all(|l| l.starts_with("@matched[40232]: ")),
        "{}",
        out
    );
    assert!(
        out.lines().any(|l| l.starts_with("@all[9232]: ")),
        "{}",
        out
    );
    // The client's device: its veth, from the cached route once connected
    // (0 before the route is cached and after it is dropped).
    let ifindex = std::process::Command::new("ip")
        .args(["netns", "exec", &p.ns[0], "cat"])
        .arg(format!("/sys/class/net/{}/ifindex", p.dev[0]))
        .output()
        .unwrap();
    let device = format!(
        "@ifindex[{}]: ",
        String::from_utf8_lossy(&ifindex.stdout).trim()
    );
    let devices: Vec<&str> = out.lines().filter(|l| l.starts_with("@ifindex[")).collect();
    assert!(
        devices.iter().any(|l| l.starts_with(&device))
            && devices
                .iter()
                .all(|l| l.starts_with(&device) || l.starts_with("@ifindex[0]: ")),
        "expected {} in:\n{}",
        device,
        out
    );
}

#[test]
fn bad_cgroup_netns_and_key_options_are_usage_errors() {
    let script = std::env::temp_dir().join(format!("netscript-opts-{}.ns", std::process::id()));
    std::fs::write(
        &script,
        "param cg: cgroup = any \"c\"\nparam ns: netns = any \"n\"\nBEGIN { exit(); }\n",
    )
    .unwrap();
    let script_arg = script.to_string_lossy().into_owned();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--cg", "/tmp"],
            "--cg: '/tmp' is not a cgroup v2 directory",
        ),
        (
            &["--cg", "/no/such/dir"],
            "--cg: '/no/such/dir' is not a cgroup v2 directory",
        ),
        (&["--ns", "/tmp"], "--ns: '/tmp' is not a network namespace"),
        (
            &["--anonymize-key", "/no/such/key"],
            "--anonymize-key: cannot read /no/such/key",
        ),
    ];
    for (args, message) in cases {
        let mut argv = vec![script_arg.as_str()];
        argv.extend_from_slice(args);
        let (code, _, err) = common::netscript(&argv);
        assert_eq!(code, 2, "{:?}: {}", args, err);
        assert!(err.contains(message), "{:?}: {}", args, err);
    }
    let (code, out, _) = common::netscript(&[&script_arg, "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("--cg PATH|any") && out.contains("--ns INODE|PATH|any"),
        "{}",
        out
    );
    let _ = std::fs::remove_file(&script);
}

#[test]
fn prometheus_labels_are_hashed_too() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::on_subnets("nsap", "10.231", "fde7", 3);
    let key = std::env::temp_dir().join(format!("netscript-anon-prom-{}", std::process::id()));
    std::fs::write(&key, b"another key, for the prometheus test").unwrap();
    let anonymizer = Anonymizer::from_key_file(&key).unwrap();
    let key_arg = key.to_string_lossy().into_owned();
    let listen = "127.0.0.1:19731";
    // Ports of its own: the other tests' tracepoints see these connections.
    let (server_port, client_port) = (9233, 40233);
    let program = tuples(server_port);
    let mut t = Tracer::start(
        netscript_bin(),
        &[
            "-e",
            &program,
            "--anonymize-key",
            &key_arg,
            "--prometheus",
            listen,
        ],
    );
    t.wait_for("ttach", Duration::from_secs(20));
    connect_once(&p, server_port, client_port, None);
    std::thread::sleep(Duration::from_millis(300));
    let scrape = std::process::Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            &format!("http://{listen}/metrics"),
        ])
        .output()
        .expect("curl runs");
    let exposition = String::from_utf8_lossy(&scrape.stdout).into_owned();
    let (code, _, err) = t.interrupt();
    let _ = std::fs::remove_file(&key);
    assert_eq!(code, 0, "{}", err);
    let client = anonymizer.address(p.ip4[0].parse().unwrap());
    let server = anonymizer.address(p.ip4[1].parse().unwrap());
    let cport = anonymizer.integer(u64::from(client_port), 2);
    let sport = anonymizer.integer(u64::from(server_port), 2);
    let established = format!(
        "netscript_t_total{{key1=\"{client}\",key2=\"{server}\",key3=\"{cport}\",key4=\"{sport}\",key5=\"{cport}\"}} "
    );
    assert!(
        exposition.contains(&established),
        "no `{}` in:\n{}",
        established,
        exposition
    );
    for real in [&p.ip4[0], &p.ip4[1]] {
        assert!(
            !exposition.contains(real.as_str()),
            "{} in:\n{}",
            real,
            exposition
        );
    }
    for port in [server_port, client_port] {
        assert!(
            !exposition.contains(&format!("\"{port}\"")),
            "{} in:\n{}",
            port,
            exposition
        );
    }
}
