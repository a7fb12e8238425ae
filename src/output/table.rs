//! `table(@a, @b, ...)` in text: maps as one table a person reads
//! at a glance. Maps without a key give a row each (the value; for a
//! histogram its count and p50/p90/p99). Maps with keys (the same key
//! types, checked when the script is compiled) give a row per key, in
//! key order, and a column per map (two for a histogram: p50 and p99);
//! a key a map lacks shows `-`. In JSON each map prints as `print(@m)`
//! would.

use super::model::{Aggregate, MapDump};
use super::text::{key_component_text, value_text, MapShape};
use crate::format::loghist;

/// The table of `maps` (each with its shape, from its declaration; maps
/// with keys when `keyed`), ending with a newline (nothing for no maps).
pub fn table_text(maps: &[(MapDump, MapShape)], keyed: bool) -> String {
    if maps.is_empty() {
        return String::new();
    }
    let rows = if keyed {
        keyed_rows(maps)
    } else {
        keyless_rows(maps)
    };
    layout(&rows)
}

/// The histogram buckets and sub-bucket bits of an aggregate, if it is
/// one with percentiles.
fn histogram(a: &Aggregate) -> Option<(&[u64], u8)> {
    match a {
        Aggregate::Hist(b) => Some((b, 0)),
        Aggregate::SubHist { bits, buckets } => Some((buckets, *bits)),
        _ => None,
    }
}

/// A histogram's value at quantile `q`, or `-` when it is empty.
fn quantile(a: &Aggregate, q: f64) -> String {
    histogram(a)
        .and_then(|(b, bits)| loghist::quantile(b, bits, q))
        .map_or("-".to_string(), |v| v.to_string())
}

/// The one-cell summary of a value that is not a histogram; a histogram's
/// (or `lhist`'s) count of values.
fn value(a: &Aggregate) -> String {
    match a {
        Aggregate::Scalar(v) => value_text(v),
        Aggregate::Count(v) => v.to_string(),
        Aggregate::Sum(v) | Aggregate::Min(v) | Aggregate::Max(v) | Aggregate::Avg(v) => {
            v.to_string()
        }
        Aggregate::Stats { count, avg, .. } => format!("{avg} (avg of {count})"),
        Aggregate::Hist(b)
        | Aggregate::SubHist { buckets: b, .. }
        | Aggregate::Lhist { buckets: b, .. } => b.iter().sum::<u64>().to_string(),
    }
}

/// Keyless maps: a header, then a row per map.
fn keyless_rows(maps: &[(MapDump, MapShape)]) -> Vec<Vec<String>> {
    let header = ["", "value", "p50", "p90", "p99"]
        .map(String::from)
        .to_vec();
    let rows = maps.iter().map(|(d, _)| {
        let mut row = vec![d.name.clone()];
        match d.entries.first() {
            Some((_, a)) => {
                row.push(value(a));
                row.extend([0.5, 0.9, 0.99].map(|q| quantile(a, q)));
            }
            None => row.extend(["-"; 4].map(String::from)),
        }
        row
    });
    std::iter::once(header).chain(rows).collect()
}

/// Keyed maps: a header of map names (two columns for a histogram, even
/// an empty one), then a row per key.
fn keyed_rows(maps: &[(MapDump, MapShape)]) -> Vec<Vec<String>> {
    let is_histogram = |shape: &MapShape| *shape == MapShape::Histogram;
    let mut header = vec![String::new()];
    for (d, shape) in maps {
        match is_histogram(shape) {
            true => header.extend([format!("{} p50", d.name), format!("{} p99", d.name)]),
            false => header.push(d.name.clone()),
        }
    }
    let mut keys: Vec<&Vec<super::model::Value>> = maps
        .iter()
        .flat_map(|(d, _)| d.entries.iter().map(|(k, _)| k))
        .collect();
    keys.sort();
    keys.dedup();
    let rows = keys.into_iter().map(|key| {
        let parts: Vec<String> = key.iter().map(key_component_text).collect();
        let mut row = vec![parts.join(", ")];
        for (d, shape) in maps {
            let entry = d.entries.iter().find(|(k, _)| k == key).map(|(_, a)| a);
            match (is_histogram(shape), entry) {
                (true, Some(a)) => row.extend([quantile(a, 0.5), quantile(a, 0.99)]),
                (true, None) => row.extend(["-", "-"].map(String::from)),
                (false, Some(a)) => row.push(value(a)),
                (false, None) => row.push("-".into()),
            }
        }
        row
    });
    let mut out: Vec<Vec<String>> = std::iter::once(header).chain(rows).collect();
    if out.len() == 1 {
        out.push(vec!["(no entries)".into()]);
    }
    out
}

/// Rows as aligned text: the first column left-aligned, the others
/// right-aligned, two spaces apart.
fn layout(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| {
        rows.iter()
            .filter_map(|r| r.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| match c {
                0 => format!("{cell:<w$}", w = widths[0]),
                _ => format!("{cell:>w$}", w = widths[c]),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::model::Value;

    /// A map with the shape its values give it.
    fn shaped(name: &str, entries: Vec<(Vec<Value>, Aggregate)>) -> (MapDump, MapShape) {
        let dump = MapDump::new(name, entries);
        let shape = dump
            .entries
            .first()
            .map_or(MapShape::Plain, |(_, a)| MapShape::of(a));
        (dump, shape)
    }

    #[test]
    fn keyless_maps_are_a_row_each_with_percentiles_for_histograms() {
        // hist(x): bucket 2 holds [1, 2), bucket 12 holds [1024, 2048).
        let mut buckets = vec![0; 13];
        buckets[12] = 4;
        let text = table_text(
            &[
                shaped("@srtt_us", vec![(vec![], Aggregate::Hist(buckets))]),
                shaped("@retransmits", vec![(vec![], Aggregate::Count(3))]),
                shaped("@never", vec![]),
            ],
            false,
        );
        assert_eq!(
            text,
            "              value   p50   p90   p99\n\
             @srtt_us          4  1536  1536  1536\n\
             @retransmits      3     -     -     -\n\
             @never            -     -     -     -\n"
        );
    }

    #[test]
    fn keyed_maps_share_a_row_per_key_and_missing_cells_say_so() {
        let key = |s: &str| vec![Value::Str(s.into())];
        let text = table_text(
            &[
                shaped("@drops", vec![(key("NO_SOCKET"), Aggregate::Count(2))]),
                shaped(
                    "@drops_host_wide",
                    vec![
                        (key("NO_SOCKET"), Aggregate::Count(5)),
                        (key("OTHERHOST"), Aggregate::Count(1)),
                    ],
                ),
            ],
            true,
        );
        assert_eq!(
            text,
            "           @drops  @drops_host_wide\n\
             NO_SOCKET       2                 5\n\
             OTHERHOST       -                 1\n"
        );
        let empty = table_text(&[shaped("@a", vec![]), shaped("@b", vec![])], true);
        assert_eq!(empty, "              @a  @b\n(no entries)\n");
    }
}
