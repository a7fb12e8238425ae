//! bpftrace 0.17's JSON output (`-f json`): one JSON object per line.
//! Every function returns complete lines, trailing newline included.

use super::buckets::visible_buckets;
use super::model::{Aggregate, MapDump, Value};
use super::order::ordered_entries;
use super::text::{key_component_text, value_text, MapShape};
use crate::format::loghist::{percentile_name, percentiles};

/// A map as one JSON line: `{"type": "map", "data": {"@x": ...}}` with type
/// `map`, `hist` (hist and lhist) or `stats` (avg and stats). Maps with keys
/// nest one more object whose member names are the key components joined by
/// `,`. Returns an empty string for an empty map (bpftrace prints nothing).
/// A `hist(x, k)` value (k >= 1) is an object instead of bpftrace's bucket
/// array: `{"buckets": [...], "percentiles": {"p50": 5, "p90": 104, ...}}`.
pub fn map_json(dump: &MapDump) -> String {
    let Some((first_keys, first_value)) = dump.entries.first() else {
        return String::new();
    };
    let kind = match MapShape::of(first_value) {
        MapShape::Histogram => "hist",
        MapShape::Stats => "stats",
        MapShape::Plain | MapShape::Unseparated => "map",
    };
    let elements: Vec<String> = ordered_entries(dump)
        .into_iter()
        .map(|(keys, aggregate)| {
            let value = aggregate_json(aggregate);
            if keys.is_empty() {
                value
            } else {
                let parts: Vec<String> = keys.iter().map(key_component_text).collect();
                format!("{}: {value}", quote(&parts.join(",")))
            }
        })
        .collect();
    let body = elements.join(", ");
    let data = if first_keys.is_empty() {
        body
    } else {
        format!("{{{body}}}")
    };
    format!(
        "{{\"type\": \"{kind}\", \"data\": {{{}: {data}}}}}\n",
        quote(&dump.name)
    )
}

/// A printf result: `{"type": "printf", "data": "..."}`.
pub fn printf_json(text: &str) -> String {
    format!("{{\"type\": \"printf\", \"data\": {}}}\n", quote(text))
}

/// The line bpftrace prints once its probes are attached.
pub fn attached_probes_json(probes: u64) -> String {
    counter_json("attached_probes", "probes", probes)
}

/// The line bpftrace prints when ring/perf buffer events were lost.
pub fn lost_events_json(events: u64) -> String {
    counter_json("lost_events", "events", events)
}

/// `{"type": "<kind>", "data": {"<field>": <value>}}`.
fn counter_json(kind: &str, field: &str, value: u64) -> String {
    format!("{{\"type\": \"{kind}\", \"data\": {{\"{field}\": {value}}}}}\n")
}

/// The JSON of one map value.
fn aggregate_json(aggregate: &Aggregate) -> String {
    match aggregate {
        Aggregate::Scalar(value) => value_json(value),
        Aggregate::Count(v) => v.to_string(),
        Aggregate::Sum(v) | Aggregate::Min(v) | Aggregate::Max(v) | Aggregate::Avg(v) => {
            v.to_string()
        }
        Aggregate::Stats { count, avg, total } => {
            format!("{{\"count\": {count}, \"average\": {avg}, \"total\": {total}}}")
        }
        Aggregate::SubHist { bits, buckets } => {
            let members: Vec<String> = percentiles(buckets, *bits)
                .iter()
                .map(|(q, value)| format!("{}: {value}", quote(&percentile_name(*q))))
                .collect();
            format!(
                "{{\"buckets\": {}, \"percentiles\": {{{}}}}}",
                buckets_json(aggregate),
                members.join(", ")
            )
        }
        Aggregate::Hist(_) | Aggregate::Lhist { .. } => buckets_json(aggregate),
    }
}

