//! Typing of an inlined user function call (an [`ast::InlinedCall`], made
//! by the inlining pass, `inline.rs`): its parameters take the types of
//! the arguments, a pure call with the arguments of an earlier one reads
//! the earlier result (`memo.rs`), and `return` leaves the call.

use super::scope::Scope;
use super::stmt::check_block;
use super::tast::{Expr, ExprKind as K, InlineResult, Stmt, VarId};
use super::unify;
use crate::diag::{Diagnostic, Result, Span};
use crate::syntax::ast;
use crate::types::Ty;

/// One function being inlined: where its `return e` values go.
#[derive(Debug, Default)]
pub(super) struct Frame {
    /// The hidden variable holding the return value, once a `return e` is seen.
    pub result: Option<VarId>,
}

impl Scope<'_, '_> {
    /// Types the inlined call `call` at `span`.
    pub(super) fn inlined_call(&mut self, call: &ast::InlinedCall, span: Span) -> Result<Expr> {
        let stmts = call.body.as_ref().map_err(Clone::clone)?;
        self.checker.calls_function(call.decl);
        let values = (call.params.iter())
            .map(|(_, a)| self.expr(a))
            .collect::<Result<Vec<_>>>()?;
        let key = self.memo_key(&call.name, &values);
        if let Some(earlier) = key.as_deref().and_then(|k| self.remembered(call, k)) {
            return Ok(Expr { span, ..earlier });
        }
        let first_local = self.var_types.len();
        // The call's variables are out of reach once it ends: the same
        // call may be checked again in this scope (a path's key and filter are
        // checked at each stage of a shared program) and starts afresh.
        let caller_vars = std::mem::take(&mut self.vars);
        let mut body = Vec::new();
        for ((name, _), value) in call.params.iter().zip(values) {
            if let Err(e) = self.expect_storable(&value) {
                self.vars = caller_vars;
                return Err(e);
            }
            let id = self.declare_var(name, value.ty.clone());
            self.note_assignment(id, &value);
            body.push(Stmt::SetVar(id, value));
        }
        self.frames.push(Frame::default());
        let (checked, result) = match stmts.as_slice() {
            [ast::Stmt {
                kind: ast::StmtKind::Return(Some(value)),
                ..
            }] => match self.expr(value) {
                Ok(v) => (Ok(Vec::new()), InlineResult::Expr(Box::new(v))),
                Err(e) => (Err(e), InlineResult::Nothing),
            },
            stmts => (
                self.inline_body(&call.name, stmts, span),
                InlineResult::Nothing,
            ),
        };
        let frame = self.frames.pop().unwrap_or_default();
        self.vars = caller_vars;
        body.extend(checked?);
        let (ty, result) = match (result, frame.result) {
            (InlineResult::Expr(v), _) => (v.ty.clone(), InlineResult::Expr(v)),
            (_, Some(r)) => (self.var_types[r.0 as usize].clone(), InlineResult::Var(r)),
            (_, None) => (Ty::Void, InlineResult::Nothing),
        };
        // Calls nested in this one have claimed (and start) their own variables.
        let locals: Vec<VarId> = (first_local..self.var_types.len())
            .filter(|i| !self.inline_vars.contains(i) && !self.memo.vars.contains(i))
            .map(|i| VarId(i as u32))
            .collect();
        self.inline_vars.extend(locals.iter().map(|v| v.0 as usize));
        let checked = Expr {
            ty,
            kind: K::Inline {
                body,
                result,
                locals,
            },
            span,
        };
        Ok(match key {
            Some(key) => self.remember(&call.name, key, checked),
            None => checked,
        })
    }

    /// The checked statements of function `name`'s body; when some fail
    /// (their errors kept), the call fails as their consequence.
    fn inline_body(&mut self, name: &str, stmts: &[ast::Stmt], call: Span) -> Result<Vec<Stmt>> {
        let failures = self.failures;
        let body = check_block(self, stmts);
        if self.failures > failures {
            return Err(Diagnostic::consequence(
                call,
                format!("{}() has errors in its body", name),
            ));
        }
        Ok(body)
    }

    /// `return` / `return e` inside a function.
    pub(super) fn function_return(
        &mut self,
        value: Option<&ast::Expr>,
        span: Span,
    ) -> Result<Vec<Stmt>> {
        let Some(value) = value else {
            return Ok(vec![Stmt::Leave]);
        };
        let v = self.expr(value)?;
        self.expect_storable(&v)?;
        let frame_result = self.frames.last().and_then(|f| f.result);
        let id = match frame_result {
            Some(id) => {
                let have = &self.var_types[id.0 as usize];
                let merged = unify(have, &v.ty).ok_or_else(|| {
                    Diagnostic::at(
                        span,
                        format!(
                            "this function returns {} here but {} elsewhere",
                            v.ty.describe(),
                            have.describe()
                        ),
                    )
                })?;
                self.var_types[id.0 as usize] = merged;
                id
            }
            None => {
                let id = VarId(self.var_types.len() as u32);
                self.var_types.push(v.ty.clone());
                if let Some(f) = self.frames.last_mut() {
                    f.result = Some(id);
                }
                id
            }
        };
        self.note_assignment(id, &v);
        Ok(vec![Stmt::SetVar(id, v), Stmt::Leave])
    }
}
