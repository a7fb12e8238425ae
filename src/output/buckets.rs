//! The histogram buckets bpftrace shows for `hist()` and `lhist()` values,
//! shared by the text and JSON renderers.

use super::model::Aggregate;
use crate::format::loghist::bucket_range;

/// One printed histogram bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Text label, e.g. `[4, 8)`, `(..., 0)`, `[1K, 2K)`, `[100, ...)`.
    pub label: String,
    /// Smallest value of the bucket as bpftrace's JSON shows it (`None` for
    /// the "below" bucket).
    pub min: Option<i64>,
    /// Largest value of the bucket as bpftrace's JSON shows it (`None` for
    /// lhist's "above" bucket).
    pub max: Option<i64>,
    /// Number of values in the bucket.
    pub count: u64,
}

/// The buckets bpftrace prints for a histogram: from the first non-empty
/// bucket to the last non-empty one (empty buckets in between included).
/// Returns an empty list for an all-zero histogram or a non-histogram.
pub fn visible_buckets(aggregate: &Aggregate) -> Vec<Bucket> {
    let counts: &[u64] = match aggregate {
        Aggregate::Hist(buckets)
        | Aggregate::SubHist { buckets, .. }
        | Aggregate::Lhist { buckets, .. } => buckets,
        _ => return Vec::new(),
    };
    let (Some(first), Some(last)) = (
        counts.iter().position(|c| *c > 0),
        counts.iter().rposition(|c| *c > 0),
    ) else {
        return Vec::new();
    };
    (first..=last)
        .map(|index| {
            let (label, min, max) = match aggregate {
                Aggregate::Lhist {
                    min,
                    max,
                    step,
                    buckets,
                } => lhist_bounds(index, *min, *max, *step, buckets.len()),
                Aggregate::SubHist { bits, .. } => sub_hist_bounds(index, *bits),
                _ => hist_bounds(index),
            };
            Bucket {
                label,
                min,
                max,
                count: counts[index],
            }
        })
        .collect()
}

/// Label and JSON bounds of log2 bucket `index`. The JSON bounds reproduce
/// bpftrace 0.17's 32-bit `int` shifts (wrapping) for buckets >= 2^31.
fn hist_bounds(index: usize) -> (String, Option<i64>, Option<i64>) {
    match index {
        0 => ("(..., 0)".to_string(), None, Some(-1)),
        1 => ("[0]".to_string(), Some(0), Some(0)),
        2 => ("[1]".to_string(), Some(1), Some(1)),
        _ => {
            let power = (index - 2) as u32;
            let label = format!("[{}, {})", power_label(power), power_label(power + 1));
            let low = 1i32.wrapping_shl(power);
            let high = 1i32.wrapping_shl(power + 1).wrapping_sub(1);
            (label, Some(i64::from(low)), Some(i64::from(high)))
        }
    }
}

/// Label and JSON bounds of bucket `index` of a `hist(x, k)` histogram:
/// `[v]` for a bucket of one value, `[low, high)` otherwise, each bound with
/// the largest of the suffixes K/M/G/T that divides it exactly
/// (`[1K, 1152)`, `[1M, 1152K)`); JSON bounds are the first and last value.
fn sub_hist_bounds(index: usize, bits: u8) -> (String, Option<i64>, Option<i64>) {
    let Some(range) = bucket_range(index, bits) else {
        return ("(..., 0)".to_string(), None, Some(-1));
    };
    let (low, last) = (range.start as i64, (range.end - 1) as i64);
    let label = if range.end - range.start == 1 {
        format!("[{}]", suffixed(low, &UNITS))
    } else {
        format!(
            "[{}, {})",
            suffixed(low, &UNITS),
            suffixed(range.end as i64, &UNITS)
        )
    };
    (label, Some(low), Some(last))
}

/// `2^power` with a K/M/G/T suffix, as bpftrace labels log2 buckets.
fn power_label(power: u32) -> String {
    const SUFFIXES: [(u32, &str); 4] = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];
    let (rest, suffix) = SUFFIXES
        .iter()
        .find(|(threshold, _)| power >= *threshold)
        .map_or((power, ""), |(threshold, suffix)| {
            (power - threshold, *suffix)
        });
    format!("{}{}", 1u64.checked_shl(rest).unwrap_or(0), suffix)
}

