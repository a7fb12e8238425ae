//! `--report FILE.html`: one self-contained page per run (inline CSS and
//! SVG, no script, nothing fetched) showing where the time of each packet
//! path went: per-segment p50/p90/p99 as stacked bars, the latency
//! histograms, total latency over time as a heat map, and the counters.
//!
//! The [`Recorder`] is given, as data, what the run printed through
//! [`super::Printer`]: each packet a path reported, each path's
//! histograms and counters, and the maps printed (the exit dump too,
//! whatever the output format), with the time each arrived; the page is
//! drawn from them at the end of the run.

mod page;
mod svg;

use std::collections::BTreeMap;
use std::time::Instant;

use super::buckets::visible_buckets;
use super::model::{Aggregate, MapDump};
use super::order::ordered_entries;
use super::text::{key_component_text, MapShape};

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

/// A segment of a reported packet: between two stages that fired (their
/// indexes; the optional stages between did not), with its latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index of the stage it starts at.
    pub from: usize,
    /// Index of the stage it ends at.
    pub to: usize,
    /// Nanoseconds from the one to the other.
    pub ns: u64,
}

/// Something the run printed that the page shows, as the printer is
/// given it.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// One reported packet of a path.
    Packet {
        /// The path's name.
        path: &'a str,
        /// The segments between the stages that fired, in order.
        segments: &'a [Segment],
        /// Nanoseconds from the first stage that fired to the last.
        total_ns: u64,
    },
    /// A path's counters line.
    Counters {
        /// The path's name.
        path: &'a str,
        /// Each counter (as [`super::PATH_COUNTERS`] names them) and its value.
        values: &'a [(&'a str, u64)],
    },
    /// A map: one the script printed (or the exit dump did), or a path's
    /// segment histograms (`@PATH`, keyed by segment).
    Map(&'a MapDump),
}

/// Collects what a run printed, for the page.
pub struct Recorder {
    script: String,
    started_at: String,
    start: Instant,
    paths: Vec<PathOutline>,
    /// What each path printed, by path name.
    path_data: BTreeMap<String, PathData>,
    /// The script's own histogram maps, as printed: (map and key, buckets).
    hists: Vec<(String, Vec<Bucket>)>,
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
            path_data: BTreeMap::new(),
            hists: Vec::new(),
        }
    }

    /// Keeps what the page shows of `record`, printed now.
    pub fn record(&mut self, record: Record) {
        let at = self.start.elapsed().as_secs_f64();
        match record {
            Record::Packet {
                path,
                segments,
                total_ns,
            } => {
                let Some(outline) = self.paths.iter().find(|p| p.name == path) else {
                    return;
                };
                let stage = |i: usize| outline.stages.get(i).map_or("?", String::as_str);
                let data = self.path_data.entry(path.to_string()).or_default();
                for s in segments {
                    let name = format!("{} -> {}", stage(s.from), stage(s.to));
                    data.segment(&name).reported.push((at, s.ns, 1));
                }
                data.segment("total").reported.push((at, total_ns, 1));
            }
            Record::Counters { path, values } => {
                let data = self.path_data.entry(path.to_string()).or_default();
                data.counters = values.iter().map(|(c, v)| (c.to_string(), *v)).collect();
            }
            Record::Map(dump) => self.map(dump, at),
        }
    }

    /// Keeps the histograms of `dump` (printed `at` seconds from the
    /// start): a path's segment histograms with the path, the script's
    /// own maps by map and key. Maps of other values are not drawn.
    fn map(&mut self, dump: &MapDump, at: f64) {
        let Some((_, first)) = dump.entries.first() else {
            return;
        };
        if MapShape::of(first) != MapShape::Histogram {
            return;
        }
        let name = dump.name.trim_start_matches('@');
        let is_path = self.paths.iter().any(|p| p.name == name);
        for (keys, aggregate) in ordered_entries(dump) {
            let buckets = buckets_of(aggregate);
            let key: Vec<String> = keys.iter().map(key_component_text).collect();
            let key = key.join(",");
            if is_path {
                let data = self.path_data.entry(name.to_string()).or_default();
                let segment = data.segment(&key);
                (segment.counted).extend(buckets.iter().map(|b| (at, b.mid(), b.count)));
                segment.buckets.extend(buckets);
            } else if keys.is_empty() {
                self.hists.push((dump.name.clone(), buckets));
            } else {
                self.hists.push((format!("{}[{key}]", dump.name), buckets));
            }
        }
    }

    /// The page, as HTML.
    pub fn html(&self) -> String {
        let duration = self.start.elapsed().as_secs_f64();
        page::render(&page::Run {
            script: &self.script,
            started_at: &self.started_at,
            duration,
            paths: (self.paths.iter())
                .map(|p| (p, self.path_data.get(&p.name)))
                .collect(),
            hists: &self.hists,
        })
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

/// The buckets of a histogram value with bounds on both sides, as printed
/// (from the first bucket counted to the last).
fn buckets_of(aggregate: &Aggregate) -> Vec<Bucket> {
    visible_buckets(aggregate)
        .into_iter()
        .filter_map(|b| {
            Some(Bucket {
                min: u64::try_from(b.min?).ok()?,
                max: u64::try_from(b.max?).ok()?,
                count: b.count,
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

    /// `hist()` buckets with `count` in the bucket of `value` (log2).
    fn log2_hist(value: u64, count: u64) -> Aggregate {
        let mut buckets = vec![0; 64];
        buckets[2 + value.ilog2() as usize] = count;
        Aggregate::Hist(buckets)
    }

    #[test]
    fn reports_hists_and_counters_of_a_path_are_gathered() {
        use crate::output::model::Value;
        let outline = PathOutline {
            name: "p".into(),
            title: "P".into(),
            stages: vec!["A".into(), "B".into()],
        };
        let mut r = Recorder::new("x.ns", "now".into(), vec![outline]);
        let segments = [Segment {
            from: 0,
            to: 1,
            ns: 1500,
        }];
        r.record(Record::Packet {
            path: "p",
            segments: &segments,
            total_ns: 1500,
        });
        let path_hists = MapDump::new(
            "@p",
            vec![(vec![Value::Str("A -> B".into())], log2_hist(1024, 2))],
        );
        r.record(Record::Map(&path_hists));
        r.record(Record::Counters {
            path: "p",
            values: &[("started", 3), ("completed", 3)],
        });
        r.record(Record::Map(&MapDump::new(
            "@len",
            vec![(vec![], log2_hist(8, 4))],
        )));
        let by_comm = vec![
            (vec![Value::Str("ping".into())], log2_hist(100, 1)),
            (vec![Value::Str("curl".into())], log2_hist(9, 1)),
        ];
        r.record(Record::Map(&MapDump::new("@by_comm", by_comm)));
        // Not a histogram: not on the page.
        r.record(Record::Map(&MapDump::new(
            "@n",
            vec![(vec![], Aggregate::Count(5))],
        )));
        let p = &r.path_data["p"];
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
        let names: Vec<&str> = r.hists.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["@len", "@by_comm[curl]", "@by_comm[ping]"]);
        let (min, max, count) = (
            r.hists[0].1[0].min,
            r.hists[0].1[0].max,
            r.hists[0].1[0].count,
        );
        assert_eq!((min, max, count), (8, 15, 4));
        let html = r.html();
        for needle in [
            "<svg",
            "A -&gt; B",
            "x.ns",
            "started",
            "@len",
            "@by_comm[ping]",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
    }
}
