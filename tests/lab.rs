//! Real-kernel tests: netscript against Debian's stock kernels (kprobes,
//! fentry, openvswitch.ko) booted under qemu by `tests/lab/lab.sh`: 5.10
//! (bullseye), 6.1 (bookworm) and 6.12 (trixie). Each test runs one guest
//! script of `tests/lab/` (topology, traffic, netscript) on every kernel of
//! the matrix, with the netscript binary cargo built in its PATH, and
//! asserts on what netscript printed there. One VM runs at a time. Run one
//! by name: `cargo test --release --test lab kprobe_counts`; on one kernel:
//! `NETSCRIPT_LAB_KERNELS=bullseye`. See docs/testing.md.

mod common;

use common::lab::{self, check_report_golden, map_total, path_events, section, stage_seen, value};
use common::tcp_metrics::hist_buckets;
use serde_json::Value;

#[test]
fn kprobe_counts() {
    lab::on_each_kernel("kprobe_counts.sh", |_, out| {
        for probe in ["@kprobe", "@kretprobe", "@fentry", "@fexit"] {
            assert_eq!(value(out, probe), 25, "{probe} counts every send()");
        }
        assert_eq!(value(out, "@size"), 250, "fentry args.size: 25 x 10 bytes");
        assert_eq!(value(out, "@sent"), 250, "fexit retval: 25 x 10 bytes");
    });
}

#[test]
fn attach_tiering() {
    lab::on_each_kernel("attach_tiering.sh", |_, out| {
        let fentry = section(out, "run");
        assert!(!fentry.contains("using kprobe"), "{fentry}");
        assert_eq!(value(fentry, "@[fentry:tcp_sendmsg]"), 25);
        assert_eq!(value(fentry, "@[fexit:tcp_sendmsg]"), 25);
        assert_eq!(value(fentry, "@sent"), 250);
        let refused = section(out, "run --no-fentry");
        assert!(
            refused.contains(
                "netscript: fentry/fexit disabled by --no-fentry; using kprobe/kretprobe instead"
            ),
            "{refused}"
        );
        assert_eq!(value(refused, "@[kprobe:tcp_sendmsg]"), 25);
        assert_eq!(value(refused, "@[kretprobe:tcp_sendmsg]"), 25);
        assert_eq!(value(refused, "@sent"), 250);
    });
}

#[test]
fn ovs_stages() {
    lab::on_each_kernel("ovs_stages.sh", |_, out| {
        // Maps are keyed by IP protocol: 1 ICMP (5 pings: 10 packets), 17 UDP
        // (7 unicast + 1 broadcast datagrams), 6 TCP (20 sends to br0's address).
        for map in ["@hook", "@dp"] {
            assert_eq!(value(out, &format!("{map}[1]")), 10, "{map} ICMP");
            assert_eq!(value(out, &format!("{map}[17]")), 8, "{map} UDP");
            assert!(value(out, &format!("{map}[6]")) > 0, "{map} TCP");
        }
        assert!(value(out, "@send[1]") >= 10, "every ICMP packet is output");
        assert!(value(out, "@send[17]") >= 8, "every UDP datagram is output");
        assert!(value(out, "@send[6]") > 0);
        assert!(
            value(out, "@upcall[1]") >= 1,
            "first pings miss the flow table"
        );
        assert_eq!(
            value(out, "@[kprobe:ovs_flow_key_extract_userspace]"),
            map_total(out, "@upcall"),
            "ovs-vswitchd executes every upcalled packet once"
        );
        assert!(value(out, "@internal_xmit[6]") > 0, "br0 answers TCP");
        assert_eq!(
            value(out, "@tap_xmit[17]"),
            1,
            "the broadcast floods to tap0"
        );
    });
}

