//! `--report FILE.html`: one self-contained page per run (inline CSS and
//! SVG, no script, nothing fetched) showing where the time of each packet
//! path went: per-segment p50/p90/p99 as stacked bars, the latency
//! histograms, total latency over time as a heat map, and the counters.
//!
//! The [`Recorder`] keeps every JSON object the run printed through
//! [`super::Printer::report`] and the maps of the exit dump (whatever the
//! output format), with the time it arrived; the page is drawn from them
//! at the end of the run.

mod page;
mod svg;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

/// A path of the script as the page names it.
#[derive(Debug, Clone)]
pub struct PathOutline {
    /// The path's name (`icmp_rtt_tx`).
    pub name: String,
    /// Its title (`ICMP RTT Trace (TX ...)`).
    pub title: String,
    /// Its stages' names, in order.
    pub stages: Vec<String>,
}

/// Collects what a run printed, for the page.
pub struct Recorder {
    script: String,
    started_at: String,
    start: Instant,
    paths: Vec<PathOutline>,
    /// Each printed object with the seconds since the start it came at.
    objects: Vec<(f64, Value)>,
}

/// A histogram bucket `[min, max]` with its count.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    min: u64,
    max: u64,
    count: u64,
}

/// One latency measured at a time: (seconds since the start, ns, count).
type Sample = (f64, u64, u64);

/// The latencies of one segment of a path (`FROM -> TO`, `total`; in the
/// histograms of a grouped path, `GROUP,FROM -> TO`).
#[derive(Default)]
struct SegmentData {
    name: String,
    /// From the packet reports.
    reported: Vec<Sample>,
    /// From the kernel's histograms: each bucket's midpoint, counted.
    counted: Vec<Sample>,
    /// The kernel's histogram buckets, every interval's added up.
    buckets: Vec<Bucket>,
}

/// What the page shows of one path.
#[derive(Default)]
struct PathData {
    /// The segments in the order first seen.
    segments: Vec<SegmentData>,
    /// The last counters line.
    counters: Vec<(String, u64)>,
}

impl PathData {
    fn segment(&mut self, name: &str) -> &mut SegmentData {
        let at = match self.segments.iter().position(|s| s.name == name) {
            Some(at) => at,
            None => {
                self.segments.push(SegmentData {
                    name: name.to_string(),
                    ..Default::default()
                });
                self.segments.len() - 1
            }
        };
        &mut self.segments[at]
    }

    /// Whether the latencies come from packet reports (exact), else from
    /// the kernel's histograms (bucket midpoints).
    fn reported(&self) -> bool {
        self.segments.iter().any(|s| !s.reported.is_empty())
    }

    /// Each segment's latencies, from the reports when the path has any.
    fn samples(&self) -> Vec<(&str, &[Sample])> {
        let reported = self.reported();
        self.segments
            .iter()
            .map(|s| {
                let samples = if reported { &s.reported } else { &s.counted };
                (s.name.as_str(), samples.as_slice())
            })
            .filter(|(_, samples)| !samples.is_empty())
            .collect()
    }
}

impl Recorder {
    /// A recorder for a run of `script` (its name as given), whose paths
    /// are `paths`, started at local time `started_at`.
    pub fn new(script: &str, started_at: String, paths: Vec<PathOutline>) -> Recorder {
        Recorder {
            script: script.to_string(),
            started_at,
            start: Instant::now(),
            paths,
            objects: Vec::new(),
        }
    }

    /// Keeps one printed JSON object (a line of `-f json` output).
    pub fn record(&mut self, json: &str) {
        if let Ok(value) = serde_json::from_str::<Value>(json) {
            self.objects
                .push((self.start.elapsed().as_secs_f64(), value));
        }
    }

    /// The page, as HTML.
    pub fn html(&self) -> String {
        let duration = self.start.elapsed().as_secs_f64();
        let data = self.path_data();
        let hists = self.map_histograms();
        page::render(&page::Run {
            script: &self.script,
            started_at: &self.started_at,
            duration,
            paths: self.paths.iter().map(|p| (p, data.get(&p.name))).collect(),
            hists,
        })
    }

    /// Each path's reports, histograms and counters.
    fn path_data(&self) -> BTreeMap<String, PathData> {
        let mut out: BTreeMap<String, PathData> = BTreeMap::new();
        let is_path = |name: &str| self.paths.iter().any(|p| p.name == name);
        for (t, o) in &self.objects {
            let data = &o["data"];
            match o["type"].as_str() {
                Some("path") => {
                    let Some(name) = data["path"].as_str() else {
                        continue;
                    };
                    let entry = out.entry(name.to_string()).or_default();
                    for s in data["segments"].as_array().into_iter().flatten() {
                        let (Some(from), Some(to), Some(ns)) =
                            (s["from"].as_str(), s["to"].as_str(), s["ns"].as_u64())
                        else {
                            continue;
                        };
                        let segment = entry.segment(&format!("{from} -> {to}"));
                        segment.reported.push((*t, ns, 1));
                    }
                    if let Some(total) = data["total_ns"].as_u64() {
                        entry.segment("total").reported.push((*t, total, 1));
                    }
                }
                Some("hist") => {
                    for (map, segments) in data.as_object().into_iter().flatten() {
                        let name = map.trim_start_matches('@');
                        if !is_path(name) {
                            continue;
                        }
                        let entry = out.entry(name.to_string()).or_default();
                        for (segment, hist) in segments.as_object().into_iter().flatten() {
                            let buckets = buckets_of(&hist["buckets"]);
                            let seg = entry.segment(segment);
                            seg.counted
                                .extend(buckets.iter().map(|b| (*t, b.mid(), b.count)));
                            seg.buckets.extend(buckets);
                        }
                    }
                }
                Some("stats") => {
                    let Some(name) = data["path"].as_str() else {
                        continue;
                    };
                    let entry = out.entry(name.to_string()).or_default();
                    entry.counters = super::PATH_COUNTERS
                        .iter()
                        .filter_map(|c| Some((c.to_string(), data[c].as_u64()?)))
                        .collect();
                }
                _ => {}
            }
        }
        out
    }

