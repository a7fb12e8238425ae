//! Calls computed once per event: a call of a pure user function whose
//! arguments hold the same values as an earlier call's, at a point the
//! earlier call always runs before, reads the earlier result instead of
//! typing and emitting the inlined body again. A path stage's guard, filter and key each
//! find the packet's IP header (`pkt_l3`), its upper-layer header
//! (`ip_upper`) and its version; with this they are found once.
//!
//! Where a call "always runs before" is tracked with regions: the branches
//! of an `if`, the arms of `?:`, the right operand of `&&` and `||`, a loop
//! (a barrier: its body also runs after later statements), and the rest of
//! a function after a statement that may `return` from it each open one.
//! A result (and a variable known to be a copy of another) is visible only
//! inside the regions open when it was made. Variables carry a version,
//! bumped by every assignment, so an argument assigned since the earlier
//! call gives another key.

use std::collections::{HashMap, HashSet};

use super::scope::Scope;
use super::tast::{Expr, ExprKind as K, InlineResult, Stmt, VarId};
use crate::syntax::ast::{self, ExprKind, LValue, StmtKind};
use crate::types::Ty;

/// Built-in variables whose value changes within one event.
const CHANGING_BUILTINS: &[&str] = &["nsecs", "elapsed"];

/// The value of a variable: the variable that holds it first, and that
/// variable's version.
type Value = (VarId, u32);

/// One argument of a call, with its type (the type decides how the
/// function is inlined).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    Var(Value, Ty),
    Int(i64, Ty),
}

/// An open region (see the module comment).
#[derive(Debug, Clone, Copy)]
struct Region {
    id: u32,
    barrier: bool,
}

/// The call results and copies known while checking one probe.
#[derive(Debug, Default)]
pub(super) struct Memo {
    regions: Vec<Region>,
    next_region: u32,
    /// Assignments seen per variable.
    versions: HashMap<VarId, u32>,
    /// `x -> (value, version of x, regions)`: x holds that value.
    copies: HashMap<VarId, (Value, u32, Vec<u32>)>,
    /// Earlier calls: function, arguments, the variable holding the result,
    /// the regions open at the call.
    results: Vec<(String, Vec<Arg>, VarId, Vec<u32>)>,
    /// The variables holding results (started by the program, not by a call).
    pub vars: HashSet<usize>,
}

impl Memo {
    fn path(&self) -> Vec<u32> {
        self.regions.iter().map(|r| r.id).collect()
    }

    /// True when something made with regions `path` open is known here.
    fn visible(&self, path: &[u32]) -> bool {
        path.len() <= self.regions.len()
            && self.regions[..path.len()]
                .iter()
                .zip(path)
                .all(|(r, id)| r.id == *id)
            && self.regions[path.len()..].iter().all(|r| !r.barrier)
    }

    fn version(&self, v: VarId) -> u32 {
        self.versions.get(&v).copied().unwrap_or(0)
    }

    /// The value variable `v` holds here.
    fn value_of(&self, v: VarId) -> Value {
        match self.copies.get(&v) {
            Some((value, own, path))
                if *own == self.version(v)
                    && self.version(value.0) == value.1
                    && self.visible(path) =>
            {
                *value
            }
            _ => (v, self.version(v)),
        }
    }

    /// The value of a checked expression, when it is a variable or a
    /// remembered call.
    fn value(&self, e: &Expr) -> Option<Value> {
        match &e.kind {
            K::Var(v) => Some(self.value_of(*v)),
            K::Inline {
                result: InlineResult::Var(v),
                locals,
                ..
            } if locals.is_empty() && self.vars.contains(&(v.0 as usize)) => {
                Some(self.value_of(*v))
            }
            K::Retyped(x) => self.value(x),
            _ => None,
        }
    }

    /// The regions that results made from now on belong to.
    pub fn depth(&self) -> usize {
        self.regions.len()
    }

    /// Opens a region.
    pub fn open(&mut self, barrier: bool) {
        self.next_region += 1;
        self.regions.push(Region {
            id: self.next_region,
            barrier,
        });
    }

    /// Closes the regions opened since `depth`.
    pub fn close_to(&mut self, depth: usize) {
        self.regions.truncate(depth);
    }

    /// Forgets every result and copy (for code that runs before the code
    /// checked so far, such as a probe's predicate).
    pub fn forget(&mut self) {
        self.results.clear();
        self.copies.clear();
    }
}

impl Scope<'_, '_> {
    /// Checks `f` inside a region of its own.
    pub(super) fn in_region<T>(&mut self, barrier: bool, f: impl FnOnce(&mut Self) -> T) -> T {
        let depth = self.memo.depth();
        self.memo.open(barrier);
        let out = f(self);
        self.memo.close_to(depth);
        out
    }

