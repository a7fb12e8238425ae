//! A script's maps in the Prometheus text exposition format, version 0.0.4
//! (what Prometheus 2 scrapes and `promtool check metrics` reads): `count()`
//! maps are counters, other numeric maps gauges, `hist`/`lhist` maps
//! histograms with cumulative `le` buckets, `_sum` and `_count`. Map keys
//! become labels `key` (one key) or `key1`, `key2`, ... (several keys,
//! tuples flattened). A map whose name starts with `_` (`@_since`) is
//! the script's internal state and is left out. Prometheus wants base
//! units: a map named `*_ns`, `*_us` or `*_ms` is exported as `*_seconds`,
//! its values (gauge values, bucket bounds, sums) scaled to seconds.
//!
//! The `prometheus-client` crate writes the text in its OpenMetrics form;
//! the two differ only in a counter's HELP and TYPE lines (named without
//! `_total` in OpenMetrics, with it in the classic format, like the
//! samples) and the closing `# EOF`, which [`exposition`] adapts.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::buckets::visible_buckets;
use super::model::{Aggregate, MapDump, Value};
use super::text::key_component_text;

/// The content type of [`exposition`]'s text, for the HTTP response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One sample of a map entry.
#[derive(Debug, Clone)]
enum Sample {
    Counter(u64),
    Gauge(f64),
    Histogram {
        sum: f64,
        count: u64,
        /// (inclusive upper bound, count in the bucket), bounds increasing,
        /// the last one `+Inf`.
        buckets: Vec<(f64, u64)>,
    },
}

impl Sample {
    fn encode(&self, encoder: &mut MetricEncoder) -> Result<(), std::fmt::Error> {
        type Labels = Vec<(String, String)>;
        match self {
            Sample::Counter(n) => encoder.encode_counter::<Labels, _, u64>(n, None),
            Sample::Gauge(v) => encoder.encode_gauge(v),
            Sample::Histogram {
                sum,
                count,
                buckets,
            } => encoder.encode_histogram::<Labels>(*sum, *count, buckets, None),
        }
    }
}

/// One map as a metric: its type and a sample per key.
#[derive(Debug)]
struct MapMetric {
    kind: MetricType,
    samples: Vec<(Vec<(String, String)>, Sample)>,
}

impl EncodeMetric for MapMetric {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, sample) in &self.samples {
            if labels.is_empty() {
                sample.encode(&mut encoder)?;
            } else {
                sample.encode(&mut encoder.encode_family(labels)?)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        self.kind
    }
}

/// A map's metric name: `prefix` and the map name without `@`, with every
/// character Prometheus does not allow replaced by `_`.
pub fn metric_name(prefix: &str, map: &str) -> String {
    let bare = map.trim_start_matches('@');
    let bare = if bare.is_empty() { "map" } else { bare };
    format!("{}{}", prefix, bare)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The label pairs of a key: tuple components flattened in order.
fn labels(keys: &[Value]) -> Vec<(String, String)> {
    let mut flat = Vec::new();
    for k in keys {
        match k {
            Value::Tuple(parts) => flat.extend(parts.iter().cloned()),
            other => flat.push(other.clone()),
        }
    }
    let single = flat.len() == 1;
    flat.iter()
        .enumerate()
        .map(|(i, v)| {
            let name = if single {
                "key".to_string()
            } else {
                format!("key{}", i + 1)
            };
            (name, key_component_text(v))
        })
        .collect()
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        _ => None,
    }
}

/// A map name in base units: the name with a time suffix (`_ns`, `_us`,
/// `_ms`) replaced by `_seconds`, and the divisor that turns its values
/// into seconds (1 for other names).
fn base_unit(name: &str) -> (String, f64) {
    for (suffix, scale) in [("_ns", 1e9), ("_us", 1e6), ("_ms", 1e3)] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return (format!("{}_seconds", stem), scale);
        }
    }
    (name.to_string(), 1.0)
}

/// The sample of one aggregate, values divided by `scale` (counts are
/// not); `None` for values that are not numbers (strings, stacks,
/// addresses).
fn sample(aggregate: &Aggregate, scale: f64) -> Option<Sample> {
    Some(match aggregate {
        Aggregate::Scalar(v) => Sample::Gauge(number(v)? / scale),
        Aggregate::Count(n) => Sample::Counter(*n),
        Aggregate::Sum(v) | Aggregate::Min(v) | Aggregate::Max(v) | Aggregate::Avg(v) => {
            Sample::Gauge(*v as f64 / scale)
        }
        Aggregate::Stats { avg, .. } => Sample::Gauge(*avg as f64 / scale),
        Aggregate::Hist(_) | Aggregate::SubHist { .. } | Aggregate::Lhist { .. } => {
            let visible = visible_buckets(aggregate);
            let mut buckets: Vec<(f64, u64)> = visible
                .iter()
                .map(|b| (b.max.map_or(f64::INFINITY, |m| m as f64 / scale), b.count))
                .collect();
            if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
                buckets.push((f64::INFINITY, 0));
            }
            // The kernel keeps counts per bucket, not the values: the sum
            // is estimated from each bucket's midpoint.
            let sum = visible
                .iter()
                .map(|b| {
                    let (lo, hi) = (b.min.or(b.max).unwrap_or(0), b.max.or(b.min).unwrap_or(0));
                    (lo as f64 + hi as f64) / 2.0 * b.count as f64
                })
                .sum::<f64>()
                / scale;
            Sample::Histogram {
                sum,
                count: visible.iter().map(|b| b.count).sum(),
                buckets,
            }
        }
    })
}