/// The visible buckets of a histogram as bpftrace's JSON array:
/// `[{"min": 4, "max": 7, "count": 2}, ...]`.
fn buckets_json(aggregate: &Aggregate) -> String {
    let buckets: Vec<String> = visible_buckets(aggregate)
        .iter()
        .map(|bucket| {
            let min = bucket
                .min
                .map(|v| format!("\"min\": {v}, "))
                .unwrap_or_default();
            let max = bucket
                .max
                .map(|v| format!("\"max\": {v}, "))
                .unwrap_or_default();
            format!("{{{min}{max}\"count\": {}}}", bucket.count)
        })
        .collect();
    format!("[{}]", buckets.join(", "))
}

/// A value: numbers bare, text-like values quoted, tuples as `[a,b]`.
pub fn value_json(value: &Value) -> String {
    match value {
        Value::Int(_) | Value::UInt(_) => value_text(value),
        Value::Tuple(elements) => {
            let parts: Vec<String> = elements.iter().map(value_json).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Str(_) | Value::Sym(_) | Value::Stack(_) | Value::Addr(_) => {
            quote(&value_text(value))
        }
    }
}

/// `text` as a JSON string, escaped like bpftrace: `"`, `\`, `\n`, `\r`,
/// `\t` by name, other control characters as `\u00XX`. Non-ASCII characters
/// are kept as UTF-8 (bpftrace 0.17 emits invalid `\uffffffXX` for them).
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if u32::from(c) <= 0x1f => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_bpftrace() {
        assert_eq!(
            quote("a\"b\\c\n\r\t\u{1}é"),
            "\"a\\\"b\\\\c\\n\\r\\t\\u0001é\""
        );
    }

    #[test]
    fn stack_values_are_quoted_strings() {
        let dump = MapDump {
            name: "@s".into(),
            entries: vec![(vec![], Aggregate::Scalar(Value::Stack(vec!["f".into()])))],
        };
        assert_eq!(
            map_json(&dump),
            "{\"type\": \"map\", \"data\": {\"@s\": \"\\n        f\\n\"}}\n"
        );
    }

    #[test]
    fn sub_hist_values_carry_percentiles() {
        let mut buckets = vec![0u64; 30];
        buckets[crate::format::loghist::hist_index(5, 2)] = 2;
        buckets[crate::format::loghist::hist_index(100, 2)] = 1;
        let dump = MapDump {
            name: "@h".into(),
            entries: vec![(vec![Value::Int(1)], Aggregate::SubHist { bits: 2, buckets })],
        };
        assert_eq!(
            map_json(&dump),
            "{\"type\": \"hist\", \"data\": {\"@h\": {\"1\": {\"buckets\": [\
{\"min\": 5, \"max\": 5, \"count\": 2}, {\"min\": 6, \"max\": 6, \"count\": 0}, \
{\"min\": 7, \"max\": 7, \"count\": 0}, {\"min\": 8, \"max\": 9, \"count\": 0}, \
{\"min\": 10, \"max\": 11, \"count\": 0}, {\"min\": 12, \"max\": 13, \"count\": 0}, \
{\"min\": 14, \"max\": 15, \"count\": 0}, {\"min\": 16, \"max\": 19, \"count\": 0}, \
{\"min\": 20, \"max\": 23, \"count\": 0}, {\"min\": 24, \"max\": 27, \"count\": 0}, \
{\"min\": 28, \"max\": 31, \"count\": 0}, {\"min\": 32, \"max\": 39, \"count\": 0}, \
{\"min\": 40, \"max\": 47, \"count\": 0}, {\"min\": 48, \"max\": 55, \"count\": 0}, \
{\"min\": 56, \"max\": 63, \"count\": 0}, {\"min\": 64, \"max\": 79, \"count\": 0}, \
{\"min\": 80, \"max\": 95, \"count\": 0}, {\"min\": 96, \"max\": 111, \"count\": 1}], \
\"percentiles\": {\"p50\": 5, \"p90\": 104, \"p99\": 104, \"p99.9\": 104}}}}}\n"
        );
    }

    #[test]
    fn lost_and_attached_lines() {
        assert_eq!(
            lost_events_json(3),
            "{\"type\": \"lost_events\", \"data\": {\"events\": 3}}\n"
        );
        assert_eq!(
            attached_probes_json(2),
            "{\"type\": \"attached_probes\", \"data\": {\"probes\": 2}}\n"
        );
    }
}
