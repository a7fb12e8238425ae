//! A KVM host in miniature in the kernel lab (`tests/lab/vm_topology.sh`):
//! a "VM" (a network namespace behind tap port tap0, joined to it by
//! `tests/lab/tap_vm.py` as qemu joins a guest's NIC to its tap) on an
//! ovs-vswitchd bridge whose "physical NIC" is a veth, or a bond of three,
//! to a namespace playing the remote host. The VM's ICMP, UDP and TCP
//! traffic (`tests/lab/vm_traffic.sh`) is traced with
//! `scripts/vm_network_latency.ns` both ways, and the host's TCP with
//! `scripts/ovs_tcp_latency.ns` through the bond, with exact counts: every
//! packet a device sent is reported once, in its protocol's group, through
//! the port it took; a port left out of the interface list is filtered.
//! Runs on every kernel of the lab (`tests/common/lab.rs`); one kernel:
//! `NETSCRIPT_LAB_KERNELS=bookworm cargo test --release --test lab_vm`.

mod common;

use common::lab::{self, path_events, section, segments_ns, stage_seen};
use serde_json::Value;

/// The protocols of vm_traffic.sh's phases and their groups in the reports.
const PROTOCOLS: [(&str, &str); 3] = [("icmp", "ICMP"), ("udp", "UDP"), ("tcp", "TCP")];

/// The stages that fire only for a packet that missed the flow table.
const UPCALL_STAGES: [&str; 2] = ["OVS_UPCALL", "OVS_KEY_EXTRACT"];

/// What vm_traffic.sh printed after phase `proto`: how many packets
/// device `dev` (`NETNS:DEV`) sent; `None` when there was no such phase.
fn sent(out: &str, proto: &str, dev: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.strip_prefix("sent ").and_then(|r| r.split(' ').next()) == Some(proto))?;
    let value = line
        .split(' ')
        .find_map(|w| w.strip_prefix(&format!("{dev}=")))
        .unwrap_or_else(|| panic!("no count for {dev} in {line}"));
    Some(value.parse().expect("a packet count"))
}

/// The name of the device stage `stage` of `e` saw.
fn interface<'a>(e: &'a Value, stage: &str) -> &'a str {
    e["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == stage))
        .and_then(|s| s["interface"].as_str())
        .unwrap_or_else(|| panic!("no interface at {stage}: {e:#}"))
}

fn ts(e: &Value, stage: &str) -> u64 {
    e["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == stage))
        .and_then(|s| s["ts_ns"].as_u64())
        .unwrap_or_else(|| panic!("no time at {stage}: {e:#}"))
}

/// The counters line of `path` (its last).
fn stats<'a>(objects: &'a [Value], path: &str) -> &'a Value {
    &objects
        .iter()
        .rfind(|o| o["type"] == "stats" && o["data"]["path"] == path)
        .unwrap_or_else(|| panic!("no counters for {path}"))["data"]
}

/// How many different packets (keys) `events` report.
fn distinct_keys(events: &[&Value]) -> usize {
    let keys: std::collections::HashSet<String> =
        events.iter().map(|e| e["key"].to_string()).collect();
    keys.len()
}

fn objects(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// One direction of vm_network_latency: its path, its first and last
/// stages, the addresses of its packets, and where the count of packets
/// that went through physical port `phN` is read (`sw:phN` sent them
/// towards the remote host, `rh:ethN` sent them to the host).
struct Direction {
    path: &'static str,
    first: &'static str,
    last: &'static str,
    src: &'static str,
    dst: &'static str,
    /// Is the physical port the last stage's (tx) or the first's (rx)?
    phy_last: bool,
}

const TX: Direction = Direction {
    path: "vm_tx",
    first: "TUN_RX",
    last: "DEV_QUEUE",
    src: "10.2.2.1",
    dst: "10.2.2.2",
    phy_last: true,
};

const RX: Direction = Direction {
    path: "vm_rx",
    first: "PHY_RX",
    last: "TUN_XMIT",
    src: "10.2.2.2",
    dst: "10.2.2.1",
    phy_last: false,
};

impl Direction {
    /// Packets of phase `proto` that went through port `phN`.
    fn through(&self, traffic: &str, proto: &str, port: usize) -> u64 {
        let dev = match self.phy_last {
            true => format!("sw:ph{port}"),
            false => format!("rh:eth{port}"),
        };
        sent(traffic, proto, &dev).unwrap_or_else(|| panic!("no {dev} count: {traffic}"))
    }

    /// The physical port stage.
    fn phy_stage(&self) -> &'static str {
        match self.phy_last {
            true => self.last,
            false => self.first,
        }
    }
}

