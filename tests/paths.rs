//! Packet paths, live: `scripts/skb_path_latency.ns` measures packets from
//! `net:net_dev_queue` on one end of a veth pair to `net:netif_receive_skb`
//! on the other, between two network namespaces. Every packet the test
//! sends must be matched exactly once, by its headers. A recalled first
//! stage (an application's send) is given to exactly the segments that
//! carry a send's first byte.

mod common;

use common::netns::NetnsPair;
use common::of_type;
use serde_json::Value;
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/skb_path_latency.ns");

/// Runs a path script with `args` in JSON mode around `traffic`.
fn run_json(script: &str, args: &[&str], traffic: impl FnOnce()) -> Vec<Value> {
    let mut all = vec![script];
    all.extend_from_slice(args);
    common::run_json(None, &all, traffic)
}

/// The counters line of path `skb_path`.
fn stats(objects: &[Value]) -> &Value {
    &of_type(objects, "stats").last().expect("a stats line")["data"]
}

/// Sends `n` UDP datagrams from namespace 0 to namespace 1, port 9999.
fn udp(p: &NetnsPair, to: &str, n: u32) {
    let family = if to.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    p.exec(0, &format!("python3 -c 'import socket\ns=socket.socket(socket.{},socket.SOCK_DGRAM)\nfor i in range({}): s.sendto(b\"x\"*32,(\"{}\",9999))\n'", family, n, to));
}

#[test]
fn every_sent_packet_is_matched_once_for_each_protocol_and_family() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nspa", 21);
    let src4 = p.ip4[0].clone();
    let objects = run_json(SCRIPT, &["--src-ip", &src4], || {
        p.exec(0, &format!("ping -q -c 5 -i 0.05 {}", p.ip4[1]));
        udp(&p, &p.ip4[1], 7);
    });
    let events = of_type(&objects, "path");
    let key = |e: &Value, i: usize| e["data"]["key"][i].clone();
    let icmp_requests = events
        .iter()
        .filter(|e| key(e, 2) == 1 && key(e, 3) == 8)
        .count();
    let udp_datagrams = events
        .iter()
        .filter(|e| key(e, 2) == 17 && key(e, 4) == 9999)
        .count();
    assert_eq!(icmp_requests, 5, "{:#?}", events);
    assert_eq!(udp_datagrams, 7, "{:#?}", events);
    for e in &events {
        assert_eq!(
            e["data"]["key"][0],
            Value::from(src4.as_str()),
            "only packets from --src-ip"
        );
        let total = e["data"]["total_ns"].as_u64().unwrap();
        let segment: u64 = e["data"]["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ns"].as_u64().unwrap())
            .sum();
        assert_eq!(segment, total, "segments add up to the total");
        assert!(
            total > 0 && total < 50_000_000,
            "a sane latency: {} ns",
            total
        );
    }
    let s = stats(&objects);
    assert_eq!(s["started"], s["completed"], "{}", s);
    assert_eq!(s["completed"].as_u64().unwrap(), events.len() as u64);
    assert_eq!(
        (
            s["incomplete"].as_u64(),
            s["evicted"].as_u64(),
            s["lost"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{}",
        s
    );

    let src6 = p.ip6[0].clone();
    let objects = run_json(SCRIPT, &["--src-ip", &src6, "--proto", "icmp"], || {
        p.exec(0, &format!("ping -6 -q -c 4 -i 0.05 {}", p.ip6[1]));
    });
    let events = of_type(&objects, "path");
    let echo6 = events
        .iter()
        .filter(|e| key(e, 2) == 58 && key(e, 3) == 128)
        .count();
    assert_eq!(echo6, 4, "{:#?}", events);
    assert!(events.iter().all(|e| e["data"]["key"][0] == src6.as_str()));

    let objects = run_json(SCRIPT, &["--src-ip", &src6, "--proto", "udp"], || {
        udp(&p, &p.ip6[1], 6)
    });
    assert_eq!(of_type(&objects, "path").len(), 6);
}

#[test]
fn tcp_segments_are_matched_with_their_sequence_numbers() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nspt", 22);
    let _server = p.spawn(1, "python3 -c 'import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind((\"0.0.0.0\",5556))\ns.listen(1)\nc,_=s.accept()\nc.recv(100)\nc.sendall(b\"pong\")\nc.close()\n'");
    std::thread::sleep(Duration::from_millis(400));
    let objects = run_json(SCRIPT, &["--src-ip", &p.ip4[0], "--proto", "tcp"], || {
        p.exec(0, &format!("python3 -c 'import socket\nc=socket.create_connection((\"{}\",5556))\nc.sendall(b\"ping\")\nc.recv(100)\nc.close()\n'", p.ip4[1]));
    });
    let events = of_type(&objects, "path");
    // SYN, ACK, the 4-byte "ping", at least one more ACK and the FIN.
    assert!(events.len() >= 4, "{:#?}", events);
    let data: Vec<_> = events.iter().filter(|e| e["data"]["key"][7] == 4).collect();
    assert_eq!(
        data.len(),
        1,
        "the data segment, recognised by its payload length: {:#?}",
        events
    );
    // Two segments with identical headers (e.g. a window update repeating
    // an ACK) are one key: the second starts the record again ("replaced").
    let s = stats(&objects);
    let n = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(n("started"), n("completed") + n("replaced"), "{}", s);
    assert_eq!(
        (n("incomplete"), n("evicted"), n("lost")),
        (0, 0, 0),
        "{}",
        s
    );
    assert_eq!(n("completed"), events.len() as u64);
}