#[test]
fn ovs_path() {
    lab::on_each_kernel("ovs_path.sh", |_, out| {
        let events = path_events(out);
        let seen = stage_seen;
        for (src, dst, icmp_type) in [("10.1.1.1", "10.1.1.2", 8), ("10.1.1.2", "10.1.1.1", 0)] {
            let mut seqs: Vec<u64> = Vec::new();
            for e in events.iter().filter(|e| e["key"][3] == icmp_type) {
                assert_eq!(
                    (e["key"][0].as_str(), e["key"][1].as_str()),
                    (Some(src), Some(dst))
                );
                assert!(seen(e, "HOOK") && seen(e, "DP") && seen(e, "TX"), "{e:#}");
                let seq = e["key"][6].as_u64().expect("echo sequence");
                // The first packet of each direction misses the flow table and is
                // upcalled and executed by ovs-vswitchd; the others take the fast path.
                let upcalled = seq == 1;
                assert_eq!(seen(e, "UPCALL"), upcalled, "{e:#}");
                assert_eq!(seen(e, "EXEC"), upcalled, "{e:#}");
                seqs.push(seq);
            }
            seqs.sort_unstable();
            assert_eq!(
                seqs,
                [1, 2, 3, 4, 5],
                "ICMP type {icmp_type}: each packet once"
            );
        }
        let stats = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["type"] == "stats")
            .expect("a stats line");
        assert_eq!(stats["data"]["started"], 10);
        assert_eq!(stats["data"]["completed"], 10);
        assert_eq!(stats["data"]["incomplete"], 0);
    });
}

#[test]
fn module_btf() {
    lab::on_each_kernel("module_btf.sh", |kernel, out| {
        let listing = section(out, "listing");
        assert!(
            listing.contains("kprobe:ovs_dp_process_packet\n"),
            "{listing}"
        );
        assert!(
            listing.contains("fentry:ovs_flow_key_extract_userspace\n"),
            "{listing}"
        );
        let (run, fallback) = (section(out, "run"), section(out, "fallback"));
        assert_eq!(value(fallback, "@exec_retval[0]"), 2, "{fallback}");
        if !kernel.at_least(5, 11) {
            // No module BTF: fentry/fexit on module functions attach as
            // kprobes, with one line saying so; args cannot be typed.
            assert!(
                fallback.contains("netscript: warning: module openvswitch has no BTF on this kernel (module BTF: Linux 5.11+), kprobe/kretprobe instead of fentry/fexit: fentry:ovs_dp_process_packet, fexit:ovs_flow_key_extract_userspace\n"),
                "{fallback}"
            );
            assert_eq!(value(fallback, "@[kprobe:ovs_dp_process_packet]"), 10);
            assert!(
                run.starts_with("-e:3:64: error: args.skb: kernel function ovs_dp_process_packet is in module openvswitch, which has no BTF on this kernel (module BTF: Linux 5.11+): use arg0 to arg5\n"),
                "{run}"
            );
            assert!(run.ends_with("netscript exit 1\n"), "{run}");
            return;
        }
        assert!(!fallback.contains("no BTF"), "{fallback}");
        assert_eq!(value(fallback, "@[fentry:ovs_dp_process_packet]"), 10);
        // -lv shows a module function's parameters from the module's BTF.
        for param in [
            "struct sk_buff * skb",
            "struct sw_flow_key * key",
            "bool log",
        ] {
            assert!(
                listing.contains(&format!("    {param}\n")),
                "-lv: {listing}"
            );
        }
        assert_eq!(value(run, "@kprobe"), 10, "kprobe through kallsyms");
        assert_eq!(value(run, "@fentry"), 10, "fentry on a module function");
        assert_eq!(
            value(run, "@bytes"),
            10 * 98,
            "args.skb->len from module BTF"
        );
        assert_eq!(value(run, "@with_key"), 10, "args.key: a module type");
        assert_eq!(
            value(run, "@exec_retval[0]"),
            2,
            "fexit retval after the 5 parameters of the module BTF signature"
        );
    });
}

#[test]
fn catalogue() {
    lab::on_each_kernel("catalogue.sh", |_, out| {
        let stages: usize = section(out, "stages")
            .trim()
            .parse()
            .expect("a stage count");
        assert!(stages > 20, "{out}");
        let verifier = section(out, "verifier");
        assert!(!verifier.contains("skipped"), "{verifier}");
        // Stages on one probe with one packet share a program (ovs_vport_send
        // and ovs_vport_send_to_host, say): every stage is in one that passed.
        let passed: usize = verifier
            .split("netscript: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a count of programs that passed: {verifier}"));
        assert!(
            passed > 20 && passed <= stages,
            "{stages} stages: {verifier}"
        );
        assert!(
            verifier.contains(&format!(
                "netscript: {passed} program(s) passed the kernel verifier"
            )),
            "{verifier}"
        );
    });
}

