//! bpftrace 0.17's text rendering of maps (what `print(@x)` and the exit
//! dump print).

use super::buckets::visible_buckets;
use super::model::{Aggregate, MapDump, Value};
use super::order::ordered_entries;
use crate::format::loghist::percentiles_text;

/// Orders map dumps as bpftrace prints them at exit (by name).
pub use super::order::exit_maps_order;

/// Width of the widest histogram bar, in `@` characters.
const BAR_WIDTH: usize = 52;

/// How bpftrace lays a map out, which depends on its value kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapShape {
    /// One `key: value` line per entry, then a newline.
    Plain,
    /// A value kind printed without separator lines (kstack, ksym, inet).
    Unseparated,
    /// hist/lhist: `key: ` then the bar chart; a blank line after each.
    Histogram,
    /// avg/stats: one line per entry, then a blank line.
    Stats,
}

impl MapShape {
    /// The shape of a map holding values like `aggregate`.
    pub fn of(aggregate: &Aggregate) -> MapShape {
        match aggregate {
            Aggregate::Hist(_) | Aggregate::SubHist { .. } | Aggregate::Lhist { .. } => {
                MapShape::Histogram
            }
            Aggregate::Avg(_) | Aggregate::Stats { .. } => MapShape::Stats,
            Aggregate::Scalar(Value::Stack(_) | Value::Sym(_) | Value::Addr(_)) => {
                MapShape::Unseparated
            }
            _ => MapShape::Plain,
        }
    }

    /// The shape of `dump` (`Plain` when it has no entries).
    pub fn of_dump(dump: &MapDump) -> MapShape {
        dump.entries
            .first()
            .map_or(MapShape::Plain, |entry| MapShape::of(&entry.1))
    }
}

/// Renders `dump` exactly as bpftrace 0.17 prints it, trailing newlines
/// included. An empty map prints a single newline; an empty avg/stats map
/// prints two in bpftrace, use [`map_text_shaped`] for those.
pub fn map_text(dump: &MapDump) -> String {
    map_text_shaped(dump, MapShape::of_dump(dump))
}

/// Like [`map_text`], with the layout given by the caller (needed for empty
/// maps, whose shape cannot be seen from their entries).
pub fn map_text_shaped(dump: &MapDump, shape: MapShape) -> String {
    let elements: Vec<String> = ordered_entries(dump)
        .into_iter()
        .map(|(keys, aggregate)| {
            let key = key_text(&dump.name, keys);
            match shape {
                MapShape::Histogram => format!("{key}: \n{}", histogram_text(aggregate)),
                _ => format!("{key}: {}", aggregate_text(aggregate)),
            }
        })
        .collect();
    let separator = if shape == MapShape::Unseparated {
        ""
    } else {
        "\n"
    };
    let trailer = if shape == MapShape::Stats {
        "\n\n"
    } else {
        "\n"
    };
    elements.join(separator) + trailer
}

/// `@name[k1, k2]`, or just `@name` without keys.
pub fn key_text(name: &str, keys: &[Value]) -> String {
    if keys.is_empty() {
        return name.to_string();
    }
    let parts: Vec<String> = keys.iter().map(key_component_text).collect();
    format!("{name}[{}]", parts.join(", "))
}

/// One key component as bpftrace prints it: integers signed, stacks with
/// frames indented by 4 spaces.
pub fn key_component_text(value: &Value) -> String {
    match value {
        Value::UInt(v) => (*v as i64).to_string(),
        Value::Stack(frames) => stack_text(frames, 4),
        _ => value_text(value),
    }
}

