//! `const NAME = expr;`: every use of NAME (a bare identifier) is replaced
//! by the value, so a const compiles exactly as its value written out. A
//! value holds literals, parameters (folded at compile time), kernel enum
//! constants, other consts (declared anywhere in the program) and
//! operators on them. A script's const (or parameter) replaces a library
//! const of the same name, as its functions do.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Result, Span};
use crate::syntax::ast::{ConstDecl, Expr, ExprKind, Item, UnOp};
use crate::syntax::walk;

/// Replaces every use of a const in `items` by its value.
pub(super) fn substitute(items: &mut [Item], library_start: Option<usize>) -> Result<()> {
    let declared = declarations(items, library_start)?;
    let mut values = HashMap::new();
    for item in items.iter() {
        match item {
            Item::Const(decl) if declared.contains_key(&decl.name) => {
                resolve(&decl.name, &declared, &mut values, &mut Vec::new())?
            }
            _ => {}
        }
    }
    walk::program(items, &mut |e| put(e, &values));
    Ok(())
}

/// The consts of the program by name, each checked to be constant.
fn declarations(
    items: &[Item],
    library_start: Option<usize>,
) -> Result<HashMap<String, ConstDecl>> {
    let in_library = |span: Span| library_start.is_some_and(|start| span.start >= start);
    let params: Vec<&str> = items
        .iter()
        .filter_map(|item| match item {
            Item::Param(p) => Some(p.name.as_str()),
            _ => None,
        })
        .collect();
    let mut declared: HashMap<String, ConstDecl> = HashMap::new();
    for item in items {
        let Item::Const(decl) = item else { continue };
        if params.contains(&decl.name.as_str()) {
            // A script's parameter of that name hides the library's const.
            if in_library(decl.span) {
                continue;
            }
            return Err(Diagnostic::at(
                decl.span,
                format!("const {}: a parameter has that name", decl.name),
            ));
        }
        if let Some((span, what)) = not_constant(&decl.value) {
            return Err(Diagnostic::at(
                span,
                format!(
                    "const {}: {} is not known at compile time (a const holds literals, \
                     parameters, other consts and operators on them)",
                    decl.name, what
                ),
            ));
        }
        match declared.get(&decl.name) {
            // The script's const stays; the library's of the same name goes.
            Some(first) if !in_library(first.span) && in_library(decl.span) => {}
            Some(_) => {
                return Err(Diagnostic::at(
                    decl.span,
                    format!("const {} is declared twice", decl.name),
                ))
            }
            None => {
                declared.insert(decl.name.clone(), decl.clone());
            }
        }
    }
    Ok(declared)
}

/// The first part of a const's value that is not known at compile time,
/// with what it is.
fn not_constant(value: &Expr) -> Option<(Span, &'static str)> {
    let mut found = None;
    walk::expr(&mut value.clone(), &mut |e| {
        let what = match &e.kind {
            ExprKind::Var(_) => "a variable",
            ExprKind::Map(_) => "a map",
            ExprKind::Builtin(_) => "a builtin",
            ExprKind::Call { .. } => "a call",
            ExprKind::Field { .. } | ExprKind::Index { .. } => "a read of memory",
            ExprKind::Unary {
                op: UnOp::Deref | UnOp::AddrOf,
                ..
            } => "a read of memory",
            _ => return found.is_none(),
        };
        found.get_or_insert((e.span, what));
        false
    });
    found
}

/// Puts the value of const `name` into `values`, after the consts it uses.
fn resolve(
    name: &str,
    declared: &HashMap<String, ConstDecl>,
    values: &mut HashMap<String, Expr>,
    chain: &mut Vec<String>,
) -> Result<()> {
    if values.contains_key(name) {
        return Ok(());
    }
    let decl = &declared[name];
    if chain.iter().any(|n| n == name) {
        chain.push(name.to_string());
        return Err(Diagnostic::at(
            decl.span,
            format!(
                "const {} is defined by itself ({})",
                name,
                chain.join(" -> ")
            ),
        ));
    }
    chain.push(name.to_string());
    let mut value = decl.value.clone();
    let mut uses = Vec::new();
    walk::expr(&mut value, &mut |e| {
        if let ExprKind::Ident(used) = &e.kind {
            if declared.contains_key(used) {
                uses.push(used.clone());
            }
        }
        true
    });
    for used in uses {
        resolve(&used, declared, values, chain)?;
    }
    chain.pop();
    walk::expr(&mut value, &mut |e| put(e, values));
    values.insert(name.to_string(), value);
    Ok(())
}

/// Replaces `e` by its value when it names a const (the value keeps the
/// span of the use); true when `e` is left to be walked into.
fn put(e: &mut Expr, values: &HashMap<String, Expr>) -> bool {
    let ExprKind::Ident(name) = &e.kind else {
        return true;
    };
    let Some(value) = values.get(name) else {
        return true;
    };
    *e = Expr {
        span: e.span,
        ..value.clone()
    };
    false
}
