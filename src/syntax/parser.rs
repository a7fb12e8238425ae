//! The pest parser for netscript and the conversion of its failures into
//! [`Diagnostic`]s that name what was expected, in words.

use super::ast::Program;
use super::build;
use super::desugar;
use super::limits::check_nesting;
use crate::diag::{Diagnostic, Source};
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
    parse_with_library(source, None)
}

/// [`parse`] of a text whose library starts at `library_start`, desugared
/// (see [`super::desugar`]).
fn parse_with_library(source: &str, library_start: Option<usize>) -> Result<Program, Diagnostic> {
    on_stack(PARSE_STACK_BYTES, || {
        desugar::program(parse_here(source)?, library_start)
    })
}

/// Parses a script with the libraries appended to it. A syntax error the
/// script's own text causes (an unclosed brace at its end) is reported in
/// that text, not where the first library file starts: when the whole
/// fails past the script's end, the script alone is parsed for its error.
pub fn parse_source(source: &Source) -> Result<Program, Diagnostic> {
    let end = source.script_end();
    parse_with_library(&source.text, Some(end)).map_err(|whole| match whole.span {
        Some(span) if span.start >= end && end < source.text.len() => {
            let Err(mut own) = parse(&source.text[..end]) else {
                return whole;
            };
            // The end of the script's text, not the library after it.
            let last = source.text[..end].trim_end().len();
            if let Some(span) = &mut own.span {
                span.start = span.start.min(last);
                span.end = span.end.min(last.max(span.start));
            }
            own
        }
        _ => whole,
    })
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