#[test]
fn percentiles_agree_with_the_packets_latencies() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nspp", 23);
    let objects = run_json(
        SCRIPT,
        &["--src-ip", &p.ip4[0], "--mode", "both", "--proto", "udp"],
        || udp(&p, &p.ip4[1], 400),
    );
    let mut totals: Vec<u64> = of_type(&objects, "path")
        .iter()
        .map(|e| e["data"]["total_ns"].as_u64().unwrap())
        .collect();
    assert_eq!(totals.len(), 400);
    totals.sort_unstable();
    let hist = of_type(&objects, "hist");
    let total = &hist.last().expect("a histogram")["data"]["@skb_path"]["total"];
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        let rank = ((q * totals.len() as f64).ceil() as usize).max(1);
        let exact = totals[rank - 1] as f64;
        let estimate = total["percentiles"][name].as_f64().unwrap();
        // hist_bits 3: the bucket midpoint is within 1/16 of any value in it.
        assert!(
            (estimate - exact).abs() <= exact / 16.0 + 1.0,
            "{}: estimate {} exact {}",
            name,
            estimate,
            exact
        );
    }
}

#[test]
fn the_rate_limit_is_global_and_counts_what_it_suppresses() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nspr", 24);
    let mut seconds = 0.0;
    let objects = run_json(
        SCRIPT,
        &[
            "--src-ip",
            &p.ip4[0],
            "--proto",
            "udp",
            "--rate-limit",
            "100",
        ],
        || {
            // Two seconds of datagrams as fast as one sender goes.
            let started = std::time::Instant::now();
            p.exec(0, &format!("python3 -c 'import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nend=time.time()+2\nwhile time.time()<end: s.sendto(b\"x\",(\"{}\",9999))\n'", p.ip4[1]));
            seconds = started.elapsed().as_secs_f64();
        },
    );
    let reported = of_type(&objects, "path").len() as u64;
    let s = stats(&objects);
    let completed = s["completed"].as_u64().unwrap();
    assert!(completed > 5000, "a flood: {}", s);
    // The flood lasts as long as reports arrive: from the first reported
    // packet to the last (the sender's start-up is not part of it).
    let times: Vec<u64> = of_type(&objects, "path")
        .iter()
        .filter_map(|e| e["data"]["stages"][0]["ts_ns"].as_u64())
        .collect();
    let span = (times.iter().max().unwrap() - times.iter().min().unwrap()) as f64 / 1e9;
    assert!(
        span > 1.5 && span <= seconds,
        "reports over {span:.2} s of {seconds:.2} s"
    );
    // 100 per second plus a burst of a tenth of a second.
    assert!(
        reported <= (100.0 * span) as u64 + 10 + 5,
        "{} reported in {:.2} s",
        reported,
        span
    );
    assert!(
        reported as f64 >= 100.0 * span - 5.0,
        "{} reported in {:.2} s",
        reported,
        span
    );
    assert_eq!(
        s["suppressed"].as_u64().unwrap() + reported,
        completed,
        "{}",
        s
    );
}

