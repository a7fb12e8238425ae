//! Real-kernel tests: netscript against Debian bookworm's stock 6.1 kernel
//! (kprobes, fentry, openvswitch.ko) booted under qemu by `tests/lab/lab.sh`.
//! Each test boots the lab with the netscript binary cargo built in its
//! PATH, runs one guest script of `tests/lab/` (topology, traffic, netscript)
//! and asserts on what netscript printed. The tests take turns: one VM at a
//! time. Run one by name: `cargo test --release --test lab kprobe_counts`.
//! See docs/testing.md.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

/// One VM at a time: a TCG guest keeps both host cores busy.
static LAB: Mutex<()> = Mutex::new(());

const LAB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.sh");

/// A test that cannot run here: fails under `NETSCRIPT_REQUIRE_BPF=1`,
/// else skips with `why`.
fn cannot_run(why: &str) -> Option<String> {
    if std::env::var("NETSCRIPT_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("NETSCRIPT_REQUIRE_BPF=1 but the kernel lab cannot run: {why}");
    }
    eprintln!("skipping: {why} (set NETSCRIPT_REQUIRE_BPF=1 to make this a failure)");
    None
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs guest script `tests/lab/<script>` in a fresh lab VM (building the
/// lab first if it is not cached) and returns its output; `None` when the
/// lab cannot run here and the test is skipped. Panics when the script
/// fails.
fn lab_run(script: &str) -> Option<String> {
    if !netscript::testing::bpf_available() {
        return None;
    }
    let missing: Vec<&str> = ["qemu-system-x86_64", "debootstrap"]
        .into_iter()
        .filter(|p| !on_path(p) && !Path::new("/usr/sbin").join(p).is_file())
        .collect();
    if !missing.is_empty() {
        return cannot_run(&format!(
            "the kernel lab needs {} (apt-get install qemu-system-x86 debootstrap)",
            missing.join(" and ")
        ));
    }
    let _turn = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let build = Command::new(LAB_SH)
        .arg("dir")
        .output()
        .expect("run tests/lab/lab.sh");
    if !build.status.success() {
        return cannot_run(&format!(
            "building the kernel lab failed:\n{}",
            String::from_utf8_lossy(&build.stderr)
        ));
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_netscript"))
        .parent()
        .expect("the binary is in a directory");
    let script_path = Path::new(LAB_SH).with_file_name(script);
    let run = Command::new(LAB_SH)
        .arg("run")
        .arg("-w")
        .arg(bin_dir)
        .arg(&script_path)
        .output()
        .expect("run tests/lab/lab.sh");
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    let err = String::from_utf8_lossy(&run.stderr);
    println!("--- {script} in the lab:\n{out}{err}");
    if run.status.code() == Some(125) {
        return cannot_run(&format!("the lab VM did not boot or hung:\n{err}"));
    }
    assert!(run.status.success(), "{script} failed:\n{out}{err}");
    Some(out)
}

/// The lines after marker `=== name` up to the next marker.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let marker = format!("=== {name}\n");
    let start = out
        .find(&marker)
        .unwrap_or_else(|| panic!("no section '{name}' in:\n{out}"))
        + marker.len();
    let rest = &out[start..];
    &rest[..rest.find("=== ").unwrap_or(rest.len())]
}

/// The value printed for map entry `entry` (`@count`, `@[kprobe:f]`, `@dp[1]`).
fn value(out: &str, entry: &str) -> u64 {
    let prefix = format!("{entry}: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no value for {entry} in:\n{out}"))
}

/// The sum of every entry of map `map` (`@dp` sums `@dp[1]`, `@dp[6]`, ...).
fn map_total(out: &str, map: &str) -> u64 {
    let prefix = format!("{map}[");
    out.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(": ").next()?.trim().parse::<u64>().ok())
        .sum()
}

#[test]
fn kprobe_counts() {
    let Some(out) = lab_run("kprobe_counts.sh") else {
        return;
    };
    for probe in ["@kprobe", "@kretprobe", "@fentry", "@fexit"] {
        assert_eq!(value(&out, probe), 25, "{probe} counts every send()");
    }
    assert_eq!(value(&out, "@size"), 250, "fentry args.size: 25 x 10 bytes");
    assert_eq!(value(&out, "@sent"), 250, "fexit retval: 25 x 10 bytes");
}

