//! Output: the values a script produces (map contents, printf lines) and
//! their rendering in bpftrace's text format or as JSON lines.

pub mod model;