#[test]
fn records_that_never_complete_are_evicted_or_counted_incomplete() {
    // --path-records 64 overrides the script's `records = 4096`.
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nspl", 25);
    let script = std::env::temp_dir().join(format!("ns-lru-{}.ns", std::process::id()));
    let src = format!(
        "path never_done {{\n  key = pkt_key($skb);\n  filter = pkt_proto($skb) == 17 && ((struct iphdr *)skb_network($skb))->saddr == {};\n  records = 4096;\n  stage XMIT = tracepoint:net:net_dev_queue -> args->skbaddr;\n  stage NEVER = tracepoint:net:netif_receive_skb -> args->skbaddr if args->len == 0;\n}}\n",
        u32::from_le_bytes(p.ip4[0].parse::<std::net::Ipv4Addr>().unwrap().octets())
    );
    std::fs::write(&script, src).unwrap();
    let args = ["--path-records", "64"];
    let objects = run_json(script.to_str().unwrap(), &args, || udp(&p, &p.ip4[1], 300));
    std::fs::remove_file(&script).unwrap();
    let s = stats(&objects);
    let n = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(n("started"), 300, "{}", s);
    assert_eq!(n("completed"), 0);
    assert!(n("incomplete") <= 64 && n("incomplete") > 0, "{}", s);
    assert_eq!(n("evicted") + n("incomplete") + n("replaced"), 300, "{}", s);
    assert!(n("evicted") >= 200, "{}", s);
}

#[test]
fn a_packet_time_starts_at_the_first_stage_that_fired_and_stages_on_one_probe_share_a_program() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // The optional first stage never fires: records start at XMIT, and
    // no segment may start at NEVER or measure from time 0. NEVER and XMIT
    // are one catalogue stage (one probe, one packet): one program.
    let p = NetnsPair::new("nspo", 26);
    let script = std::env::temp_dir().join(format!("ns-opt-{}.ns", std::process::id()));
    let src = format!(
        "path opt_first {{\n  key = pkt_key($skb);\n  filter = pkt_proto($skb) == 17 && ((struct iphdr *)skb_network($skb))->saddr == {};\n  detail = 1;\n  histogram = 1;\n  stage? NEVER = dev_queue_xmit if $skb == 0;\n  stage XMIT = dev_queue_xmit;\n  stage RECV = netif_receive;\n}}\n",
        u32::from_le_bytes(p.ip4[0].parse::<std::net::Ipv4Addr>().unwrap().octets())
    );
    std::fs::write(&script, src).unwrap();
    let objects = run_json(script.to_str().unwrap(), &[], || udp(&p, &p.ip4[1], 50));
    std::fs::remove_file(&script).unwrap();
    let attached = &of_type(&objects, "attached_probes")[0]["data"]["probes"];
    assert_eq!(attached, 2, "NEVER and XMIT share a program");
    let events = of_type(&objects, "path");
    assert_eq!(events.len(), 50, "{:#?}", stats(&objects));
    let hist = &of_type(&objects, "hist").last().expect("a histogram")["data"]["@opt_first"];
    let segments: Vec<&String> = hist.as_object().unwrap().keys().collect();
    assert_eq!(segments, ["XMIT -> RECV", "total"], "{}", hist);
    let count = |h: &Value| -> u64 {
        h["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count(&hist["total"]), 50);
    let slowest_event = events
        .iter()
        .map(|e| e["data"]["total_ns"].as_u64().unwrap())
        .max()
        .unwrap();
    let highest_bucket = hist["total"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["count"].as_u64().unwrap() > 0)
        .map(|b| b["min"].as_u64().unwrap())
        .max()
        .unwrap();
    // The kernel's total is the reported packets' total: within a bucket.
    assert!(
        highest_bucket <= slowest_event && slowest_event < highest_bucket * 2,
        "histogram total up to {} ns, reported packets up to {} ns",
        highest_bucket,
        slowest_event
    );
}

/// The text report: a block per packet (heading, key, process, SKB
/// pointers, latencies, total), then the histograms in microseconds with
/// percentiles, then the counters.
#[test]
fn text_output_has_the_documented_shape() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsgp", 27);
    let out = common::run_text(
        None,
        &[
            SCRIPT, "--src-ip", &p.ip4[0], "--proto", "icmp", "--mode", "both",
        ],
        || p.exec(0, &format!("ping -q -c 2 -i 0.05 {}", p.ip4[1])),
    );
    common::report::check_golden("skb_path_latency", &out);
}