/// The exposition text of `maps` (metric names `prefix` + map name). Maps
/// without a numeric value are left out.
pub fn exposition(maps: &[MapDump], prefix: &str) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    let mut counters = Vec::new();
    for dump in maps.iter().filter(|m| !m.name.starts_with("@_")) {
        let (name, scale) = base_unit(&metric_name(prefix, &dump.name));
        let kind = match dump.entries.first().map(|e| &e.1) {
            Some(Aggregate::Count(_)) => MetricType::Counter,
            Some(Aggregate::Hist(_) | Aggregate::SubHist { .. } | Aggregate::Lhist { .. }) => {
                MetricType::Histogram
            }
            Some(_) => MetricType::Gauge,
            None => continue,
        };
        let samples: Vec<_> = dump
            .entries
            .iter()
            .filter_map(|(keys, value)| Some((labels(keys), sample(value, scale)?)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        if matches!(kind, MetricType::Counter) {
            counters.push(name.clone());
        }
        let help = format!("netscript map {}", dump.name);
        registry.register(name, help, MapMetric { kind, samples });
    }
    let mut open_metrics = String::new();
    prometheus_client::encoding::text::encode_registry(&mut open_metrics, &registry)?;
    Ok(open_metrics
        .lines()
        .map(|line| {
            let counter_descriptor = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
                let rest = line.strip_prefix(tag)?;
                let (name, tail) = rest.split_once(' ')?;
                counters
                    .contains(&name.to_string())
                    .then(|| format!("{}{}_total {}", tag, name, tail))
            });
            counter_descriptor.unwrap_or_else(|| line.to_string()) + "\n"
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_labels() {
        let text = exposition(
            &[
                MapDump::new(
                    "@rst",
                    vec![(vec![Value::Str("sent".into())], Aggregate::Count(3))],
                ),
                MapDump::new(
                    "@bytes",
                    vec![(
                        vec![Value::Tuple(vec![
                            Value::Str("10.0.0.1".into()),
                            Value::UInt(80),
                        ])],
                        Aggregate::Sum(1500),
                    )],
                ),
                MapDump::new("@empty", vec![]),
            ],
            "netscript_",
        )
        .expect("encodes");
        assert!(
            text.contains("# TYPE netscript_rst_total counter\n"),
            "{}",
            text
        );
        assert!(text.contains("# HELP netscript_rst_total "), "{}", text);
        assert!(
            text.contains("netscript_rst_total{key=\"sent\"} 3\n"),
            "{}",
            text
        );
        assert!(text.contains("# TYPE netscript_bytes gauge\n"), "{}", text);
        assert!(
            text.contains("netscript_bytes{key1=\"10.0.0.1\",key2=\"80\"} 1500.0\n"),
            "{}",
            text
        );
        assert!(!text.contains("empty"));
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn histograms_have_cumulative_buckets_sum_and_count() {
        // hist(x): bucket 3 is [2, 4), bucket 4 is [4, 8).
        let text = exposition(
            &[MapDump::new(
                "@lat",
                vec![(vec![], Aggregate::Hist(vec![0, 0, 0, 2, 3]))],
            )],
            "",
        )
        .expect("encodes");
        assert!(text.contains("# TYPE lat histogram\n"), "{}", text);
        assert!(text.contains("lat_bucket{le=\"3.0\"} 2\n"), "{}", text);
        assert!(text.contains("lat_bucket{le=\"7.0\"} 5\n"), "{}", text);
        assert!(text.contains("lat_bucket{le=\"+Inf\"} 5\n"), "{}", text);
        assert!(text.contains("lat_count 5\n"), "{}", text);
        // Midpoints 2.5 and 5.5: 2*2.5 + 3*5.5.
        assert!(text.contains("lat_sum 21.5\n"), "{}", text);
    }

    #[test]
    fn time_units_become_seconds_and_internal_maps_stay_out() {
        let text = exposition(
            &[
                MapDump::new("@lat_us", vec![(vec![], Aggregate::Hist(vec![0, 0, 0, 2]))]),
                MapDump::new("@avg_ms", vec![(vec![], Aggregate::Avg(250))]),
                MapDump::new("@_since", vec![(vec![], Aggregate::Scalar(Value::UInt(5)))]),
            ],
            "",
        )
        .expect("encodes");
        assert!(text.contains("# TYPE lat_seconds histogram\n"), "{}", text);
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.000003\"} 2\n"),
            "{}",
            text
        );
        assert!(text.contains("lat_seconds_sum 0.000005\n"), "{}", text);
        assert!(text.contains("avg_seconds 0.25\n"), "{}", text);
        assert!(!text.contains("since"), "{}", text);
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(metric_name("ns_", "@a.b"), "ns_a_b");
        assert_eq!(metric_name("", "@"), "map");
    }
}
