//! One reported packet of a path, as text and JSON: a heading with the
//! time, the `describe` lines, each stage's context, the segments between
//! the stages that fired, and the totals (per half and round trip when the
//! path is split into a request and a reply).

use super::decode::{self, Symbolizer};
use crate::ir::layout::{path_layout, PathLayout};
use crate::output::json::{quote, value_json};
use crate::output::model::Value;
use crate::output::Printer;
use crate::sema::tast::PathInfo;
use crate::sema::types::Ty;

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
    device: String,
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

/// Local wall-clock time (`2025-01-15 10:30:45.123`) of monotonic time `ts`.
fn wall_clock(ts: u64) -> String {
    let mono = super::features::monotonic_ns();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let at = now.saturating_sub(mono.saturating_sub(ts));
    let secs = (at / 1_000_000_000) as libc::time_t;
    // SAFETY: localtime_r writes only into tm, which lives on this stack.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    if !ok {
        return format!("{}.{:03}", secs, at / 1_000_000 % 1000);
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        at / 1_000_000 % 1000
    )
}

/// A segment between two stages that fired, with the optional stages it
/// skipped.
struct Segment {
    from: usize,
    to: usize,
    ns: u64,
}

/// The values `info` kept, as printf arguments.
fn info_values(info: Value) -> Vec<Value> {
    match info {
        Value::Tuple(items) => items,
        v => vec![v],
    }
}

/// Prints one reported packet.
pub fn print_event(
    path: &PathInfo,
    record: &[u8],
    sym: &dyn Symbolizer,
    printer: &mut Printer,
) -> std::io::Result<()> {
    let layout = path_layout(path);
    let at = |off: u32| record.get(off as usize..).unwrap_or(&[]);
    let key = decode::value(&path.key, at(layout.key_off), sym);
    let info = (path.report.info != Ty::Void)
        .then(|| decode::value(&path.report.info, at(layout.info_off), sym));
    let seen: Vec<StageSeen> = (0..path.stages.len() as u32)
        .map(|i| stage_seen(record, &layout, i))
        .collect();
    let fired: Vec<usize> = (0..seen.len()).filter(|i| seen[*i].ts != 0).collect();
    let span = |a: usize, b: usize| seen[b].ts.saturating_sub(seen[a].ts);
    let segments: Vec<Segment> = fired
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

    let title = if path.report.title.is_empty() {
        &path.name
    } else {
        &path.report.title
    };
    let start = fired.first().map_or(0, |i| seen[*i].ts);
    let mut text = format!("=== {}: {} ===\n", title, wall_clock(start));
    match (&path.report.describe, &info) {
        (Some(format), Some(values)) => {
            let pieces = crate::output::printf::parse_format(format).unwrap_or_default();
            text += &crate::output::printf::format(&pieces, &info_values(values.clone()));
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        _ => text += &format!("Key: {}\n", crate::output::text::value_text(&key)),
    }
    text += "Stages:\n";
    let width = path.stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut stages_json = Vec::new();
    for (i, (stage, s)) in path.stages.iter().zip(&seen).enumerate() {
        if s.ts == 0 {
            text += &format!("  [{}] {:<width$}  (not seen)\n", i, stage.name);
            stages_json.push(format!(
                "{{\"name\": {}, \"seen\": false}}",
                quote(&stage.name)
            ));
            continue;
        }
        // No device yet (e.g. before routing): "-".
        let interface = match (s.device.is_empty(), s.ifindex) {
            (false, _) => s.device.clone(),
            (true, 0) => "-".to_string(),
            (true, n) => format!("ifindex {}", n),
        };
        text += &format!(
            "  [{}] {:<width$}  PID={} COMM={} IF={} SKB=0x{:x}\n",
            i, stage.name, s.pid, s.comm, interface, s.skb
        );
        let frames: Vec<String> = if s.stack >= 0 && path.stacks {
            sym.stack(s.stack as u64)
                .into_iter()
                .map(|ip| sym.symbol(ip, true))
                .collect()
        } else {
            Vec::new()
        };
        for f in &frames {
            text += &format!("        {}\n", f);
        }
        let stack_json: Vec<String> = frames.iter().map(|f| quote(f)).collect();
        stages_json.push(format!(
            "{{\"name\": {}, \"probe\": {}, \"seen\": true, \"ts_ns\": {}, \"pid\": {}, \"comm\": {}, \"ifindex\": {}, \"interface\": {}, \"skb\": {}, \"stack\": [{}]}}",
            quote(&stage.name),
            quote(&stage.probe),
            s.ts,
            s.pid,
            quote(&s.comm),
            s.ifindex,
            quote(&interface),
            s.skb,
            stack_json.join(", ")
        ));
    }
    let mut segments_json = Vec::new();
    let segment_line = |seg: &Segment| {
        let skipped = (seg.from + 1..seg.to).any(|k| path.stages[k].optional);
        let note = if skipped && !path.report.skip_note.is_empty() {
            format!(" ({})", path.report.skip_note)
        } else {
            String::new()
        };
        format!(
            "  [{}->{}] {} -> {}: {}{}\n",
            seg.from,
            seg.to,
            path.stages[seg.from].name,
            path.stages[seg.to].name,
            us(seg.ns),
            note
        )
    };
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
    let mut halves_json = String::new();
    match halves {
        None => {
            text += "Latencies (us):\n";
            segments.iter().for_each(|s| text += &segment_line(s));
            text += &format!("Total Latency: {}\n", us(total));
        }
        Some((first, second, between)) => {
            for (n, range, half) in [(1, 0..split, first), (2, split..seen.len(), second)] {
                text += &format!("Path {} Latencies (us):\n", n);
                segments
                    .iter()
                    .filter(|s| range.contains(&s.from) && range.contains(&s.to))
                    .for_each(|s| text += &segment_line(s));
                text += &format!("  Total Path {}: {}\n", n, us(half));
            }
            text += &format!("Total RTT (Path1 Start to Path2 End): {}\n", us(total));
            text += &format!("Inter-Path Latency (P1 end -> P2 start): {}\n", us(between));
            halves_json = format!(
                ", \"path1_ns\": {}, \"path2_ns\": {}, \"inter_path_ns\": {}",
                first, second, between
            );
        }
    }
    text.push('\n');
    let json = format!(
        "{{\"type\": \"path\", \"data\": {{\"path\": {}, \"title\": {}, \"key\": {}, \"info\": {}, \"stages\": [{}], \"segments\": [{}], \"total_ns\": {}{}}}}}",
        quote(&path.name),
        quote(title),
        value_json(&key),
        info.as_ref().map_or("null".to_string(), value_json),
        stages_json.join(", "),
        segments_json.join(", "),
        total,
        halves_json
    );
    printer.report(&text, &json)
}