#[test]
fn vlan_hw() {
    lab::on_each_kernel("vlan_hw.sh", |_, out| {
        // Tagged in skb->vlan_tci (VLAN 10), no tag in the bytes, ICMP inside.
        assert_eq!(value(out, "@tx[10, 0, 1]"), 4, "{out}");
        assert_eq!(value(out, "@rx[10, 0, 1]"), 4, "{out}");
    });
}

#[test]
fn kernel_icmp_rtt() {
    lab::on_each_kernel("kernel_icmp_rtt.sh", |_, out| {
        let p1 = ["P1_S0", "P1_S1", "P1_S2"];
        let p2 = ["P2_S0", "P2_S1", "P2_S2"];
        for (direction, requester, responder) in [
            ("tx", "10.3.3.1", "10.3.3.2"),
            ("rx", "10.3.3.2", "10.3.3.1"),
        ] {
            let trips = path_events(section(out, direction));
            assert_eq!(trips.len(), 3, "{direction}: {out}");
            for t in &trips {
                assert_eq!(
                    (t["info"][0].as_str(), t["info"][1].as_str()),
                    (Some(requester), Some(responder))
                );
                // Every stage of both halves is attached with kprobes; all fire
                // but ip_send_skb, which Debian's 6.1 build inlines into its callers.
                let stages = t["stages"].as_array().expect("stages");
                assert_eq!(stages.len(), 6, "{t:#}");
                for (stage, prefix) in stages.iter().zip(p1.iter().chain(&p2)) {
                    let name = stage["name"].as_str().unwrap_or("");
                    assert!(name.starts_with(prefix), "{t:#}");
                    assert_eq!(stage["seen"], !name.contains("IP_SEND_SKB"), "{t:#}");
                }
                let ns = |k: &str| t[k].as_u64().unwrap_or(0);
                assert!(ns("path1_ns") > 0 && ns("path2_ns") > 0, "{t:#}");
                assert_eq!(
                    ns("path1_ns") + ns("inter_path_ns") + ns("path2_ns"),
                    ns("total_ns"),
                    "{t:#}"
                );
            }
        }
        let text = section(out, "text");
        assert!(text.contains("[1->2] P1:S1 (ip_output)"), "{text}");
        check_report_golden("kernel_icmp_rtt_lab", text, "=== ICMP RTT Trace");
    });
}

#[test]
fn skb_path_latency_and_xdp_packet_log() {
    lab::on_each_kernel("packet_tools.sh", |_, out| {
        let json = |text: &str| -> Vec<Value> {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect()
        };
        let last_of = |objects: &[Value], kind: &str| -> Value {
            let found = objects.iter().rev().find(|o| o["type"] == kind);
            found.unwrap_or_else(|| panic!("no {kind} in {objects:#?}"))["data"].clone()
        };
        // Detail: each of the 5 echo requests and 7 datagrams once, by its
        // headers, from net_dev_queue on a1 to netif_receive_skb on a2.
        let detail = section(out, "skb_path detail");
        let events = path_events(detail);
        let with = |proto: u64| events.iter().filter(|e| e["key"][2] == proto).count();
        assert_eq!((with(1), with(17), events.len()), (5, 7, 12), "{detail}");
        for e in &events {
            assert_eq!(e["key"][0], "10.4.4.1", "{e:#}");
            assert!(
                e["stages"]
                    .as_array()
                    .expect("stages")
                    .iter()
                    .all(|s| s["seen"] == true),
                "{e:#}"
            );
            let total = e["total_ns"].as_u64().expect("total_ns");
            assert!(total > 0 && lab::segments_ns(e) == total, "{e:#}");
        }
        // Histogram: the same 12 packets, counted in the kernel.
        let objects = json(section(out, "skb_path histogram"));
        assert!(!objects.iter().any(|o| o["type"] == "path"), "{objects:#?}");
        let hist = last_of(&objects, "hist");
        let buckets = hist["@skb_path"]["total"]["buckets"]
            .as_array()
            .expect("buckets");
        let counted: u64 = buckets.iter().filter_map(|b| b["count"].as_u64()).sum();
        assert_eq!(counted, 12, "{hist:#}");
        for stats in [json(detail), objects] {
            let s = last_of(&stats, "stats");
            assert_eq!(s["path"], "skb_path", "{s}");
            assert_eq!(
                (s["started"].as_u64(), s["completed"].as_u64()),
                (Some(12), Some(12)),
                "{s}"
            );
            for counter in ["incomplete", "evicted", "lost"] {
                assert_eq!(s[counter], 0, "{counter}: {s}");
            }
        }
        // XDP: exactly the 6 datagrams to port 9999, none of the 4 to 8888.
        let xdp = section(out, "xdp");
        let lines: Vec<Value> = json(xdp)
            .into_iter()
            .filter(|o| o["type"] == "printf")
            .collect();
        assert_eq!(lines.len(), 6, "{xdp}");
        for l in &lines {
            let text = l["data"].as_str().unwrap_or("");
            assert!(
                text.starts_with("Packet Data - src_ip: 10.4.4.1, ")
                    && text.contains(" dst_ip: 10.4.4.2,  dst_port: 9999, ")
                    && text.contains(" protocol: UDP, length: 52"),
                "{text}"
            );
        }
        assert!(
            !xdp.contains("lost_events") && !xdp.contains("too_short"),
            "{xdp}"
        );
        assert!(
            !section(out, "after").contains("xdp"),
            "an XDP program left behind: {out}"
        );
    });
}

