//! The data model the runtime hands to the formatters, independent of how
//! the values were laid out in BPF maps.

use std::net::IpAddr;

/// One decoded value (a map key component, a map value, a printf argument).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// String (`comm`, `str()`), already cut at the first NUL.
    Str(String),
    /// A kernel symbol (`ksym()`, `func`, `probe` names), printed as text.
    Sym(String),
    /// A kernel stack (`kstack`): one symbolised frame per element, innermost first.
    Stack(Vec<String>),
    /// An IP address (`ntop()`).
    Addr(IpAddr),
    /// A tuple `(a, b)`.
    Tuple(Vec<Value>),
}

/// The aggregated value of one map entry, summed over CPUs already.
#[derive(Debug, Clone, PartialEq)]
pub enum Aggregate {
    /// A plain assigned value (`@x = expr`).
    Scalar(Value),
    /// `count()`
    Count(u64),
    /// `sum(x)`
    Sum(i64),
    /// `min(x)`
    Min(i64),
    /// `max(x)`
    Max(i64),
    /// `avg(x)`: integer average as bpftrace prints it.
    Avg(i64),
    /// `stats(x)`
    Stats {
        /// Number of values.
        count: u64,
        /// Integer average.
        avg: i64,
        /// Sum of values.
        total: i64,
    },
    /// `hist(x)`: `buckets[i]` counts values of bucket i: 0 holds negative
    /// values, 1 holds 0, and i >= 2 holds `[2^(i-2), 2^(i-1))`.
    Hist(Vec<u64>),
    /// `hist(x, k)` with `k >= 1`: `buckets[i]` counts values of bucket i
    /// as laid out in [`crate::format::loghist`] (each log2 bucket split in
    /// `2^k` linear sub-buckets). Printed with a percentile line.
    SubHist {
        /// `k`, the sub-bucket bits (1..=5).
        bits: u8,
        /// Counts per bucket index.
        buckets: Vec<u64>,
    },
    /// `lhist(x, min, max, step)`: `buckets[0]` holds values below `min`,
    /// `buckets[i]` for 1..=n holds `[min+(i-1)*step, min+i*step)`, and the
    /// last bucket (index n+1) holds values `>= max`, where n = (max-min)/step.
    Lhist {
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
        /// Bucket width.
        step: i64,
        /// Counts, n + 2 entries.
        buckets: Vec<u64>,
    },
}

/// One map with all its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct MapDump {
    /// Name with the `@` (e.g. `@rx`, or `@` for the anonymous map).
    pub name: String,
    /// Entries: key components (empty when the map has no key) and value.
    pub entries: Vec<(Vec<Value>, Aggregate)>,
}

impl MapDump {
    /// Map `name` (with the `@`) with `entries`.
    pub fn new(name: &str, entries: Vec<(Vec<Value>, Aggregate)>) -> MapDump {
        MapDump {
            name: name.to_string(),
            entries,
        }
    }
}