#[test]
fn masks_what_changes_between_runs() {
    use common::report::mask;
    let text = "=== ICMP RTT Trace: 2026-12-03 15:39:53.187 (TX) ===\n\
                Session: 10.0.0.1 -> 10.0.0.2 (ID: 20415, Seq: 1)\n\
                Path 1 (Request: TX to 10.0.0.2)         : PID=20415  COMM=ping IF=kr0\n\
                \x20 Stage 0 (P1:S2 (__dev_queue_xmit)   ): 0xffff888152351000\n\
                \x20 Total Path 1:   0.000 us\n\
                \x20   __dev_queue_xmit+1294\n\
                \x20   arp_process+775\n\
                [15:39:53.187] ICMP 10.0.0.1:0 -> 10.0.0.2:0 TX\n\
                \x20 DEV_QUEUE: 12.50μs\n\
                \x20 [8.19-16.4)   : ██ 2\n\
                \x20 [16.4-32.8)   :  0\n\
                Percentiles: P50=14.8μs P99.9=102μs\n";
    let expected = "=== ICMP RTT Trace: <date> <time> (TX) ===\n\
                    Session: 10.0.0.1 -> 10.0.0.2 (ID: <id>, Seq: 1)\n\
                    Path 1 (Request: TX to 10.0.0.2)         : PID=<pid> COMM=ping IF=kr0\n\
                    \x20 Stage 0 (P1:S2 (__dev_queue_xmit)   ): 0x<ptr>\n\
                    \x20 Total Path 1: <us> us\n\
                    \x20   <frames>\n\
                    [<time>] ICMP 10.0.0.1:0 -> 10.0.0.2:0 TX\n\
                    \x20 DEV_QUEUE: <us>μs\n\
                    \x20 <rows>\n\
                    Percentiles: P50=<us>μs P99.9=<us>μs\n";
    assert_eq!(mask(text), expected);
}

/// `hist_by` splits the histograms in the kernel: UDP datagrams and pings
/// of one host land in their own groups, every packet once, whether the
/// histograms live in an array (2 stages) or, with 10 stages, in a hash
/// map.
#[test]
fn histograms_split_by_group_count_each_packet_in_its_group() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsgh", 28);
    let saddr = u32::from_le_bytes(p.ip4[0].parse::<std::net::Ipv4Addr>().unwrap().octets());
    // Optional stages that never fire (they share XMIT's program).
    let never: String = (0..8)
        .map(|i| format!("  stage? NEVER{i} = dev_queue_xmit if $skb == 0;\n"))
        .collect();
    for extra in ["", never.as_str()] {
        let script = std::env::temp_dir().join(format!("ns-groups-{}.ns", std::process::id()));
        let src = format!(
            "path grouped {{\n  key = pkt_key($skb);\n  filter = ((struct iphdr *)skb_network($skb))->saddr == {saddr};\n  detail = 0;\n  hist_by = pkt_proto($skb) == 17 ? 0 : 1;\n  hist_groups = (\"UDP\", \"other\");\n{extra}  stage XMIT = dev_queue_xmit;\n  stage RECV = netif_receive;\n}}\n"
        );
        std::fs::write(&script, src).unwrap();
        let objects = run_json(script.to_str().unwrap(), &[], || {
            udp(&p, &p.ip4[1], 30);
            p.exec(0, &format!("ping -q -c 4 -i 0.05 {}", p.ip4[1]));
        });
        std::fs::remove_file(&script).unwrap();
        let hist = &of_type(&objects, "hist").last().expect("a histogram")["data"]["@grouped"];
        let count = |key: &str| -> u64 {
            hist[key]["buckets"]
                .as_array()
                .unwrap_or_else(|| panic!("no {key}: {hist}"))
                .iter()
                .map(|b| b["count"].as_u64().unwrap())
                .sum()
        };
        // Each ping is a request out and a reply back: only the request
        // has the filtered source.
        assert_eq!(count("UDP,XMIT -> RECV"), 30, "{hist}");
        assert_eq!(count("UDP,total"), 30, "{hist}");
        assert_eq!(count("other,XMIT -> RECV"), 4, "{hist}");
        assert_eq!(count("other,total"), 4, "{hist}");
    }
}

/// A path from an application's send (a recalled stage at the raw
/// tracepoint `tcp_sendmsg_locked`, first chunk of each send) through
/// `net:net_dev_queue` to `net:netif_receive_skb`, for TCP port `port`.
fn send_path(port: u16) -> String {
    format!(
        "path sends {{\n  key = pkt_key($skb);\n  info = pkt_tcp_info($skb);\n  \
         filter = pkt_proto($skb) == 6 && ntohs(((struct tcphdr *)ip_l4(pkt_l3($skb), skb_linear_end($skb)))->dest) == {port};\n  \
         stage? SEND = rawtracepoint:tcp_sendmsg_locked -> recall tcp_send_mark(arg0) in tcp_segment_span($skb) \
         if ((struct msghdr *)arg1)->msg_iter.iov_offset == 0 && ((struct sock *)arg0)->__sk_common.skc_dport == {};\n  \
         stage XMIT = tracepoint:net:net_dev_queue -> args->skbaddr;\n  \
         stage RECV = tracepoint:net:netif_receive_skb -> args->skbaddr;\n}}\n",
        port.to_be()
    )
}

