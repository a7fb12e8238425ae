//! Parser tests. The AST is compared through a compact S-expression form
//! (see [`sexpr`]) so that tables of `source -> expected shape` stay readable.

mod desugar;
mod errors;
mod exprs;
mod limits;
mod programs;

use super::ast::*;
use super::parse;

/// Parses `src`, panicking with the diagnostic on failure (tests only).
fn parse_ok(src: &str) -> Program {
    parse(src).unwrap_or_else(|d| panic!("{src:?} failed to parse: {d:?}"))
}

/// Parses each source of `cases`, expecting its error rendered (the
/// source named `name`) as given.
fn assert_rendered_errors(name: &str, cases: &[(&str, &str)]) {
    for (src, want) in cases {
        let err = parse(src).expect_err(src);
        let rendered = err.render(Some(&crate::diag::Source::new(name, *src)));
        assert_eq!(rendered, *want, "source: {src:?}");
    }
}

/// The only probe block of a program.
fn only_probe(program: &Program) -> &ProbeBlock {
    assert_eq!(program.items.len(), 1, "expected one probe block");
    match &program.items[0] {
        Item::Probe(probe) => probe,
        other => panic!("expected a probe block, got {other:?}"),
    }
}

/// The expression of `BEGIN { <src>; }`.
fn parse_expr(src: &str) -> Expr {
    let program = parse_ok(&format!("BEGIN {{ {src}; }}"));
    let stmts = &only_probe(&program).body.stmts;
    match &stmts[..] {
        [Stmt {
            kind: StmtKind::Expr(e),
            ..
        }] => e.clone(),
        other => panic!("{src:?} is not one expression statement: {other:?}"),
    }
}

fn binop_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::BitAnd => "&",
        BinOp::BitOr => "|",
        BinOp::BitXor => "^",
        BinOp::Shl => "<<",
        BinOp::Shr => ">>",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::And => "&&",
        BinOp::Or => "||",
    }
}

fn type_text(ty: &TypeName) -> String {
    format!("{}{}", ty.base, "*".repeat(ty.pointer_depth as usize))
}

fn list(items: &[Expr]) -> String {
    items.iter().map(sexpr).collect::<Vec<_>>().join(" ")
}

fn map_text(m: &MapRef) -> String {
    if m.keys.is_empty() {
        format!("@{}", m.name)
    } else {
        format!("@{}[{}]", m.name, list(&m.keys))
    }
}

/// S-expression of an expression: `(+ 1 (* 2 3))`, builtins as `b:pid`,
/// identifiers as `i:name`.
fn sexpr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(v) => v.to_string(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Var(v) => format!("${v}"),
        ExprKind::Map(m) => map_text(m),
        ExprKind::Builtin(b) => format!("b:{b}"),
        ExprKind::Ident(i) => format!("i:{i}"),
        ExprKind::Unary { op, expr } => format!("({op:?} {})", sexpr(expr)),
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", binop_text(*op), sexpr(lhs), sexpr(rhs))
        }
        ExprKind::Ternary {
            cond,
            then_expr,
            else_expr,
        } => {
            format!(
                "(? {} {} {})",
                sexpr(cond),
                sexpr(then_expr),
                sexpr(else_expr)
            )
        }
        ExprKind::Call { name, args } if args.is_empty() => format!("({name})"),
        ExprKind::Call { name, args } => format!("({name} {})", list(args)),
        ExprKind::Field { expr, field, arrow } => {
            format!(
                "({} {} {field})",
                if *arrow { "->" } else { "." },
                sexpr(expr)
            )
        }
        ExprKind::Index { expr, index } => format!("([] {} {})", sexpr(expr), sexpr(index)),
        ExprKind::Cast { ty, expr } => format!("(cast {} {})", type_text(ty), sexpr(expr)),
        ExprKind::Sizeof(SizeofArg::Type(ty)) => format!("(sizeof-type {})", type_text(ty)),
        ExprKind::Sizeof(SizeofArg::Expr(e)) => format!("(sizeof-expr {})", sexpr(e)),
        ExprKind::Offsetof { ty, field } => {
            format!("(offsetof {} {})", type_text(ty), field.join("."))
        }
        ExprKind::Tuple(items) => format!("(tuple {})", list(items)),
        ExprKind::Inlined(call) => format!("(inlined {})", call.name),
    }
}

fn lvalue_text(lv: &LValue) -> String {
    match lv {
        LValue::Var(name, _) => format!("${name}"),
        LValue::Map(m) => map_text(m),
    }
}

/// S-expression of a statement.
fn stmt_sexpr(s: &Stmt) -> String {
    match &s.kind {
        StmtKind::Expr(e) => sexpr(e),
        StmtKind::Assign { target, op, value } => {
            let op = op.map_or(String::new(), |o| binop_text(o).to_string());
            format!("({op}= {} {})", lvalue_text(target), sexpr(value))
        }
        StmtKind::IncDec { target, increment } => {
            format!(
                "({} {})",
                if *increment { "++" } else { "--" },
                lvalue_text(target)
            )
        }
        StmtKind::If {
            cond,
            then_block,
            else_block,
        } => match else_block {
            Some(e) => format!(
                "(if {} {} {})",
                sexpr(cond),
                block_sexpr(then_block),
                block_sexpr(e)
            ),
            None => format!("(if {} {})", sexpr(cond), block_sexpr(then_block)),
        },
        StmtKind::While { cond, body } => format!("(while {} {})", sexpr(cond), block_sexpr(body)),
        StmtKind::Unroll { count, body } => format!("(unroll {count} {})", block_sexpr(body)),
        StmtKind::Return(None) => "return".to_string(),
        StmtKind::Return(Some(e)) => format!("(return {})", sexpr(e)),
    }
}

/// `{s1; s2}`.
fn block_sexpr(b: &Block) -> String {
    format!(
        "{{{}}}",
        b.stmts
            .iter()
            .map(stmt_sexpr)
            .collect::<Vec<_>>()
            .join("; ")
    )
}