/// vm_network_latency's detail reports (JSON) of a run over the VM's
/// traffic `traffic` (vm_traffic.sh's lines) on a host of `ports`
/// physical ports, `--phy-dev` listing those of `listed` (1-based):
/// each packet that went through a listed port is reported once, in
/// its protocol's group, at that port, every stage that must fire fired
/// (the upcall stages both or neither; of the packets reported, once one
/// took the fast path, all later did; with every port listed, the first
/// packet of each protocol upcalled and the last not), segments adding
/// up to the total; packets through other ports are not reported (tx:
/// left incomplete at exit; rx: never started).
fn check_detail(out: &str, ports: usize, listed: &[usize]) {
    let objects = objects(out);
    let events = path_events(out);
    for d in [TX, RX] {
        let (mut started, mut completed) = (0, 0);
        for (proto, group) in PROTOCOLS {
            let Some(vm_sent) = sent(out, proto, "vm:eth0") else {
                continue;
            };
            let mut mine: Vec<&Value> = events
                .iter()
                .filter(|e| e["path"] == d.path && e["info"][0] == group)
                .collect();
            for port in 1..=ports {
                let n = d.through(out, proto, port);
                let at_port = mine
                    .iter()
                    .filter(|e| interface(e, d.phy_stage()) == format!("ph{port}"))
                    .count() as u64;
                let expected = if listed.contains(&port) { n } else { 0 };
                assert_eq!(at_port, expected, "{} {group} through ph{port}", d.path);
                completed += expected;
                started += match d.phy_last {
                    true => n,
                    false => expected,
                };
            }
            if d.phy_last {
                let all: u64 = (1..=ports).map(|p| d.through(out, proto, p)).sum();
                assert_eq!(
                    all, vm_sent,
                    "{proto}: every packet the VM sent left by a port"
                );
            }
            mine.sort_by_key(|e| ts(e, d.first));
            assert_eq!(
                distinct_keys(&mine),
                mine.len(),
                "each packet once: {mine:#?}"
            );
            let upcalled: Vec<bool> = mine.iter().map(|e| check_packet(e, &d, listed)).collect();
            // The first and the last packet of the phase are among those
            // reported when every port is listed.
            if listed.len() == ports {
                assert!(
                    upcalled.first() == Some(&true) && upcalled.last() == Some(&false),
                    "{} {group}: the first packet is upcalled, the last is not: {upcalled:?}",
                    d.path
                );
            }
            assert!(
                upcalled.windows(2).all(|w| w[0] || !w[1]),
                "{} {group}: once on the fast path, always: {upcalled:?}",
                d.path
            );
        }
        let s = stats(&objects, d.path);
        assert_eq!(s["started"].as_u64(), Some(started), "{s:#}");
        assert_eq!(s["completed"].as_u64(), Some(completed), "{s:#}");
        assert_eq!(s["incomplete"].as_u64(), Some(started - completed), "{s:#}");
        for counter in ["evicted", "replaced", "filtered", "suppressed", "lost"] {
            assert_eq!(s[counter], 0, "{counter}: {s:#}");
        }
    }
}

/// One packet report of direction `d`: addresses, devices, every stage
/// but the upcall ones fired, segments adding up. Returns whether the
/// packet was upcalled.
fn check_packet(e: &Value, d: &Direction, listed: &[usize]) -> bool {
    assert_eq!(
        (e["info"][1].as_str(), e["info"][3].as_str()),
        (Some(d.src), Some(d.dst)),
        "{e:#}"
    );
    let (vm, phy) = match d.phy_last {
        true => (d.first, d.last),
        false => (d.last, d.first),
    };
    assert_eq!(interface(e, vm), "tap0", "{e:#}");
    let port = interface(e, phy);
    assert!(
        listed.iter().any(|p| port == format!("ph{p}")),
        "{port}: {e:#}"
    );
    let stages = e["stages"].as_array().expect("stages");
    for s in stages {
        let name = s["name"].as_str().expect("a stage name");
        if !UPCALL_STAGES.contains(&name) {
            assert_eq!(s["seen"], true, "{name}: {e:#}");
        }
    }
    let upcalled = stage_seen(e, UPCALL_STAGES[0]);
    assert_eq!(upcalled, stage_seen(e, UPCALL_STAGES[1]), "{e:#}");
    let sum = segments_ns(e);
    assert_eq!(Some(sum), e["total_ns"].as_u64(), "segments add up: {e:#}");
    assert_eq!(ts(e, d.last) - ts(e, d.first), sum, "{e:#}");
    upcalled
}

