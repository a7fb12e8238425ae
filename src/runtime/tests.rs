//! Runtime tests against the running kernel (they need root).

use std::cell::Cell;
use std::process::Command;
use std::time::{Duration, Instant};

use super::test_programs::*;
use super::*;
use crate::bpf::{map_type, AttachPoint, MapSpec};
use crate::object::{write_object, ProgramSection};
use crate::testing::bpf_available;

fn load_programs(programs: &[ProgramSection], maps: &[MapSpec]) -> LoadedObject {
    let elf = write_object(programs, maps).expect("object written");
    load(&elf).unwrap_or_else(|e| panic!("load failed: {e}\n{}", e.verifier_log))
}

fn u64_at(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

fn program_exists(id: u32) -> bool {
    libbpf_rs::Program::fd_from_id(id).is_ok()
}

#[test]
fn tracepoint_counts_ping_packets_and_fills_ring_buffer() {
    if !bpf_available() {
        return;
    }
    let maps = [
        map("counts", map_type::HASH, 8, 8, 1024),
        map("events", map_type::RINGBUF, 0, 0, 4096 * 4),
    ];
    let mut obj = load_programs(&[packet_counter()], &maps);
    let point = AttachPoint::Tracepoint {
        category: "net".into(),
        name: "netif_receive_skb".into(),
    };
    obj.attach("count_packets", &point).expect("attached");
    let status = Command::new("ping")
        .args([
            "-c",
            "3",
            "-i",
            "0.2",
            "-s",
            &PING_PAYLOAD.to_string(),
            "-q",
            "127.0.0.1",
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("ping runs");
    assert!(status.success());

    let key = (PING_IP_LEN as u64).to_le_bytes();
    let count = obj
        .map_lookup("counts", &key)
        .expect("lookup")
        .expect("ping packets counted");
    assert_eq!(count.len(), 1);
    assert_eq!(u64_at(&count[0]), 6, "3 requests + 3 replies on lo");
    let entries = obj.map_entries("counts").expect("entries");
    assert!(entries.iter().any(|(k, v)| k == &key && u64_at(&v[0]) == 6));

    let records = Cell::new(0);
    let reader = obj
        .ring_buffer("events", |record| {
            assert_eq!(record.len(), 8);
            records.set(records.get() + 1);
        })
        .expect("ring buffer");
    let deadline = Instant::now() + Duration::from_secs(2);
    while records.get() < 6 && Instant::now() < deadline {
        reader.poll(Duration::from_millis(50)).expect("poll");
    }
    assert_eq!(records.get(), 6);

    obj.map_delete_all("counts").expect("cleared");
    assert!(obj.map_lookup("counts", &key).expect("lookup").is_none());
}

#[test]
fn raw_tp_programs_share_a_section_and_run_once() {
    if !bpf_available() {
        return;
    }
    let programs = [
        array_writer("begin", 1, 42, 7),
        array_writer("end", 0, 43, 8),
    ];
    let obj = load_programs(&programs, &[array_map("vals", 2)]);
    assert_eq!(obj.run_once("begin").expect("ran"), 7);
    assert_eq!(obj.run_once("end").expect("ran"), 8);
    let value = |key: u32| {
        u64_at(
            &obj.map_lookup("vals", &key.to_le_bytes())
                .expect("lookup")
                .expect("present")[0],
        )
    };
    assert_eq!((value(0), value(1)), (43, 42));
    assert_eq!(obj.map_entries("vals").expect("entries").len(), 2);

    obj.map_update("vals", &1u32.to_le_bytes(), &[5u64.to_le_bytes().to_vec()])
        .expect("updated");
    assert_eq!(value(1), 5);
    obj.map_delete_all("vals").expect("zeroed");
    assert_eq!((value(0), value(1)), (0, 0));
    assert!(obj.run_once("nonexistent").is_err());
}

#[test]
fn percpu_map_gives_one_value_per_possible_cpu() {
    if !bpf_available() {
        return;
    }
    let maps = [map("pc", map_type::PERCPU_HASH, 4, 8, 16)];
    let obj = load_programs(&[updater("raw_tp", "fill", 5, 9)], &maps);
    obj.run_once("fill").expect("ran");
    let cpus = libbpf_rs::num_possible_cpus().expect("cpu count");
    let values = obj
        .map_lookup("pc", &5u32.to_le_bytes())
        .expect("lookup")
        .expect("present");
    assert_eq!(values.len(), cpus);
    assert_eq!(
        values.iter().map(|v| u64_at(v)).sum::<u64>(),
        9,
        "only the running CPU's slot is set"
    );

    let per_cpu: Vec<Vec<u8>> = (0..cpus as u64)
        .map(|cpu| (cpu + 1).to_le_bytes().to_vec())
        .collect();
    obj.map_update("pc", &6u32.to_le_bytes(), &per_cpu)
        .expect("updated");
    let entries = obj.map_entries("pc").expect("entries");
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .any(|(k, v)| k == &6u32.to_le_bytes() && v == &per_cpu));
    obj.map_delete_all("pc").expect("cleared");
    assert!(obj.map_entries("pc").expect("entries").is_empty());
}

#[test]
fn interval_program_fires_repeatedly() {
    if !bpf_available() {
        return;
    }
    let mut obj = load_programs(&[tick_counter()], &[array_map("ticks", 1)]);
    obj.attach(
        "tick",
        &AttachPoint::Interval {
            period_ns: 10_000_000,
        },
    )
    .expect("attached");
    std::thread::sleep(Duration::from_millis(200));
    let ticks = u64_at(
        &obj.map_lookup("ticks", &0u32.to_le_bytes())
            .expect("lookup")
            .expect("present")[0],
    );
    assert!(ticks >= 3, "only {ticks} ticks in 200 ms");
}

#[test]
fn kprobe_loads_but_attach_names_the_function() {
    if !bpf_available() {
        return;
    }
    let mut obj = load_programs(&[returning("kprobe/tcp_sendmsg", "on_send", 0)], &[]);
    let point = AttachPoint::Kprobe {
        func: "tcp_sendmsg".into(),
        retprobe: false,
    };
    match obj.attach("on_send", &point) {
        Ok(()) => {} // a kernel with CONFIG_KPROBES attaches it
        Err(error) => {
            assert!(
                error.message.contains("kprobe:tcp_sendmsg"),
                "{}",
                error.message
            );
            assert!(
                error.notes.iter().any(|note| note.contains("tcp_sendmsg")),
                "{:?}",
                error.notes
            );
        }
    }
}

#[test]
fn verifier_rejection_carries_log_and_failing_instruction() {
    if !bpf_available() {
        return;
    }
    let elf = write_object(
        &[unchecked_lookup()],
        &[map("vals", map_type::HASH, 4, 8, 1)],
    )
    .expect("written");
    let error = load(&elf).err().expect("rejected");
    assert_eq!(error.program.as_deref(), Some("bad"));
    assert!(
        error.verifier_log.contains("invalid mem access"),
        "{}",
        error.verifier_log
    );
    assert_eq!(failing_insn(&error.verifier_log), Some(UNCHECKED_LOAD_INSN));
    assert!(verifier_summary(&error.verifier_log, 3).contains("invalid mem access"));
    let diagnostic = Diagnostic::from(error);
    assert!(diagnostic.message.contains("'bad'"));
    assert!(diagnostic
        .notes
        .iter()
        .any(|note| note.contains("invalid mem access")));
}

#[test]
fn garbage_is_a_load_error_without_program() {
    if !bpf_available() {
        return;
    }
    let error = load(b"not an ELF object").err().expect("rejected");
    assert_eq!(error.program, None);
    assert!(error.verifier_log.is_empty());
    assert!(!error.message.is_empty());
}

#[test]
fn drop_unloads_everything() {
    if !bpf_available() {
        return;
    }
    let mut obj = load_programs(
        &[packet_counter(), returning("raw_tp", "begin", 0)],
        &[
            map("counts", map_type::HASH, 8, 8, 16),
            map("events", map_type::RINGBUF, 0, 0, 4096),
        ],
    );
    let point = AttachPoint::Tracepoint {
        category: "net".into(),
        name: "netif_receive_skb".into(),
    };
    obj.attach("count_packets", &point).expect("attached");
    let ids = obj.program_ids();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|&id| program_exists(id)));
    let stats = obj.program_stats();
    assert_eq!(stats.len(), 2);
    assert!(stats.iter().any(|s| s.name == "count_packets"));
    drop(obj);
    assert!(
        ids.iter().all(|&id| !program_exists(id)),
        "programs still loaded after drop"
    );
}

