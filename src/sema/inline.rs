//! Inlining, a pass over the AST before type checking (as bpftrace expands
//! its macros): every call of a user function (`fn name($a) { ...; return
//! e; }`, from the script or the stdlib) becomes an
//! [`ast::ExprKind::Inlined`] node that holds the arguments and a copy of
//! the function's body, calls in it inlined too. The call's `$variables`,
//! its parameters and the body's locals, are renamed for that call alone
//! (a name no script can write), so they never meet the caller's
//! variables or another call's. The checker then types the node
//! (`inlined.rs`): the parameters take the types of the arguments.
//!
//! A call that cannot be inlined (a wrong argument count, calls nested
//! more than [`MAX_DEPTH`] deep) holds its error, reported when the
//! checker reaches the call: code it never checks (a skipped probe, the
//! rest of an expression after an error) reports nothing, and a function
//! that is never called is never checked. The calls of a recursive
//! function at one depth share one body, so that a function calling
//! itself twice makes no exponentially many copies before its error.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use super::{define, memo};
use crate::diag::{Diagnostic, Result, Span};
use crate::syntax::ast::{self, ExprKind};
use crate::syntax::walk;

/// How deep inlined calls may nest (which also stops recursion).
const MAX_DEPTH: usize = 16;

/// What a renamed variable's name has after the name as written: no
/// `$variable` the parser reads holds it.
const RENAMED: char = '#';

/// The `$variable` as the script writes it (a renamed one without the
/// number of its call), for messages.
pub(super) fn as_written(name: &str) -> &str {
    name.split(RENAMED).next().unwrap_or(name)
}

/// The user functions of a program, as the pass found them.
pub(super) struct Functions {
    /// By name: the script's replaces the stdlib's of the same name.
    table: HashMap<String, ast::FnDecl>,
    /// Whether each function asked about only computes a value (see
    /// `memo`), by name: found on first asking, for the functions called.
    pure: RefCell<HashMap<String, bool>>,
    /// The errors of the definitions.
    pub errors: Vec<Diagnostic>,
    /// Calls inlined so far: each call's variables take its number.
    calls: Cell<usize>,
    /// Whether a call refused for nesting too deep was made since the
    /// call being inlined started.
    too_deep: Cell<bool>,
    /// By function and depth, the body of a call in which a call nests too
    /// deep (recursion), with its number: later calls share it, so a
    /// function calling itself twice makes no exponentially many copies.
    recursive: RefCell<HashMap<(String, usize), NumberedBody>>,
}

/// An inlined body and the number its variables are renamed with.
type NumberedBody = (usize, Arc<Vec<ast::Stmt>>);

impl Functions {
    /// The functions `items` define, each checked: not a built-in's name,
    /// each parameter once, defined once. `library_start` is where the
    /// stdlib starts in the source.
    pub(super) fn collect(items: &[ast::Item], library_start: Option<usize>) -> Functions {
        let mut table = HashMap::new();
        let mut errors = Vec::new();
        for item in items {
            if let ast::Item::Fn(f) = item {
                if let Err(e) = define_function(&mut table, f, library_start) {
                    errors.push(e);
                }
            }
        }
        Functions {
            table,
            pure: RefCell::new(HashMap::new()),
            errors,
            calls: Cell::new(0),
            too_deep: Cell::new(false),
            recursive: RefCell::new(HashMap::new()),
        }
    }

    /// Whether user function `name` only computes a value (see `memo`).
    pub(super) fn is_pure(&self, name: &str) -> bool {
        if let Some(&pure) = self.pure.borrow().get(name) {
            return pure;
        }
        let pure = memo::pure_function(&self.table, name, &mut Vec::new());
        self.pure.borrow_mut().insert(name.to_string(), pure);
        pure
    }

    /// Inlines every user function call of `items` (in probes and stage
    /// programs: all but the functions' own declarations).
    pub(super) fn inline_program(&self, items: &mut [ast::Item]) {
        for item in items {
            if !matches!(item, ast::Item::Fn(_)) {
                walk::program(std::slice::from_mut(item), &mut |e| self.replace(e, 0));
            }
        }
    }

