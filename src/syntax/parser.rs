//! The pest parser for netscript and the conversion of its failures into
//! [`Diagnostic`]s that name what was expected, in words.

use super::ast::Program;
use super::build;
use super::limits::check_nesting;
use crate::diag::Diagnostic;
use crate::stack::{on_stack, PARSE_STACK_BYTES};
use pest::Parser;

/// The pest parser generated from `grammar/netscript.pest`.
#[derive(pest_derive::Parser)]
#[grammar = "../grammar/netscript.pest"]
pub struct NetscriptParser;

/// Parses a whole script into its AST, or returns the first syntax error.
/// Scripts nested deeper than [`super::MAX_NESTING`] or [`super::MAX_DEPTH`]
/// are rejected. Runs on a stack of its own (see [`crate::stack`]).
pub fn parse(source: &str) -> Result<Program, Diagnostic> {
    on_stack(PARSE_STACK_BYTES, || parse_here(source))
}

/// [`parse`] on the caller's stack.
fn parse_here(source: &str) -> Result<Program, Diagnostic> {
    pest::set_error_detail(true);
    match NetscriptParser::parse(Rule::program, source) {
        Ok(mut pairs) => match pairs.next() {
            Some(program) => {
                check_nesting(program.clone())?;
                build::program(program)
            }
            None => Err(Diagnostic::plain("internal parser error: no program")),
        },
        Err(err) => Err(super::errors::convert(source, &err)),
    }
}
