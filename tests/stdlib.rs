//! The network stdlib on real traffic: frames with VLAN and QinQ tags sent
//! through an AF_PACKET socket, socket 4-tuples and TCP states of real
//! connections, tcp_sock metrics against the kernel's own tcp_probe
//! tracepoint, drop reasons, and GSO sizes.

mod common;

use common::netns::NetnsPair;
use common::{map_value, measure};
use std::time::Duration;

fn assert_lines(out: &str, lines: &[String]) {
    for line in lines {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{}` in:\n{}",
            line,
            out
        );
    }
}

#[test]
fn vlan_and_qinq_frames_are_parsed_on_transmit_and_receive() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsvl", 31);
    let frame = |map: &str, tp: &str, dev: &str, at: &str| {
        format!(
            r#"tracepoint:net:{tp} /str(args->name) == "{dev}"/ {{
  $skb = (struct sk_buff *)args->skbaddr;
  $f = {at}($skb);
  $end = skb_linear_end($skb);
  @{map}[frame_vid($f, 0), frame_vid($f, 1), frame_ethertype($f), frame_key($f, $end), tcp_flags_at(frame_l3($f), $end)] = count();
  @{map}_pkt[pkt_key($skb), pkt_tcp_flags($skb)] = count();
}}
"#
        )
    };
    let program = frame("tx", "net_dev_queue", &p.dev[0], "skb_data")
        + &frame("rx", "netif_receive_skb", &p.dev[1], "skb_mac");
    let sender = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stdlib/send_frames.py");
    let out = measure(&program, || {
        p.exec(0, &format!("python3 {} {} 3", sender, p.dev[0]));
    });
    let expected = [
        "-1, -1, 2048, (10.99.0.1, 10.99.0.2, 17, 1111, 2222, 7, 0, 18), ",
        "100, -1, 2048, (10.99.0.1, 10.99.0.2, 17, 1111, 2223, 8, 0, 28), ",
        "200, 300, 34525, (fd99::1, fd99::2, 17, 3333, 4444, 0, 0, 38), ",
        "5, -1, 34525, (fd99::1, fd99::2, 6, 5555, 6666, 1000, 2000, 0), SA",
        "-1, -1, 2048, (10.99.0.1, 10.99.0.2, 17, 0, 0, 9, 185, 16), ",
    ];
    let mut lines: Vec<String> = ["tx", "rx"]
        .iter()
        .flat_map(|map| expected.iter().map(move |k| format!("@{}[{}]: 3", map, k)))
        .collect();
    // pkt_key finds the same packets: the network header of a frame sent
    // through a packet socket is the frame itself, so it parses the frame.
    for map in ["tx", "rx"] {
        for k in expected {
            let (_, key) = k.split_once('(').unwrap();
            lines.push(format!("@{}_pkt[({}]: 3", map, key));
        }
    }
    assert_lines(&out, &lines);
}

#[test]
fn socket_tuples_and_tcp_states_come_from_the_socket_and_btf() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nssk", 32);
    let program = r#"
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && (args->sport == 9100 || args->dport == 9100)/ {
  $sk = (struct sock *)args->skaddr;
  @states[sock_tuple($sk), tcp_state_name(args->newstate)] = count();
}
tracepoint:tcp:tcp_probe /args->sport == 9100 || args->dport == 9100/ {
  $sk = (struct sock *)args->skaddr;
  @probes = count();
  @cwnd_differs = sum(tcp_cwnd($sk) != args->snd_cwnd);
  @ssthresh_differs = sum(tcp_ssthresh($sk) != args->ssthresh);
  @srtt_differs = sum(tcp_srtt_us($sk) != args->srtt);
  @inflight_differs = sum(tcp_bytes_in_flight($sk) != ((args->snd_nxt - args->snd_una) & 0xffffffff));
}"#;
    let server = "import socket,sys\n\
        s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n\
        s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
        s.bind((sys.argv[1],9100)); s.listen(1); c,_=s.accept()\n\
        while c.recv(65536): pass\n\
        c.close()";
    let client = "import socket,sys\n\
        s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n\
        s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
        s.bind((sys.argv[2],40100)); s.connect((sys.argv[1],9100))\n\
        for i in range(50): s.sendall(b'x'*1000)\n\
        s.close()";
    let out = measure(program, || {
        for (dst, src) in [(&p.ip4[1], &p.ip4[0]), (&p.ip6[1], &p.ip6[0])] {
            let mut srv = p.spawn(1, &format!("python3 -c \"{}\" {}", server, dst));
            std::thread::sleep(Duration::from_millis(400));
            p.exec(0, &format!("python3 -c \"{}\" {} {}", client, dst, src));
            let _ = srv.wait();
        }
    });
    let mut lines = Vec::new();
    for (c, s) in [(&p.ip4[0], &p.ip4[1]), (&p.ip6[0], &p.ip6[1])] {
        for state in ["SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE"] {
            lines.push(format!("@states[({c}, {s}, 40100, 9100), {state}]: 1"));
        }
        for state in ["SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK"] {
            lines.push(format!("@states[({s}, {c}, 9100, 40100), {state}]: 1"));
        }
        // The server's socket is unhashed (local port 0) when it closes.
        lines.push(format!("@states[({s}, {c}, 0, 40100), CLOSE]: 1"));
    }
    for metric in ["cwnd", "ssthresh", "srtt", "inflight"] {
        lines.push(format!("@{}_differs: 0", metric));
    }
    assert_lines(&out, &lines);
    let probes = map_value(&out, "@probes");
    assert!(probes >= 10, "too few tcp_probe events:\n{}", out);
}

#[test]
fn a_socket_sends_the_ip_version_of_its_peer_address() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsiv", 33);
    let program = r#"
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->dport == 9500 && args->newstate == TCP_ESTABLISHED/ {
  $sk = (struct sock *)args->skaddr;
  @version[sock_family($sk), sock_ip_version($sk)] = count();
}"#;
    let server = "import socket\n\
        s=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
        s.bind(('::',9500)); s.listen(3)\n\
        for i in range(3): s.accept()[0].close()";
    let client = "import socket,sys\n\
        for family, to in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2]), (socket.AF_INET6, '::ffff:' + sys.argv[1])):\n\
        \x20   c=socket.socket(family); c.connect((to,9500)); c.close()";
    let out = measure(program, || {
        let mut srv = p.spawn(1, &format!("python3 -c \"{}\"", server));
        std::thread::sleep(Duration::from_millis(400));
        p.exec(
            0,
            &format!("python3 -c \"{}\" {} {}", client, p.ip4[1], p.ip6[1]),
        );
        let _ = srv.wait();
    });
    // IPv4, IPv6, and an IPv6 socket connected to an IPv4-mapped address.
    let lines = [
        "@version[2, 4]: 1",
        "@version[10, 6]: 1",
        "@version[10, 4]: 1",
    ];
    assert_lines(&out, &lines.map(String::from));
}

#[test]
fn drop_reasons_are_named_from_the_kernel_enum() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsdr", 33);
    let program = r#"
tracepoint:skb:kfree_skb {
  $skb = (struct sk_buff *)args->skbaddr;
  $l4 = ip_l4(skb_network($skb), skb_linear_end($skb));
  if (pkt_proto($skb) == 17 && ntohs(((struct udphdr *)$l4)->dest) == 7777) {
    @drops[drop_reason_name(args->reason)] = count();
  }
}"#;
    let out = measure(program, || {
        p.exec(
            0,
            &format!(
                "python3 -c \"import socket,time\nfor i in range(5): socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'x',('{}',7777)); time.sleep(0.05)\"",
                p.ip4[1]
            ),
        );
    });
    assert_lines(&out, &["@drops[NO_SOCKET]: 5".to_string()]);
}

#[test]
fn gso_packets_report_their_segments_and_size() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsgs", 34);
    // 14 Ethernet + 20 IPv4 + 32 TCP with timestamps: the rest is payload,
    // which a GSO packet splits into segments of gso_size bytes.
    let program = format!(
        r#"
tracepoint:net:net_dev_queue /str(args->name) == "{}"/ {{
  $skb = (struct sk_buff *)args->skbaddr;
  $segs = skb_gso_segs($skb);
  if ($segs > 1) {{
    $payload = args->len - 66;
    @gso_packets = count();
    @gso_size[skb_gso_size($skb)] = count();
    @inconsistent = sum($payload <= ($segs - 1) * skb_gso_size($skb) || $payload > $segs * skb_gso_size($skb));
  }}
}}"#,
        p.dev[0]
    );
    let out = measure(&program, || {
        let mut sink = p.spawn(1, "python3 -c \"import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('',9200));s.listen(1);c,_=s.accept()\nwhile c.recv(1<<20): pass\"");
        std::thread::sleep(Duration::from_millis(400));
        p.exec(
            0,
            &format!(
                "python3 -c \"import socket;s=socket.create_connection(('{}',9200));s.sendall(b'x'*4000000);s.close()\"",
                p.ip4[1]
            ),
        );
        let _ = sink.wait();
    });
    assert_lines(&out, &["@inconsistent: 0".to_string()]);
    assert!(out.contains("@gso_size[1448]: "), "{}", out);
    let packets = map_value(&out, "@gso_packets");
    assert!(packets > 0, "no GSO packets:\n{}", out);
}

/// A path through every stage of the catalogue (stdlib/stages.ns).
/// The stages the warnings say were left out: each warning names them as
/// `WHY, stage(s) skipped: STAGE (path, ...), STAGE (path, ...)`.
fn skipped_stages(err: &str) -> Vec<&str> {
    err.lines()
        .filter_map(|l| l.split_once(" skipped: "))
        .flat_map(|(_, list)| list.split("), "))
        .filter_map(|named| named.split(" (").next())
        .collect()
}

fn catalogue_path() -> String {
    let catalogue = include_str!("../stdlib/stages.ns");
    let mut script = String::from("path everything {\n  key = pkt_key($skb);\n");
    for line in catalogue.lines() {
        if let Some(name) = line
            .strip_prefix("stage ")
            .and_then(|l| l.split(' ').next())
        {
            script += &format!("  stage? S_{name} = {name};\n");
        }
    }
    script + "}\n"
}

#[test]
fn every_catalogue_stage_passes_the_verifier_in_its_kprobe_and_tracepoint_forms() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let file = std::env::temp_dir().join(format!("ns-catalogue-{}.ns", std::process::id()));
    std::fs::write(&file, catalogue_path()).unwrap();
    let file = file.to_str().unwrap();
    // Every function of the catalogue this kernel has, as a kprobe; the
    // openvswitch ones are missing here (no module), and only they.
    let (code, _, err) = common::netscript(&["--dry-run", "--stages", "kprobe", file]);
    assert_eq!(code, 0, "{}", err);
    let skipped = skipped_stages(&err);
    assert!(skipped.iter().all(|s| s.starts_with("S_ovs_")), "{}", err);
    let passed = |err: &str| -> usize {
        err.lines()
            .find_map(|l| {
                l.strip_prefix("netscript: ")?
                    .strip_suffix(" program(s) passed the kernel verifier")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    let stages = catalogue_path().matches("stage?").count();
    assert_eq!(passed(&err), stages - skipped.len(), "{}", err);
    // The tracepoint twins alone.
    let (code, _, err) = common::netscript(&["--dry-run", "--stages", "tracepoint", file]);
    assert_eq!(code, 0, "{}", err);
    // 9 device and skb tracepoints; the twins of ovs_internal_dev_xmit
    // (net_dev_start_xmit) and ovs_vport_send_to_host (netif_rx) are stages
    // of the same path on the same tracepoint with the same packet as
    // dev_start_xmit and netif_rx: they share those programs.
    assert_eq!(passed(&err), 9, "{}", err);
    assert_eq!(
        skipped_stages(&err).len(),
        stages - 11,
        "every other stage is left out: {}",
        err
    );
    assert!(
        err.contains(
            "warning: kprobe:ip_rcv: left out by --stages tracepoint, stage skipped: \
             S_ip_rcv (everything)\n"
        ),
        "{}",
        err
    );
}