    /// Replaces `e` when it calls a user function, inside `depth` inlined
    /// bodies; false once replaced (its parts are inlined already).
    fn replace(&self, e: &mut ast::Expr, depth: usize) -> bool {
        let ExprKind::Call { name, args } = &mut e.kind else {
            return true;
        };
        let Some(f) = self.table.get(name.as_str()) else {
            return true;
        };
        let args = std::mem::take(args);
        let call = self.inline(f, args, e.span, depth);
        e.kind = ExprKind::Inlined(Box::new(call));
        false
    }

    /// The call of `f` with `args` at `span`, inside `depth` inlined bodies.
    fn inline(
        &self,
        f: &ast::FnDecl,
        mut args: Vec<ast::Expr>,
        span: Span,
        depth: usize,
    ) -> ast::InlinedCall {
        let mut call = ast::InlinedCall {
            name: f.name.clone(),
            decl: f.span,
            params: Vec::new(),
            body: Ok(Arc::default()),
        };
        if let Err(e) = inlinable(f, args.len(), span, depth) {
            self.too_deep
                .set(self.too_deep.get() || args.len() == f.params.len());
            call.body = Err(e);
            return call;
        }
        for arg in &mut args {
            walk::expr(arg, &mut |e| self.replace(e, depth));
        }
        let shared = (self.recursive.borrow())
            .get(&(f.name.clone(), depth))
            .cloned();
        let (number, body) = match shared {
            Some((number, body)) => {
                self.too_deep.set(true);
                (number, body)
            }
            None => self.inline_body(f, depth),
        };
        call.params = (f.params.iter())
            .map(|p| format!("{p}{RENAMED}{number}"))
            .zip(args)
            .collect();
        call.body = Ok(body);
        call
    }

    /// A copy of `f`'s body for a call inside `depth` inlined bodies, its
    /// variables renamed with the call's number, and its calls inlined.
    fn inline_body(&self, f: &ast::FnDecl, depth: usize) -> NumberedBody {
        let number = self.calls.get();
        self.calls.set(number + 1);
        let rename = |name: &mut String| *name = format!("{name}{RENAMED}{number}");
        let mut body = f.body.stmts.clone();
        let mut rename_read = |e: &mut ast::Expr| {
            if let ExprKind::Var(name) = &mut e.kind {
                rename(name);
            }
            true
        };
        walk::stmts(&mut body, &mut rename_read, &mut { rename });
        let too_deep_before = self.too_deep.replace(false);
        walk::stmts(&mut body, &mut |e| self.replace(e, depth + 1), &mut |_| {});
        let body = Arc::new(body);
        if self.too_deep.get() {
            let shared = (number, Arc::clone(&body));
            (self.recursive.borrow_mut()).insert((f.name.clone(), depth), shared);
        }
        self.too_deep.set(too_deep_before || self.too_deep.get());
        (number, body)
    }
}

/// Whether a call of `f` with `args` arguments, at `span` inside `depth`
/// inlined bodies, can be inlined.
fn inlinable(f: &ast::FnDecl, args: usize, span: Span, depth: usize) -> Result<()> {
    if args != f.params.len() {
        return Err(Diagnostic::at(
            span,
            format!(
                "{}() takes {} argument(s), got {}",
                f.name,
                f.params.len(),
                args
            ),
        ));
    }
    if depth >= MAX_DEPTH {
        return Err(Diagnostic::at(
            span,
            format!(
                "calls nest more than {} deep (is {}() recursive?)",
                MAX_DEPTH, f.name
            ),
        ));
    }
    Ok(())
}

