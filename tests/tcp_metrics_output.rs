//! Live tests of scripts/tcp_metrics.ns, output: a real Prometheus server
//! scraping `--prometheus`, and the 10-second smoke command of
//! docs/tools/tcp_metrics.md run exactly as written there.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::NetnsPair;
use common::tcp_metrics::*;

/// GET `url` with curl; the body.
fn http_get(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn prometheus_scrapes_the_summary_and_promtool_accepts_it() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let p = NetnsPair::new("nstp", 34);
    let _server = Server::start(&p, 7005);
    let t = watch(7005, &["--prometheus", "127.0.0.1:19464"]);
    client(&p, &p.ip4[1], 7005, 2, 1000);

    let exposition = http_get("http://127.0.0.1:19464/metrics");
    assert!(
        exposition.contains("# TYPE netscript_srtt_seconds histogram"),
        "{}",
        exposition
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("promtool reads");
    let checked = promtool.wait_with_output().expect("promtool runs");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let dir = std::env::temp_dir().join(format!("tcpm-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netscript\n    static_configs:\n      - targets: ['127.0.0.1:19464']\n",
    )
    .expect("config written");
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:19090")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package prometheus) is installed");
    let query = "http://127.0.0.1:19090/api/v1/query?query=netscript_transitions_total%7Bkey1%3D%22SYN_SENT%22%2Ckey2%3D%22ESTABLISHED%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answer = String::new();
    while Instant::now() < deadline && !answer.contains("\"result\":[{") {
        std::thread::sleep(Duration::from_millis(500));
        answer = http_get(query);
    }
    let histogram = http_get(
        "http://127.0.0.1:19090/api/v1/query?query=netscript_connect_seconds_count%7Bkey%3D%22active%22%7D",
    );
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let (code, _, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    let parsed: serde_json::Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("Prometheus answered {:?}: {}", answer, e));
    assert_eq!(parsed["status"], "success", "{}", answer);
    let sample = &parsed["data"]["result"][0];
    assert_eq!(sample["metric"]["job"], "netscript", "{}", answer);
    assert_eq!(sample["value"][1], "2", "{}", answer);
    let parsed: serde_json::Value = serde_json::from_str(&histogram).expect("JSON");
    assert_eq!(
        parsed["data"]["result"][0]["value"][1], "2",
        "{}",
        histogram
    );
}

/// The shell block under "## Smoke test" in docs/tools/tcp_metrics.md.
fn smoke_command() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/tools/tcp_metrics.md"
    ))
    .expect("the tool page");
    let section = doc
        .split("\n## Smoke test\n")
        .nth(1)
        .expect("a Smoke test section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a sh block in the Smoke test section");
    block.to_string()
}

#[test]
fn the_smoke_command_of_the_docs_runs_in_ten_seconds() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let command = smoke_command();
    // Exactly as written, from the repository's root with this build's
    // netscript first on PATH, in a namespace of its own (its port is
    // then free and its traffic its own).
    let p = NetnsPair::new("nsts", 56);
    let bin = std::path::Path::new(common::netscript_bin())
        .parent()
        .expect("the binary's directory")
        .display()
        .to_string();
    let path = format!("{}:{}", bin, std::env::var("PATH").unwrap_or_default());
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &p.ns[0], "bash", "-c", &command])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{}", stdout, stderr);
    assert!((10.0..20.0).contains(&seconds), "{:.1} s", seconds);
    // The summary after 5 s (the heading counts the seconds since
    // netscript started, start-up included) and at exit: every connection
    // the traffic made while netscript ran, its connect time and its
    // close; detail events as JSON lines with both clocks.
    assert!(stdout.contains("--- tcp_metrics at "), "{}", stdout);
    let opened: u64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@transitions[CLOSE, SYN_SENT]: "))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum();
    assert!(opened >= 10, "{} connections:\n{}", opened, stdout);
    assert!(hist_count(&stdout, "@connect_us[active]") > 0, "{}", stdout);
    assert!(
        stdout.contains("@retransmits_per_connection: "),
        "{}",
        stdout
    );
    let events = json_events(&stdout);
    assert!(!events.is_empty(), "{}", stdout);
    assert!(events.iter().all(|e| e["wall_ns"].as_u64() > Some(0)));
}
