//! Syntax: the pest grammar (`grammar/netscript.pest`) and the AST builder.

pub mod ast;
mod build;
mod errors;
mod lexical;
pub mod limits;
pub mod parser;

pub use parser::parse;

#[cfg(test)]
mod tests;
