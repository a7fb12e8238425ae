//! Smoke test of the per-packet benchmark `bench/run` (issue #12): runs
//! `python3 bench/run --smoke` with the netscript binary cargo built and
//! checks that every part's machinery ran and that the per-stage cost of
//! scripts/skb_path_latency.ns was measured for both netscript and bpftrace.
//! Needs root, bpftrace, bpftool, iperf3 and python3; without them it skips,
//! or fails under `NETSCRIPT_REQUIRE_BPF=1`.

use std::process::Command;

const BENCH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/run");

/// Fails under `NETSCRIPT_REQUIRE_BPF=1`, else prints why the test is skipped.
fn cannot_run(why: &str) {
    if std::env::var("NETSCRIPT_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("NETSCRIPT_REQUIRE_BPF=1 but the benchmark cannot run: {why}");
    }
    eprintln!("skipping: {why} (set NETSCRIPT_REQUIRE_BPF=1 to make this a failure)");
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The cells of a markdown table row (without the outer pipes).
fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split(" | ")
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn bench_run_smoke() {
    if !netscript::testing::bpf_available() {
        return;
    }
    for tool in ["bpftrace", "bpftool", "iperf3", "python3", "ip"] {
        if !on_path(tool) {
            cannot_run(&format!("{tool} is not on PATH"));
            return;
        }
    }
    let out = Command::new("python3")
        .arg(BENCH)
        .args(["--smoke", "--netscript", env!("CARGO_BIN_EXE_netscript")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 bench/run runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/run --smoke failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(
            "| part | case | measure | netscript | bpftrace | ratio netscript/bpftrace | notes |"
        ),
        "no table header in:\n{stdout}"
    );
    for tracepoint in ["net_dev_queue", "netif_receive_skb"] {
        let row = stdout
            .lines()
            .filter(|l| l.starts_with("| 1 per-stage |") && l.contains(tracepoint))
            .map(cells)
            .find(|c| c.len() >= 6)
            .unwrap_or_else(|| panic!("no per-stage row for {tracepoint} in:\n{stdout}\n{stderr}"));
        // cells: part, case, measure, netscript, bpftrace, ratio, notes
        for (tool, cell) in [("netscript", &row[3]), ("bpftrace", &row[4])] {
            assert!(
                cell.contains(" ns (") && !cell.contains("(0 runs)"),
                "no per-stage cost for {tool} at {tracepoint}: {row:?}\n{stdout}"
            );
        }
        assert!(
            row[5].parse::<f64>().is_ok(),
            "no ratio for {tracepoint}: {row:?}"
        );
    }
    for part in [
        "| 2 throughput |",
        "| 3 map memory |",
        "| 4 start-up |",
        "| 4 peak RSS |",
        "| 5 compile |",
        "| 6 json events |",
    ] {
        assert!(stdout.contains(part), "no {part} row in:\n{stdout}");
    }
    // Nothing left behind: the namespaces are gone.
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains("nsbench-"),
        "bench/run left its namespaces behind"
    );
}
