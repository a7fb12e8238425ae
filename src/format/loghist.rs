//! Log-linear histograms, `hist(x, k)`: each power-of-two bucket of
//! bpftrace's `hist(x)` split into `2^k` linear sub-buckets, and the
//! percentiles estimated from them.
//!
//! Bucket index of a value `v` (the kernel computes the same, see
//! `ir::lower::buckets`; [`hist_index`] is the reference):
//! - `v < 0` → 0 (all negative values);
//! - `0 <= v < 2^k` → `v + 1` (one exact bucket per value);
//! - otherwise, with `e = floor(log2 v)` and `s = e - k`:
//!   `1 + (s << k) + (v >> s)`. `m = v >> s` lies in `[2^k, 2^(k+1))`, so
//!   the bucket is `[m·2^s, (m+1)·2^s)`, of width `2^s`.
//!
//! With `k = 0` this is bpftrace's `hist()` (0 → 1, `[2^e, 2^(e+1))` →
//! `e + 2`).
//!
//! Percentiles use the nearest-rank definition: the q-quantile of N values
//! is the `ceil(q·N)`-th smallest (at least the first). Its bucket is found
//! by cumulative count and the bucket's midpoint `low + width/2` is
//! reported (the value itself for exact buckets). For a non-exact bucket
//! `low = m·2^s >= 2^k·width`, so the error is at most
//! `(width/2) / low <= 2^-(k+1)` of the true value. Negative values report 0.

use std::ops::Range;

/// The quantiles [`percentiles`] reports: p50, p90, p99 and p99.9.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// The bucket index of `value` in a `hist(x, bits)` histogram (the Rust
/// reference of the index computed by the BPF program).
pub fn hist_index(value: i64, bits: u8) -> usize {
    let Ok(v) = u64::try_from(value) else {
        return 0;
    };
    if v < 1u64 << bits {
        return v as usize + 1;
    }
    let shift = v.ilog2() - u32::from(bits);
    1 + ((shift as usize) << bits) + (v >> shift) as usize
}

/// The values of bucket `index` of a `hist(x, bits)` histogram, end
/// excluded. `None` for bucket 0 (negative values) and for indexes no
/// 64-bit value reaches.
pub fn bucket_range(index: usize, bits: u8) -> Option<Range<u64>> {
    let sub_buckets = 1usize << bits;
    if index == 0 {
        return None;
    }
    if index <= sub_buckets {
        let value = index as u64 - 1;
        return Some(value..value + 1);
    }
    let shift = u32::try_from((index - 1) / sub_buckets - 1).ok()?;
    let m = ((index - 1) % sub_buckets + sub_buckets) as u64;
    let low = m.checked_shl(shift).filter(|low| low >> shift == m)?;
    let high = low.checked_add(1u64 << shift)?;
    (high <= 1u64 << 63).then_some(low..high)
}

/// The estimated value at quantile `q` (0 < q <= 1; quantiles are taken to
/// 6 decimal places) of a `hist(x, bits)` histogram: the midpoint of the
/// bucket holding the `ceil(q·N)`-th smallest value, 0 when that is a
/// negative value. `None` for an empty histogram.
pub fn quantile(buckets: &[u64], bits: u8, q: f64) -> Option<u64> {
    const SCALE: u128 = 1_000_000;
    let total: u128 = buckets.iter().map(|c| u128::from(*c)).sum();
    if total == 0 {
        return None;
    }
    let scaled_q = (q.clamp(0.0, 1.0) * SCALE as f64).round() as u128;
    let rank = (scaled_q * total).div_ceil(SCALE).clamp(1, total);
    let mut seen = 0u128;
    let index = buckets.iter().position(|count| {
        seen += u128::from(*count);
        seen >= rank
    })?;
    Some(bucket_range(index, bits).map_or(0, |r| r.start + (r.end - r.start) / 2))
}

/// The [`QUANTILES`] of a `hist(x, bits)` histogram (any `bits`, 0
/// included) as `(quantile, value)` pairs; empty for an empty histogram.
pub fn percentiles(buckets: &[u64], bits: u8) -> Vec<(f64, u64)> {
    QUANTILES
        .iter()
        .filter_map(|q| quantile(buckets, bits, *q).map(|value| (*q, value)))
        .collect()
}

/// The name of a quantile: `p50`, `p99.9`.
pub fn percentile_name(q: f64) -> String {
    let percent = format!("{:.4}", q * 100.0);
    format!("p{}", percent.trim_end_matches('0').trim_end_matches('.'))
}

