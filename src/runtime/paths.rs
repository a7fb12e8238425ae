//! The user-space half of packet paths, besides the per-packet report
//! (`path_report`): the per-segment latency histograms with percentiles,
//! the counters, and the records still waiting for their packet.

use super::path_report::{u32_at, u64_at};
use super::LoadedObject;
use crate::diag::Result;
use crate::ir::layout::{
    path_counter as counter, path_layout, HistArray, MapTable, RECORD_WAYS, SET_STARTED_OFF,
    TOTAL_SEGMENT,
};
use crate::output::json::quote;
use crate::output::model::{Aggregate, MapDump, Value};
use crate::output::report::Record;
use crate::output::Printer;
use crate::sema::tast::PathInfo;

/// Keeps the user-space state of every path of a script.
pub struct PathReports<'a> {
    paths: &'a [PathInfo],
    maps: &'a MapTable,
    /// Per path, the histogram counts printed so far: the kernel's counts
    /// are never cleared (a packet completing between reading and clearing
    /// would be lost), each print gives what they grew by since the last.
    printed: std::cell::RefCell<Vec<Printed>>,
}

/// A path's histogram counts printed so far, by group and segment.
type Printed = std::collections::BTreeMap<(u32, u32, u32), Vec<u64>>;

impl<'a> PathReports<'a> {
    /// State for the paths of a script.
    pub fn new(paths: &'a [PathInfo], maps: &'a MapTable) -> Self {
        PathReports {
            paths,
            maps,
            printed: std::cell::RefCell::new(vec![Default::default(); paths.len()]),
        }
    }

    /// The shortest report interval of any path (ns), if one is set.
    pub fn interval_ns(&self) -> Option<u64> {
        self.paths
            .iter()
            .map(|p| p.interval_ns)
            .filter(|i| *i > 0)
            .min()
    }

    /// The records of path `i` waiting for their packet: how many, and
    /// how many of them are older than the path's timeout (all of them
    /// when `everything`).
    fn waiting(
        &self,
        object: &LoadedObject,
        i: usize,
        now_ns: u64,
        everything: bool,
    ) -> Result<(u64, u64)> {
        let path = &self.paths[i];
        let name = &self.maps.specs[self.maps.paths[i].records as usize].name;
        let (mut live, mut old) = (0, 0);
        for (_, values) in object.map_entries(name)? {
            let set = values.first().map(Vec::as_slice).unwrap_or(&[]);
            for way in 0..RECORD_WAYS {
                if u64_at(set, 8 * way) == 0 {
                    continue;
                }
                live += 1;
                let started = u64_at(set, SET_STARTED_OFF + 8 * way);
                if everything || now_ns.saturating_sub(started) > path.timeout_ns {
                    old += 1;
                }
            }
        }
        Ok((live, old))
    }