    /// Notes the assignment `v = value`.
    pub(super) fn note_assignment(&mut self, v: VarId, value: &Expr) {
        let source = self.memo.value(value);
        let version = self.memo.version(v) + 1;
        self.memo.versions.insert(v, version);
        match source {
            Some(s) if s.0 != v => {
                let path = self.memo.path();
                self.memo.copies.insert(v, (s, version, path));
            }
            _ => {
                self.memo.copies.remove(&v);
            }
        }
    }

    /// The key of a call of user function `name` with arguments `values`,
    /// when the function is pure and every argument is a variable, a
    /// remembered call or a constant.
    pub(super) fn memo_key(&self, name: &str, values: &[Expr]) -> Option<Vec<Arg>> {
        if !self.checker.functions.is_pure(name) {
            return None;
        }
        values
            .iter()
            .map(|e| match e.kind {
                K::Int(i) => Some(Arg::Int(i, e.ty.clone())),
                _ => self.memo.value(e).map(|v| Arg::Var(v, e.ty.clone())),
            })
            .collect()
    }

    /// The variable holding the result of an earlier call of the function
    /// `call` calls with the arguments `key`, if it is known here.
    pub(super) fn remembered(&self, call: &ast::InlinedCall, key: &[Arg]) -> Option<Expr> {
        let (_, _, v, _) = self.memo.results.iter().find(|(name, args, _, path)| {
            *name == call.name && args.as_slice() == key && self.memo.visible(path)
        })?;
        Some(Expr {
            ty: self.var_types[v.0 as usize].clone(),
            kind: K::Var(*v),
            span: call.decl,
        })
    }

    /// Keeps the value of `call`, a call of function `name` with arguments
    /// `key`, in a variable of its own for later calls (scalar values
    /// only); returns the expression that computes and stores it.
    pub(super) fn remember(&mut self, name: &str, key: Vec<Arg>, call: Expr) -> Expr {
        if !call.ty.is_scalar() || matches!(call.ty, Ty::PacketPtr(_)) {
            return call;
        }
        let v = VarId(self.var_types.len() as u32);
        self.var_types.push(call.ty.clone());
        self.memo.vars.insert(v.0 as usize);
        self.memo.versions.insert(v, 1);
        let path = self.memo.path();
        self.memo.results.push((name.to_string(), key, v, path));
        Expr {
            ty: call.ty.clone(),
            span: call.span,
            kind: K::Inline {
                body: vec![Stmt::SetVar(v, call)],
                result: InlineResult::Var(v),
                locals: Vec::new(),
            },
        }
    }
}

/// True when user function `name` (and every function it calls) only
/// computes a value: no map, no action, nothing that changes in an event.
pub(super) fn pure_function(
    functions: &HashMap<String, ast::FnDecl>,
    name: &str,
    visiting: &mut Vec<String>,
) -> bool {
    let Some(f) = functions.get(name) else {
        return crate::builtins::function(name).is_some_and(|d| d.pure);
    };
    if visiting.iter().any(|v| v == name) {
        return false;
    }
    visiting.push(name.to_string());
    let pure = f
        .body
        .stmts
        .iter()
        .all(|s| pure_stmt(functions, s, visiting));
    visiting.pop();
    pure
}

fn pure_stmt(
    functions: &HashMap<String, ast::FnDecl>,
    s: &ast::Stmt,
    visiting: &mut Vec<String>,
) -> bool {
    let block =
        |b: &ast::Block, v: &mut Vec<String>| b.stmts.iter().all(|s| pure_stmt(functions, s, v));
    match &s.kind {
        StmtKind::Expr(e) => pure_expr(functions, e, visiting),
        StmtKind::Assign { target, value, .. } => {
            matches!(target, LValue::Var(..)) && pure_expr(functions, value, visiting)
        }
        StmtKind::IncDec { target, .. } => matches!(target, LValue::Var(..)),
        StmtKind::If {
            cond,
            then_block,
            else_block,
        } => {
            pure_expr(functions, cond, visiting)
                && block(then_block, visiting)
                && else_block.as_ref().is_none_or(|b| block(b, visiting))
        }
        StmtKind::While { cond, body } => {
            pure_expr(functions, cond, visiting) && block(body, visiting)
        }
        StmtKind::Unroll { body, .. } => block(body, visiting),
        StmtKind::Return(v) => v.as_ref().is_none_or(|e| pure_expr(functions, e, visiting)),
    }
}

