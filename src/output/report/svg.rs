//! The report's charts, as inline SVG: stacked bars, a heat map and a
//! histogram, each with `<title>` tooltips (no script).

use std::fmt::Write;

use super::{Bucket, Sample};

/// Distinct colours, one per segment.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// The colour of the `i`-th segment.
pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// `s` with HTML's special characters escaped.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A latency in ns, in the unit that reads best: `850 ns`, `12.3 µs`,
/// `4.56 ms`, `1.20 s`.
pub fn duration(ns: u64) -> String {
    let v = ns as f64;
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", v / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", v / 1e6),
        _ => format!("{:.2} s", v / 1e9),
    }
}

const WIDTH: f64 = 900.0;
const LABEL: f64 = 60.0;

/// A part of a stacked bar: its colour's index, its name and its ns.
pub type BarPart = (usize, String, u64);

/// A stacked bar: its label and its parts.
pub type Bar = (String, Vec<BarPart>);

/// Horizontal stacked bars, one per row (`p50`, ...), each of its
/// segments' values (index into the palette, name, ns) laid end to end
/// across the whole width (each row shows shares; its sum is written
/// after it).
pub fn stacked_bars(rows: &[Bar]) -> String {
    let row_h = 28.0;
    let mut svg = open(WIDTH, row_h * rows.len() as f64 + 10.0);
    for (r, (label, parts)) in rows.iter().enumerate() {
        let y = 5.0 + row_h * r as f64;
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}" class="label">{}</text>"#,
            y + 17.0,
            escape(label)
        );
        let mut x = LABEL;
        let longest = parts.iter().map(|p| p.2).sum::<u64>().max(1) as f64;
        for (i, name, ns) in parts {
            let w = (WIDTH - LABEL - 90.0) * *ns as f64 / longest;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="22" fill="{}"><title>{}: {}</title></rect>"#,
                color(*i),
                escape(name),
                duration(*ns)
            );
            x += w;
        }
        let sum = parts.iter().map(|p| p.2).sum::<u64>();
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="label">{}</text>"#,
            x + 6.0,
            y + 17.0,
            duration(sum)
        );
    }
    svg + "</svg>"
}

/// The power-of-two bucket of a latency: `floor(log2(ns))` (0 for 0).
fn log2(ns: u64) -> u32 {
    63u32.saturating_sub(ns.leading_zeros())
}

/// Rows of the heat map per power of two.
const ROWS_PER_OCTAVE: f64 = 4.0;

/// The heat-map row of a latency: quarter powers of two.
fn row_of(ns: u64) -> u32 {
    ((ns.max(1) as f64).log2() * ROWS_PER_OCTAVE) as u32
}

/// The lowest latency of heat-map row `row`.
fn row_floor(row: u32) -> u64 {
    2f64.powf(row as f64 / ROWS_PER_OCTAVE) as u64
}

/// Latency over time: columns of `duration / columns` seconds, rows of
/// quarter-power-of-two latency ranges (the highest at the top), each cell
/// shaded by how many samples fell in it.
pub fn heat_map(samples: &[Sample], duration_s: f64) -> String {
    let columns = 40usize;
    let span = duration_s.max(1.0);
    let (low, high) = samples.iter().fold((u32::MAX, 0), |(lo, hi), s| {
        (lo.min(row_of(s.1)), hi.max(row_of(s.1)))
    });
    if low > high {
        return String::new();
    }
    let rows = (high - low + 1) as usize;
    let mut cells = vec![0u64; columns * rows];
    for (t, ns, n) in samples {
        let c = ((t / span) * columns as f64).min(columns as f64 - 1.0) as usize;
        cells[(high - row_of(*ns)) as usize * columns + c] += n;
    }
    let most = cells.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (cell_w, cell_h) = ((WIDTH - 2.0 * LABEL) / columns as f64, 14.0);
    let mut svg = open(WIDTH, cell_h * rows as f64 + 30.0);
    for r in 0..rows {
        let row = high - r as u32;
        let y = cell_h * r as f64;
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}" class="small">{}</text>"#,
            y + 11.0,
            duration(row_floor(row))
        );
        for c in 0..columns {
            let n = cells[r * columns + c];
            if n == 0 {
                continue;
            }
            let shade = 0.15 + 0.85 * n as f64 / most;
            let _ = write!(
                svg,
                r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#c0392b" fill-opacity="{shade:.2}"><title>{:.1}-{:.1} s, {} to {}: {n}</title></rect>"##,
                LABEL + cell_w * c as f64,
                cell_w - 1.0,
                cell_h - 1.0,
                span * c as f64 / columns as f64,
                span * (c + 1) as f64 / columns as f64,
                duration(row_floor(row)),
                duration(row_floor(row + 1)),
            );
        }
    }
    let axis_y = cell_h * rows as f64 + 18.0;
    let _ = write!(
        svg,
        r#"<text x="{LABEL}" y="{axis_y:.1}" class="small">0 s</text><text x="{:.1}" y="{axis_y:.1}" class="small" text-anchor="end">{span:.1} s</text>"#,
        WIDTH - LABEL,
    );
    svg + "</svg>"
}

/// A histogram: one bar per bucket, labelled with its range.
pub fn histogram(buckets: &[Bucket], color: &str) -> String {
    let most = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    let row_h = 18.0;
    let mut svg = open(WIDTH, row_h * buckets.len() as f64 + 4.0);
    for (i, b) in buckets.iter().enumerate() {
        let y = row_h * i as f64;
        let w = (WIDTH - 260.0) * b.count as f64 / most;
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.1}" class="small">[{}, {}]</text><rect x="180" y="{y:.1}" width="{w:.1}" height="14" fill="{color}"><title>{}</title></rect><text x="{:.1}" y="{:.1}" class="small">{}</text>"#,
            y + 12.0,
            duration(b.min),
            duration(b.max),
            b.count,
            186.0 + w,
            y + 12.0,
            b.count
        );
    }
    svg + "</svg>"
}

/// The power-of-two buckets of `samples` (for a segment the kernel kept
/// no histogram of), in order.
pub fn log2_buckets(samples: &[Sample]) -> Vec<Bucket> {
    let mut counts = std::collections::BTreeMap::new();
    for (_, ns, n) in samples {
        *counts.entry(log2(*ns)).or_insert(0) += n;
    }
    counts
        .into_iter()
        .map(|(b, count)| Bucket {
            min: if b == 0 { 0 } else { 1 << b },
            max: (1u64 << b).saturating_mul(2) - 1,
            count,
        })
        .collect()
}

fn open(width: f64, height: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0}" viewBox="0 0 {width} {height:.0}">"#
    )
}