    /// The script's own histogram maps of the exit dump: (map and key,
    /// buckets).
    fn map_histograms(&self) -> Vec<(String, Vec<Bucket>)> {
        let mut out = Vec::new();
        for (_, o) in self.objects.iter().filter(|(_, o)| o["type"] == "hist") {
            for (map, value) in o["data"].as_object().into_iter().flatten() {
                if self
                    .paths
                    .iter()
                    .any(|p| map.trim_start_matches('@') == p.name)
                {
                    continue;
                }
                match value {
                    Value::Array(_) => out.push((map.clone(), buckets_of(value))),
                    Value::Object(keys) if keys.contains_key("buckets") => {
                        out.push((map.clone(), buckets_of(&value["buckets"])))
                    }
                    Value::Object(keys) => {
                        for (key, hist) in keys {
                            let buckets = match hist.get("buckets") {
                                Some(b) => buckets_of(b),
                                None => buckets_of(hist),
                            };
                            out.push((format!("{map}[{key}]"), buckets));
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

impl Bucket {
    /// The value a bucket stands for: its midpoint, as the percentiles of
    /// `hist()` are estimated.
    fn mid(&self) -> u64 {
        self.min + (self.max + 1 - self.min) / 2
    }
}

/// `buckets` with the counts of equal ranges added up, in order.
fn merged(buckets: &[Bucket]) -> Vec<Bucket> {
    let mut counts: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for b in buckets {
        *counts.entry((b.min, b.max)).or_insert(0) += b.count;
    }
    counts
        .into_iter()
        .map(|((min, max), count)| Bucket { min, max, count })
        .collect()
}

/// The buckets of a JSON histogram (`[{"min": .., "max": .., "count": ..}]`).
fn buckets_of(value: &Value) -> Vec<Bucket> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            Some(Bucket {
                min: b["min"].as_u64()?,
                max: b["max"].as_u64()?,
                count: b["count"].as_u64()?,
            })
        })
        .collect()
}

/// The nearest-rank `q`-quantile of `samples` (each value with its count).
fn quantile(samples: &[Sample], q: f64) -> Option<u64> {
    let mut values: Vec<(u64, u64)> = samples.iter().map(|(_, v, n)| (*v, *n)).collect();
    values.sort_unstable();
    let total: u64 = values.iter().map(|(_, n)| n).sum();
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    values.into_iter().find_map(|(v, n)| {
        seen += n;
        (seen >= rank).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_over_counted_values() {
        let samples: Vec<Sample> = (1..=100).map(|v| (0.0, v, 1)).collect();
        assert_eq!(quantile(&samples, 0.5), Some(50));
        assert_eq!(quantile(&samples, 0.99), Some(99));
        assert_eq!(quantile(&[(0.0, 7, 3), (0.0, 1000, 1)], 0.5), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn reports_hists_and_counters_of_a_path_are_gathered() {
        let outline = PathOutline {
            name: "p".into(),
            title: "P".into(),
            stages: vec!["A".into(), "B".into()],
        };
        let mut r = Recorder::new("x.ns", "now".into(), vec![outline]);
        r.record(r#"{"type": "path", "data": {"path": "p", "info": [], "segments": [{"from": "A", "to": "B", "ns": 1500}], "total_ns": 1500}}"#);
        r.record(r#"{"type": "hist", "data": {"@p": {"A -> B": {"buckets": [{"min": 1024, "max": 2047, "count": 2}]}}}}"#);
        r.record(r#"{"type": "stats", "data": {"path": "p", "started": 3, "completed": 3}}"#);
        r.record(r#"{"type": "hist", "data": {"@len": [{"min": 8, "max": 15, "count": 4}]}}"#);
        let data = r.path_data();
        let p = &data["p"];
        assert_eq!(p.segments[0].name, "A -> B");
        let values = |s: &[Sample]| s.iter().map(|s| (s.1, s.2)).collect::<Vec<_>>();
        assert_eq!(values(&p.segments[0].reported), [(1500, 1)]);
        assert_eq!(values(&p.segments[0].counted), [(1536, 2)]);
        assert_eq!(p.segments[1].name, "total");
        // Reports, when there are some, are what the percentiles come from.
        assert_eq!(p.samples().len(), 2);
        assert_eq!(values(p.samples()[0].1), [(1500, 1)]);
        assert_eq!(
            p.counters,
            [("started".to_string(), 3), ("completed".to_string(), 3)]
        );
        let hists = r.map_histograms();
        assert_eq!(hists.len(), 1);
        assert_eq!(hists[0].0, "@len");
        let html = r.html();
        for needle in ["<svg", "A -&gt; B", "x.ns", "started", "@len"] {
            assert!(html.contains(needle), "{needle}");
        }
    }
}
