//! The bundled path scripts pass the kernel verifier here, in their
//! default form (the tracepoint twins where kprobes cannot attach) and in
//! their kprobe form (`--stages kprobe`; the OVS functions this kernel
//! lacks are skipped with a notice), in both directions.

use std::process::Command;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");

/// Dry-runs `scripts/<script>` with `args` and returns stderr; panics
/// unless netscript succeeds and says every program passed the verifier.
fn dry_run(script: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_netscript"))
        .arg(format!("{SCRIPTS}/{script}"))
        .arg("--dry-run")
        .args(args)
        .output()
        .expect("run netscript");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{script} {args:?}:\n{err}");
    assert!(
        err.contains("program(s) passed the kernel verifier"),
        "{script} {args:?}:\n{err}"
    );
    err
}

/// Every form and direction of `script` with `flags`.
fn check_all_forms(script: &str, flags: &[&str]) {
    for direction in ["tx", "rx"] {
        for stages in ["auto", "kprobe"] {
            let mut args = vec!["--stages", stages, "--direction", direction];
            args.extend_from_slice(flags);
            let err = dry_run(script, &args);
            if stages == "kprobe" {
                // In the kprobe form only functions this kernel lacks (the
                // openvswitch module's, when it is not loaded) are left out.
                for line in err.lines().filter(|l| l.contains("stage skipped")) {
                    assert!(line.contains("not found"), "{line}");
                }
            }
        }
    }
}

#[test]
fn ovs_tcp_latency_passes_the_verifier() {
    if !netscript::testing::bpf_available() {
        return;
    }
    check_all_forms(
        "ovs_tcp_latency.ns",
        &[
            "--src-ip",
            "10.0.0.1",
            "--dst-ip",
            "10.0.0.2",
            "--src-port",
            "5000",
            "--dst-port",
            "80",
            // The original's two flags, aliases adding to one list.
            "--phy-iface1",
            "lo",
            "--phy-iface2",
            "lo",
            "--mode",
            "both",
            "--latency-us",
            "10",
            "--interval",
            "1s",
        ],
    );
}

#[test]
fn ovs_tcp_latency_recalls_the_send_in_its_kprobe_form_and_starts_at_ip_output_without() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // The recalled send stage (kprobe:tcp_sendmsg, both IPv4 and IPv6
    // paths in one program) passes the verifier with the other stages.
    let kprobe = dry_run(
        "ovs_tcp_latency.ns",
        &["--stages", "kprobe", "--direction", "tx"],
    );
    assert!(!kprobe.contains("S0_TCP_SENDMSG"), "{kprobe}");
    // Left out with the other kprobe stages where they cannot attach: the
    // paths start where they did without it.
    let tracepoints = dry_run(
        "ovs_tcp_latency.ns",
        &["--stages", "tracepoint", "--direction", "tx"],
    );
    assert!(
        tracepoints.contains(
            "warning: kprobe:tcp_sendmsg: left out by --stages tracepoint, stage skipped: \
             S0_TCP_SENDMSG (tcp_tx, tcp_tx6)"
        ),
        "{tracepoints}"
    );
}

#[test]
fn ovs_icmp_rtt_passes_the_verifier() {
    if !netscript::testing::bpf_available() {
        return;
    }
    check_all_forms(
        "ovs_icmp_rtt.ns",
        &[
            "--src-ip",
            "10.0.0.1",
            "--dst-ip",
            "10.0.0.2",
            "--phy-iface",
            "lo",
            "--latency-ms",
            "1",
            "--disable-kernel-stacks",
        ],
    );
}

#[test]
fn vm_network_latency_passes_the_verifier() {
    if !netscript::testing::bpf_available() {
        return;
    }
    check_all_forms(
        "vm_network_latency.ns",
        &[
            "--vm-dev",
            "lo",
            "--phy-dev",
            "lo",
            "--protocol",
            "tcp",
            "--dst-port",
            "80",
            "--mode",
            "both",
            "--latency-threshold",
            "50",
        ],
    );
}

/// The helpers netscript's code may call: maps, time, CPU, process
/// identity, stacks, kernel reads, the ring buffer, the probed function's
/// address. None writes kernel or user memory, overrides a return value,
/// sends a signal or changes a packet.
const OBSERVING_HELPERS: [i32; 16] = [
    1, 2, 3, 5, 8, 14, 15, 16, 27, 35, 80, 113, 115, 130, 134, 173,
];

/// The helper ids every program of a BPF ELF object calls (`call imm`
/// with source register 0; bpf-to-bpf calls and kfuncs use 1 and 2).
fn helper_calls(elf: &[u8]) -> Vec<i32> {
    use object::{Object, ObjectSection, SectionKind};
    let file = object::File::parse(elf).expect("an ELF object");
    let mut calls = Vec::new();
    for section in file.sections().filter(|s| s.kind() == SectionKind::Text) {
        let code = section.data().expect("section data");
        for insn in code.chunks_exact(8) {
            if insn[0] == 0x85 && insn[1] >> 4 == 0 {
                calls.push(i32::from_le_bytes(insn[4..8].try_into().unwrap()));
            }
        }
    }
    calls
}

/// netscript only observes: every bundled script, in every mode and in its
/// kprobe form, calls only [`OBSERVING_HELPERS`].
#[test]
fn the_bundled_scripts_only_observe() {
    let elf = std::env::temp_dir().join(format!("ns-observe-{}.o", std::process::id()));
    for entry in std::fs::read_dir(SCRIPTS).expect("scripts/") {
        let script = entry.expect("an entry").path();
        let name = script.file_name().unwrap().to_string_lossy().into_owned();
        let args: &[&str] = match name.as_str() {
            "xdp_packet_log.ns" => &["--dev", "lo"],
            "tcp_connlife.ns" => &[],
            _ => &["--mode", "both"],
        };
        let out = Command::new(env!("CARGO_BIN_EXE_netscript"))
            .arg(&script)
            .args(["--stages", "kprobe", "-d", "bpf", "--emit-elf"])
            .arg(&elf)
            .args(args)
            .output()
            .expect("run netscript");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let calls = helper_calls(&std::fs::read(&elf).expect("the object"));
        assert!(!calls.is_empty(), "{name}: no helper calls found");
        for id in calls {
            assert!(OBSERVING_HELPERS.contains(&id), "{name} calls helper {id}");
        }
    }
    std::fs::remove_file(&elf).expect("remove the object");
}