/// A veth pair whose peer lives in a fresh network namespace; both are
/// removed on drop, also when the test fails.
struct VethInNetns {
    device: String,
    netns: String,
}

fn ip(args: &[&str]) -> String {
    let output = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl VethInNetns {
    fn create() -> Self {
        let id = std::process::id();
        let veth = VethInNetns {
            device: format!("nsobj{id}"),
            netns: format!("nsobj{id}"),
        };
        ip(&["netns", "add", &veth.netns]);
        ip(&[
            "link",
            "add",
            &veth.device,
            "type",
            "veth",
            "peer",
            "name",
            "peer0",
            "netns",
            &veth.netns,
        ]);
        ip(&["link", "set", &veth.device, "up"]);
        veth
    }

    fn ifindex(&self) -> i32 {
        let path = format!("/sys/class/net/{}/ifindex", self.device);
        std::fs::read_to_string(path)
            .expect("ifindex")
            .trim()
            .parse()
            .expect("number")
    }
}

impl Drop for VethInNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.device])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[test]
fn xdp_attaches_to_veth_and_detaches_on_drop() {
    if !bpf_available() {
        return;
    }
    let veth = VethInNetns::create();
    let mut obj = load_programs(&[returning("xdp", "pass", 2)], &[]);
    obj.attach(
        "pass",
        &AttachPoint::Xdp {
            ifindex: veth.ifindex(),
        },
    )
    .expect("attached");
    assert!(ip(&["link", "show", &veth.device]).contains("xdp"));
    drop(obj);
    assert!(!ip(&["link", "show", &veth.device]).contains("xdp"));
}

#[test]
fn bpftool_loads_our_object() {
    if !bpf_available() {
        return;
    }
    let maps = [
        map("counts", map_type::HASH, 8, 8, 16),
        map("events", map_type::RINGBUF, 0, 0, 4096),
    ];
    let elf =
        write_object(&[packet_counter(), returning("raw_tp", "begin", 0)], &maps).expect("written");
    let dir = std::env::temp_dir().join(format!("netscript-bpftool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("object.o");
    std::fs::write(&file, &elf).expect("written");
    // `bpftool prog load` without pinning: loads, verifies, then releases.
    let output = Command::new("bpftool")
        .args(["-d", "prog", "loadall"])
        .arg(&file)
        .arg(dir.join("pins"))
        .output()
        .expect("bpftool runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Without bpffs bpftool fails only at pinning, after loading every program.
    assert!(!stderr.contains("failed to load object"), "{stderr}");
    assert!(!stderr.contains("load failed"), "{stderr}");
}
