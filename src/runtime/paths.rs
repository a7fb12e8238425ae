//! The user-space half of packet paths: printing each reported packet,
//! the per-segment latency histograms with percentiles and the counters,
//! and removing records that never completed.

use super::decode::{self, Symbolizer};
use super::LoadedObject;
use crate::diag::Result;
use crate::ir::layout::{
    path_counter as counter, path_layout, MapTable, PathLayout, STAGE_CTX_SIZE, TOTAL_SEGMENT,
};
use crate::output::json::{quote, value_json};
use crate::output::model::{Aggregate, MapDump, Value};
use crate::output::text::MapShape;
use crate::output::Printer;
use crate::sema::tast::PathInfo;

fn u64_at(b: &[u8], off: u32) -> u64 {
    b.get(off as usize..off as usize + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

fn u32_at(b: &[u8], off: u32) -> u32 {
    b.get(off as usize..off as usize + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
        .unwrap_or(0)
}

fn us(ns: u64) -> String {
    format!("{:.3} us", ns as f64 / 1000.0)
}

/// What one stage recorded for a packet.
struct StageSeen {
    ts: u64,
    skb: u64,
    pid: u32,
    ifindex: u32,
    stack: i64,
    comm: String,
}

fn stage_seen(record: &[u8], layout: &PathLayout, i: u32) -> StageSeen {
    let ctx = layout.ctx_off + STAGE_CTX_SIZE * i;
    let comm = record
        .get(ctx as usize + 24..ctx as usize + 40)
        .unwrap_or(&[]);
    let end = comm.iter().position(|c| *c == 0).unwrap_or(comm.len());
    StageSeen {
        ts: u64_at(record, layout.ts_off + 8 * i),
        skb: u64_at(record, ctx),
        pid: u32_at(record, ctx + 8),
        ifindex: u32_at(record, ctx + 12),
        stack: u64_at(record, ctx + 16) as i64,
        comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
    }
}

/// Prints one reported packet: its key, each stage's context, the
/// segments between the stages that fired, and the total.
pub fn print_event(
    path: &PathInfo,
    record: &[u8],
    sym: &dyn Symbolizer,
    printer: &mut Printer,
) -> std::io::Result<()> {
    let layout = path_layout(path);
    let key = decode::value(
        &path.key,
        record.get(layout.key_off as usize..).unwrap_or(&[]),
        sym,
    );
    let seen: Vec<StageSeen> = (0..path.stages.len() as u32)
        .map(|i| stage_seen(record, &layout, i))
        .collect();
    let fired: Vec<usize> = (0..seen.len()).filter(|i| seen[*i].ts != 0).collect();
    let segments: Vec<(usize, usize, u64)> = fired
        .windows(2)
        .map(|w| (w[0], w[1], seen[w[1]].ts.saturating_sub(seen[w[0]].ts)))
        .collect();
    let total = match (fired.first(), fired.last()) {
        (Some(a), Some(b)) => seen[*b].ts.saturating_sub(seen[*a].ts),
        _ => 0,
    };
    let mut text = format!("{} {}\n", path.name, crate::output::text::value_text(&key));
    let width = path.stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut stages_json = Vec::new();
    for (stage, s) in path.stages.iter().zip(&seen) {
        if s.ts == 0 {
            text.push_str(&format!(
                "  {:<width$}  (not seen)\n",
                stage.name,
                width = width
            ));
            stages_json.push(format!(
                "{{\"name\": {}, \"seen\": false}}",
                quote(&stage.name)
            ));
            continue;
        }
        text.push_str(&format!(
            "  {:<width$}  pid={} comm={} ifindex={} skb=0x{:x}\n",
            stage.name,
            s.pid,
            s.comm,
            s.ifindex,
            s.skb,
            width = width
        ));
        let frames: Vec<String> = if s.stack >= 0 && path.stacks {
            sym.stack(s.stack as u64)
                .into_iter()
                .map(|ip| sym.symbol(ip, true))
                .collect()
        } else {
            Vec::new()
        };
        for f in &frames {
            text.push_str(&format!("      {}\n", f));
        }
        let stack_json: Vec<String> = frames.iter().map(|f| quote(f)).collect();
        stages_json.push(format!(
            "{{\"name\": {}, \"probe\": {}, \"seen\": true, \"ts_ns\": {}, \"pid\": {}, \"comm\": {}, \"ifindex\": {}, \"skb\": {}, \"stack\": [{}]}}",
            quote(&stage.name),
            quote(&stage.probe),
            s.ts,
            s.pid,
            quote(&s.comm),
            s.ifindex,
            s.skb,
            stack_json.join(", ")
        ));
    }
    let mut segments_json = Vec::new();
    for (a, b, ns) in &segments {
        let label = format!("{} -> {}", path.stages[*a].name, path.stages[*b].name);
        text.push_str(&format!(
            "  {:<w$}  {}\n",
            label,
            us(*ns),
            w = 2 * width + 4
        ));
        segments_json.push(format!(
            "{{\"from\": {}, \"to\": {}, \"ns\": {}}}",
            quote(&path.stages[*a].name),
            quote(&path.stages[*b].name),
            ns
        ));
    }
    text.push_str(&format!(
        "  {:<w$}  {}\n",
        "total",
        us(total),
        w = 2 * width + 4
    ));
    let json = format!(
        "{{\"type\": \"path\", \"data\": {{\"path\": {}, \"key\": {}, \"stages\": [{}], \"segments\": [{}], \"total_ns\": {}}}}}",
        quote(&path.name),
        value_json(&key),
        stages_json.join(", "),
        segments_json.join(", "),
        total
    );
    printer.report(&text, &json)
}

/// Counters of one path, summed over CPUs and over time.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    incomplete: u64,
}

/// Keeps the user-space state of every path of a script.
pub struct PathReports<'a> {
    paths: &'a [PathInfo],
    maps: &'a MapTable,
    totals: Vec<Totals>,
}

impl<'a> PathReports<'a> {
    /// State for the paths of a script.
    pub fn new(paths: &'a [PathInfo], maps: &'a MapTable) -> Self {
        PathReports {
            paths,
            maps,
            totals: vec![Totals::default(); paths.len()],
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

    /// Removes records older than their path's timeout (all of them when
    /// `everything`), counting them as incomplete.
    fn sweep(&mut self, object: &LoadedObject, now_ns: u64, everything: bool) -> Result<()> {
        for (i, path) in self.paths.iter().enumerate() {
            let layout = path_layout(path);
            let name = &self.maps.specs[self.maps.paths[i].records as usize].name;
            for (key, values) in object.map_entries(name)? {
                let first = values
                    .first()
                    .map(|v| u64_at(v, layout.ts_off))
                    .unwrap_or(0);
                if everything || now_ns.saturating_sub(first) > path.timeout_ns {
                    object.map_delete(name, &key)?;
                    self.totals[i].incomplete += 1;
                }
            }
        }
        Ok(())
    }

    /// Sweeps, then prints each path's segment histograms (reset after
    /// printing) and its counters.
    pub fn report(
        &mut self,
        object: &LoadedObject,
        printer: &mut Printer,
        now_ns: u64,
        at_exit: bool,
    ) -> Result<()> {
        self.sweep(object, now_ns, at_exit)?;
        let io = |e: std::io::Error| {
            crate::diag::Diagnostic::plain(format!("cannot write output: {}", e))
        };
        for (i, path) in self.paths.iter().enumerate() {
            let maps = self.maps.paths[i];
            let spec = |m: u32| self.maps.specs[m as usize].name.as_str();
            if path.histogram {
                let dump = self.histograms(object, path, spec(maps.hists))?;
                if !dump.entries.is_empty() {
                    printer.map_shaped(&dump, MapShape::Histogram).map_err(io)?;
                }
                object.map_delete_all(spec(maps.hists))?;
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
            let live = object.map_entries(spec(maps.records))?.len() as u64;
            let c = |i: u32| counters[i as usize];
            let incomplete = self.totals[i].incomplete;
            let evicted = c(counter::STARTED)
                .saturating_sub(c(counter::COMPLETED) + incomplete + live + c(counter::REPLACED));
            let fields = [
                ("started", c(counter::STARTED)),
                ("completed", c(counter::COMPLETED)),
                ("incomplete", incomplete),
                ("evicted", evicted),
                ("replaced", c(counter::REPLACED)),
                ("filtered", c(counter::FILTERED)),
                ("suppressed", c(counter::SUPPRESSED)),
                ("lost", c(counter::LOST)),
            ];
            let text: Vec<String> = fields.iter().map(|(n, v)| format!("{} {}", n, v)).collect();
            let json: Vec<String> = fields
                .iter()
                .map(|(n, v)| format!("\"{}\": {}", n, v))
                .collect();
            printer
                .report(
                    &format!("{}: {}\n", path.name, text.join(", ")),
                    &format!(
                        "{{\"type\": \"stats\", \"data\": {{\"path\": {}, {}}}}}",
                        quote(&path.name),
                        json.join(", ")
                    ),
                )
                .map_err(io)?;
        }
        Ok(())
    }

    /// The segment histograms of a path as a map dump keyed by segment.
    fn histograms(&self, object: &LoadedObject, path: &PathInfo, map: &str) -> Result<MapDump> {
        let mut by_segment: std::collections::BTreeMap<(u32, u32), Vec<u64>> = Default::default();
        for (key, cpus) in object.map_entries(map)? {
            let (from, to, bucket) = (u32_at(&key, 0), u32_at(&key, 4), u64_at(&key, 8) as usize);
            let counts = by_segment.entry((from, to)).or_default();
            if counts.len() <= bucket {
                counts.resize(bucket + 1, 0);
            }
            counts[bucket] += cpus.iter().map(|v| u64_at(v, 0)).sum::<u64>();
        }
        let name = |i: u32| {
            if i == TOTAL_SEGMENT {
                "total".to_string()
            } else {
                path.stages[i as usize].name.clone()
            }
        };
        let entries = by_segment
            .into_iter()
            .map(|((from, to), buckets)| {
                let label = if from == TOTAL_SEGMENT {
                    "total".to_string()
                } else {
                    format!("{} -> {}", name(from), name(to))
                };
                let agg = match path.hist_bits {
                    0 => Aggregate::Hist(buckets),
                    bits => Aggregate::SubHist { bits, buckets },
                };
                (vec![Value::Str(label)], agg)
            })
            .collect();
        Ok(MapDump {
            name: format!("@{}", path.name),
            entries,
        })
    }
}
