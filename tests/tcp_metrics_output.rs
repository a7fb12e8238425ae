//! Live tests of scripts/tcp_metrics.ns, output: a real Prometheus server
//! scraping `--prometheus` (one netscript, then a fleet of two, each its
//! own `instance`, aggregated with PromQL as docs/deploy.md shows), and the
//! 10-second smoke command of docs/tools/tcp_metrics.md run exactly as
//! written there.

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

/// Calls `attempt` every 200 ms until it gives a value; panics with
/// `what` after `timeout`.
fn poll<T>(timeout: Duration, what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {}", what);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asserts that `promtool check metrics` accepts `exposition`.
fn promtool_accepts(exposition: &str) {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
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
}

/// A real Prometheus server (Debian's `prometheus`) on loopback, scraping
/// netscript targets every second as job `netscript`; killed, and its
/// data removed, on drop.
struct Prometheus {
    child: std::process::Child,
    dir: std::path::PathBuf,
    api: String,
}

impl Prometheus {
    /// Starts it on 127.0.0.1:`port` with one static target per
    /// (`address`, `instance`): each target's `instance` label is the name
    /// given, as a fleet's scrape configuration names each host.
    fn start(port: u16, targets: &[(&str, &str)]) -> Prometheus {
        let dir =
            std::env::temp_dir().join(format!("tcpm-prometheus-{}-{}", std::process::id(), port));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netscript\n    static_configs:\n",
        );
        for (address, instance) in targets {
            config.push_str(&format!(
                "      - targets: ['{}']\n        labels:\n          instance: {}\n",
                address, instance
            ));
        }
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).expect("config written");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus) is installed");
        Prometheus {
            child,
            dir,
            api: format!("http://127.0.0.1:{}/api/v1/query", port),
        }
    }

    /// The result vector of the instant query `promql` (empty until the
    /// server answers and has the series).
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-sfG", "--max-time", "5", &self.api, "--data-urlencode"])
            .arg(format!("query={}", promql))
            .output()
            .expect("curl runs");
        let body = String::from_utf8_lossy(&out.stdout);
        if body.is_empty() {
            return Vec::new();
        }
        let parsed: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("Prometheus answered {:?}: {}", body, e));
        assert_eq!(parsed["status"], "success", "{}", body);
        parsed["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `promql` until it has `series` series; returns them.
    fn wait_for(&self, promql: &str, series: usize) -> Vec<serde_json::Value> {
        poll(Duration::from_secs(60), promql, || {
            let result = self.query(promql);
            (result.len() == series).then_some(result)
        })
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of a query result's sample, as a number.
fn sample_value(sample: &serde_json::Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {}", sample))
}

/// The sum of the samples of `metric` (its name exactly, any labels) in
/// an exposition.
fn exposition_sum(exposition: &str, metric: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no value in {}", l))
        })
        .sum()
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
    promtool_accepts(&exposition);

    let prometheus = Prometheus::start(19090, &[("127.0.0.1:19464", "local")]);
    let established = prometheus.wait_for(
        "netscript_transitions_total{key1=\"SYN_SENT\",key2=\"ESTABLISHED\"}",
        1,
    );
    let connects = prometheus.wait_for("netscript_connect_seconds_count{key=\"active\"}", 1);
    drop(prometheus);
    let (code, _, err) = t.interrupt();
    assert_eq!(code, 0, "{}", err);
    assert_eq!(established[0]["metric"]["job"], "netscript");
    assert_eq!(established[0]["metric"]["instance"], "local");
    assert_eq!(sample_value(&established[0]), 2.0);
    assert_eq!(sample_value(&connects[0]), 2.0);
}