#[test]
fn ovs_icmp_rtt() {
    lab::on_each_kernel("ovs_icmp_rtt.sh", |_, out| {
        for direction in ["tx", "rx"] {
            let events = path_events(section(out, direction));
            let mut seqs: Vec<u64> = events
                .iter()
                .map(|e| e["key"][3].as_u64().expect("echo sequence"))
                .collect();
            seqs.sort_unstable();
            assert_eq!(seqs, [1, 2, 3, 4, 5], "{direction}: 5 round trips");
            // The first echo of each direction misses the flow table and is
            // upcalled; once one takes the fast path, every later one does (a
            // slow handler thread may still be installing the flow for echo 2).
            for p in ["P1", "P2"] {
                let upcalls: Vec<bool> = (1..=5)
                    .map(|seq| {
                        let e = events.iter().find(|e| e["key"][3] == seq).expect("echo");
                        let upcall = stage_seen(e, &format!("{p}_S3_OVS_UPCALL"));
                        assert_eq!(
                            upcall,
                            stage_seen(e, &format!("{p}_S4_OVS_KEY_EXTRACT")),
                            "{e:#}"
                        );
                        upcall
                    })
                    .collect();
                assert!(upcalls[0] && !upcalls[4], "{direction} {p}: {upcalls:?}");
                assert!(upcalls.windows(2).all(|w| w[0] || !w[1]), "{upcalls:?}");
            }
            for e in &events {
                for p in ["P1", "P2"] {
                    for s in ["S0", "S1", "S2", "S5", "S6"] {
                        let name = e["stages"]
                            .as_array()
                            .and_then(|st| {
                                st.iter().find(|x| {
                                    x["name"]
                                        .as_str()
                                        .is_some_and(|n| n.starts_with(&format!("{p}_{s}_")))
                                })
                            })
                            .and_then(|x| x["name"].as_str())
                            .unwrap_or_default();
                        assert!(stage_seen(e, name), "{direction} {p}_{s}: {e:#}");
                    }
                }
                let total = e["total_ns"].as_u64().expect("total");
                let (p1, p2) = (e["path1_ns"].as_u64(), e["path2_ns"].as_u64());
                let (p1, p2) = (p1.expect("path1"), p2.expect("path2"));
                assert!(p1 > 0 && p2 > 0, "{e:#}");
                assert!(total > p1 + p2, "RTT covers both paths: {e:#}");
                assert_eq!(total, p1 + p2 + e["inter_path_ns"].as_u64().expect("inter"));
            }
        }
        let text = section(out, "text");
        assert!(text.contains("(OVS No Upcall)"), "{text}");
        check_report_golden("ovs_icmp_rtt_lab", text, "=== ICMP RTT Trace");
    });
}

