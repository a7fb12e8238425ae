//! Desugaring: what the parser reads that the later stages need not know.
//! Consts are put in place of their uses ([`consts`]) and paths take the
//! settings and stages of the paths they extend ([`paths`]), so a script
//! written with them compiles exactly as one written out in full.

mod consts;
mod paths;

use super::ast::Program;
use crate::diag::Result;

/// The program without consts in use or paths that extend others.
/// `library_start`: where the appended library starts in the source (a
/// script's const replaces the library's of the same name).
pub(super) fn program(program: Program, library_start: Option<usize>) -> Result<Program> {
    let mut items = paths::extend(program.items)?;
    consts::substitute(&mut items, library_start)?;
    Ok(Program { items })
}