#[test]
fn prometheus_aggregates_two_instances_by_their_instance_label() {
    if !netscript::testing::bpf_available() {
        return;
    }
    // Two "hosts": two netscripts, each watching its own server port,
    // with 2 and 3 connections.
    let p = NetnsPair::new("nstg", 57);
    let hosts = [("node-a", 7021, 19466, 2), ("node-b", 7022, 19467, 3)];
    let mut running = Vec::new();
    for (_, port, metrics_port, _) in hosts {
        let server = Server::start(&p, port);
        let listen = format!("127.0.0.1:{}", metrics_port);
        running.push((server, watch(port, &["--prometheus", &listen])));
    }
    for (_, port, _, connections) in hosts {
        client(&p, &p.ip4[1], port, connections, 1000);
    }
    let targets: Vec<(String, &str)> = hosts
        .iter()
        .map(|(name, _, metrics_port, _)| (format!("127.0.0.1:{}", metrics_port), *name))
        .collect();
    let targets: Vec<(&str, &str)> = targets.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    let prometheus = Prometheus::start(19091, &targets);

    // Each instance's own figure, from its /metrics, until Prometheus has
    // scraped that same figure from both.
    let per_instance = "sum by (instance) (netscript_transitions_total)";
    let (own, by_instance) = poll(Duration::from_secs(60), per_instance, || {
        let own: Vec<f64> = hosts
            .iter()
            .map(|(_, _, metrics_port, _)| {
                let exposition = http_get(&format!("http://127.0.0.1:{}/metrics", metrics_port));
                exposition_sum(&exposition, "netscript_transitions_total")
            })
            .collect();
        let by_instance = prometheus.query(per_instance);
        let scraped: Vec<f64> = hosts
            .iter()
            .map(|(name, ..)| {
                by_instance
                    .iter()
                    .find(|s| s["metric"]["instance"] == *name)
                    .map_or(-1.0, sample_value)
            })
            .collect();
        (scraped == own).then_some((own, by_instance))
    });
    // Printed for docs/deploy.md (`cargo test ... -- --nocapture`).
    let [total, established, p99] = [
        "sum(netscript_transitions_total)",
        "sum by (instance) (netscript_transitions_total{key1=\"SYN_SENT\",key2=\"ESTABLISHED\"})",
        "histogram_quantile(0.99, sum by (instance, le) (netscript_connect_seconds_bucket{key=\"active\"}))",
    ]
    .map(|promql| {
        let result = prometheus.query(promql);
        println!("{}\n  {}", promql, serde_json::Value::from(result.clone()));
        result
    });
    println!(
        "{}\n  {}",
        per_instance,
        serde_json::Value::from(by_instance.clone())
    );
    drop(prometheus);
    for (_, t) in running {
        let (code, _, err) = t.interrupt();
        assert_eq!(code, 0, "{}", err);
    }

    assert_eq!(by_instance.len(), 2, "{:?}", by_instance);
    assert!(own[0] > 0.0 && own[0] < own[1], "{:?}", own);
    assert_eq!(total.len(), 1, "{:?}", total);
    assert_eq!(sample_value(&total[0]), own[0] + own[1]);
    for (name, _, _, connections) in hosts {
        let of = |result: &[serde_json::Value]| {
            result
                .iter()
                .find(|s| s["metric"]["instance"] == name)
                .map(sample_value)
                .unwrap_or_else(|| panic!("no {} in {:?}", name, result))
        };
        assert_eq!(of(&established), connections as f64);
        // The p99 connect time of the instance: a loopback handshake, under 1 s.
        let q = of(&p99);
        assert!(q > 0.0 && q < 1.0, "{}", q);
    }
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
    // The state changes table's CLOSE -> SYN_SENT row, in each summary.
    let opened: u64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("CLOSE, SYN_SENT "))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum();
    assert!(opened >= 10, "{} connections:\n{}", opened, stdout);
    // The connect times' row of the connections made: its p50 and p99.
    assert!(
        stdout.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.len() >= 3
                && cells[0] == "active"
                && cells[1..3].iter().all(|c| c.parse::<u64>().is_ok())
        }),
        "{}",
        stdout
    );
    // The tables: overall, one row per metric; per connection, a row for
    // each connection to the server (its remote port 18765).
    for heading in ["overall (us, segments, bytes):\n", "drops by reason"] {
        assert!(stdout.contains(heading), "{}", stdout);
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("@retransmits_per_connection ")),
        "{}",
        stdout
    );
    let per_connection = stdout
        .split("per connection (")
        .nth(1)
        .unwrap_or_else(|| panic!("no per-connection table: {stdout}"));
    let rows = per_connection
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('('))
        .filter(|l| l.contains(", 18765)"))
        .count();
    assert!(rows >= 10, "{rows} connection rows:\n{stdout}");
    let events = json_events(&stdout);
    assert!(!events.is_empty(), "{}", stdout);
    assert!(events.iter().all(|e| e["wall_ns"].as_u64() > Some(0)));
}