#[test]
fn ovs_tcp_latency() {
    lab::on_each_kernel("ovs_tcp_latency.sh", |_, out| {
        // The send stage (S0, tx only) numbers the tx stages one higher.
        for (direction, upcall, extract) in [
            ("tx", "S4_OVS_UPCALL", "S5_OVS_KEY_EXTRACT"),
            ("rx", "S3_OVS_UPCALL", "S4_OVS_KEY_EXTRACT"),
        ] {
            let events = path_events(section(out, direction));
            let info = |e: &Value, i: usize| e["info"][i].clone();
            let syn = events
                .iter()
                .find(|e| info(e, 6) == "S")
                .unwrap_or_else(|| panic!("{direction}: no SYN in {events:#?}"));
            assert!(stage_seen(syn, upcall), "the SYN is upcalled: {syn:#}");
            let isn = info(syn, 4).as_u64().expect("seq");
            let data: Vec<&Value> = events.iter().filter(|e| info(e, 7) == 100).collect();
            assert_eq!(data.len(), 3, "{direction}: 3 data segments: {events:#?}");
            // By the last data segment the flow is cached: the fast path.
            assert!(!stage_seen(data[2], upcall), "{:#}", data[2]);
            for (i, e) in data.iter().enumerate() {
                assert_eq!(info(e, 4).as_u64(), Some(isn + 1 + 100 * i as u64), "{e:#}");
                assert_eq!(info(e, 6), "PA", "{e:#}");
                // Every other stage fired, the send's included (tx: each
                // segment carries its send's first byte).
                lab::check_fast_or_upcalled(e, upcall, extract, &[]);
            }
        }
        recalled_sends(&path_events(section(out, "tx")), &[100, 100, 100, 200000]);
        let text = section(out, "text");
        assert!(text.contains("(OVS No Upcall)"), "{text}");
        assert!(
            text.contains("[0->1] S0_TCP_SENDMSG -> S1_IP_OUTPUT: "),
            "{text}"
        );
        check_report_golden("ovs_tcp_latency_lab", text, "=== TCP Latency Trace");
    });
}

