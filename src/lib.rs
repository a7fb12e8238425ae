//! netscript: a bpftrace-like language for network latency troubleshooting,
//! compiled straight to BPF bytecode.
//!
//! The pipeline, one module per stage:
//! `syntax` (pest grammar -> AST) -> `sema` (types from kernel BTF and
//! tracefs) -> `ir` (virtual-register IR) -> `codegen` (register allocation,
//! BPF instructions) -> `object` (BPF ELF with BTF) -> `runtime` (libbpf-rs
//! load/attach, ring buffer, maps) -> `output` (bpftrace text, JSON).
//! Probe types live in `providers`, built-in functions in `builtins`,
//! the CPU's kprobe register layout in `arch`. `pipeline` chains the
//! stages; `driver` runs it for the command line and the REPL, with the
//! fallbacks the running kernel calls for.

pub mod arch;
pub mod bpf;
pub mod builtins;
pub mod bundled;
pub mod cli;
pub mod codegen;
pub mod diag;
pub mod driver;
pub mod format;
pub mod glob;
pub mod ir;
pub mod kernel;
pub mod listing;
pub mod object;
pub mod output;
pub mod params;
pub mod pipeline;
pub mod providers;
pub mod repl;
pub mod runtime;
pub mod sema;
pub mod stack;
pub mod stdlib;
pub mod syntax;
pub mod testing;
pub mod types;