/// vm_network_latency's histograms (JSON, all the prints of a run) over
/// the VM's traffic on one physical port: per direction and protocol group, the total
/// counts every packet once, and so do the segments out of each stage that
/// must fire (the upcalled packets' through OVS_UPCALL, at least the first
/// of each group's).
fn check_histograms(out: &str) {
    let objects = objects(out);
    for d in [TX, RX] {
        let hists: Vec<(&String, &Value)> = objects
            .iter()
            .filter(|o| o["type"] == "hist")
            .filter_map(|o| o["data"][format!("@{}", d.path)].as_object())
            .flatten()
            .collect();
        let count = |prefix: &str| -> u64 {
            hists
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .flat_map(|(_, h)| h["buckets"].as_array().expect("buckets"))
                .filter_map(|b| b["count"].as_u64())
                .sum()
        };
        let mut packets = 0;
        for (proto, group) in PROTOCOLS {
            let n = d.through(out, proto, 1);
            packets += n;
            assert_eq!(count(&format!("{group},total")), n, "{} {group}", d.path);
            for stage in [d.first, "OVS_FRAME_HOOK", "OVS_DP", "OVS_VPORT_SEND"] {
                assert_eq!(
                    count(&format!("{group},{stage} -> ")),
                    n,
                    "{} {group}: segments from {stage}",
                    d.path
                );
            }
            assert!(
                count(&format!("{group},OVS_DP -> OVS_UPCALL")) >= 1,
                "{} {group}: the first packet is upcalled",
                d.path
            );
        }
        let s = stats(&objects, d.path);
        assert_eq!(s["completed"].as_u64(), Some(packets), "{s:#}");
        assert_eq!(s["started"], s["completed"], "{s:#}");
    }
}

#[test]
fn vm_network_latency_through_ovs() {
    lab::on_each_kernel("vm_network_latency.sh", |_, out| {
        let run = section(out, "run");
        check_detail(run, 1, &[1]);
        check_histograms(run);
    });
}

/// A host path's run through the bond (`tcp all ports`, `icmp two ports`...
/// of vm_bond.sh): every packet the host sent through a listed port is
/// reported there (at stage `at_port`), once. A packet through another
/// port is left incomplete when `at_port` ends the path (TCP); when later
/// stages follow it (ICMP: the reply), it completes with `at_port` not
/// seen. `path` names the run's counters.
fn check_host_bond(out: &str, path: &str, at_port: &str, listed: &[usize]) {
    let events = path_events(out);
    let port_of = |e: &Value| -> String {
        let stages = e["stages"].as_array().expect("stages");
        let stage = stages
            .iter()
            .find(|s| s["name"] == at_port)
            .expect("the stage");
        stage["interface"]
            .as_str()
            .unwrap_or("(not seen)")
            .to_string()
    };
    let ends_path = events
        .first()
        .and_then(|e| e["stages"].as_array()?.last().cloned())
        .is_some_and(|last| last["name"] == at_port);
    let packets = |when: &str, port: usize| -> u64 {
        let dev = format!("{when} ph{port} ");
        out.lines()
            .find_map(|l| l.strip_prefix(&dev))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {dev}count: {out}"))
    };
    let (mut started, mut completed) = (0, 0);
    for port in 1..=3 {
        let n = packets("after", port) - packets("before", port);
        assert!(n > 0, "round robin sends through ph{port}: {out}");
        let reported = events
            .iter()
            .filter(|e| port_of(e) == format!("ph{port}"))
            .count() as u64;
        let expected = if listed.contains(&port) { n } else { 0 };
        assert_eq!(reported, expected, "through ph{port}: {events:#?}");
        started += n;
        completed += if ends_path { expected } else { n };
    }
    let events: Vec<&Value> = events.iter().collect();
    assert_eq!(distinct_keys(&events), events.len(), "each packet once");
    let objects = objects(out);
    let s = stats(&objects, path);
    assert_eq!(s["started"].as_u64(), Some(started), "{s:#}");
    assert_eq!(s["completed"].as_u64(), Some(completed), "{s:#}");
    assert_eq!(s["incomplete"].as_u64(), Some(started - completed), "{s:#}");
}

#[test]
fn bond_ports_through_ovs() {
    lab::on_each_kernel("vm_bond.sh", |_, out| {
        let all = section(out, "vm all ports");
        for port in 1..=3 {
            for d in [TX, RX] {
                let n: u64 = ["icmp", "udp"]
                    .iter()
                    .map(|p| d.through(all, p, port))
                    .sum();
                assert!(n > 0, "{}: round robin uses ph{port}: {all}", d.path);
            }
        }
        check_detail(all, 3, &[1, 2, 3]);
        check_detail(section(out, "vm two ports"), 3, &[1, 2]);
        for (run, listed) in [("all ports", &[1, 2, 3][..]), ("two ports", &[1, 2])] {
            let tcp = section(out, &format!("tcp {run}"));
            check_host_bond(tcp, "tcp_tx", "S7_DEV_QUEUE_XMIT", listed);
            let icmp = section(out, &format!("icmp {run}"));
            check_host_bond(icmp, "ovs_icmp_rtt_tx", "P1_S6_DEV_QUEUE_XMIT", listed);
        }
    });
}