/// Defines a user function: not a built-in's name, each parameter once.
fn define_function(
    table: &mut HashMap<String, ast::FnDecl>,
    f: &ast::FnDecl,
    library_start: Option<usize>,
) -> Result<()> {
    if crate::builtins::function(&f.name).is_some() {
        return Err(Diagnostic::at(
            f.span,
            format!("{} is a built-in function and cannot be redefined", f.name),
        ));
    }
    if let Some(twice) = f
        .params
        .iter()
        .enumerate()
        .find_map(|(i, a)| f.params[..i].contains(a).then_some(a))
    {
        return Err(Diagnostic::at(
            f.span,
            format!(
                "function {}: parameter ${} is declared twice",
                f.name, twice
            ),
        ));
    }
    define(table, &f.name, f, f.span, library_start, "function")
}

#[cfg(test)]
mod tests {
    use super::Functions;
    use crate::sema::tast::{ExprKind as K, Stmt};
    use crate::sema::{check, Options};
    use crate::syntax::ast::{self, ExprKind, Item, LValue, StmtKind};
    use crate::syntax::parse;

    /// The values assigned by the statements of `src`'s (last) probe, once
    /// calls are inlined.
    fn inlined(src: &str) -> Vec<ast::Expr> {
        let mut program = parse(src).unwrap_or_else(|e| panic!("parse: {}", e.message));
        let functions = Functions::collect(&program.items, None);
        functions.inline_program(&mut program.items);
        let Some(Item::Probe(probe)) = program.items.pop() else {
            panic!("{src} ends with a probe");
        };
        (probe.body.stmts.into_iter())
            .map(|s| match s.kind {
                StmtKind::Assign { value, .. } => value,
                other => panic!("an assignment, not {other:?}"),
            })
            .collect()
    }

    fn call(e: &ast::Expr) -> &ast::InlinedCall {
        match &e.kind {
            ExprKind::Inlined(call) => call,
            other => panic!("an inlined call, not {other:?}"),
        }
    }

