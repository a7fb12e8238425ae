//! Live tests of scripts/tcp_metrics.ns, detail events: the global rate
//! limit under a burst, first/last events per connection, sampling and
//! top-k, the running p99, wall-clock timestamps and the reset-rate
//! trigger.

mod common;

use std::time::{Duration, Instant};

use common::netns::NetnsPair;
use common::tcp_metrics::*;
use common::{assert_within, clock_ns, date_ns};

#[test]
fn detail_events_hold_the_global_rate_limit_under_a_burst() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstd", 33);
    let _server = Server::start(&p, 7004);
    // Every tcp_probe hit is a trigger (srtt > 0): thousands per second.
    let started = Instant::now();
    let t = start(&[
        "--mode",
        "detail",
        "--rtt-threshold",
        "0",
        "--max-events-per-sec",
        "20",
        "--rport",
        "7004",
        "--duration",
        "3",
    ]);
    client(&p, &p.ip4[1], 7004, 20, 2_000_000);
    let (code, out, err) = t.finish();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{}", err);
    let events = json_events(&out);
    // At most 20 per second plus the burst allowance (2), for all CPUs.
    let limit = (20.0 * seconds).ceil() as usize + 2;
    assert!(
        !events.is_empty() && events.len() <= limit,
        "{} events in {:.1} s (limit {})",
        events.len(),
        seconds,
        limit
    );
    let first = &events[0];
    assert_eq!(first["trigger"], "rtt");
    assert_eq!(first["dport"], 7004);
    assert_eq!(first["saddr"], p.ip4[0].as_str());
    assert!(first["srtt_us"].as_u64().is_some() && first["cwnd"].as_u64() > Some(0));
    assert!(
        value(&out, "@suppressed_events[rtt, rate]").unwrap_or(0) > 0,
        "nothing suppressed:\n{}",
        out
    );
}

