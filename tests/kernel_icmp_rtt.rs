//! `scripts/kernel_icmp_rtt.ns`, live, between two network namespaces:
//! every ping is one round trip (request and reply in one record), in both
//! directions (tx: this host pings; rx: it is pinged) and over IPv6. This
//! kernel has no kprobes: the IP-layer stages are left out (said once at
//! start) and the round trip is measured between the device tracepoints.

mod common;

use common::netns::NetnsPair;
use common::{of_type, run_json};
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kernel_icmp_rtt.ns");

/// Runs the script in the namespace of side `local` of the pair while
/// `traffic` runs; returns the round trips and the counters.
fn measure(
    p: &NetnsPair,
    local: usize,
    args: &[&str],
    traffic: impl FnOnce(),
) -> (Vec<Value>, Value) {
    let mut all = vec![SCRIPT, "--disable-kernel-stacks"];
    all.extend_from_slice(args);
    let objects = run_json(Some(&p.ns[local]), &all, traffic);
    let trips = of_type(&objects, "path")
        .into_iter()
        .map(|o| o["data"].clone())
        .collect();
    let stats = of_type(&objects, "stats").last().expect("a stats line")["data"].clone();
    (trips, stats)
}

/// Checks the 5 round trips of one exchange: each sequence once, the
/// request leaving and the reply arriving (tx) or the other way round (rx).
fn check(trips: &[Value], stats: &Value, requester: &str, responder: &str, stages: [&str; 2]) {
    assert_eq!(trips.len(), 5, "{trips:#?}");
    let mut seqs: Vec<u64> = trips
        .iter()
        .map(|t| {
            assert_eq!(t["info"][0], requester, "{t:#}");
            assert_eq!(t["info"][1], responder, "{t:#}");
            let names: Vec<&str> = t["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .filter_map(|s| s["name"].as_str())
                .collect();
            assert_eq!(names, stages, "{t:#}");
            // The request half ends and the reply half starts at a device
            // stage: the whole trip is the time between them.
            let (rtt, between) = (t["total_ns"].as_u64(), t["inter_path_ns"].as_u64());
            assert!(rtt.is_some_and(|r| r > 0) && rtt == between, "{t:#}");
            t["info"][3].as_u64().expect("sequence")
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(
        (stats["started"].as_u64(), stats["completed"].as_u64()),
        (Some(5), Some(5))
    );
}

#[test]
fn this_host_pinging_is_measured_request_out_to_reply_in() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsir", 41);
    let args = ["--src-ip", &p.ip4[0], "--dst-ip", &p.ip4[1]];
    let (trips, stats) = measure(&p, 0, &args, || {
        p.exec(0, &format!("ping -q -c 5 -i 0.05 {}", p.ip4[1]));
        // The other side pinging this one is not what tx measures.
        p.exec(1, &format!("ping -q -c 3 -i 0.05 {}", p.ip4[0]));
    });
    check(
        &trips,
        &stats,
        &p.ip4[0],
        &p.ip4[1],
        ["P1_S2_DEV_QUEUE_XMIT", "P2_S0_NETIF_RECEIVE"],
    );
}

#[test]
fn this_host_pinged_is_measured_request_in_to_reply_out() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsix", 42);
    let args = [
        "--src-ip",
        &p.ip4[0],
        "--dst-ip",
        &p.ip4[1],
        "--direction",
        "rx",
    ];
    let (trips, stats) = measure(&p, 0, &args, || {
        p.exec(1, &format!("ping -q -c 5 -i 0.05 {}", p.ip4[0]));
        p.exec(0, &format!("ping -q -c 3 -i 0.05 {}", p.ip4[1]));
    });
    check(
        &trips,
        &stats,
        &p.ip4[1],
        &p.ip4[0],
        ["P1_S0_NETIF_RECEIVE", "P2_S2_DEV_QUEUE_XMIT"],
    );
}

#[test]
fn ipv6_pings_are_measured_too() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsi6", 43);
    let args = ["--src-ip", &p.ip6[0], "--dst-ip", &p.ip6[1]];
    let (trips, stats) = measure(&p, 0, &args, || {
        p.exec(0, &format!("ping -q -c 5 -i 0.05 {}", p.ip6[1]));
    });
    check(
        &trips,
        &stats,
        &p.ip6[0],
        &p.ip6[1],
        ["P1_S2_DEV_QUEUE_XMIT", "P2_S0_NETIF_RECEIVE"],
    );
}

/// The text report as seed 004 documents it: the heading with the time
/// and direction, the session, one line per half with process, interface
/// and ICMP type, the SKB pointers, the latencies per half, the totals;
/// then the histograms in microseconds with percentiles and the counters.
#[test]
fn text_output_has_the_documented_shape() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsig", 44);
    let args = [
        SCRIPT,
        "--src-ip",
        &p.ip4[0],
        "--dst-ip",
        &p.ip4[1],
        "--interface",
        "nsig0",
        "--disable-kernel-stacks",
        "--mode",
        "both",
    ];
    let out = common::run_text(Some(&p.ns[0]), &args, || {
        p.exec(0, &format!("ping -q -c 2 -i 0.05 {}", p.ip4[1]));
    });
    common::report::check_golden("kernel_icmp_rtt_tx", &out);
}

#[test]
fn the_kprobe_form_passes_the_verifier_in_both_directions() {
    if !netscript::testing::bpf_available() {
        return;
    }
    for direction in ["tx", "rx"] {
        for stages in ["auto", "kprobe"] {
            let (code, _, err) = common::netscript(&[
                SCRIPT,
                "--dry-run",
                "--stages",
                stages,
                "--direction",
                direction,
                "--src-ip",
                "10.0.0.1",
                "--dst-ip",
                "10.0.0.2",
            ]);
            assert_eq!(code, 0, "{err}");
            let programs = if stages == "kprobe" { 6 } else { 2 };
            assert!(
                err.contains(&format!("{programs} program(s) passed the kernel verifier")),
                "{direction} {stages}: {err}"
            );
        }
    }
}
