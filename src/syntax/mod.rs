//! Syntax: the pest grammar (`grammar/netscript.pest`) and the AST builder.

pub mod ast;
mod build;
mod desugar;
mod errors;
mod lexical;
mod limits;
pub mod parser;
pub mod walk;

pub use limits::{MAX_DEPTH, MAX_NESTING};
pub use parser::{parse, parse_source};

#[cfg(test)]
mod tests;