#[test]
fn a_send_is_recalled_by_the_segment_that_carries_its_first_byte() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nsps", 29);
    let port = 9400;
    let script = std::env::temp_dir().join(format!("ns-recall-{}.ns", std::process::id()));
    std::fs::write(&script, send_path(port)).unwrap();
    let sends = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/tcp_sends.py");
    // Two sends of a segment each, one of many segments, three corked
    // into one segment (50 ms apart), one more.
    let steps = ["100", "100", "200000", "c100", "c100", "c100", "100"];
    // The receiver drops the first large packet of each connection: a
    // retransmission.
    let drop_one = format!(
        "nft 'add table inet once; add chain inet once input {{ type filter hook input priority 0; }}; \
         add rule inet once input tcp dport {port} meta length > 1000 numgen inc mod 1000000 == 0 drop'"
    );
    for to in [&p.ip4[1], &p.ip6[1]] {
        p.exec(1, &drop_one);
        let server = format!(
            "python3 -c 'import socket\ns=socket.socket(socket.AF_INET6)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind((\"::\",{port}))\ns.listen(1)\nc,_=s.accept()\nwhile c.recv(65536): pass\n'"
        );
        let mut server = p.spawn(1, &server);
        std::thread::sleep(Duration::from_millis(400));
        let objects = run_json(script.to_str().unwrap(), &[], || {
            p.exec(
                0,
                &format!("python3 {sends} {to} {port} {}", steps.join(" ")),
            );
        });
        let _ = server.wait();
        p.exec(1, "nft delete table inet once");
        check_recalled_sends(&objects, &steps, to);
    }
    std::fs::remove_file(&script).unwrap();
}

/// Checks the path events of one connection that sent `steps`
/// (tcp_sends.py): a segment sent for the first time has the send stage
/// exactly when it carries a send's first byte, a retransmission never.
fn check_recalled_sends(objects: &[Value], steps: &[&str], to: &str) {
    let mut events: Vec<&Value> = of_type(objects, "path")
        .into_iter()
        .map(|e| &e["data"])
        .filter(|e| e["info"][7].as_u64() > Some(0))
        .collect();
    let ts = |e: &Value, stage: usize| e["stages"][stage]["ts_ns"].as_u64().unwrap_or(0);
    events.sort_by_key(|e| ts(e, 1));
    let syn_ack = events.first().map(|e| e["info"][4].as_u64().unwrap());
    let isn = syn_ack.unwrap_or_else(|| panic!("{to}: no data segment: {objects:#?}"));
    // Where each send's first byte is, relative to the first data byte.
    let mut first_bytes = Vec::new();
    let mut at = 0;
    for step in steps {
        first_bytes.push(at);
        at += step.trim_start_matches('c').parse::<u64>().unwrap();
    }
    let (mut sent_up_to, mut recalled, mut retransmitted) = (0, 0, 0);
    for e in &events {
        let seq = (e["info"][4].as_u64().unwrap() - isn) & 0xffff_ffff;
        let len = e["info"][7].as_u64().unwrap();
        let seen = e["stages"][0]["seen"] == true;
        if seq < sent_up_to {
            assert!(!seen, "{to}: a retransmission is never given a send: {e:#}");
            retransmitted += 1;
            continue;
        }
        sent_up_to = seq + len;
        let carried: Vec<usize> = (0..steps.len())
            .filter(|&i| (seq..seq + len).contains(&first_bytes[i]))
            .collect();
        assert_eq!(seen, !carried.is_empty(), "{to}: sends {carried:?}: {e:#}");
        if !seen {
            continue;
        }
        recalled += 1;
        let (send, xmit, recv) = (ts(e, 0), ts(e, 1), ts(e, 2));
        assert!(send < xmit && xmit <= recv, "{to}: {e:#}");
        assert_eq!(e["total_ns"].as_u64(), Some(recv - send), "{to}: {e:#}");
        // The corked sends (50 ms apart) leave together when the socket is
        // uncorked, 50 ms after the last: with the first one's time.
        let waited = if carried.len() > 1 { 100_000_000 } else { 0 };
        assert!(
            xmit - send >= waited && xmit - send < 100_000_000 + waited,
            "{to}: {e:#}"
        );
        assert_eq!(carried.len() > 1, carried == [3, 4, 5], "{to}: {e:#}");
    }
    assert_eq!(sent_up_to, at, "{to}: every byte was sent: {events:#?}");
    assert_eq!(recalled, steps.len() - 2, "{to}: {events:#?}");
    assert!(
        retransmitted >= 1,
        "{to}: the dropped packet was resent: {events:#?}"
    );
}
