//! The formats the compiler and the output agree on: printf format strings
//! (parsed and checked by semantic analysis, printed by `output`) and the
//! log-linear histogram buckets (indexed in the kernel by the IR's code,
//! read back and summarised by `output`). Imports nothing else of netscript.

pub mod loghist;
pub mod printf;
