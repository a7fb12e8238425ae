//! The OVS scripts on real topologies in the kernel lab (issue #14), with
//! exact counts: IPv6 through OVS (ICMPv6 echo, TCP over IPv6), an 802.1Q
//! access port and an 802.1ad (QinQ) trunk on the OVS path, and a TCP send
//! larger than the MSS (one GSO packet, reported once with its segment
//! count). Each guest script (`tests/lab/ovs_ipv6.sh`,
//! `tests/lab/ovs_vlan.sh`) runs on every kernel of the matrix; see
//! docs/testing.md.

mod common;

use common::lab::{self, check_report_golden, path_events, section, stage_seen};
use serde_json::Value;

/// Pings per ICMP run of the guest scripts.
const PINGS: u64 = 5;

/// The MSS of the lab's 1500-byte MTU with TCP timestamps: IPv4, IPv6.
const MSS4: u64 = 1448;
const MSS6: u64 = 1428;

/// The stage of `e` named `{half}_{index}_...` (`P1`, `S5`), as named.
fn stage_named<'a>(e: &'a Value, prefix: &str) -> &'a str {
    e["stages"]
        .as_array()
        .and_then(|st| {
            st.iter()
                .filter_map(|s| s["name"].as_str())
                .find(|n| n.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no stage {prefix}_*: {e:#}"))
}

/// An ovs_icmp_rtt run of `PINGS` echoes between `requester` and
/// `responder`: one report per round trip (sequences 1 to `PINGS`), every
/// stage seen but the upcall pair (both or neither, the first echo's,
/// whose flows were purged), RTT = path 1 + inter-path + path 2, and the
/// ICMP types of the request and the reply (`types`).
fn check_icmp(out: &str, name: &str, requester: &str, responder: &str, types: (u64, u64)) {
    let events = path_events(section(out, name));
    let mut seqs: Vec<u64> = events
        .iter()
        .map(|e| e["key"][3].as_u64().expect("echo sequence"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=PINGS).collect::<Vec<_>>(), "{name}: {events:#?}");
    for e in &events {
        assert_eq!(e["info"][0], requester, "{name}: {e:#}");
        assert_eq!(e["info"][1], responder, "{name}: {e:#}");
        assert_eq!(
            (e["info"][4].as_u64(), e["info"][5].as_u64()),
            (Some(types.0), Some(types.1)),
            "{name}: {e:#}"
        );
        for p in ["P1", "P2"] {
            for s in ["S0", "S1", "S2", "S5", "S6"] {
                let stage = stage_named(e, &format!("{p}_{s}_"));
                assert!(stage_seen(e, stage), "{name} {stage}: {e:#}");
            }
            assert_eq!(
                stage_seen(e, stage_named(e, &format!("{p}_S3_"))),
                stage_seen(e, stage_named(e, &format!("{p}_S4_"))),
                "{name}: the upcall and its key extraction: {e:#}"
            );
        }
        let ns = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("{k}: {e:#}"));
        assert!(ns("path1_ns") > 0 && ns("path2_ns") > 0, "{e:#}");
        assert_eq!(
            ns("total_ns"),
            ns("path1_ns") + ns("inter_path_ns") + ns("path2_ns"),
            "{name}: {e:#}"
        );
    }
    let first = events.iter().find(|e| e["key"][3] == 1).expect("echo 1");
    for p in ["P1", "P2"] {
        assert!(
            stage_seen(first, stage_named(first, &format!("{p}_S3_"))),
            "{name}: the first echo is upcalled: {first:#}"
        );
    }
}

/// When path event `e` was first seen: its earliest stage time (ns).
fn first_seen_ns(e: &Value) -> u64 {
    e["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["ts_ns"].as_u64())
        .min()
        .unwrap_or(0)
}

/// An ovs_tcp_latency run whose client sent `sends` bytes, one send()
/// each, over a path of MSS `mss`: every byte of the stream reported
/// exactly once, in segments in sequence order from the SYN's ISN + 1;
/// each report with every stage but the upcall pair seen (the SYN's
/// upcalled; tx: the send stage exactly for the segments that carry a
/// send's first byte), the segments adding up to the total, and its GSO segment
/// count that of its payload: a send larger than the MSS is one GSO packet
/// of ceil(payload / MSS) segments, at least one of them.
///
/// A retransmitted segment travels the path again, so its bytes are
/// reported twice: a report of bytes reported before it is a
/// retransmission (without the send stage), no report mixes new and old
/// bytes, and there are no more retransmitted segments than the client's
/// namespace counted (the section's `retransmitted segments:` line; none
/// on a quick guest).
fn check_tcp(out: &str, name: &str, sends: &[u64], mss: u64) {
    let events = path_events(section(out, name));
    let info = |e: &Value, i: usize| e["info"][i].as_u64().unwrap_or(0);
    let tx = !name.ends_with("rx");
    let (upcall, extract) = if tx { ("S4_", "S5_") } else { ("S3_", "S4_") };
    let syn = events
        .iter()
        .find(|e| e["info"][6] == "S")
        .unwrap_or_else(|| panic!("{name}: no SYN in {events:#?}"));
    assert!(stage_seen(syn, stage_named(syn, upcall)), "{syn:#}");
    // Each data segment's offset in the stream, from ISN + 1.
    let offset = |e: &Value| info(e, 4).wrapping_sub(info(syn, 4) + 1) & 0xffff_ffff;
    let range = |e: &Value| offset(e)..offset(e) + info(e, 7);
    // In the order they were sent, each data report carries only new bytes,
    // or only bytes reported before: a retransmission.
    let mut data: Vec<&Value> = events.iter().filter(|e| info(e, 7) > 0).collect();
    data.sort_by_key(|e| first_seen_ns(e));
    let mut fresh: Vec<&Value> = Vec::new();
    let mut repeated = 0;
    let retransmitted = lab::value(section(out, name), "retransmitted segments");
    for e in &data {
        let bytes = range(e);
        let known: u64 = fresh
            .iter()
            .map(|f| range(f))
            .map(|f| {
                bytes
                    .end
                    .min(f.end)
                    .saturating_sub(bytes.start.max(f.start))
            })
            .sum();
        if known == 0 {
            fresh.push(e);
            continue;
        }
        assert_eq!(known, info(e, 7), "{name}: new and old bytes in one: {e:#}");
        repeated += info(e, 8).max(1);
        assert!(
            repeated <= retransmitted,
            "{name}: more segments again than the {retransmitted} retransmitted: {e:#}"
        );
        assert!(
            !tx || !stage_seen(e, stage_named(e, "S0_")),
            "{name}: {e:#}"
        );
    }
    fresh.sort_by_key(|e| offset(e));
    // Where each send's first byte is in the stream.
    let first_bytes: Vec<u64> = sends
        .iter()
        .scan(0, |at, n| {
            *at += n;
            Some(*at - n)
        })
        .collect();
    let mut next = 0;
    for (i, e) in fresh.iter().enumerate() {
        let (at, len) = (offset(e), info(e, 7));
        assert_eq!(at, next, "{name}: each byte once, in order: {fresh:#?}");
        next = at + len;
        // The leading small sends are a segment each.
        if let Some(&size) = sends.get(i).filter(|&&n| n <= mss) {
            assert_eq!(len, size, "{name}: send {i} in one segment: {e:#}");
        }
        // tx: the send stage fires for exactly the segments that carry a
        // send's first byte.
        if tx {
            let carries = first_bytes.iter().any(|b| (at..next).contains(b));
            assert_eq!(
                stage_seen(e, stage_named(e, "S0_")),
                carries,
                "{name}: {e:#}"
            );
        }
    }
    for e in &data {
        let len = info(e, 7);
        let send = tx.then(|| stage_named(e, "S0_"));
        let unchecked: Vec<&str> = send.into_iter().collect();
        lab::check_fast_or_upcalled(
            e,
            stage_named(e, upcall),
            stage_named(e, extract),
            &unchecked,
        );
        let segs = info(e, 8);
        if len > mss {
            assert_eq!(segs, len.div_ceil(mss), "{name}: GSO segments: {e:#}");
        } else {
            assert!(segs <= 1, "{name}: one segment: {e:#}");
        }
    }
    let total: u64 = sends.iter().sum();
    assert_eq!(next, total, "{name}: {total} bytes: {data:#?}");
    if sends.iter().any(|&s| s > mss) {
        assert!(data.iter().any(|e| info(e, 8) > 1), "{name}: a GSO packet");
    }
}

#[test]
fn ovs_ipv6() {
    lab::on_each_kernel("ovs_ipv6.sh", |_, out| {
        check_icmp(out, "icmp6_tx", "fd00::fe", "fd00::2", (128, 129));
        check_icmp(out, "icmp6_rx", "fd00::2", "fd00::fe", (128, 129));
        let text = section(out, "icmp6_text");
        assert!(text.contains("P1:S0 (ip6_output)"), "{text}");
        assert!(text.contains("ICMP_Type=129"), "{text}");
        check_report_golden("ovs_icmp_rtt_ipv6_lab", text, "=== ICMP RTT Trace");
        check_tcp(out, "tcp6_tx", &[100, 100, 100, 200000], MSS6);
        check_tcp(out, "tcp6_rx", &[100, 100, 100], MSS6);
    });
}

#[test]
fn ovs_vlan() {
    lab::on_each_kernel("ovs_vlan.sh", |_, out| {
        for (icmp, tcp) in [("access_icmp", "access_tcp"), ("qinq_icmp", "qinq_tcp")] {
            check_icmp(out, icmp, "10.1.1.254", "10.1.1.2", (8, 0));
            check_tcp(out, tcp, &[100, 100, 100, 200000], MSS4);
        }
    });
}