/// A value as bpftrace prints it: strings unquoted, tuples `(1, abc)`,
/// stacks as a newline then each frame indented by 8 spaces on its own line.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Int(v) => v.to_string(),
        Value::UInt(v) => v.to_string(),
        Value::Str(s) | Value::Sym(s) => s.clone(),
        Value::Stack(frames) => stack_text(frames, 8),
        Value::Addr(addr) => addr.to_string(),
        Value::Tuple(elements) => {
            let parts: Vec<String> = elements.iter().map(value_text).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// A stack: a newline, then one line per frame indented by `indent` spaces.
fn stack_text(frames: &[String], indent: usize) -> String {
    let padding = " ".repeat(indent);
    let lines: String = frames
        .iter()
        .map(|frame| format!("{padding}{frame}\n"))
        .collect();
    format!("\n{lines}")
}

/// The text after `key: ` for every non-histogram aggregate.
fn aggregate_text(aggregate: &Aggregate) -> String {
    match aggregate {
        Aggregate::Scalar(value) => value_text(value),
        Aggregate::Count(v) => v.to_string(),
        Aggregate::Sum(v) | Aggregate::Min(v) | Aggregate::Max(v) | Aggregate::Avg(v) => {
            v.to_string()
        }
        Aggregate::Stats { count, avg, total } => {
            format!("count {count}, average {avg}, total {total}")
        }
        Aggregate::Hist(_) | Aggregate::SubHist { .. } | Aggregate::Lhist { .. } => {
            histogram_text(aggregate)
        }
    }
}

/// The bar chart of a histogram: one line per visible bucket, the label
/// left-aligned in 16 columns, the count right-aligned in 8, then the bar.
/// A `hist(x, k)` chart ends with its percentiles line
/// (`p50=… p90=… p99=… p99.9=…`) when it is not empty.
fn histogram_text(aggregate: &Aggregate) -> String {
    let buckets = visible_buckets(aggregate);
    let largest = buckets.iter().map(|b| b.count).max().unwrap_or(0);
    let percentiles = match aggregate {
        Aggregate::SubHist { bits, buckets } if !buckets.iter().all(|c| *c == 0) => {
            format!("{}\n", percentiles_text(buckets, *bits))
        }
        _ => String::new(),
    };
    let chart: String = buckets
        .iter()
        .map(|bucket| {
            // bpftrace computes the bar in single-precision float and truncates.
            let bar_len = (bucket.count as f32 / largest as f32 * BAR_WIDTH as f32) as usize;
            let bar = "@".repeat(bar_len.min(BAR_WIDTH));
            format!(
                "{:<16}{:>8} |{:<BAR_WIDTH$}|\n",
                bucket.label, bucket.count, bar
            )
        })
        .collect();
    chart + &percentiles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kstack_values_are_indented_and_unseparated() {
        let dump = MapDump {
            name: "@".into(),
            entries: vec![(
                vec![Value::Int(1)],
                Aggregate::Scalar(Value::Stack(vec![
                    "tcp_sendmsg+5".into(),
                    "sock_sendmsg+7".into(),
                ])),
            )],
        };
        assert_eq!(
            map_text(&dump),
            "@[1]: \n        tcp_sendmsg+5\n        sock_sendmsg+7\n\n"
        );
    }

    #[test]
    fn kstack_keys_are_indented_by_four() {
        let keys = vec![Value::Stack(vec!["a".into()]), Value::UInt(u64::MAX)];
        assert_eq!(key_text("@k", &keys), "@k[\n    a\n, -1]");
    }

    #[test]
    fn sub_hist_chart_ends_with_percentiles() {
        let mut buckets = vec![0u64; 30];
        buckets[crate::format::loghist::hist_index(5, 2)] = 2;
        buckets[crate::format::loghist::hist_index(100, 2)] = 1;
        let dump = MapDump {
            name: "@h".into(),
            entries: vec![(vec![], Aggregate::SubHist { bits: 2, buckets })],
        };
        let expected = "@h: \n\
[5]                    2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\
[6]                    0 |                                                    |\n";
        assert!(map_text(&dump).starts_with(expected), "{}", map_text(&dump));
        assert!(map_text(&dump).ends_with(
            "[96, 112)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |\n\
p50=5 p90=104 p99=104 p99.9=104\n\n"
        ));
    }

    #[test]
    fn empty_maps() {
        let dump = MapDump {
            name: "@e".into(),
            entries: vec![],
        };
        assert_eq!(map_text(&dump), "\n");
        assert_eq!(map_text_shaped(&dump, MapShape::Stats), "\n\n");
    }
}
