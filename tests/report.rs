//! `--report FILE.html`: the page of a real run of a path script, read
//! back and rendered by headless Chromium (Debian package chromium).

mod common;

use common::{netscript_bin, ping_loopback, Tracer};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs chromium headless on `page` with `args`; (stdout, stderr).
fn chromium(page: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (apt-get install chromium)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The share of a PNG's pixels that are not white, and how many distinct
/// colours it has.
fn ink(png_file: &Path) -> (f64, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_file).expect("the screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let inked = pixels.iter().filter(|p| p[..3] != [255, 255, 255]).count();
    let colors: std::collections::HashSet<&[u8]> = pixels.iter().copied().collect();
    (inked as f64 / pixels.len() as f64, colors.len())
}

#[test]
fn the_report_page_shows_every_stage_the_counters_and_renders_in_chromium() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("netscript-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("run.html");
    let mut t = Tracer::start(
        netscript_bin(),
        &[
            "kernel_icmp_rtt",
            "--src-ip",
            "127.0.0.1",
            "--dst-ip",
            "127.0.0.1",
            "--disable-kernel-stacks",
            "--mode",
            "both",
            "--interval",
            "1",
            "-f",
            "json",
            "--report",
            page.to_str().unwrap(),
        ],
    );
    t.wait_for("attached_probes", Duration::from_secs(20));
    ping_loopback(10, 56);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = t.interrupt();
    assert_eq!(code, 0, "{err}");
    let objects: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let reports: Vec<&Value> = objects
        .iter()
        .filter(|o| o["type"] == "path")
        .map(|o| &o["data"])
        .collect();
    assert_eq!(reports.len(), 10, "{out}");
    let html = std::fs::read_to_string(&page).expect("the page was written");

    // Self-contained: nothing to fetch, no script.
    for outside in ["<script", "src=", "href=", "url(", "@import"] {
        assert!(!html.contains(outside), "{outside} in the page");
    }
    // Every stage of the path, the counters as the last counters line
    // gave them, and every packet counted in each segment's row.
    for stage in reports[0]["stages"].as_array().unwrap() {
        assert!(html.contains(stage["name"].as_str().unwrap()), "{stage}");
    }
    let stats = &objects
        .iter()
        .rfind(|o| o["type"] == "stats")
        .expect("a counters line")["data"];
    let header = "<tr><th>started</th><th>completed</th><th>incomplete</th><th>evicted</th>\
                  <th>replaced</th><th>filtered</th><th>suppressed</th><th>lost</th></tr>";
    let values: String = header
        .split("<th>")
        .skip(1)
        .map(|th| format!("<td>{}</td>", stats[th.split('<').next().unwrap()]))
        .collect();
    assert!(
        html.contains(&format!("{header}<tr>{values}</tr>")),
        "{html}"
    );
    assert_eq!(stats["completed"], 10);
    assert!(html.contains("total</td><td>10</td>"), "{html}");
    assert!(
        html.contains("Total latency over time") && html.contains("<svg"),
        "{html}"
    );

    // Chromium renders it without a script error, with every stage name
    // in the rendered page, and the screenshot is not blank.
    let (dom, log) = chromium(&page, &["--dump-dom"]);
    assert!(
        !log.contains("Uncaught") && !log.contains(":CONSOLE("),
        "{log}"
    );
    for stage in reports[0]["stages"].as_array().unwrap() {
        assert!(dom.contains(stage["name"].as_str().unwrap()), "{dom}");
    }
    let shot = dir.join("run.png");
    chromium(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1100,1400",
        ],
    );
    let (inked, colors) = ink(&shot);
    assert!(
        inked > 0.03,
        "only {:.1}% of the screenshot is not white",
        inked * 100.0
    );
    assert!(colors >= 8, "{colors} colours");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_report_that_cannot_be_written_is_an_error_before_the_run() {
    let (code, _, err) = common::netscript(&[
        "-e",
        "BEGIN { exit(); }",
        "--report",
        "/no/such/dir/run.html",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot create /no/such/dir/run.html"), "{err}");
}
