//! Latency histograms of packet paths as the VM network latency tool
//! prints them: one row per power-of-two range of nanoseconds, labelled in
//! microseconds, with a bar and the count, then the percentiles
//! (`Percentiles: P50=15.2μs P90=45.8μs P99=89.1μs P99.9=120μs`), taken
//! from the full `hist(x, bits)` precision.

use crate::format::loghist::{bucket_range, percentile_name, percentiles};

/// Width of the longest bar.
const BAR_WIDTH: u64 = 20;

/// Nanoseconds as microseconds with three significant digits (`0.512`,
/// `4.10`, `16.4`, `131`).
pub fn micros(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    let decimals = match us {
        u if u >= 100.0 => 0,
        u if u >= 10.0 => 1,
        u if u >= 1.0 => 2,
        _ => 3,
    };
    format!("{:.*}", decimals, us)
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The row of bucket `index`: the power of two its values start at (0:
/// the value 0; `None`: negative values).
fn row_of(index: usize, bits: u8) -> Option<u32> {
    let range = bucket_range(index, bits)?;
    Some(if range.start == 0 {
        0
    } else {
        range.start.ilog2() + 1
    })
}

/// The text of one histogram of nanosecond values: the `heading` line
/// (`Stage: A -> B`), the rows from the first non-empty one to the last,
/// and the percentiles. Empty for an empty histogram.
pub fn latency_hist_text(heading: &str, buckets: &[u64], bits: u8) -> String {
    // Row r > 0 holds [2^(r-1), 2^r) ns; row 0 the value 0.
    let mut rows: Vec<u64> = Vec::new();
    let mut negative = 0;
    for (index, count) in buckets.iter().enumerate().filter(|(_, c)| **c > 0) {
        match row_of(index, bits) {
            Some(row) => {
                let row = row as usize;
                if rows.len() <= row {
                    rows.resize(row + 1, 0);
                }
                rows[row] += count;
            }
            None => negative += count,
        }
    }
    let Some(first) = rows.iter().position(|c| *c > 0) else {
        return String::new();
    };
    let max = rows.iter().copied().max().unwrap_or(1).max(negative);
    let bar = |count: u64| {
        let width = (count * BAR_WIDTH).div_ceil(max).min(BAR_WIDTH) as usize;
        "█".repeat(width)
    };
    let mut text = format!("{}\n", heading);
    if negative > 0 {
        text += &format!(
            "  {:<14}: {} {}\n",
            "(<0)",
            bar(negative),
            thousands(negative)
        );
    }
    for (row, count) in rows.iter().enumerate().skip(first) {
        let range = match row {
            0 => "[0]".to_string(),
            r => format!("[{}-{})", micros(1 << (r - 1)), micros(1 << r)),
        };
        text += &format!("  {:<14}: {} {}\n", range, bar(*count), thousands(*count));
    }
    let quantiles: Vec<String> = percentiles(buckets, bits)
        .iter()
        .map(|(q, ns)| {
            let name = percentile_name(*q).replacen('p', "P", 1);
            format!("{}={}μs", name, micros(*ns))
        })
        .collect();
    text += &format!("\nPercentiles: {}\n\n", quantiles.join(" "));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::loghist::hist_index;

    fn histogram(values: &[(i64, u64)], bits: u8) -> Vec<u64> {
        let mut buckets = vec![0; hist_index(i64::MAX, bits) + 1];
        for (v, n) in values {
            buckets[hist_index(*v, bits)] += n;
        }
        buckets
    }

    #[test]
    fn microseconds_keep_three_significant_digits() {
        assert_eq!(micros(512), "0.512");
        assert_eq!(micros(4096), "4.10");
        assert_eq!(micros(16384), "16.4");
        assert_eq!(micros(131072), "131");
        assert_eq!(thousands(1024), "1,024");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }

    #[test]
    fn rows_are_powers_of_two_with_percentiles_from_the_fine_buckets() {
        // 1,024 values of 15,000 ns and 64 of 100,000 ns.
        let buckets = histogram(&[(15_000, 1024), (100_000, 64)], 3);
        let text = latency_hist_text("Stage: TUN_RX -> OVS_DP", &buckets, 3);
        let expected = "Stage: TUN_RX -> OVS_DP\n\
                        \x20 [8.19-16.4)   : ████████████████████ 1,024\n\
                        \x20 [16.4-32.8)   :  0\n\
                        \x20 [32.8-65.5)   :  0\n\
                        \x20 [65.5-131)    : ██ 64\n\
                        \n\
                        Percentiles: P50=14.8μs P90=14.8μs P99=102μs P99.9=102μs\n\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn an_empty_histogram_prints_nothing() {
        assert_eq!(latency_hist_text("x", &histogram(&[], 2), 2), "");
    }
}
