//! Live measurements on real traffic between two network namespaces: exact
//! packet and connection counts from tracepoints.

mod common;

use common::measure;
use common::netns::NetnsPair;
use std::time::Duration;

#[test]
fn icmp_over_veth_is_counted_exactly_per_device_and_family() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nslv", 11);
    // Echo requests leave nslv0 and arrive on nslv1; replies go back.
    // IPv4 echo with 56 bytes of payload: 98 bytes with Ethernet; IPv6: 118.
    let program = r#"
        tracepoint:net:net_dev_queue /(args->len == 98 || args->len == 118) && (str(args->name) == "nslv0" || str(args->name) == "nslv1")/ {
            @sent[str(args->name), args->len] = count();
        }
        tracepoint:net:netif_receive_skb /(args->len == 84 || args->len == 104) && (str(args->name) == "nslv0" || str(args->name) == "nslv1")/ {
            @received[str(args->name), args->len] = count();
        }"#;
    let out = measure(program, || {
        p.exec(0, &format!("ping -q -c 5 -i 0.05 {}", p.ip4[1]));
        p.exec(0, &format!("ping -q -c 3 -i 0.05 {}", p.ip6[1]));
    });
    for line in [
        "@sent[nslv0, 98]: 5",
        "@sent[nslv1, 98]: 5",
        "@sent[nslv0, 118]: 3",
        "@sent[nslv1, 118]: 3",
        "@received[nslv1, 84]: 5",
        "@received[nslv0, 84]: 5",
        "@received[nslv1, 104]: 3",
        "@received[nslv0, 104]: 3",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{}` in:\n{}",
            line,
            out
        );
    }
    assert_eq!(
        out.lines().filter(|l| l.starts_with('@')).count(),
        8,
        "{}",
        out
    );
}

#[test]
fn tcp_connections_are_counted_exactly() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nslt", 12);
    let server = "import socket\ns=socket.socket(socket.AF_INET6)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind((\"::\",5555))\ns.listen(8)\nfor i in range(6):\n  c,_=s.accept(); c.recv(100); c.sendall(b\"pong\"); c.close()\n";
    let _server = p.spawn(1, &format!("python3 -c '{}'", server));
    std::thread::sleep(Duration::from_millis(500));
    let client = |addr: &str| {
        format!(
            "python3 -c 'import socket\nc=socket.create_connection((\"{}\",5555))\nc.sendall(b\"ping\")\nc.recv(100)\nc.close()\n'",
            addr
        )
    };
    // TCP_ESTABLISHED is 1; the tracepoint fires on both ends of each connection.
    let program = "tracepoint:sock:inet_sock_set_state /args->newstate == 1 && (args->sport == 5555 || args->dport == 5555)/ { @established[args->family, args->sport == 5555 ? \"server\" : \"client\"] = count(); }";
    let out = measure(program, || {
        for _ in 0..4 {
            p.exec(0, &client(&p.ip4[1]));
        }
        for _ in 0..2 {
            p.exec(0, &client(&p.ip6[1]));
        }
    });
    // The server's socket is dual-stack (AF_INET6), so all six are family 10 there.
    for line in [
        "@established[2, client]: 4",
        "@established[10, client]: 2",
        "@established[10, server]: 6",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{}` in:\n{}",
            line,
            out
        );
    }
}