    /// Prints each path's segment histograms (what they grew by since the
    /// last print) and
    /// its counters. Records older than the timeout (all of them at exit)
    /// count as incomplete.
    pub fn report(
        &self,
        object: &LoadedObject,
        printer: &mut Printer,
        now_ns: u64,
        at_exit: bool,
    ) -> Result<()> {
        let io = |e: std::io::Error| {
            crate::diag::Diagnostic::plain(format!("cannot write output: {}", e))
        };
        for (i, path) in self.paths.iter().enumerate() {
            let maps = self.maps.paths[i];
            let spec = |m: u32| self.maps.specs[m as usize].name.as_str();
            if path.histogram {
                let segments = self.histograms(object, path, spec(maps.hists))?;
                let segments = self.since_printed(i, segments);
                if !segments.is_empty() {
                    let dump = histogram_dump(path, &segments);
                    let json = || {
                        let mut json = crate::output::json::map_json(&dump);
                        json.truncate(json.trim_end().len());
                        json
                    };
                    let text = || latency_text(path, &segments);
                    printer
                        .report(text, json, Some(Record::Map(&dump)))
                        .map_err(io)?;
                }
            }
            let counters: Vec<u64> = (0..counter::COUNT)
                .map(|c| {
                    object
                        .map_lookup(spec(maps.counters), &c.to_le_bytes())
                        .ok()
                        .flatten()
                        .map(|cpus| cpus.iter().map(|v| u64_at(v, 0)).sum())
                        .unwrap_or(0)
                })
                .collect();
            let (live, old) = self.waiting(object, i, now_ns, at_exit)?;
            let c = |i: u32| counters[i as usize];
            let incomplete = c(counter::EXPIRED) + old;
            // Every record started is completed, replaced, expired, still
            // waiting, or was evicted by another packet of its set.
            let evicted = c(counter::STARTED).saturating_sub(
                c(counter::COMPLETED) + c(counter::EXPIRED) + live + c(counter::REPLACED),
            );
            let values = [
                c(counter::STARTED),
                c(counter::COMPLETED),
                incomplete,
                evicted,
                c(counter::REPLACED),
                c(counter::FILTERED),
                c(counter::SUPPRESSED),
                c(counter::LOST),
            ];
            let fields: Vec<(&str, u64)> = crate::output::PATH_COUNTERS
                .into_iter()
                .zip(values)
                .collect();
            let text = || {
                let fields: Vec<String> =
                    fields.iter().map(|(n, v)| format!("{} {}", n, v)).collect();
                format!("{}: {}\n", path.name, fields.join(", "))
            };
            let json = || {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| format!("\"{}\": {}", n, v))
                    .collect();
                format!(
                    "{{\"type\": \"stats\", \"data\": {{\"path\": {}, {}}}}}",
                    quote(&path.name),
                    fields.join(", ")
                )
            };
            printer
                .report(
                    text,
                    json,
                    Some(Record::Counters {
                        path: &path.name,
                        values: &fields,
                    }),
                )
                .map_err(io)?;
            if at_exit && evicted > 0 {
                let capacity = path_layout(path).sets * RECORD_WAYS;
                eprintln!(
                    "netscript: warning: path {}: {} packets lost their record to newer \
                     packets before they completed; the table holds {} packets in flight \
                     (raise it with --path-records)",
                    path.name, evicted, capacity
                );
            }
        }
        Ok(())
    }

    /// What the histograms `segments` of path `i` (the kernel's counts
    /// since the start) grew by since they were last printed, the
    /// segments that did not grow left out; remembers them as printed.
    fn since_printed(&self, i: usize, segments: Vec<Segment>) -> Vec<Segment> {
        let mut printed = self.printed.borrow_mut();
        segments
            .into_iter()
            .filter_map(|(segment, counts)| {
                let before = printed[i]
                    .insert(segment, counts.clone())
                    .unwrap_or_default();
                let grown: Vec<u64> = counts
                    .iter()
                    .enumerate()
                    .map(|(b, n)| n.saturating_sub(before.get(b).copied().unwrap_or(0)))
                    .collect();
                grown.iter().any(|n| *n > 0).then_some((segment, grown))
            })
            .collect()
    }

    /// The segment histograms of a path: per group and segment (`from`,
    /// `to`; both [`TOTAL_SEGMENT`] for the total), in stage order, its
    /// buckets.
    fn histograms(
        &self,
        object: &LoadedObject,
        path: &PathInfo,
        map: &str,
    ) -> Result<Vec<Segment>> {
        let mut by_segment: std::collections::BTreeMap<(u32, u32, u32), Vec<u64>> =
            Default::default();
        let array = HistArray::of(path);
        for (key, cpus) in object.map_entries(map)? {
            let count = cpus.iter().map(|v| u64_at(v, 0)).sum::<u64>();
            let (group, from, to, bucket) = match array {
                // Every bucket of every segment is there; those never hit are 0.
                Some(_) if count == 0 => continue,
                Some(array) => {
                    let (group, from, to, bucket) = array.segment_of(u32_at(&key, 0));
                    (group, from, to, bucket as usize)
                }
                None => (
                    u32_at(&key, 12),
                    u32_at(&key, 0),
                    u32_at(&key, 4),
                    u32_at(&key, 8) as usize,
                ),
            };
            let counts = by_segment.entry((group, from, to)).or_default();
            if counts.len() <= bucket {
                counts.resize(bucket + 1, 0);
            }
            counts[bucket] += count;
        }
        Ok(by_segment.into_iter().collect())
    }
}

/// A histogram: its group, segment (`from`, `to`) and buckets.
type Segment = ((u32, u32, u32), Vec<u64>);

/// The name of group `g` of a path's histograms (empty: not split).
fn group_name(path: &PathInfo, g: u32) -> &str {
    path.hist_groups.get(g as usize).map_or("", String::as_str)
}

/// A path's histograms as a map dump keyed by segment (`A -> B` by stage
/// names, `total`), after the group's name if they are split, for JSON.
fn histogram_dump(path: &PathInfo, segments: &[Segment]) -> MapDump {
    let entries = segments
        .iter()
        .map(|((group, from, to), buckets)| {
            let label = match *from {
                TOTAL_SEGMENT => "total".to_string(),
                from => format!(
                    "{} -> {}",
                    path.stages[from as usize].name, path.stages[*to as usize].name
                ),
            };
            let agg = match path.hist_bits {
                0 => Aggregate::Hist(buckets.clone()),
                bits => Aggregate::SubHist {
                    bits,
                    buckets: buckets.clone(),
                },
            };
            let keys = match group_name(path, *group) {
                "" => vec![Value::Str(label)],
                name => vec![Value::Str(name.to_string()), Value::Str(label)],
            };
            (keys, agg)
        })
        .collect();
    MapDump {
        name: format!("@{}", path.name),
        entries,
    }
}

/// A path's histograms as text: per group, a heading naming it and the
/// path (`Latency Distribution (μs) - TCP TX Path:`), then per segment (and
/// the total) the latency rows in microseconds and the percentiles.
fn latency_text(path: &PathInfo, segments: &[Segment]) -> String {
    let mut text = String::new();
    let mut heading_of = None;
    for ((group, from, to), buckets) in segments {
        if heading_of != Some(*group) {
            heading_of = Some(*group);
            let name = match (group_name(path, *group), path.report.subtitle.as_str()) {
                (g, "") => format!("{} {}:", g, path.title()),
                (g, subtitle) => format!("{} {} Path:", g, subtitle),
            };
            text += &format!("Latency Distribution (μs) - {}\n", name.trim_start());
        }
        let heading = match *from {
            TOTAL_SEGMENT => "Total".to_string(),
            from => format!(
                "Stage: {} -> {}",
                path.stages[from as usize].label, path.stages[*to as usize].label
            ),
        };
        text += &crate::output::latency::latency_hist_text(&heading, buckets, path.hist_bits);
    }
    text
}