/// The line printed under a `hist(x, k)` chart:
/// `p50=12 p90=40 p99=96 p99.9=120` (empty for an empty histogram).
pub fn percentiles_text(buckets: &[u64], bits: u8) -> String {
    let parts: Vec<String> = percentiles(buckets, bits)
        .iter()
        .map(|(q, value)| format!("{}={value}", percentile_name(*q)))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bits_is_bpftraces_log2() {
        assert_eq!(hist_index(-5, 0), 0);
        assert_eq!(hist_index(0, 0), 1);
        assert_eq!(hist_index(1, 0), 2);
        assert_eq!(hist_index(1023, 0), 11);
        assert_eq!(hist_index(1024, 0), 12);
        assert_eq!(bucket_range(12, 0), Some(1024..2048));
        assert_eq!(hist_index(i64::MAX, 0), 64);
    }

    #[test]
    fn every_value_falls_in_its_buckets_range() {
        for bits in 0..=5u8 {
            let mut values: Vec<i64> = (0..5000).collect();
            values.extend((0..63).flat_map(|p| [(1i64 << p) - 1, 1 << p, (1 << p) + 1]));
            values.extend([i64::MAX, 123_456_789]);
            for v in values {
                let range = bucket_range(hist_index(v, bits), bits).unwrap();
                assert!(range.contains(&(v as u64)), "{v} k={bits} {range:?}");
            }
        }
    }

    #[test]
    fn buckets_are_contiguous_and_never_empty_by_construction() {
        for bits in 0..=5u8 {
            let last = hist_index(i64::MAX, bits);
            let mut next = 0u64;
            for index in 1..=last {
                let range = bucket_range(index, bits).unwrap();
                assert_eq!(range.start, next, "k={bits} index {index}");
                assert!(range.end > range.start);
                assert_eq!(hist_index(range.start as i64, bits), index);
                next = range.end;
            }
            assert_eq!(next, 1 << 63);
            assert_eq!(bucket_range(last + 1, bits), None);
        }
    }

    #[test]
    fn three_bits_split_1k_in_eight() {
        assert_eq!(hist_index(7, 3), 8);
        assert_eq!(hist_index(8, 3), 9);
        assert_eq!(hist_index(15, 3), 16);
        assert_eq!(hist_index(16, 3), 17);
        assert_eq!(bucket_range(17, 3), Some(16..18));
        assert_eq!(bucket_range(hist_index(1024, 3), 3), Some(1024..1152));
        assert_eq!(bucket_range(hist_index(2047, 3), 3), Some(1920..2048));
    }

    #[test]
    fn nearest_rank_midpoints() {
        // 10 values: 0 ×5, 100 ×4, 1000 ×1 in hist(x, 2).
        let mut buckets = vec![0u64; 64];
        for (v, n) in [(0i64, 5u64), (100, 4), (1000, 1)] {
            buckets[hist_index(v, 2)] += n;
        }
        assert_eq!(quantile(&buckets, 2, 0.5), Some(0));
        // 100 is in [96, 112): midpoint 104; 1000 in [896, 1024): 960.
        assert_eq!(quantile(&buckets, 2, 0.6), Some(104));
        assert_eq!(quantile(&buckets, 2, 0.9), Some(104));
        assert_eq!(quantile(&buckets, 2, 0.99), Some(960));
        assert_eq!(quantile(&[], 2, 0.5), None);
        assert_eq!(
            percentiles_text(&buckets, 2),
            "p50=0 p90=104 p99=960 p99.9=960"
        );
    }

    #[test]
    fn midpoint_error_is_at_most_two_to_minus_k_plus_one() {
        for bits in 0..=5u8 {
            let bound = 0.5f64.powi(i32::from(bits) + 1);
            let mut worst = 0.0f64;
            for v in (1..70_000i64).chain((0..62).map(|p| 3i64 << p)) {
                let mut buckets = vec![0u64; hist_index(v, bits) + 1];
                buckets[hist_index(v, bits)] = 1;
                let estimate = quantile(&buckets, bits, 0.5).unwrap() as f64;
                worst = worst.max((estimate - v as f64).abs() / v as f64);
            }
            assert!(worst <= bound, "k={bits}: {worst} > {bound}");
            // The bound is reached: the low end of a bucket of width >= 2.
            assert!(worst >= bound * 0.99, "k={bits}: {worst}");
        }
    }

    #[test]
    fn names() {
        let names: Vec<String> = QUANTILES.iter().map(|q| percentile_name(*q)).collect();
        assert_eq!(names, ["p50", "p90", "p99", "p99.9"]);
    }
}