/// Label and JSON bounds of linear bucket `index` of an lhist with
/// `bucket_count` buckets in total (below and above buckets included).
fn lhist_bounds(
    index: usize,
    min: i64,
    max: i64,
    step: i64,
    bucket_count: usize,
) -> (String, Option<i64>, Option<i64>) {
    let above_index = if step > 0 {
        usize::try_from((max - min) / step).map_or(bucket_count, |n| n + 1)
    } else {
        bucket_count.saturating_sub(1)
    };
    let i = index as i64;
    if index == 0 {
        (format!("(..., {})", linear_label(min)), None, Some(min - 1))
    } else if index == above_index {
        (format!("[{}, ...)", linear_label(max)), Some(max), None)
    } else {
        let low = (i - 1) * step + min;
        let high = i * step + min;
        let label = format!("[{}, {})", linear_label(low), linear_label(high));
        (label, Some(low), Some(high - 1))
    }
}

/// Binary units from the largest: T (2^40), G, M, K (2^10).
const UNITS: [(i64, &str); 4] = [
    (1 << 40, "T"),
    (1 << 30, "G"),
    (1 << 20, "M"),
    (1 << 10, "K"),
];

/// A linear bucket bound: `5M` / `3K` when an exact multiple of 2^20 / 2^10
/// (bpftrace 0.17 uses no larger unit for lhist).
fn linear_label(number: i64) -> String {
    suffixed(number, &UNITS[2..])
}

/// `number` with the first of `units` that divides it exactly (`3K`),
/// else plain (and `0` as `0`).
fn suffixed(number: i64, units: &[(i64, &str)]) -> String {
    units
        .iter()
        .find(|(unit, _)| number != 0 && number % unit == 0)
        .map_or(number.to_string(), |(unit, suffix)| {
            format!("{}{suffix}", number / unit)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_labels_and_bounds() {
        assert_eq!(hist_bounds(12).0, "[1K, 2K)");
        assert_eq!(
            hist_bounds(22),
            ("[1M, 2M)".to_string(), Some(1 << 20), Some((1 << 21) - 1))
        );
        assert_eq!(
            hist_bounds(33),
            ("[2G, 4G)".to_string(), Some(-2147483648), Some(0))
        );
        assert_eq!(hist_bounds(43).0, "[2T, 4T)");
    }

    #[test]
    fn trims_leading_and_trailing_empty_buckets() {
        let shown = visible_buckets(&Aggregate::Hist(vec![0, 0, 1, 0, 2, 0, 0]));
        let labels: Vec<&str> = shown.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, vec!["[1]", "[2, 4)", "[4, 8)"]);
        assert!(visible_buckets(&Aggregate::Hist(vec![0; 65])).is_empty());
    }

    #[test]
    fn sub_hist_labels_and_bounds() {
        let label = |index| sub_hist_bounds(index, 3);
        assert_eq!(label(0), ("(..., 0)".to_string(), None, Some(-1)));
        assert_eq!(label(1), ("[0]".to_string(), Some(0), Some(0)));
        assert_eq!(label(17), ("[16, 18)".to_string(), Some(16), Some(17)));
        let one_k = crate::format::loghist::hist_index(1024, 3);
        assert_eq!(
            label(one_k),
            ("[1K, 1152)".to_string(), Some(1024), Some(1151))
        );
        let one_m = crate::format::loghist::hist_index(1 << 20, 3);
        assert_eq!(label(one_m).0, "[1M, 1152K)");
        assert_eq!(label(one_m + 7).0, "[1920K, 2M)");
    }

    #[test]
    fn linear_labels() {
        assert_eq!(linear_label(3072), "3K");
        assert_eq!(linear_label(2 << 20), "2M");
        assert_eq!(linear_label(1500), "1500");
        let lhist = Aggregate::Lhist {
            min: 0,
            max: 100,
            step: 10,
            buckets: vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        };
        let shown = visible_buckets(&lhist);
        assert_eq!(shown.first().map(|b| b.label.as_str()), Some("(..., 0)"));
        assert_eq!(
            shown.last().map(|b| (b.label.as_str(), b.min, b.max)),
            Some(("[100, ...)", Some(100), None))
        );
    }
}
