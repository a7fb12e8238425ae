//! `hist(x, k)` end to end: the bucket index the BPF program computes
//! equals the Rust reference (`format::loghist::hist_index`), percentiles
//! estimated from kernel-filled buckets stay within the documented error
//! `2^-(k+1)`, and the text and JSON renderings of a `k > 0` histogram.

mod common;

use common::netscript;
use netscript::format::loghist::{bucket_range, hist_index, percentile_name, QUANTILES};

/// Values the bucket formula is checked with in the kernel.
const VALUES: [i64; 13] = [
    0,
    1,
    2,
    3,
    7,
    8,
    9,
    1000,
    1023,
    1024,
    123_456_789,
    -1,
    -123_456,
];

/// Runs `script` with `-f json` and returns stdout (after checking success).
fn run_json(script: &str) -> String {
    let (code, out, err) = netscript(&["-f", "json", "-e", script]);
    assert_eq!(code, 0, "script {script}\nstderr: {err}");
    out
}

/// The JSON bucket object bpftrace-style for the bucket of `value`.
fn expected_bucket(value: i64, bits: u8) -> String {
    let index = hist_index(value, bits);
    match bucket_range(index, bits) {
        None => "{\"max\": -1, \"count\": 1}".to_string(),
        Some(range) => format!(
            "{{\"min\": {}, \"max\": {}, \"count\": 1}}",
            range.start,
            range.end - 1
        ),
    }
}

#[test]
fn kernel_buckets_equal_the_reference_formula() {
    if !netscript::testing::bpf_available() {
        return;
    }
    for bits in [0u8, 1, 3, 5] {
        // One single-value histogram per value, keyed by the value; the
        // value goes through a map so the BPF program cannot fold it.
        let body: String = VALUES
            .iter()
            .map(|v| format!("@v = {v}; @h[@v] = hist(@v, {bits}); "))
            .collect();
        let out = run_json(&format!("BEGIN {{ {body} delete(@v); exit(); }}"));
        for value in VALUES {
            let bucket = expected_bucket(value, bits);
            let entry = if bits == 0 {
                format!("\"{value}\": [{bucket}]")
            } else {
                let estimate = bucket_range(hist_index(value, bits), bits)
                    .map_or(0, |r| r.start + (r.end - r.start) / 2);
                let percentiles: Vec<String> = QUANTILES
                    .iter()
                    .map(|q| format!("\"{}\": {estimate}", percentile_name(*q)))
                    .collect();
                format!(
                    "\"{value}\": {{\"buckets\": [{bucket}], \"percentiles\": {{{}}}}}",
                    percentiles.join(", ")
                )
            };
            assert!(out.contains(&entry), "k={bits}: no {entry} in\n{out}");
        }
    }
}

/// The `i`-th value of the skewed test distribution (as the script computes it).
fn skewed(i: i64) -> i64 {
    (i * i * 7919) % 100_000
}

/// Exact nearest-rank quantile: the `ceil(q·N)`-th smallest value.
fn exact_quantile(sorted: &[i64], per_mille: usize) -> i64 {
    let rank = (per_mille * sorted.len()).div_ceil(1000).max(1);
    sorted[rank - 1]
}

/// The integer after `"name": ` in `text`.
fn json_number(text: &str, name: &str) -> i64 {
    let needle = format!("\"{name}\": ");
    let start = text
        .find(&needle)
        .unwrap_or_else(|| panic!("{name} in {text}"))
        + needle.len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().unwrap()
}

#[test]
fn kernel_percentiles_are_within_the_stated_error() {
    if !netscript::testing::bpf_available() {
        return;
    }
    const N: i64 = 2000;
    // The verifier follows every loop iteration: 10 BEGIN blocks of 200.
    const PER_BLOCK: i64 = 200;
    let bits = 3u8;
    let script: String = (0..N / PER_BLOCK)
        .map(|block| {
            let (from, to) = (block * PER_BLOCK, (block + 1) * PER_BLOCK);
            format!(
                "BEGIN {{ $i = {from}; while ($i < {to}) {{ \
                 @h = hist(($i * $i * 7919) % 100000, {bits}); $i++; }} }}\n"
            )
        })
        .chain(["BEGIN { exit(); }".to_string()])
        .collect();
    let out = run_json(&script);
    let mut sorted: Vec<i64> = (0..N).map(skewed).collect();
    sorted.sort_unstable();

    // The kernel filled exactly the buckets the reference formula gives.
    let mut counts = vec![0u64; hist_index(100_000, bits) + 1];
    for v in &sorted {
        counts[hist_index(*v, bits)] += 1;
    }
    let first = counts.iter().position(|c| *c > 0).unwrap();
    let last = counts.iter().rposition(|c| *c > 0).unwrap();
    let buckets: Vec<String> = (first..=last)
        .map(|i| {
            let r = bucket_range(i, bits).unwrap();
            format!(
                "{{\"min\": {}, \"max\": {}, \"count\": {}}}",
                r.start,
                r.end - 1,
                counts[i]
            )
        })
        .collect();
    assert!(
        out.contains(&format!("{{\"buckets\": [{}]", buckets.join(", "))),
        "{out}"
    );

    let bound = 0.5f64.powi(i32::from(bits) + 1);
    for (name, per_mille) in [("p50", 500), ("p90", 900), ("p99", 990), ("p99.9", 999)] {
        let exact = exact_quantile(&sorted, per_mille);
        let estimate = json_number(&out, name);
        let error = (estimate - exact).abs() as f64 / exact as f64;
        assert!(
            error <= bound,
            "{name}: estimate {estimate}, exact {exact}, error {error} > {bound}"
        );
    }
}

#[test]
fn text_and_json_of_a_sub_bucket_histogram() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let script = "BEGIN { @h = hist(800, 2); @h = hist(1000, 2); @h = hist(1100, 2); \
                  @h = hist(1100, 2); @h = hist(1300, 2); @h = hist(3000, 2); exit(); }";
    let (code, out, err) = netscript(&["-e", script]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Attaching 1 probe...\n\n\n@h: \n\
[768, 896)             1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
[896, 1K)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
[1K, 1280)             2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\
[1280, 1536)           1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
[1536, 1792)           0 |                                                    |\n\
[1792, 2K)             0 |                                                    |\n\
[2K, 2560)             0 |                                                    |\n\
[2560, 3K)             1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
p50=1152 p90=2816 p99=2816 p99.9=2816\n\n"
    );
    let json = run_json(script);
    assert_eq!(
        json,
        "{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}\n\n\n\
{\"type\": \"hist\", \"data\": {\"@h\": {\"buckets\": [\
{\"min\": 768, \"max\": 895, \"count\": 1}, {\"min\": 896, \"max\": 1023, \"count\": 1}, \
{\"min\": 1024, \"max\": 1279, \"count\": 2}, {\"min\": 1280, \"max\": 1535, \"count\": 1}, \
{\"min\": 1536, \"max\": 1791, \"count\": 0}, {\"min\": 1792, \"max\": 2047, \"count\": 0}, \
{\"min\": 2048, \"max\": 2559, \"count\": 0}, {\"min\": 2560, \"max\": 3071, \"count\": 1}], \
\"percentiles\": {\"p50\": 1152, \"p90\": 2816, \"p99\": 2816, \"p99.9\": 2816}}}}\n"
    );
}
