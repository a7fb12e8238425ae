//! Packet paths: each stage becomes a program that binds `$skb` to the
//! packet, applies the stage guard and the path's filter, computes the
//! path's key and records the stage (`Stmt::PathStage`); stages of a path
//! on one probe point with one packet share a program. A recalled first
//! stage (before the packet exists) keeps its time under a mark
//! (`Stmt::PathMark`), which the next stage recalls by the packet's span.
//! Stages whose probe this kernel lacks are skipped with one notice; the
//! path is measured over the stages that remain.
//!
//! Two steps: [`expand`], a pass over the AST before type checking, makes
//! the stage programs ([`crate::syntax::ast::StageProgram`]) from the paths, with each
//! path's settings evaluated; the checker then types them ([`check`]).

mod check;
mod expand;
mod settings;

pub(super) use check::int;
pub(super) use expand::expand;
pub use settings::MAX_RECORDS;

use crate::diag::{Diagnostic, Span};
use crate::providers::ProbePoint;
use crate::sema::tast::PathInfo;

/// What [`expand`] makes of a program's paths, besides its stage
/// programs.
#[derive(Debug, Default)]
pub(super) struct Expanded {
    /// The paths expanded, without the types of their keys and `info`
    /// (the checker gives them).
    pub paths: Vec<ExpandedPath>,
    /// The probe point of each stage program
    /// ([`crate::syntax::ast::StageProgram::point`]).
    pub points: Vec<ProbePoint>,
    /// One per reason stages were skipped.
    pub warnings: Vec<Diagnostic>,
    /// The errors of the paths (a path in error has no stage programs).
    pub errors: Vec<Diagnostic>,
}

/// One path expanded.
#[derive(Debug)]
pub(super) struct ExpandedPath {
    /// Its settings and stages.
    pub info: PathInfo,
    /// Each of its report formats (`describe`, `halves`, `half_fields`)
    /// with the place of its setting, to check against the values it
    /// formats once they are typed.
    pub formats: Vec<(String, Span)>,
}

#[cfg(test)]
mod tests;