    /// The names of the variables `stmts` assign, in order.
    fn assigned(stmts: &[ast::Stmt]) -> Vec<&str> {
        (stmts.iter())
            .filter_map(|s| match &s.kind {
                StmtKind::Assign {
                    target: LValue::Var(name, _),
                    ..
                } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_call_has_variables_of_its_own() {
        let src = "fn f($a) { $x = $a; return $x; } BEGIN { $x = 1; @r = f($x); @s = f(2); }";
        let values = inlined(src);
        let (first, second) = (call(&values[1]), call(&values[2]));
        // The argument is the caller's `$x`; the function's `$x` is the call's own.
        assert_eq!(first.params[0].1.kind, ExprKind::Var("x".into()));
        let names = |c: &ast::InlinedCall| {
            let body = c.body.as_ref().expect("inlined");
            (c.params[0].0.clone(), assigned(body).join(","))
        };
        let (a1, x1) = names(first);
        let (a2, x2) = names(second);
        assert!(
            a1 != "a" && a1 != a2 && x1 != "x" && x1 != x2,
            "{a1} {x1} {a2} {x2}"
        );
        assert_eq!(super::as_written(&x1), "x");
        // Typed apart too: the caller's string `$x` is no int in the function.
        let typed = r#"fn f($a) { $x = $a; return $x; } BEGIN { $x = "s"; @r = f(1); @s = $x; }"#;
        let script = check(&parse(typed).expect("parses"), &Options::default())
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(
            script.maps[1].value,
            crate::sema::tast::MapValue::Plain(crate::types::Ty::Str(2))
        );
    }

    #[test]
    fn a_call_inside_a_function_is_inlined_in_its_body() {
        let src = "fn g($b) { return $b + 1; } fn f($a) { return g($a) * 2; } BEGIN { @r = f(1); }";
        let values = inlined(src);
        let outer = call(&values[0]);
        let body = outer.body.as_ref().expect("inlined");
        let StmtKind::Return(Some(product)) = &body[0].kind else {
            panic!("{body:?}");
        };
        let ExprKind::Binary { lhs, .. } = &product.kind else {
            panic!("{product:?}");
        };
        let inner = call(lhs);
        assert_eq!((inner.name.as_str(), outer.name.as_str()), ("g", "f"));
        // g's argument is f's renamed parameter.
        assert_eq!(
            inner.params[0].1.kind,
            ExprKind::Var(outer.params[0].0.clone())
        );
        assert_eq!(
            &src[inner.decl.start..inner.decl.end],
            "fn g($b) { return $b + 1; }"
        );
    }

    #[test]
    fn a_call_that_cannot_be_inlined_holds_its_error_at_the_call() {
        let src = "fn f($a) { return $a; } BEGIN { @r = f(1, 2); }";
        let values = inlined(src);
        let e = call(&values[0]).body.clone().expect_err("two arguments");
        assert_eq!(e.message, "f() takes 1 argument(s), got 2");
        assert_eq!(e.span.map(|s| &src[s.start..s.end]), Some("f(1, 2)"));
        // Recursion stops at the nesting limit, at the innermost call.
        let src = "fn f($a) { return f($a); } BEGIN { @r = f(1); }";
        let mut e = &inlined(src)[0];
        let mut depth = 0;
        let error = loop {
            match &call(e).body {
                Ok(body) => match &body[0].kind {
                    StmtKind::Return(Some(inner)) => e = inner,
                    other => panic!("{other:?}"),
                },
                Err(error) => break error.clone(),
            }
            depth += 1;
        };
        assert_eq!(depth, super::MAX_DEPTH);
        assert_eq!(
            error.message,
            "calls nest more than 16 deep (is f() recursive?)"
        );
        assert_eq!(error.span.map(|s| &src[s.start..s.end]), Some("f($a)"));
    }

    #[test]
    fn the_calls_of_a_recursive_function_share_their_bodies() {
        // 3^16 copies otherwise.
        let src = "fn f($a) { return f($a) + f($a) + f($a); } BEGIN { @r = f(1); }";
        let values = inlined(src);
        let body = call(&values[0]).body.as_ref().expect("inlined");
        let StmtKind::Return(Some(sum)) = &body[0].kind else {
            panic!("{body:?}");
        };
        let ExprKind::Binary { lhs, rhs, .. } = &sum.kind else {
            panic!("{sum:?}");
        };
        let ExprKind::Binary { lhs: first, .. } = &lhs.kind else {
            panic!("{lhs:?}");
        };
        let (first, last) = (call(first), call(rhs));
        let shared = |a: &ast::InlinedCall, b: &ast::InlinedCall| match (&a.body, &b.body) {
            (Ok(a), Ok(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        };
        assert!(shared(first, last));
        let e = check(&parse(src).expect("parses"), &Options::default()).expect_err(src);
        assert_eq!(
            e.message,
            "calls nest more than 16 deep (is f() recursive?)"
        );
    }

    #[test]
    fn a_function_never_called_is_never_checked() {
        let src = "fn unused() { $x = nope(); return g(1, 2) + $y; } fn g($a) { return $a; } BEGIN { @a = 1; }";
        let script = check(&parse(src).expect("parses"), &Options::default());
        assert!(script.is_ok(), "{:?}", script.err());
        // Its definition is checked all the same.
        let src = "fn unused($a, $a) { return 1; } BEGIN { @a = 1; }";
        let e = check(&parse(src).expect("parses"), &Options::default()).expect_err(src);
        assert_eq!(e.message, "function unused: parameter $a is declared twice");
    }

    #[test]
    fn the_checker_shares_a_pure_calls_result() {
        let src = "fn sq($x) { $y = $x * $x; return $y; } BEGIN { $a = 3; @r = sq($a) + sq($a); }";
        let script = check(&parse(src).expect("parses"), &Options::default())
            .unwrap_or_else(|e| panic!("{}", e.message));
        let Some(Stmt::SetMap { value, .. }) = script.programs[0].body.last() else {
            panic!("{:?}", script.programs[0].body);
        };
        let K::Binary { lhs, rhs, .. } = &value.kind else {
            panic!("{value:?}");
        };
        // The first call computes and keeps its result, the second reads it.
        assert!(matches!(lhs.kind, K::Inline { .. }), "{lhs:?}");
        assert!(matches!(rhs.kind, K::Var(_)), "{rhs:?}");
    }
}
