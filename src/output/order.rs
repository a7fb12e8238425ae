//! The order in which bpftrace 0.17 prints the entries of a map and the maps
//! themselves.
//!
//! Entries of a `MapDump` are expected in the kernel's `bpf_map_get_next_key`
//! iteration order: bpftrace sorts with comparisons that leave ties in that
//! order, so ties (two keys with the same count) come out as the kernel
//! iterated them.

use std::cmp::Ordering;

use super::model::{Aggregate, MapDump, Value};

/// One map entry: key components and aggregated value.
pub type Entry = (Vec<Value>, Aggregate);

/// Returns the entries of `dump` in the order bpftrace prints them:
/// - count/sum/min/max and integer values: ascending by value;
/// - hist/lhist: ascending by the total count of all buckets, ties ordered by
///   the raw key bytes (bpftrace collects them in a `std::map` first);
/// - avg/stats: ascending by the average, ties ordered by raw key bytes;
/// - anything else (strings, tuples, ...): by key, first component first,
///   integers compared as unsigned 64-bit, strings bytewise, other key
///   kinds left in kernel order.
pub fn ordered_entries(dump: &MapDump) -> Vec<&Entry> {
    let mut entries: Vec<&Entry> = dump.entries.iter().collect();
    match entries.first().map(|entry| &entry.1) {
        Some(Aggregate::Hist(_) | Aggregate::SubHist { .. } | Aggregate::Lhist { .. }) => {
            entries.sort_by(|a, b| key_bytes_cmp(&a.0, &b.0));
            entries.sort_by_key(|entry| bucket_total(&entry.1));
        }
        Some(Aggregate::Avg(_) | Aggregate::Stats { .. }) => {
            entries.sort_by(|a, b| key_bytes_cmp(&a.0, &b.0));
            entries.sort_by_key(|entry| average(&entry.1));
        }
        Some(Aggregate::Scalar(Value::Int(_) | Value::UInt(_)))
        | Some(Aggregate::Count(_) | Aggregate::Sum(_) | Aggregate::Min(_) | Aggregate::Max(_)) => {
            entries.sort_by(|a, b| value_cmp(&a.1, &b.1));
        }
        Some(Aggregate::Scalar(_)) => {
            entries.sort_by(|a, b| sortable_key_cmp(&a.0, &b.0));
        }
        None => {}
    }
    entries
}

/// Orders maps as bpftrace prints them at exit: by name, bytewise (bpftrace
/// creates its maps from a name-sorted table and prints them in that order).
pub fn exit_maps_order(dumps: &mut [MapDump]) {
    dumps.sort_by(exit_order);
}

/// The comparison behind [`exit_maps_order`]: map names, bytewise.
pub fn exit_order(a: &MapDump, b: &MapDump) -> Ordering {
    a.name.as_bytes().cmp(b.name.as_bytes())
}

/// Sum of all buckets of a histogram (0 for other aggregates).
fn bucket_total(aggregate: &Aggregate) -> u64 {
    match aggregate {
        Aggregate::Hist(buckets)
        | Aggregate::SubHist { buckets, .. }
        | Aggregate::Lhist { buckets, .. } => buckets
            .iter()
            .fold(0u64, |sum, count| sum.wrapping_add(*count)),
        _ => 0,
    }
}

/// The average bpftrace sorts avg/stats maps by.
fn average(aggregate: &Aggregate) -> i64 {
    match aggregate {
        Aggregate::Avg(avg) | Aggregate::Stats { avg, .. } => *avg,
        _ => 0,
    }
}

/// Compares two plain values the way bpftrace compares them: signed for
/// sum/min/max and signed integers, unsigned for counts and unsigned integers.
fn value_cmp(a: &Aggregate, b: &Aggregate) -> Ordering {
    match (a, b) {
        (Aggregate::Count(x), Aggregate::Count(y)) => x.cmp(y),
        (Aggregate::Scalar(Value::UInt(x)), Aggregate::Scalar(Value::UInt(y))) => x.cmp(y),
        _ => signed_value(a).cmp(&signed_value(b)),
    }
}

/// A plain aggregate as a signed number (0 for non-numeric ones).
fn signed_value(aggregate: &Aggregate) -> i64 {
    match aggregate {
        Aggregate::Scalar(Value::Int(v))
        | Aggregate::Sum(v)
        | Aggregate::Min(v)
        | Aggregate::Max(v)
        | Aggregate::Avg(v) => *v,
        Aggregate::Scalar(Value::UInt(v)) | Aggregate::Count(v) => *v as i64,
        _ => 0,
    }
}

/// bpftrace's `sort_by_key`: integers as unsigned, strings bytewise, all
/// other key kinds compare equal (stay in kernel order).
fn sortable_key_cmp(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (Value::Int(_) | Value::UInt(_), Value::Int(_) | Value::UInt(_)) => {
                int_bits(x).cmp(&int_bits(y))
            }
            (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
            _ => Ordering::Equal,
        })
        .find(|ordering| ordering.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Order of the raw key bytes: integers are 8 little-endian bytes, strings
/// are NUL-padded (so plain bytewise order), other kinds fall back to the
/// model's own ordering (their raw bytes are ids we do not have).
fn key_bytes_cmp(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (Value::Int(_) | Value::UInt(_), Value::Int(_) | Value::UInt(_)) => {
                int_bits(x).to_le_bytes().cmp(&int_bits(y).to_le_bytes())
            }
            (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
            _ => x.cmp(y),
        })
        .find(|ordering| ordering.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The 64 bits of an integer value (0 for non-integers).
fn int_bits(value: &Value) -> u64 {
    match value {
        Value::Int(v) => *v as u64,
        Value::UInt(v) => *v,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(entries: Vec<Entry>) -> MapDump {
        MapDump {
            name: "@m".into(),
            entries,
        }
    }

    fn keys(dump: &MapDump) -> Vec<Vec<Value>> {
        ordered_entries(dump)
            .into_iter()
            .map(|e| e.0.clone())
            .collect()
    }

    #[test]
    fn count_ties_keep_kernel_order() {
        let d = dump(vec![
            (vec![Value::Int(3)], Aggregate::Count(2)),
            (vec![Value::Int(1)], Aggregate::Count(1)),
            (vec![Value::Int(2)], Aggregate::Count(2)),
        ]);
        assert_eq!(
            keys(&d),
            vec![
                vec![Value::Int(1)],
                vec![Value::Int(3)],
                vec![Value::Int(2)]
            ]
        );
    }

    #[test]
    fn hist_ties_follow_little_endian_key_bytes() {
        let d = dump(vec![
            (vec![Value::Int(1)], Aggregate::Hist(vec![0, 1])),
            (vec![Value::Int(256)], Aggregate::Hist(vec![0, 1])),
        ]);
        assert_eq!(keys(&d), vec![vec![Value::Int(256)], vec![Value::Int(1)]]);
    }

    #[test]
    fn exit_order_is_by_name() {
        let mut dumps = vec![dump(vec![]), dump(vec![]), dump(vec![])];
        dumps[0].name = "@z".into();
        dumps[1].name = "@".into();
        dumps[2].name = "@a".into();
        exit_maps_order(&mut dumps);
        let names: Vec<&str> = dumps.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, vec!["@", "@a", "@z"]);
    }
}