fn pure_expr(
    functions: &HashMap<String, ast::FnDecl>,
    e: &ast::Expr,
    visiting: &mut Vec<String>,
) -> bool {
    let all =
        |es: &[&ast::Expr], v: &mut Vec<String>| es.iter().all(|e| pure_expr(functions, e, v));
    match &e.kind {
        ExprKind::Map(_) => false,
        ExprKind::Builtin(name) => !CHANGING_BUILTINS.contains(&name.as_str()),
        ExprKind::Call { name, args } => {
            pure_function(functions, name, visiting)
                && all(&args.iter().collect::<Vec<_>>(), visiting)
        }
        ExprKind::Inlined(call) => {
            pure_function(functions, &call.name, visiting)
                && all(
                    &call.params.iter().map(|(_, a)| a).collect::<Vec<_>>(),
                    visiting,
                )
        }
        ExprKind::Unary { expr, .. } => all(&[expr], visiting),
        ExprKind::Binary { lhs, rhs, .. } => all(&[lhs, rhs], visiting),
        ExprKind::Ternary {
            cond,
            then_expr,
            else_expr,
        } => all(&[cond, then_expr, else_expr], visiting),
        ExprKind::Field { expr, .. } | ExprKind::Cast { expr, .. } => all(&[expr], visiting),
        ExprKind::Index { expr, index } => all(&[expr, index], visiting),
        ExprKind::Tuple(items) => all(&items.iter().collect::<Vec<_>>(), visiting),
        ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Var(_)
        | ExprKind::Ident(_)
        | ExprKind::Sizeof(_)
        | ExprKind::Offsetof { .. } => true,
    }
}

/// True when `stmts` may leave the function they are in (a `return`
/// inside a function, at any depth of `if` and loops).
pub(super) fn may_leave(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Leave => true,
        Stmt::If(_, a, b) => may_leave(a) || may_leave(b),
        Stmt::While(_, body) => may_leave(body),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use crate::ir::layout::MapTable;
    use crate::ir::{lower, AluOp, Inst};
    use crate::sema::{check, Options};
    use crate::syntax::parse;

    /// How many multiplications the first program of `src` computes: each
    /// inlined call of `sq` below makes one.
    fn multiplications(src: &str) -> usize {
        let lib = "fn sq($x) { $y = $x * $x; if ($y > 100) { return 100; } return $y; }
                   fn logged($x) { @calls = count(); return $x * $x; }\n";
        let script = check(
            &parse(&format!("{lib}{src}")).expect("parses"),
            &Options::default(),
        )
        .expect("checks");
        let maps = MapTable::new(&script);
        let f = lower::lower(&script, &maps, 0).expect("lowers").remove(0);
        f.insts
            .iter()
            .filter(|i| matches!(i, Inst::Alu { op: AluOp::Mul, .. }))
            .count()
    }

    #[test]
    fn a_pure_call_repeated_with_the_same_arguments_is_computed_once() {
        assert_eq!(
            multiplications("BEGIN { $a = 3; @r = sq($a) + sq($a); }"),
            1
        );
        // Through copies of the argument, and as the argument of another call.
        assert_eq!(
            multiplications(
                "BEGIN { $a = 3; $b = $a; @r = sq($a) + sq($b) + sq(sq($a)) + sq(sq($b)); }"
            ),
            2
        );
    }

    #[test]
    fn a_call_is_computed_again_where_the_first_may_not_have_run() {
        assert_eq!(
            multiplications("BEGIN { $a = 3; if (pid) { @r = sq($a); } @s = sq($a); }"),
            2
        );
        assert_eq!(
            multiplications("BEGIN { $a = 3; @r = pid && sq($a); @s = sq($a); }"),
            2
        );
        assert_eq!(
            multiplications("BEGIN { $a = 3; @r = pid ? sq($a) : 0; @s = sq($a); }"),
            2
        );
        // A call in a loop runs in every round; one before it may not see the new values.
        assert_eq!(
            multiplications("BEGIN { $a = 3; @s = sq($a); while ($a < 9) { @r = sq($a); $a++; } }"),
            2
        );
    }

    #[test]
    fn a_call_is_computed_again_after_its_argument_changes() {
        assert_eq!(
            multiplications("BEGIN { $a = 3; @r = sq($a); $a = 4; @s = sq($a); }"),
            2
        );
        assert_eq!(
            multiplications("BEGIN { $a = 3; $b = $a; @r = sq($b); $a = 4; @s = sq($a); }"),
            2
        );
    }

    #[test]
    fn a_call_with_effects_is_never_shared() {
        assert_eq!(
            multiplications("BEGIN { $a = 3; @r = logged($a) + logged($a); }"),
            2
        );
    }
}
