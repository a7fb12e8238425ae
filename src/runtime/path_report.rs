//! One reported packet of a path, as text and JSON: a heading with the
//! time, the `describe` lines, each stage's context, the segments between
//! the stages that fired, and the totals (per half and round trip when the
//! path is split into a request and a reply).

use super::decode::{self, Symbolizer};
use crate::ir::layout::{PathLayout, STACK_ENTRIES};
use crate::output::json::{quote, value_json};
use crate::output::model::Value;
use crate::output::report::{Record, Segment};
use crate::output::Printer;
use crate::sema::tast::{PathInfo, ReportStyle};
use crate::types::Ty;

/// The little-endian u64 at `off` in `b` (0 past its end).
pub(super) fn u64_at(b: &[u8], off: u32) -> u64 {
    b.get(off as usize..off as usize + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

/// The little-endian u32 at `off` in `b` (0 past its end).
pub(super) fn u32_at(b: &[u8], off: u32) -> u32 {
    b.get(off as usize..off as usize + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
        .unwrap_or(0)
}

/// Nanoseconds as the trace reports write them: `12.345` (microseconds).
fn us(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1000.0)
}

/// What one stage recorded for a packet.
struct StageSeen {
    ts: u64,
    skb: u64,
    pid: u32,
    ifindex: u32,
    stack: i64,
    comm: String,
    device: String,
}

impl StageSeen {
    /// The device the packet was on (`-`: none yet, e.g. before routing).
    fn interface(&self) -> String {
        match (self.device.is_empty(), self.ifindex) {
            (false, _) => self.device.clone(),
            (true, 0) => "-".to_string(),
            (true, n) => format!("ifindex {}", n),
        }
    }
}

fn stage_seen(record: &[u8], layout: &PathLayout, i: u32) -> StageSeen {
    let ctx = layout.event_ctx(i);
    let text = |from: u32| {
        let bytes = record
            .get((ctx + from) as usize..(ctx + from + 16) as usize)
            .unwrap_or(&[]);
        let end = bytes.iter().position(|c| *c == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    StageSeen {
        ts: u64_at(record, layout.ts_off + 8 * i),
        skb: u64_at(record, ctx),
        pid: u32_at(record, ctx + 8),
        ifindex: u32_at(record, ctx + 12),
        stack: u64_at(record, ctx + 16) as i64,
        comm: text(24),
        device: text(40),
    }
}

/// Local wall-clock date and time (`2025-01-15`, `10:30:45.123`) of
/// monotonic time `ts`.
fn wall_clock(ts: u64) -> (String, String) {
    let mono = super::features::monotonic_ns();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    crate::output::local_time(now.saturating_sub(mono.saturating_sub(ts)))
}

/// The stages that fired (whose time `ts` is not 0), in order, the
/// segments between consecutive ones, and the total from the first to the
/// last.
pub(super) fn segments(ts: &[u64]) -> (Vec<usize>, Vec<Segment>, u64) {
    let fired: Vec<usize> = (0..ts.len()).filter(|i| ts[*i] != 0).collect();
    let span = |a: usize, b: usize| ts[b].saturating_sub(ts[a]);
    let segments = fired
        .windows(2)
        .map(|w| Segment {
            from: w[0],
            to: w[1],
            ns: span(w[0], w[1]),
        })
        .collect();
    let total = match (fired.first(), fired.last()) {
        (Some(a), Some(b)) => span(*a, *b),
        _ => 0,
    };
    (fired, segments, total)
}

/// The values of a tuple (or the one value), as printf arguments.
fn printf_values(values: Value) -> Vec<Value> {
    match values {
        Value::Tuple(items) => items,
        v => vec![v],
    }
}

/// One reported packet, ready to be written as text.
struct Packet<'a> {
    path: &'a PathInfo,
    key: &'a Value,
    /// The values report formats take: `info`'s, else the key's.
    info: Vec<Value>,
    seen: &'a [StageSeen],
    fired: &'a [usize],
    segments: &'a [Segment],
    total: u64,
    /// Per-half totals and the time between the halves (split paths).
    halves: Option<(u64, u64, u64)>,
}

/// The rule around each report of a split path (the RTT tools').
/// The version of the `"type": "path"` JSON event (docs/language.md says
/// what each field holds and what changed from version 1).
pub const PATH_JSON_VERSION: u32 = 2;

const RULE: &str =
    "================================================================================\n";

impl Packet<'_> {
    /// A report format (`describe`, `halves`, `half_fields`) over the info.
    fn formatted(&self, format: &str) -> String {
        let pieces = crate::format::printf::parse_format(format).unwrap_or_default();
        crate::output::printf::format(&pieces, &self.info)
    }

    /// The `describe` lines (the key when there is none), newline-ended.
    /// Formats take the `info` values, or the key's when nothing else is
    /// kept.
    fn description(&self) -> String {
        let mut text = match &self.path.report.describe {
            Some(format) => self.formatted(format),
            None => format!("Key: {}", crate::output::text::value_text(self.key)),
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    /// The time of the first stage that fired.
    fn start(&self) -> (String, String) {
        wall_clock(self.fired.first().map_or(0, |i| self.seen[*i].ts))
    }

    /// Process and interface of the stages `range`: the process of the
    /// first that fired; the device of the first if it had one, else (a
    /// packet this host sends) of the last that had one.
    fn process(&self, range: std::ops::Range<usize>) -> (u32, String, String) {
        let fired: Vec<&StageSeen> = self
            .fired
            .iter()
            .filter(|i| range.contains(i))
            .map(|i| &self.seen[*i])
            .collect();
        let Some(first) = fired.first() else {
            return (0, "-".into(), "-".into());
        };
        let had_device = |s: &&&StageSeen| !s.device.is_empty() || s.ifindex != 0;
        let device = std::iter::once(first)
            .chain(fired.iter().rev())
            .find(had_device)
            .map_or("-".to_string(), |s| s.interface());
        (first.pid, first.comm.clone(), device)
    }

    /// The note after a segment that skipped optional stages.
    fn note(&self, seg: &Segment) -> String {
        let skipped = (seg.from + 1..seg.to).any(|k| self.path.stages[k].optional);
        match skipped && !self.path.report.skip_note.is_empty() {
            true => format!(" ({})", self.path.report.skip_note),
            false => String::new(),
        }
    }

    /// The block the OVS TCP and ICMP RTT tools print: heading, process,
    /// SKB pointers, latencies, totals, kernel stacks.
    fn trace_text(&self, stacks: &[Stack]) -> String {
        let (path, stages) = (self.path, &self.path.stages);
        let (date, time) = self.start();
        let mut text = String::new();
        if self.halves.is_some() {
            text += RULE;
        }
        let subtitle = match path.report.subtitle.as_str() {
            "" => String::new(),
            s => format!(" ({})", s),
        };
        text += &format!("=== {}: {} {}{} ===\n", path.title(), date, time, subtitle);
        text += &self.description();
        let split = path.report.split as usize;
        match self.halves {
            None => {
                let (pid, comm, device) = self.process(0..stages.len());
                text += &format!("Process: PID={} COMM={} IF={}\n", pid, comm, device);
            }
            Some(_) => {
                for (n, range) in [(1, 0..split), (2, split..stages.len())] {
                    let label = match path.report.halves.get(n - 1) {
                        Some(format) => self.formatted(format),
                        None => ["Request", "Reply"][n - 1].to_string(),
                    };
                    let fields = path
                        .report
                        .half_fields
                        .get(n - 1)
                        .map_or(String::new(), |f| self.formatted(f));
                    let (pid, comm, device) = self.process(range);
                    let line = format!(
                        "{:<40} : PID={:<6} COMM={:<12} IF={:<10} {}",
                        format!("Path {} ({})", n, label),
                        pid,
                        comm,
                        device,
                        fields
                    );
                    text += line.trim_end();
                    text.push('\n');
                }
            }
        }
        text += "\nSKB Pointers:\n";
        for (i, (stage, s)) in stages.iter().zip(self.seen).enumerate() {
            // The device each stage saw: netscript's addition to the seeds' list.
            // A recalled stage (an application's send) fired before the
            // packet had an skb.
            let value = match (s.ts, s.skb) {
                (0, _) => "(not seen)".to_string(),
                (_, 0) => "(no skb yet)".to_string(),
                _ => format!("0x{:x}  IF={}", s.skb, s.interface()),
            };
            text += &format!("  Stage {} ({:<39}): {}\n", i, stage.label, value);
        }
        // The RTT tools align their segments in columns; the TCP tool not.
        let (from_width, to_width, us_width) = match self.halves {
            None => (0, 0, 0),
            Some(_) => (41, 42, 7),
        };
        let segment_line = |seg: &Segment| {
            format!(
                "  [{}->{}] {:<from_width$} -> {:<to_width$}: {:>us_width$} us{}\n",
                seg.from,
                seg.to,
                stages[seg.from].label,
                stages[seg.to].label,
                us(seg.ns),
                self.note(seg)
            )
        };
        match self.halves {
            None => {
                text += "\nLatencies (us):\n";
                self.segments.iter().for_each(|s| text += &segment_line(s));
                text += &format!("\nTotal Latency: {} us\n", us(self.total));
            }
            Some((first, second, between)) => {
                for (n, range, half) in [(1, 0..split, first), (2, split..stages.len(), second)] {
                    text += &format!("\nPath {} Latencies (us):\n", n);
                    self.segments
                        .iter()
                        .filter(|s| range.contains(&s.from) && range.contains(&s.to))
                        .for_each(|s| text += &segment_line(s));
                    text += &format!("  Total Path {}: {:>7} us\n", n, us(half));
                }
                text += &format!(
                    "\nTotal RTT (Path1 Start to Path2 End): {} us\n",
                    us(self.total)
                );
                text += &format!(
                    "Inter-Path Latency (P1 end -> P2 start): {} us\n",
                    us(between)
                );
            }
        }
        if path.stacks {
            text += "\nKernel Stack Traces:\n";
            for (i, ((stage, s), stack)) in stages.iter().zip(self.seen).zip(stacks).enumerate() {
                if s.ts == 0 {
                    continue;
                }
                text += &format!("  Stage {} ({}):\n", i, stage.label);
                match stack {
                    Ok(frames) => frames.iter().for_each(|f| text += &format!("    {}\n", f)),
                    Err(why) => text += &format!("    (no stack: {})\n", why),
                }
            }
        }
        if self.halves.is_some() {
            text += RULE;
        }
        text.push('\n');
        text
    }

    /// The three lines the VM network latency tool prints: `[time]
    /// description`, the latency to each stage, the total and the process.
    fn compact_text(&self) -> String {
        let (_, time) = self.start();
        let description = match &self.path.report.describe {
            Some(_) => self.description(),
            None => format!("{}\n", self.path.title()),
        };
        let mut text = format!("[{}] {}", time, description);
        let steps: Vec<String> = self
            .segments
            .iter()
            .map(|seg| {
                let ms = seg.ns as f64 / 1000.0;
                let label = &self.path.stages[seg.to].label;
                format!("{}: {:.2}μs{}", label, ms, self.note(seg))
            })
            .collect();
        text += &format!("  {}\n", steps.join(" | "));
        let (pid, comm, _) = self.process(0..self.path.stages.len());
        text += &format!(
            "  Total Latency: {:.2}μs | PID: {} ({})\n",
            self.total as f64 / 1000.0,
            pid,
            comm
        );
        text
    }
}

/// Prints one reported packet: the event `record` of `path`, laid out
/// as `layout`.
pub fn print_event(
    path: &PathInfo,
    layout: &PathLayout,
    record: &[u8],
    sym: &dyn Symbolizer,
    printer: &mut Printer,
) -> std::io::Result<()> {
    let at = |off: u32| record.get(off as usize..).unwrap_or(&[]);
    let key = decode::value(&path.key, at(layout.key_off), sym);
    let info = (path.report.info != Ty::Void)
        .then(|| decode::value(&path.report.info, at(layout.info_off), sym));
    let seen: Vec<StageSeen> = (0..path.stages.len() as u32)
        .map(|i| stage_seen(record, layout, i))
        .collect();
    let (fired, segments, total) = segments(&seen.iter().map(|s| s.ts).collect::<Vec<_>>());
    let span = |a: usize, b: usize| seen[b].ts.saturating_sub(seen[a].ts);
    let split = path.report.split as usize;
    let halves = (split > 0).then(|| {
        let first: Vec<usize> = fired.iter().copied().filter(|i| *i < split).collect();
        let second: Vec<usize> = fired.iter().copied().filter(|i| *i >= split).collect();
        let within = |h: &[usize]| match (h.first(), h.last()) {
            (Some(a), Some(b)) => span(*a, *b),
            _ => 0,
        };
        let between = match (first.last(), second.first()) {
            (Some(a), Some(b)) => span(*a, *b),
            _ => 0,
        };
        (within(&first), within(&second), between)
    });

    let symbolized = |s: &StageSeen| -> Result<Vec<String>, String> {
        if !path.stacks {
            return Ok(Vec::new());
        }
        let ips = match s.stack {
            id if id >= 0 => sym.stack(id as u64),
            _ => Vec::new(),
        };
        match ips.is_empty() {
            true => Err(missing_stack(s.stack)),
            false => Ok(ips.into_iter().map(|ip| sym.symbol(ip, true)).collect()),
        }
    };
    // Each seen stage's stack, looked up only by the forms that show it.
    let stacks = || -> Vec<Stack> {
        seen.iter()
            .map(|s| match s.ts {
                0 => Ok(Vec::new()),
                _ => symbolized(s),
            })
            .collect()
    };
    // Only the form the output format prints is built (per packet).
    let text = || {
        let packet = Packet {
            path,
            key: &key,
            info: printf_values(info.clone().unwrap_or_else(|| key.clone())),
            seen: &seen,
            fired: &fired,
            segments: &segments,
            total,
            halves,
        };
        match path.report.style {
            ReportStyle::Trace => packet.trace_text(&stacks()),
            ReportStyle::Compact => packet.compact_text(),
        }
    };
    let json = || {
        let title = match path.report.subtitle.as_str() {
            "" => path.title().to_string(),
            subtitle => format!("{} ({})", path.title(), subtitle),
        };
        let mut segments_json = Vec::new();
        for seg in &segments {
            let skipped: Vec<String> = (seg.from + 1..seg.to)
                .map(|k| quote(&path.stages[k].name))
                .collect();
            segments_json.push(format!(
                "{{\"from\": {}, \"to\": {}, \"ns\": {}, \"skipped\": [{}]}}",
                quote(&path.stages[seg.from].name),
                quote(&path.stages[seg.to].name),
                seg.ns,
                skipped.join(", ")
            ));
        }
        let halves_json = halves.map_or(String::new(), |(first, second, between)| {
            format!(
                ", \"path1_ns\": {}, \"path2_ns\": {}, \"inter_path_ns\": {}",
                first, second, between
            )
        });
        let mut stages_json = Vec::new();
        for ((stage, s), stack) in path.stages.iter().zip(&seen).zip(&stacks()) {
            if s.ts == 0 {
                stages_json.push(format!(
                    "{{\"name\": {}, \"seen\": false}}",
                    quote(&stage.name)
                ));
                continue;
            }
            let (stack_json, stack_error) = match stack {
                Ok(frames) => (frames.iter().map(|f| quote(f)).collect(), String::new()),
                Err(why) => (Vec::new(), format!(", \"stack_error\": {}", quote(why))),
            };
            stages_json.push(format!(
                "{{\"name\": {}, \"probe\": {}, \"seen\": true, \"ts_ns\": {}, \"pid\": {}, \"comm\": {}, \"ifindex\": {}, \"interface\": {}, \"skb\": {}, \"stack\": [{}]{}}}",
                quote(&stage.name),
                quote(&stage.probe),
                s.ts,
                s.pid,
                quote(&s.comm),
                s.ifindex,
                quote(&s.interface()),
                s.skb,
                stack_json.join(", "),
                stack_error
            ));
        }
        format!(
            "{{\"type\": \"path\", \"data\": {{\"version\": {}, \"path\": {}, \"title\": {}, \"key\": {}, \"info\": {}, \"stages\": [{}], \"segments\": [{}], \"total_ns\": {}{}}}}}",
            PATH_JSON_VERSION,
            quote(&path.name),
            quote(&title),
            value_json(&key),
            info.as_ref().map_or("null".to_string(), value_json),
            stages_json.join(", "),
            segments_json.join(", "),
            total,
            halves_json
        )
    };
    let record = Record::Packet {
        path: &path.name,
        segments: &segments,
        total_ns: total,
    };
    printer.report(text, json, Some(record))
}

/// A seen stage's kernel stack, symbolized, or why there is none.
type Stack = Result<Vec<String>, String>;

/// Why a seen stage has no kernel stack: `bpf_get_stackid`'s error (`id`
/// is minus its errno), or an id the stack table no longer holds.
fn missing_stack(id: i64) -> String {
    match -id {
        17 => format!("another stack holds its slot of the {STACK_ENTRIES}-stack table (EEXIST)"),
        14 => "the kernel could not walk it (EFAULT)".to_string(),
        errno if errno > 0 => format!("bpf_get_stackid failed with error {errno}"),
        _ => format!("stack {id} is no longer in the stack table"),
    }
}

#[cfg(test)]
mod tests {
    use super::missing_stack;

    #[test]
    fn a_missing_stack_says_why() {
        assert!(missing_stack(-17).contains("1024-stack table (EEXIST)"));
        assert!(missing_stack(-14).contains("EFAULT"));
        assert!(missing_stack(-22).contains("error 22"));
        assert!(missing_stack(5).contains("stack 5 is no longer"));
    }
}
