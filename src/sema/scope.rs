//! The state of checking one probe block for one concrete probe point:
//! its variables, the tracepoint format, the inlined calls being typed and
//! what is known at the point being checked. Expressions (`expr.rs`) and
//! statements (`stmt.rs`) are checked as methods of [`Scope`].

use std::collections::{HashMap, HashSet};

use super::tast::{Expr, VarId};
use super::Checker;
use crate::builtins::FunctionDef;
use crate::diag::{Diagnostic, Result, Span};
use crate::kernel::tracefs::{self, TracepointFormat};
use crate::providers::{ProbePoint, Target};
use crate::types::Ty;

/// The state of checking one probe block for one probe point.
pub(super) struct Scope<'a, 'o> {
    /// The script-wide checker (maps, printf formats).
    pub checker: &'a mut Checker<'o>,
    /// The probe point the block is compiled for.
    pub point: ProbePoint,
    /// `$variables` by name.
    pub vars: Variables,
    /// `$variable` types by id.
    pub var_types: Vec<Ty>,
    /// The tracepoint record format, for tracepoint probes.
    pub tracepoint: Option<TracepointFormat>,
    /// The inlined calls being typed, innermost last.
    pub frames: Vec<super::inlined::Frame>,
    /// Variables that belong to an inlined call (started by the call).
    pub inline_vars: std::collections::HashSet<usize>,
    /// Call results and copies known at the point being checked.
    pub memo: super::memo::Memo,
    /// How many expressions enclose the one being checked, inlined calls
    /// included.
    pub(super) depth: usize,
    /// Errors kept from this probe's statements: a probe with any yields
    /// no program.
    pub failures: usize,
}

/// The `$variables` in reach, by name: those assigned so far and those
/// whose assignment failed (poisoned).
#[derive(Debug, Default)]
pub(super) struct Variables {
    ids: HashMap<String, VarId>,
    poisoned: HashSet<String>,
}

impl Variables {
    /// The variable `name`, once assigned.
    pub fn get(&self, name: &str) -> Option<VarId> {
        self.ids.get(name).copied()
    }

    /// Marks `name` as assigned by a statement that failed: a read of it
    /// (before another assignment) fails as a consequence.
    pub fn poison(&mut self, name: &str) {
        self.poisoned.insert(name.to_string());
    }
}

impl<'a, 'o> Scope<'a, 'o> {
    /// A scope for `point`, reading its tracepoint format if it has one.
    pub fn new(checker: &'a mut Checker<'o>, point: ProbePoint) -> Result<Self> {
        let tracepoint = match &point.target {
            Target::Tracepoint { category, name } => {
                Some(tracefs::tracepoint_format(category, name)?)
            }
            _ => None,
        };
        Ok(Scope {
            checker,
            point,
            vars: Variables::default(),
            var_types: Vec::new(),
            tracepoint,
            frames: Vec::new(),
            inline_vars: Default::default(),
            memo: Default::default(),
            depth: 0,
            failures: 0,
        })
    }

    /// For each variable: whether the program starts it (see `Program::entry_vars`).
    pub fn entry_vars(&self) -> Vec<bool> {
        (0..self.var_types.len())
            .map(|i| !self.inline_vars.contains(&i))
            .collect()
    }

    /// Declares a new `$variable`.
    pub fn declare_var(&mut self, name: &str, ty: Ty) -> VarId {
        let id = VarId(self.var_types.len() as u32);
        self.var_types.push(ty);
        self.vars.ids.insert(name.to_string(), id);
        id
    }

    /// The variable `$name` read at `span`: an error unless it is assigned,
    /// a consequence (not reported) when its assignment failed.
    pub fn read_var(&self, name: &str, span: Span) -> Result<VarId> {
        let written = super::inline::as_written(name);
        match self.vars.get(name) {
            Some(id) => Ok(id),
            None if self.vars.poisoned.contains(name) => Err(Diagnostic::consequence(
                span,
                format!("variable ${} has no value: its assignment failed", written),
            )),
            None => Err(Diagnostic::at(
                span,
                format!("variable ${} is used before it is assigned", written),
            )),
        }
    }

    /// Keeps the error of a statement of this probe for the report.
    pub fn keep_error(&mut self, error: Diagnostic) {
        self.failures += 1;
        self.checker.errors.push(error);
    }

    /// Fails unless `e` is an integer or pointer.
    pub fn expect_scalar(&self, e: &Expr, what: &str) -> Result<()> {
        if e.ty.is_scalar() {
            Ok(())
        } else {
            Err(Diagnostic::at(
                e.span,
                format!("{} must be an integer, not {}", what, e.ty.describe()),
            ))
        }
    }

    /// Fails unless `e` can be stored in a variable or map.
    pub fn expect_storable(&self, e: &Expr) -> Result<()> {
        match e.ty {
            Ty::Void => Err(Diagnostic::at(e.span, "this expression has no value")),
            Ty::Record(_) => Err(Diagnostic::at(
                e.span,
                "a whole struct cannot be stored; store one of its fields",
            )),
            _ => Ok(()),
        }
    }

    /// Checks a call's argument count against its table entry.
    pub fn check_arity(&self, def: &FunctionDef, n: usize, span: Span) -> Result<()> {
        if n < def.min_args || n > def.max_args {
            let want = if def.min_args == def.max_args {
                format!("{}", def.min_args)
            } else if def.max_args == usize::MAX {
                format!("at least {}", def.min_args)
            } else {
                format!("{} to {}", def.min_args, def.max_args)
            };
            return Err(Diagnostic::at(
                span,
                format!("{}() takes {} argument(s), got {}", def.name, want, n),
            ));
        }
        Ok(())
    }
}