#[test]
fn attach_tiering() {
    let Some(out) = lab_run("attach_tiering.sh") else {
        return;
    };
    let fentry = section(&out, "run");
    assert!(!fentry.contains("using kprobe"), "{fentry}");
    assert_eq!(value(fentry, "@[fentry:tcp_sendmsg]"), 25);
    assert_eq!(value(fentry, "@[fexit:tcp_sendmsg]"), 25);
    assert_eq!(value(fentry, "@sent"), 250);
    let refused = section(&out, "run --no-fentry");
    assert!(
        refused.contains(
            "netscript: fentry/fexit disabled by --no-fentry; using kprobe/kretprobe instead"
        ),
        "{refused}"
    );
    assert_eq!(value(refused, "@[kprobe:tcp_sendmsg]"), 25);
    assert_eq!(value(refused, "@[kretprobe:tcp_sendmsg]"), 25);
    assert_eq!(value(refused, "@sent"), 250);
}

#[test]
fn ovs_stages() {
    let Some(out) = lab_run("ovs_stages.sh") else {
        return;
    };
    // Maps are keyed by IP protocol: 1 ICMP (5 pings: 10 packets), 17 UDP
    // (7 unicast + 1 broadcast datagrams), 6 TCP (20 sends to br0's address).
    for map in ["@hook", "@dp"] {
        assert_eq!(value(&out, &format!("{map}[1]")), 10, "{map} ICMP");
        assert_eq!(value(&out, &format!("{map}[17]")), 8, "{map} UDP");
        assert!(value(&out, &format!("{map}[6]")) > 0, "{map} TCP");
    }
    assert!(value(&out, "@send[1]") >= 10, "every ICMP packet is output");
    assert!(
        value(&out, "@send[17]") >= 8,
        "every UDP datagram is output"
    );
    assert!(value(&out, "@send[6]") > 0);
    assert!(
        value(&out, "@upcall[1]") >= 1,
        "first pings miss the flow table"
    );
    assert_eq!(
        value(&out, "@[kprobe:ovs_flow_key_extract_userspace]"),
        map_total(&out, "@upcall"),
        "ovs-vswitchd executes every upcalled packet once"
    );
    assert!(value(&out, "@internal_xmit[6]") > 0, "br0 answers TCP");
    assert_eq!(
        value(&out, "@tap_xmit[17]"),
        1,
        "the broadcast floods to tap0"
    );
}

/// Path events of `out` (JSON lines), with their keys.
fn path_events(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "path")
        .map(|v| v["data"].clone())
        .collect()
}

#[test]
fn ovs_path() {
    let Some(out) = lab_run("ovs_path.sh") else {
        return;
    };
    let events = path_events(&out);
    let seen = |e: &Value, stage: &str| -> bool {
        e["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == stage))
            .is_some_and(|s| s["seen"] == true)
    };
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
}

#[test]
fn module_btf() {
    let Some(out) = lab_run("module_btf.sh") else {
        return;
    };
    let listing = section(&out, "listing");
    // -lv shows a module function's parameters from the module's BTF.
    assert!(
        listing.contains("kprobe:ovs_dp_process_packet\n"),
        "{listing}"
    );
    assert!(
        listing.contains("fentry:ovs_flow_key_extract_userspace\n"),
        "{listing}"
    );
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
    let run = section(&out, "run");
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
}

#[test]
fn catalogue() {
    let Some(out) = lab_run("catalogue.sh") else {
        return;
    };
    let stages: usize = section(&out, "stages").trim().parse().expect("a stage count");
    assert!(stages > 20, "{out}");
    let verifier = section(&out, "verifier");
    assert!(!verifier.contains("skipped"), "{verifier}");
    assert!(
        verifier.contains(&format!("netscript: {stages} program(s) passed the kernel verifier")),
        "{verifier}"
    );
}

#[test]
fn vlan_hw() {
    let Some(out) = lab_run("vlan_hw.sh") else {
        return;
    };
    // Tagged in skb->vlan_tci (VLAN 10), no tag in the bytes, ICMP inside.
    assert_eq!(value(&out, "@tx[10, 0, 1]"), 4, "{out}");
    assert_eq!(value(&out, "@rx[10, 0, 1]"), 4, "{out}");
}