#[test]
fn first_and_last_events_per_connection_sampling_and_top_k() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstf", 37);
    let _server = Server::start(&p, 7008);
    lose_segments(&p, 7008, 4);
    let detail = |extra: &[&str]| {
        let mut args = vec![
            "--mode",
            "detail",
            "--rtt-threshold",
            "100000000",
            "--rtt-p99=false",
            "--max-events-per-sec",
            "100000",
        ];
        args.extend_from_slice(extra);
        watch(7008, &args)
    };

    // One connection, many retransmissions: its first 3 events as they
    // happen, its last 2 when it closes, the others counted.
    let t = detail(&["--first", "3", "--last", "2"]);
    client(&p, &p.ip4[1], 7008, 1, 3_000_000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let events = json_events(&out);
    let positions: Vec<&str> = events
        .iter()
        .map(|e| e["position"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        positions,
        ["first", "first", "first", "last", "last"],
        "{}",
        out
    );
    let ts: Vec<u64> = events.iter().filter_map(|e| e["ts_ns"].as_u64()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "not in order: {:?}", ts);
    let held: u64 = out
        .lines()
        .filter(|l| l.starts_with("@suppressed_events[") && l.contains(", first_last]: "))
        .filter_map(|l| l.rsplit(": ").next()?.parse::<u64>().ok())
        .sum();
    assert!(held > 0, "nothing held back:\n{}", out);

    // One connection in a million: none of these.
    let t = detail(&["--sample", "1000000"]);
    client(&p, &p.ip4[1], 7008, 2, 1_000_000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert!(json_events(&out).is_empty(), "{}", out);
    assert!(
        out.contains(", sample]: "),
        "no event counted as sampled out:\n{}",
        out
    );

    // Three connections at once, --top-k 1: one reports, the others are
    // held back while it is open.
    let t = detail(&["--top-k", "1"]);
    let parallel = format!(
        "import socket, threading\ndef send():\n  c = socket.create_connection(('{}', 7008))\n  c.sendall(b'x' * 3000000)\n  c.shutdown(socket.SHUT_WR)\n  while c.recv(65536):\n    pass\nts = [threading.Thread(target=send) for _ in range(3)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n",
        p.ip4[1]
    );
    python(&p, 0, &parallel, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let ports: std::collections::BTreeSet<u64> = json_events(&out)
        .iter()
        .filter_map(|e| e["sport"].as_u64())
        .collect();
    assert!(!ports.is_empty(), "{}", out);
    assert!(
        out.contains(", top_k]: "),
        "nothing held back by --top-k:\n{}",
        out
    );
}

#[test]
fn rtt_samples_above_the_running_p99_are_reported() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nst9", 38);
    let _server = Server::start(&p, 7009);
    let t = watch(
        7009,
        &[
            "--mode",
            "both",
            "--rtt-threshold",
            "100000000",
            "--max-events-per-sec",
            "100000",
        ],
    );
    // Many small writes, each acknowledged: thousands of RTT samples.
    let chatty = format!(
        "import socket\nc = socket.create_connection(('{}', 7009))\nc.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\nfor _ in range(8000):\n  c.sendall(b'x' * 100)\nc.shutdown(socket.SHUT_WR)\nwhile c.recv(65536):\n  pass\n",
        p.ip4[1]
    );
    python(&p, 0, &chatty, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let samples = hist_count(&out, "@rtt_sample_us");
    let above = triggered(&out, "rtt_p99");
    assert!(samples > 500, "{} samples:\n{}", samples, out);
    // Each reported sample is above the estimate it was compared with, and
    // only a few percent of the samples are.
    assert!(!above.is_empty(), "{}", out);
    assert!(above
        .iter()
        .all(|e| e["rtt_sample_us"].as_u64() > e["threshold"].as_u64()));
    assert!(
        (above.len() as u64) * 10 < samples,
        "{} of {} samples above the running p99",
        above.len(),
        samples
    );
}

#[test]
fn events_carry_the_wall_clock_time_next_to_the_monotonic_time() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstw", 52);
    let _server = Server::start(&p, 7017);
    let before = date_ns();
    let t = watch(
        7017,
        &[
            "--mode",
            "detail",
            "--rtt-threshold",
            "0",
            "--rtt-p99=false",
            "--max-events-per-sec",
            "100000",
        ],
    );
    client(&p, &p.ip4[1], 7017, 2, 100_000);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let after = date_ns();
    // The wall clock minus the monotonic clock, as this test reads them.
    let offset = clock_ns(libc::CLOCK_REALTIME) as i128 - clock_ns(libc::CLOCK_MONOTONIC) as i128;
    let events = json_events(&out);
    assert!(!events.is_empty(), "{}", out);
    for e in &events {
        assert_eq!(e["version"], 2, "{}", e);
        let wall = e["wall_ns"].as_u64().expect("wall_ns");
        let mono = e["ts_ns"].as_u64().expect("ts_ns");
        // Within the run as `date` saw it, and the same instant as the
        // monotonic time to within a millisecond.
        assert_within(wall, before, after);
        let skew = wall as i128 - mono as i128 - offset;
        assert!(skew.abs() < 1_000_000, "{} ns off: {}", skew, e);
    }
}

#[test]
fn a_reset_rate_above_rst_rate_is_reported_once_per_window() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstx", 53);
    // Nothing listens on 7018: 12 connections refused within a second,
    // 12 resets received by the client's namespace.
    let client_ns = format!("/run/netns/{}", p.ns[0]);
    let run = |rate: &str| {
        start(&[
            "--mode",
            "detail",
            "--rport",
            "7018",
            "--netns",
            &client_ns,
            "--rst-rate",
            rate,
            "--rtt-p99=false",
            "--max-events-per-sec",
            "100000",
        ])
    };
    let (at, over) = (run("12"), run("13"));
    refused(&p, &p.ip4[1], 7018, 12);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = at.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(triggered(&out, "rst_received").len(), 12, "{}", out);
    let rate = triggered(&out, "rst_rate");
    assert_eq!(rate.len(), 1, "{}", out);
    assert_eq!(rate[0]["threshold"], 12);
    assert_eq!(rate[0]["dport"], 7018);
    let (code, out, err) = over.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(triggered(&out, "rst_received").len(), 12, "{}", out);
    assert!(triggered(&out, "rst_rate").is_empty(), "{}", out);
}
