//! Facts about the running kernel: BTF types, tracepoint formats from
//! tracefs, kernel symbols and available features. Used by the type
//! checker, the probe providers and the `-l` listing.

pub mod btf;
mod name_index;
pub mod privilege;
pub mod symbols;
pub mod tracefs;
