//! `--pcap FILE`, live: `scripts/skb_path_latency.ns` between two network
//! namespaces writes every packet it reports to a pcapng file, which
//! `tshark` (Debian package tshark) reads back: as many packets as JSON
//! reports, the same addresses and ports, a comment carrying the report's
//! segment latencies, wall-clock timestamps within the run. Needs root and
//! tshark; without them it skips, or fails under `NETSCRIPT_REQUIRE_BPF=1`.

mod common;

use common::netns::NetnsPair;
use common::of_type;
use serde_json::Value;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/skb_path_latency.ns");

/// True when tshark is installed; else fails under
/// `NETSCRIPT_REQUIRE_BPF=1`, or says the test is skipped.
fn tshark_available() -> bool {
    let found = Command::new("tshark").arg("--version").output().is_ok();
    if !found && std::env::var("NETSCRIPT_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("NETSCRIPT_REQUIRE_BPF=1 but tshark (Debian package tshark) is not installed");
    }
    if !found {
        eprintln!("skipping: tshark is not installed (set NETSCRIPT_REQUIRE_BPF=1 to make this a failure)");
    }
    found
}

/// Nanoseconds since the Unix epoch, now.
fn wall_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The fields tshark reads.
const FIELDS: [&str; 8] = [
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "udp.srcport",
    "udp.dstport",
    "frame.time_epoch",
    "frame.comment",
];

/// Each packet of `file` as tshark reads it: [`FIELDS`] by name.
fn tshark(file: &str) -> Vec<std::collections::HashMap<&'static str, String>> {
    let mut args = vec!["-r", file, "-T", "fields", "-E", "separator=\t"];
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    let out = Command::new("tshark")
        .args(&args)
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            FIELDS
                .into_iter()
                .zip(l.split('\t').map(String::from))
                .collect()
        })
        .collect()
}

/// Runs skb_path_latency with `args` and `--pcap` around `traffic`; checks
/// the file against the JSON reports and returns them.
fn check_capture(tag: &str, args: &[&str], traffic: impl FnOnce()) -> Vec<Value> {
    let file =
        std::env::temp_dir().join(format!("netscript-{}-{}.pcapng", tag, std::process::id()));
    let file = file.to_str().unwrap();
    let mut all = vec![SCRIPT, "--pcap", file];
    all.extend_from_slice(args);
    let before = wall_ns();
    let objects = common::run_json(None, &all, traffic);
    let after = wall_ns();
    let reports: Vec<Value> = of_type(&objects, "path")
        .into_iter()
        .map(|e| e["data"].clone())
        .collect();
    let packets = tshark(file);
    std::fs::remove_file(file).ok();
    assert_eq!(
        packets.len(),
        reports.len(),
        "{:#?}\n{:#?}",
        packets,
        reports
    );
    for (packet, report) in packets.iter().zip(&reports) {
        let key = &report["key"];
        let v6 = key[0].as_str().unwrap().contains(':');
        let (src, dst) = if v6 {
            ("ipv6.src", "ipv6.dst")
        } else {
            ("ip.src", "ip.dst")
        };
        assert_eq!(
            packet[src],
            key[0].as_str().unwrap(),
            "{:?} {}",
            packet,
            report
        );
        assert_eq!(
            packet[dst],
            key[1].as_str().unwrap(),
            "{:?} {}",
            packet,
            report
        );
        if key[2] == 17 {
            assert_eq!(packet["udp.srcport"], key[3].to_string());
            assert_eq!(packet["udp.dstport"], key[4].to_string());
        }
        let comment = &packet["frame.comment"];
        assert!(
            comment.starts_with("path skb_path; captured at XMIT; "),
            "{}",
            comment
        );
        for segment in report["segments"].as_array().unwrap() {
            let said = format!(
                "{} -> {} {} ns",
                segment["from"].as_str().unwrap(),
                segment["to"].as_str().unwrap(),
                segment["ns"]
            );
            assert!(comment.contains(&said), "{} lacks {}", comment, said);
        }
        let total = format!("total {} ns", report["total_ns"]);
        assert!(comment.contains(&total), "{} lacks {}", comment, total);
        // The packet's time is its first stage's, in wall-clock time
        // within the run, and the comment says it.
        let epoch = &packet["frame.time_epoch"];
        assert!(
            comment.contains(&format!("XMIT {}", epoch)),
            "{} {}",
            comment,
            epoch
        );
        let (secs, nanos) = epoch.split_once('.').expect("SECS.NANOS");
        let ns = secs.parse::<u128>().unwrap() * 1_000_000_000 + nanos.parse::<u128>().unwrap();
        assert!(
            before <= ns && ns <= after,
            "{} not in [{}, {}]",
            ns,
            before,
            after
        );
    }
    reports
}

#[test]
fn reported_packets_are_written_with_their_stage_latencies() {
    if !netscript::testing::bpf_available() || !tshark_available() {
        return;
    }
    let p = NetnsPair::new("nspc", 61);
    let udp = |to: &str, family: &str, n: u32| {
        p.exec(0, &format!("python3 -c 'import socket\ns=socket.socket(socket.{family},socket.SOCK_DGRAM)\nfor i in range({n}): s.sendto(b\"x\"*200,(\"{to}\",9999))\n'"));
    };
    let reports = check_capture("v4", &["--src-ip", &p.ip4[0]], || {
        p.exec(0, &format!("ping -q -c 3 -i 0.05 {}", p.ip4[1]));
        udp(&p.ip4[1], "AF_INET", 4);
    });
    let udp_reports = reports.iter().filter(|r| r["key"][2] == 17).count();
    assert_eq!((reports.len(), udp_reports), (7, 4), "{:#?}", reports);
    let reports = check_capture("v6", &["--src-ip", &p.ip6[0], "--proto", "udp"], || {
        udp(&p.ip6[1], "AF_INET6", 3)
    });
    assert_eq!(reports.len(), 3, "{:#?}", reports);
}

/// Runs netscript with `args`, which must fail with exit status 1 (no
/// panic) and say `says` on stderr.
fn fails(args: &[&str], says: &str) {
    let out = Command::new(common::netscript_bin())
        .args(args)
        .output()
        .expect("netscript runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", err);
    assert!(err.contains(says) && !err.contains("panicked"), "{}", err);
}

#[test]
fn a_pcap_needs_a_path_that_reports_packets_and_a_file_it_can_create() {
    let no_path = "no path of this script reports packets";
    let (file, bpf) = (["--pcap", "/tmp/x.pcapng"], ["-d", "bpf"]);
    fails(
        &[&bpf[..], &["-e", "BEGIN { exit(); }"], &file].concat(),
        no_path,
    );
    let histogram = [SCRIPT, "--mode", "histogram"];
    fails(&[&bpf[..], &histogram, &file].concat(), no_path);
    if !netscript::testing::bpf_available() {
        return;
    }
    let cases = [
        (
            "/nonexistent/dir/x.pcapng",
            "cannot create pcap file /nonexistent/dir/x.pcapng: No such file or directory",
        ),
        (
            "/dev/full",
            "cannot write pcap file /dev/full: No space left on device",
        ),
    ];
    for (file, says) in cases {
        fails(&[SCRIPT, "--pcap", file, "--duration", "1"], says);
    }
}
