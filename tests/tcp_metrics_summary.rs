//! Live tests of scripts/tcp_metrics.ns, summary maps: connections,
//! transitions, bytes and resets counted exactly; retransmissions forced
//! with an nftables rule agree with the kernel's TCP_INFO, per connection
//! and as a distribution; drops of the selected connections apart from
//! the host's; a zero window.

mod common;

use std::time::Duration;

use common::netns::{sh, NetnsPair};
use common::tcp_metrics::*;

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
    refused(&p, &p.ip4[1], 7002, 1);
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(value(&out, "@rst[received]"), Some(1), "{}", out);
    // The server's namespace sent that reset for no socket; it is filtered
    // by the segment it answers, whose remote port is the client's.
    assert_eq!(value(&out, "@rst[sent]"), None, "{}", out);
    assert_eq!(
        value(&out, "@transitions[SYN_SENT, CLOSE]"),
        Some(1),
        "{}",
        out
    );
    // The SYN was dropped before any socket was found: a host-wide drop,
    // none of the selected connections'.
    assert!(
        value(&out, "@drops_host_wide[NO_SOCKET]").unwrap_or(0) >= 1,
        "{}",
        out
    );
    assert_eq!(value(&out, "@drops[NO_SOCKET]"), None, "{}", out);

    // Seen from the server's side (--lport, its namespace): exactly the
    // resets it sent for the port nothing listens on.
    let t = start(&[
        "--lport",
        "7002",
        "--netns",
        &format!("/run/netns/{}", p.ns[1]),
        "--interval",
        "100",
    ]);
    refused(&p, &p.ip4[1], 7002, 3);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(value(&out, "@rst[sent]"), Some(3), "{}", out);
    assert_eq!(value(&out, "@rst[received]"), None, "{}", out);
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
    let retrans = client(&p, &p.ip4[1], 7003, 3, 2_000_000);
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
    let total: u64 = retrans.iter().sum();
    assert!(
        traced <= total,
        "traced {} > TCP_INFO total_retrans {:?}",
        traced,
        retrans
    );
    // One value per connection as it closes: the kernel's count, exactly
    // what the client read from TCP_INFO, each in its bucket.
    let buckets = hist_buckets(&out, "@retransmits_per_connection");
    assert_eq!(buckets.iter().map(|b| b.2).sum::<u64>(), 3, "{}", out);
    for (low, high, count) in buckets {
        let expected = retrans.iter().filter(|&&r| low <= r && r < high).count();
        assert_eq!(
            count, expected as u64,
            "[{}, {}) of {:?}:\n{}",
            low, high, retrans, out
        );
    }
    assert!(out.contains("@retransmits_by_state["), "{}", out);
    let events = triggered(&out, "retransmit");
    assert_eq!(events.len() as u64, traced, "{}", out);
    assert_eq!(events[0]["dport"], 7003);
    assert_eq!(events[0]["role"], "client");
    let most = retrans.iter().max().copied().unwrap_or(0);
    assert!(events
        .iter()
        .all(|e| e["total_retrans"].as_u64() < Some(most + 1)));
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
fn drops_of_the_selected_connections_are_told_apart_from_host_wide_drops() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstk", 51);
    let _selected = Server::start(&p, 7013);
    let _other = Server::start(&p, 7014);
    // The client's own firewall drops one full-sized segment in four on
    // the way out to either port, each rule counting what it dropped.
    sh(&format!(
        "ip netns exec {} nft 'add table inet cdrop; add chain inet cdrop output {{ type filter hook output priority 0; }}; add rule inet cdrop output tcp dport 7013 meta length > 1000 numgen random mod 4 == 0 counter drop comment \"selected\"; add rule inet cdrop output tcp dport 7014 meta length > 1000 numgen random mod 4 == 0 counter drop comment \"other\"'",
        p.ns[0]
    ));
    let t = watch(7013, &["--netns", &format!("/run/netns/{}", p.ns[0])]);
    client(&p, &p.ip4[1], 7013, 2, 1_000_000);
    client(&p, &p.ip4[1], 7014, 2, 1_000_000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let selected = nft_counter(&p, 0, "cdrop", "selected");
    let other = nft_counter(&p, 0, "cdrop", "other");
    assert!(selected > 0 && other > 0, "{} {}", selected, other);
    // A segment dropped on its way out still has its socket: exactly the
    // selected connections' drops, and all of them host-wide, but for the
    // drops the kernel did not run the program for (a drop in a softirq
    // that interrupted another of the script's programs), which netscript
    // reports at exit.
    let missed = missed_hits(&err, "tracepoint:skb:kfree_skb");
    let drops = value(&out, "@drops[NETFILTER_DROP]").unwrap_or(0);
    assert!(
        drops <= selected && selected <= drops + missed,
        "{} drops, {} missed, {} dropped:\n{}\n{}",
        drops,
        missed,
        selected,
        out,
        err
    );
    let host_wide = value(&out, "@drops_host_wide[NETFILTER_DROP]").unwrap_or(0);
    assert!(
        host_wide + missed >= selected + other,
        "{} < {} + {}:\n{}",
        host_wide,
        selected,
        other,
        out
    );
}