/// ovs_tcp_latency tx of a connection whose client sent `sends` bytes, one
/// send() each: the send stage (recalled at ip_output) fired for exactly
/// the segments that carry a send's first byte, never for a
/// retransmission, before S1 and within the total.
fn recalled_sends(events: &[Value], sends: &[u64]) {
    let ts = |e: &Value, stage: &str| {
        e["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == stage))
            .and_then(|s| s["ts_ns"].as_u64())
            .unwrap_or(0)
    };
    let syn = events.iter().find(|e| e["info"][6] == "S").expect("a SYN");
    assert!(!stage_seen(syn, "S0_TCP_SENDMSG"), "{syn:#}");
    let first_data = syn["info"][4].as_u64().expect("seq") + 1;
    let mut data: Vec<&Value> = events
        .iter()
        .filter(|e| e["info"][7].as_u64() > Some(0))
        .collect();
    data.sort_by_key(|e| ts(e, "S1_IP_OUTPUT"));
    let first_bytes: Vec<u64> = sends
        .iter()
        .scan(0, |at, n| {
            *at += n;
            Some(*at - n)
        })
        .collect();
    let (mut sent_up_to, mut recalled) = (0, 0);
    for e in data {
        let seq = (e["info"][4].as_u64().expect("seq") - first_data) & 0xffff_ffff;
        let len = e["info"][7].as_u64().expect("payload");
        let seen = stage_seen(e, "S0_TCP_SENDMSG");
        let original = seq >= sent_up_to;
        sent_up_to = sent_up_to.max(seq + len);
        let carries = first_bytes.iter().any(|b| (seq..seq + len).contains(b));
        assert_eq!(seen, original && carries, "{e:#}");
        if seen {
            recalled += 1;
            let (send, ip) = (ts(e, "S0_TCP_SENDMSG"), ts(e, "S1_IP_OUTPUT"));
            let total = e["total_ns"].as_u64().expect("total");
            assert!(send < ip && ip - send < total, "{e:#}");
            assert_eq!(ts(e, "S7_DEV_QUEUE_XMIT") - send, total, "{e:#}");
        }
    }
    assert_eq!(recalled, sends.len(), "one segment per send: {events:#?}");
    assert_eq!(sent_up_to, sends.iter().sum::<u64>(), "{events:#?}");
}

#[test]
fn tcp_connlife() {
    lab::on_each_kernel("tcp_connlife.sh", |_, out| {
        // The lines of one function: [PID, COMM, IP, SADDR, DADDR, DPORT, SPORT, TIME, FUNC, STATE, DESC..].
        let lines = |func: &str| -> Vec<Vec<String>> {
            out.lines()
                .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
                .filter(|f| f.len() >= 11 && f[8] == func)
                .collect()
        };
        let description = |f: &[String]| -> String {
            let words = f[10..].iter().filter(|w| w.parse::<u64>().is_err());
            words.cloned().collect::<Vec<_>>().join(" ")
        };
        for v4 in ["tcp_v4_connect", "tcp_sendmsg", "tcp_recvmsg", "tcp_v4_rcv"] {
            assert!(
                !out.contains(&format!("kprobe:{v4}: ")),
                "{v4} was not attached:\n{out}"
            );
        }
        let connect = lines("tcp_v4_connect");
        assert_eq!(connect.len(), 1, "{out}");
        assert_eq!(
            (
                &connect[0][1][..],
                &connect[0][4][..],
                &connect[0][5][..],
                &connect[0][9][..],
                description(&connect[0]).as_str(),
            ),
            (
                "python3",
                "127.0.0.1",
                "7001",
                "TCP_CLOSE",
                "client send SYN packet"
            ),
            "{out}"
        );
        let established = lines("inet_sock_set_state")
            .into_iter()
            .find(|f| f[9] == "TCP_ESTABLISHED" && f[5] == "7001")
            .unwrap_or_else(|| panic!("no ESTABLISHED line:\n{out}"));
        assert_eq!(
            description(&established),
            "transfer into new state",
            "{out}"
        );
        let client_port = &established[6];
        // send.py's 3 send() calls, on the client's established socket.
        let sends = lines("tcp_sendmsg");
        assert_eq!(sends.len(), 3, "{out}");
        assert!(
            sends.iter().all(|f| f[1] == "python3"
                && &f[6] == client_port
                && f[9] == "TCP_ESTABLISHED"
                && description(f) == "client send message"),
            "{out}"
        );
        // nc reads on the accepted socket (local port 7001), a server socket.
        let recvs = lines("tcp_recvmsg");
        assert!(!recvs.is_empty(), "{out}");
        assert!(
            recvs.iter().all(|f| f[6] == "7001"
                && f[1].starts_with("nc")
                && description(f) == "server receive message"),
            "{out}"
        );
        // Every segment of the connection passes tcp_v4_rcv, the handshake
        // tcp_rcv_state_process; the SYN is told apart.
        let rcv = lines("tcp_v4_rcv");
        assert!(rcv.len() >= 5, "{out}");
        assert_eq!(
            rcv.iter()
                .filter(|f| description(f) == "server receive SYN packet")
                .count(),
            1,
            "{out}"
        );
        assert!(rcv.iter().all(|f| f[9] == "-"), "{out}");
        // The listener (open before the script) and the accepted socket are
        // the server's, in its words; the client's socket in the client's.
        let state_process = lines("tcp_rcv_state_process");
        assert!(!state_process.is_empty(), "{out}");
        for f in &state_process {
            let words = match f[6] == "7001" {
                true => "server state change",
                false => "transfer into new state",
            };
            assert_eq!(description(f), words, "{out}");
        }
        let connect_us: u64 = established
            .last()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no connect time:\n{out}"));
        assert!(connect_us > 0, "{out}");
    });
}

#[test]
fn tcp_metrics() {
    lab::on_each_kernel("tcp_metrics.sh", |kernel, out| {
        let verifier = section(out, "verifier");
        assert!(
            verifier.contains("program(s) passed the kernel verifier"),
            "--mode both: {verifier}"
        );
        // A counter's growth over the run, in both namespaces (the only
        // TCP traffic of the guest).
        let delta = |counter: &str| -> u64 {
            ["nsc", "nss"]
                .iter()
                .map(|ns| {
                    value(section(out, &format!("{ns} after")), counter)
                        - value(section(out, &format!("{ns} before")), counter)
                })
                .sum()
        };
        // What netscript printed at exit (the only summary): totals since the start.
        let totals = section(out, "final");
        // Its warnings.
        let run = section(out, "run");
        // RTO expiries, tail loss probes and accept-queue overflows, exactly as
        // the kernel counts them (6.1 has no tcp_sock.total_rto: kprobes on
        // tcp_retransmit_timer, tcp_send_loss_probe, tcp_conn_request and
        // tcp_v4_syn_recv_sock).
        for (total, per_key, counter) in [
            ("@rto_overall", "@rto", "TcpExtTCPTimeouts"),
            ("@tlp_overall", "@tlp", "TcpExtTCPLossProbes"),
        ] {
            let traced = value(totals, total);
            assert!(traced > 0, "{total}: {out}");
            assert_eq!(traced, delta(counter), "{total} vs {counter}: {out}");
            assert_eq!(map_total(totals, per_key), traced, "{per_key}: {totals}");
        }
        let overflows = delta("TcpExtListenOverflows");
        assert!(overflows > 0, "{out}");
        assert_eq!(map_total(totals, "@listen_overflows"), overflows, "{out}");
        // One value per closed connection in both per-connection
        // distributions (the TLPs' from the tcp_set_state kprobe, the
        // retransmissions' from its tracepoint), and the TLPs of all of them
        // add up to the total counted.
        let tlps = hist_buckets(totals, "@tlp_per_connection");
        let retransmits = hist_buckets(totals, "@retransmits_per_connection");
        let connections: u64 = tlps.iter().map(|b| b.2).sum();
        assert!(connections > 0, "{totals}");
        assert_eq!(
            retransmits.iter().map(|b| b.2).sum::<u64>(),
            connections,
            "{totals}"
        );
        let low: u64 = tlps.iter().map(|(l, _, n)| l * n).sum();
        let high: u64 = tlps.iter().map(|(_, h, n)| (h - 1) * n).sum();
        let total = value(totals, "@tlp_overall");
        assert!(
            low <= total && total <= high,
            "{low}..={high} vs {total}: {totals}"
        );
        // One line for each metric this kernel cannot feed, saying why, and
        // no other.
        let off = tcp_metrics_off(kernel);
        for line in &off {
            assert_eq!(run.matches(line.as_str()).count(), 1, "{line}: {run}");
        }
        assert_eq!(
            run.matches(" off: ").count(),
            off.len(),
            "no other metric is off: {run}"
        );
        for metric in ["@srtt_us", "@cwnd", "@send_queue_bytes"] {
            assert!(
                totals.contains(&format!("\n{metric}: \n")),
                "{metric}: {totals}"
            );
        }
    });
}

/// The `metric ... off: why` lines tcp_metrics prints on `kernel`: 5.10
/// and 6.1 have no sock:sock_send_length/sock_recv_length (byte counts and
/// throughput; 6.12 has them), 5.10 no drop reason in skb:kfree_skb
/// (drops; 5.17+).
fn tcp_metrics_off(kernel: lab::Kernel) -> Vec<String> {
    let mut off = Vec::new();
    if !kernel.at_least(6, 12) {
        let send = "tracepoint sock:sock_send_length not found";
        let recv = "tracepoint sock:sock_recv_length not found";
        for (metric, why) in [
            ("@sent_bytes", send.to_string()),
            ("@sent_bytes_overall", send.to_string()),
            ("@received_bytes", recv.to_string()),
            ("@received_bytes_overall", recv.to_string()),
            ("@send_throughput_bytes", format!("{send}; {recv}")),
            ("@send_throughput_bytes_all", format!("{send}; {recv}")),
            ("@recv_throughput_bytes", format!("{send}; {recv}")),
            ("@recv_throughput_bytes_all", format!("{send}; {recv}")),
        ] {
            off.push(format!("netscript: warning: metric {metric} off: {why}\n"));
        }
    }
    if !kernel.at_least(5, 17) {
        for metric in ["@drops_host_wide", "@drops"] {
            off.push(format!(
                "netscript: warning: metric {metric} off: tracepoint skb:kfree_skb has no field reason\n"
            ));
        }
    }
    off
}
