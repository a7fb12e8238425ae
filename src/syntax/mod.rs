//! Syntax: the pest grammar (`grammar/netscript.pest`) and the AST builder.

pub mod ast;
