//! Turns the pest parse tree into the AST of [`super::ast`]: one function per
//! grammar construct, binary precedence via pest's Pratt parser.

use super::ast::*;
use super::lexical::content_end;
use super::parser::Rule;
use crate::diag::{Diagnostic, Result, Span};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::OnceLock;

/// Identifiers that name bpftrace builtin variables rather than user names.
pub(super) const BUILTINS: &[&str] = &[
    "pid", "tid", "uid", "gid", "comm", "nsecs", "elapsed", "cpu", "probe", "func", "retval",
    "args", "arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "arg6", "arg7", "arg8", "arg9",
    "kstack", "curtask", "cgroup", "ctx", "pkt", "pkt_len",
];

/// Largest `unroll` count accepted.
const MAX_UNROLL: u64 = 100;

/// Byte span of a pest pair, without the whitespace and comments pest
/// leaves at the end of nodes whose last element is optional.
fn span_of(pair: &Pair<Rule>) -> Span {
    let start = pair.as_span().start();
    Span::new(start, start + content_end(pair.as_str()))
}

/// Children of a pair, without the keyword tokens that carry no data.
fn children<'i>(pair: Pair<'i, Rule>) -> impl Iterator<Item = Pair<'i, Rule>> {
    pair.into_inner().filter(|p| {
        !matches!(
            p.as_rule(),
            Rule::kw_if
                | Rule::kw_else
                | Rule::kw_while
                | Rule::kw_unroll
                | Rule::kw_return
                | Rule::kw_sizeof
                | Rule::kw_offsetof
                | Rule::kw_param
                | Rule::kw_config
                | Rule::kw_fn
                | Rule::kw_path
                | Rule::kw_stage
                | Rule::kw_or
                | Rule::kw_alias
                | Rule::kw_recall
                | Rule::kw_in
                | Rule::kw_const
                | Rule::kw_extends
                | Rule::kw_replaces
                | Rule::kw_stages
        )
    })
}

/// The next child of a pair; the grammar guarantees it exists, but a
/// mismatch becomes a diagnostic rather than a panic.
fn next<'i>(it: &mut impl Iterator<Item = Pair<'i, Rule>>, at: Span) -> Result<Pair<'i, Rule>> {
    it.next()
        .ok_or_else(|| Diagnostic::at(at, "internal parser error: incomplete syntax node"))
}

/// Builds the program from the `program` pair.
pub fn program(pair: Pair<Rule>) -> Result<Program> {
    let items = children(pair)
        .filter_map(|p| match p.as_rule() {
            Rule::probe => Some(probe(p).map(Item::Probe)),
            Rule::param_decl => Some(param_decl(p).map(Item::Param)),
            Rule::config_decl => Some(config_decl(p).map(Item::Config)),
            Rule::const_decl => Some(const_decl(p).map(Item::Const)),
            Rule::fn_decl => Some(fn_decl(p).map(Item::Fn)),
            Rule::path_decl => Some(path_decl(p).map(Item::Path)),
            Rule::stage_decl => Some(catalogue_stage(p).map(Item::Stage)),
            _ => None,
        })
        .collect::<Result<_>>()?;
    Ok(Program { items })
}

fn probe(pair: Pair<Rule>) -> Result<ProbeBlock> {
    let span = span_of(&pair);
    let mut specs = Vec::new();
    let mut predicate = None;
    let mut body = None;
    let mut optional = false;
    for child in children(pair) {
        match child.as_rule() {
            Rule::kw_optional => optional = true,
            Rule::probe_spec => specs.push(probe_spec(child)),
            Rule::predicate => {
                let at = span_of(&child);
                predicate = Some(expr(next(&mut children(child), at)?)?);
            }
            _ => body = Some(block(child)?),
        }
    }
    let body =
        body.ok_or_else(|| Diagnostic::at(span, "internal parser error: probe without body"))?;
    Ok(ProbeBlock {
        optional,
        specs,
        predicate,
        body,
        span,
    })
}

fn const_decl(pair: Pair<Rule>) -> Result<ConstDecl> {
    let span = span_of(&pair);
    let mut it = children(pair);
    let name = next(&mut it, span)?;
    if BUILTINS.contains(&name.as_str()) {
        return Err(Diagnostic::at(
            span_of(&name),
            format!(
                "{} is a builtin variable and cannot name a const",
                name.as_str()
            ),
        ));
    }
    Ok(ConstDecl {
        name: name.as_str().to_string(),
        value: expr(next(&mut it, span)?)?,
        span,
    })
}

/// `NAME` after `extends` or `replaces`, with its span.
fn named(pair: Pair<Rule>) -> Result<(String, Span)> {
    let at = span_of(&pair);
    let name = next(&mut children(pair), at)?;
    Ok((name.as_str().to_string(), span_of(&name)))
}

fn path_decl(pair: Pair<Rule>) -> Result<PathDecl> {
    let span = span_of(&pair);
    let mut it = children(pair).peekable();
    let template = it.next_if(|p| p.as_rule() == Rule::path_template).is_some();
    let name = next(&mut it, span)?.as_str().to_string();
    let (mut options, mut stages, mut base) = (Vec::new(), Vec::new(), None);
    let mut includes = Vec::new();
    for p in it {
        let at = span_of(&p);
        match p.as_rule() {
            Rule::path_base => base = Some(named(p)?),
            Rule::stage_include => {
                let (name, span) = named(p)?;
                includes.push(StageInclude {
                    name,
                    at: stages.len(),
                    span,
                });
            }
            Rule::path_opt => {
                let mut parts = children(p);
                let key = next(&mut parts, at)?.as_str().to_string();
                options.push((key, expr(next(&mut parts, at)?)?));
            }
            _ => stages.push(stage_decl(p)?),
        }
    }
    Ok(PathDecl {
        name,
        template,
        base,
        options,
        stages,
        includes,
        span,
    })
}

fn stage_decl(pair: Pair<Rule>) -> Result<StageDecl> {
    let span = span_of(&pair);
    let mut it = children(pair).peekable();
    let optional = it
        .next_if(|p| p.as_rule() == Rule::stage_optional)
        .is_some();
    let name = next(&mut it, span)?.as_str().to_string();
    let replaces = it
        .next_if(|p| p.as_rule() == Rule::stage_replaces)
        .map(named)
        .transpose()?;
    let mut alternatives = Vec::new();
    for alt in it {
        let alt = next(&mut children(alt), span)?;
        let at = span_of(&alt);
        let rule = alt.as_rule();
        let mut parts = children(alt);
        let first = next(&mut parts, at)?;
        alternatives.push(if rule == Rule::stage_probe {
            let target = next(&mut parts, at)?;
            let target = match target.as_rule() {
                Rule::stage_recall => {
                    let mut recall = children(target);
                    StageTarget::Recall {
                        mark: expr(next(&mut recall, at)?)?,
                        span: expr(next(&mut recall, at)?)?,
                    }
                }
                _ => StageTarget::Packet(expr(target)?),
            };
            StageAlt::Probe(StageProbe {
                spec: probe_spec(first),
                target,
                guard: parts.next().map(expr).transpose()?,
            })
        } else {
            StageAlt::Named {
                name: first.as_str().to_string(),
                guard: parts.next().map(expr).transpose()?,
                span: at,
            }
        });
    }
    Ok(StageDecl {
        name,
        optional,
        replaces,
        alternatives,
        span,
    })
}

/// A stage declared outside a path (a catalogue entry): never optional,
/// since whether a stage may not fire depends on the path.
fn catalogue_stage(pair: Pair<Rule>) -> Result<StageDecl> {
    let stage = stage_decl(pair)?;
    if stage.optional {
        return Err(Diagnostic::at(
            stage.span,
            "only a path's stage can be optional (`stage?` inside the path)",
        ));
    }
    if let Some((_, at)) = stage.replaces {
        return Err(Diagnostic::at(
            at,
            "only a stage of a path that extends another replaces a stage",
        ));
    }
    Ok(stage)
}

fn fn_decl(pair: Pair<Rule>) -> Result<FnDecl> {
    let span = span_of(&pair);
    let mut it = children(pair);
    let name = next(&mut it, span)?.as_str().to_string();
    let mut params = Vec::new();
    let mut body = None;
    for p in it {
        match p.as_rule() {
            Rule::var => params.push(p.as_str().trim_start_matches('$').to_string()),
            _ => body = Some(block(p)?),
        }
    }
    let body =
        body.ok_or_else(|| Diagnostic::at(span, "internal parser error: function without body"))?;
    Ok(FnDecl {
        name,
        params,
        body,
        span,
    })
}

fn config_decl(pair: Pair<Rule>) -> Result<ConfigDecl> {
    let span = span_of(&pair);
    let mut it = children(pair);
    let name = next(&mut it, span)?.as_str().to_string();
    let v = next(&mut it, span)?;
    let value = match v.as_rule() {
        Rule::int => ConfigValue::Int(int(&v)?),
        _ => ConfigValue::Param(v.as_str().to_string()),
    };
    Ok(ConfigDecl { name, value, span })
}

fn param_decl(pair: Pair<Rule>) -> Result<ParamDecl> {
    let span = span_of(&pair);
    let mut it = children(pair);
    let name = next(&mut it, span)?.as_str().to_string();
    let mut ty_parts = children(next(&mut it, span)?);
    let ty = next(&mut ty_parts, span)?.as_str().to_string();
    let choices = ty_parts
        .map(|choice| {
            let mut parts = children(choice);
            let value = next(&mut parts, span)?.as_str().to_string();
            let aliases = parts.next().map(aliases).unwrap_or_default();
            Ok(EnumChoice { value, aliases })
        })
        .collect::<Result<_>>()?;
    let mut decl = ParamDecl {
        name,
        ty,
        choices,
        default: None,
        help: None,
        aliases: Vec::new(),
        span,
    };
    for p in it {
        match p.as_rule() {
            Rule::param_value => {
                let v = next(&mut children(p), span)?;
                decl.default = Some(match v.as_rule() {
                    Rule::string => string(v)?,
                    _ => v.as_str().to_string(),
                });
            }
            Rule::alias => decl.aliases = aliases(p),
            _ => decl.help = Some(string(p)?),
        }
    }
    Ok(decl)
}

/// The names of an `alias(a, b)`.
fn aliases(pair: Pair<Rule>) -> Vec<String> {
    children(pair).map(|p| p.as_str().to_string()).collect()
}

fn probe_spec(pair: Pair<Rule>) -> ProbeSpec {
    let span = span_of(&pair);
    let mut parts = children(pair).map(|p| p.as_str().to_string());
    let provider = parts.next().unwrap_or_default();
    ProbeSpec {
        provider,
        target: parts.collect(),
        span,
    }
}

fn block(pair: Pair<Rule>) -> Result<Block> {
    let span = span_of(&pair);
    let stmts = children(pair).map(stmt).collect::<Result<_>>()?;
    Ok(Block { stmts, span })
}

fn stmt(pair: Pair<Rule>) -> Result<Stmt> {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let mut it = children(pair);
    let kind = match rule {
        Rule::if_stmt => {
            let cond = expr(next(&mut it, span)?)?;
            let then_block = block(next(&mut it, span)?)?;
            let else_block = it.next().map(else_branch).transpose()?;
            StmtKind::If {
                cond,
                then_block,
                else_block,
            }
        }
        Rule::while_stmt => {
            let cond = expr(next(&mut it, span)?)?;
            StmtKind::While {
                cond,
                body: block(next(&mut it, span)?)?,
            }
        }
        Rule::unroll_stmt => {
            let count_pair = next(&mut it, span)?;
            let count = int(&count_pair)?;
            if count == 0 || count > MAX_UNROLL {
                return Err(Diagnostic::at(
                    span_of(&count_pair),
                    format!("unroll count must be between 1 and {MAX_UNROLL}"),
                ));
            }
            StmtKind::Unroll {
                count,
                body: block(next(&mut it, span)?)?,
            }
        }
        Rule::return_stmt => StmtKind::Return(it.next().map(expr).transpose()?),
        Rule::assign_stmt => {
            let target = lvalue(next(&mut it, span)?)?;
            let op = assign_op(next(&mut it, span)?.as_str());
            StmtKind::Assign {
                target,
                op,
                value: expr(next(&mut it, span)?)?,
            }
        }
        Rule::incdec_stmt => {
            let (first, second) = (next(&mut it, span)?, next(&mut it, span)?);
            let (op, target) = if first.as_rule() == Rule::incdec_op {
                (first, second)
            } else {
                (second, first)
            };
            StmtKind::IncDec {
                target: lvalue(target)?,
                increment: op.as_str() == "++",
            }
        }
        _ => StmtKind::Expr(expr(next(&mut it, span)?)?),
    };
    Ok(Stmt { kind, span })
}

/// `else { }` or `else if ...`, the latter wrapped in a block of its own span.
fn else_branch(pair: Pair<Rule>) -> Result<Block> {
    if pair.as_rule() == Rule::if_stmt {
        let nested = stmt(pair)?;
        Ok(Block {
            span: nested.span,
            stmts: vec![nested],
        })
    } else {
        block(pair)
    }
}

/// The binary operator of a compound assignment (`None` for plain `=`).
fn assign_op(text: &str) -> Option<BinOp> {
    let op = text.strip_suffix('=')?;
    [
        ("<<", BinOp::Shl),
        (">>", BinOp::Shr),
        ("+", BinOp::Add),
        ("-", BinOp::Sub),
        ("*", BinOp::Mul),
        ("/", BinOp::Div),
        ("%", BinOp::Mod),
        ("&", BinOp::BitAnd),
        ("|", BinOp::BitOr),
        ("^", BinOp::BitXor),
    ]
    .into_iter()
    .find(|(s, _)| *s == op)
    .map(|(_, b)| b)
}

fn lvalue(pair: Pair<Rule>) -> Result<LValue> {
    let span = span_of(&pair);
    let inner = next(&mut children(pair), span)?;
    Ok(match inner.as_rule() {
        Rule::var => LValue::Var(inner.as_str()[1..].to_string(), span),
        _ => LValue::Map(map_ref(inner)?),
    })
}

fn map_ref(pair: Pair<Rule>) -> Result<MapRef> {
    let span = span_of(&pair);
    let mut it = children(pair);
    let name = next(&mut it, span)?.as_str()[1..].to_string();
    let keys = it.map(expr).collect::<Result<_>>()?;
    Ok(MapRef { name, keys, span })
}

/// The Pratt table for binary operators, loosest first (C precedence).
fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        let level = |rules: &[Rule]| {
            rules
                .iter()
                .skip(1)
                .fold(Op::infix(rules[0], Assoc::Left), |op, r| {
                    op | Op::infix(*r, Assoc::Left)
                })
        };
        PrattParser::new()
            .op(level(&[Rule::op_or]))
            .op(level(&[Rule::op_and]))
            .op(level(&[Rule::op_bitor]))
            .op(level(&[Rule::op_bitxor]))
            .op(level(&[Rule::op_bitand]))
            .op(level(&[Rule::op_eq, Rule::op_ne]))
            .op(level(&[Rule::op_lt, Rule::op_le, Rule::op_gt, Rule::op_ge]))
            .op(level(&[Rule::op_shl, Rule::op_shr]))
            .op(level(&[Rule::op_add, Rule::op_sub]))
            .op(level(&[Rule::op_mul, Rule::op_div, Rule::op_mod]))
    })
}

fn binop(rule: Rule) -> BinOp {
    match rule {
        Rule::op_or => BinOp::Or,
        Rule::op_and => BinOp::And,
        Rule::op_bitor => BinOp::BitOr,
        Rule::op_bitxor => BinOp::BitXor,
        Rule::op_bitand => BinOp::BitAnd,
        Rule::op_eq => BinOp::Eq,
        Rule::op_ne => BinOp::Ne,
        Rule::op_lt => BinOp::Lt,
        Rule::op_le => BinOp::Le,
        Rule::op_gt => BinOp::Gt,
        Rule::op_ge => BinOp::Ge,
        Rule::op_shl => BinOp::Shl,
        Rule::op_shr => BinOp::Shr,
        Rule::op_add => BinOp::Add,
        Rule::op_sub => BinOp::Sub,
        Rule::op_mul => BinOp::Mul,
        Rule::op_div => BinOp::Div,
        _ => BinOp::Mod,
    }
}

/// An expression node.
fn node(kind: ExprKind, span: Span) -> Expr {
    Expr { kind, span }
}

/// `expr`: a binary expression with an optional `? :` tail.
pub fn expr(pair: Pair<Rule>) -> Result<Expr> {
    let span = span_of(&pair);
    let mut it = children(pair);
    let cond = binary(next(&mut it, span)?.into_inner())?;
    match (it.next(), it.next()) {
        (Some(then_pair), Some(else_pair)) => Ok(node(
            ExprKind::Ternary {
                cond: Box::new(cond),
                then_expr: Box::new(expr(then_pair)?),
                else_expr: Box::new(expr(else_pair)?),
            },
            span,
        )),
        _ => Ok(cond),
    }
}

fn binary(pairs: Pairs<Rule>) -> Result<Expr> {
    pratt()
        .map_primary(unary)
        .map_infix(|lhs, op, rhs| {
            let (lhs, rhs) = (lhs?, rhs?);
            let span = lhs.span.join(rhs.span);
            let kind = ExprKind::Binary {
                op: binop(op.as_rule()),
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
            Ok(node(kind, span))
        })
        .parse(pairs)
}

/// `prefix* postfix_expr`: prefixes apply innermost-last, each spanning from
/// itself to the end of the operand.
fn unary(pair: Pair<Rule>) -> Result<Expr> {
    let mut prefixes: Vec<Pair<Rule>> = pair.into_inner().collect();
    let operand_pair = prefixes
        .pop()
        .ok_or_else(|| Diagnostic::plain("internal parser error: empty unary expression"))?;
    let mut result = postfix_expr(operand_pair)?;
    for prefix in prefixes.into_iter().rev() {
        let span = Span::new(span_of(&prefix).start, result.span.end);
        let op_pair = next(&mut prefix.into_inner(), span)?;
        let kind = match op_pair.as_rule() {
            Rule::cast_prefix => {
                let ty = type_name(next(&mut op_pair.into_inner(), span)?)?;
                ExprKind::Cast {
                    ty,
                    expr: Box::new(result),
                }
            }
            _ => ExprKind::Unary {
                op: unop(op_pair.as_str()),
                expr: Box::new(result),
            },
        };
        result = node(kind, span);
    }
    Ok(result)
}

fn unop(text: &str) -> UnOp {
    match text {
        "-" => UnOp::Neg,
        "!" => UnOp::Not,
        "~" => UnOp::BitNot,
        "*" => UnOp::Deref,
        _ => UnOp::AddrOf,
    }
}

fn postfix_expr(pair: Pair<Rule>) -> Result<Expr> {
    let span = span_of(&pair);
    let mut it = pair.into_inner();
    let mut result = primary(next(&mut it, span)?)?;
    for post in it {
        let span = Span::new(result.span.start, span_of(&post).end);
        let inner = next(&mut post.into_inner(), span)?;
        let kind = match inner.as_rule() {
            Rule::field_access => {
                let mut parts = inner.into_inner();
                let arrow = next(&mut parts, span)?.as_rule() == Rule::arrow;
                let field = next(&mut parts, span)?.as_str().to_string();
                ExprKind::Field {
                    expr: Box::new(result),
                    field,
                    arrow,
                }
            }
            _ => {
                let index = expr(next(&mut inner.into_inner(), span)?)?;
                ExprKind::Index {
                    expr: Box::new(result),
                    index: Box::new(index),
                }
            }
        };
        result = node(kind, span);
    }
    Ok(result)
}

fn primary(pair: Pair<Rule>) -> Result<Expr> {
    let span = span_of(&pair);
    let kind = match pair.as_rule() {
        Rule::int => ExprKind::Int(int(&pair)?),
        Rule::string => ExprKind::Str(string(pair)?),
        Rule::var => ExprKind::Var(pair.as_str()[1..].to_string()),
        Rule::map_ref => ExprKind::Map(map_ref(pair)?),
        Rule::ident if BUILTINS.contains(&pair.as_str()) => ExprKind::Builtin(pair.as_str().into()),
        Rule::ident => ExprKind::Ident(pair.as_str().to_string()),
        Rule::call => {
            let mut it = pair.into_inner();
            let name = next(&mut it, span)?.as_str().to_string();
            ExprKind::Call {
                name,
                args: it.map(expr).collect::<Result<_>>()?,
            }
        }
        Rule::paren => {
            let mut elems = pair.into_inner().map(expr).collect::<Result<Vec<_>>>()?;
            if elems.len() == 1 {
                let mut only = elems.remove(0);
                only.span = span;
                return Ok(only);
            }
            ExprKind::Tuple(elems)
        }
        Rule::sizeof_expr => {
            let arg = next(&mut children(pair), span)?;
            ExprKind::Sizeof(match arg.as_rule() {
                Rule::type_name => SizeofArg::Type(type_name(arg)?),
                _ => SizeofArg::Expr(Box::new(expr(arg)?)),
            })
        }
        _ => {
            let mut it = children(pair);
            let ty = type_base(next(&mut it, span)?, 0);
            ExprKind::Offsetof {
                ty,
                field: it.map(|p| p.as_str().to_string()).collect(),
            }
        }
    };
    Ok(node(kind, span))
}

fn type_name(pair: Pair<Rule>) -> Result<TypeName> {
    let span = span_of(&pair);
    let mut it = pair.into_inner();
    let base = next(&mut it, span)?;
    let mut ty = type_base(base, it.count() as u32);
    ty.span = span;
    Ok(ty)
}

/// A type base (`struct x`, `unsigned int`, `u32`): its words joined by one space.
fn type_base(pair: Pair<Rule>, pointer_depth: u32) -> TypeName {
    let span = span_of(&pair);
    let base = pair
        .as_str()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    TypeName {
        base,
        pointer_depth,
        span,
    }
}

/// Value of an integer literal: decimal, `0x` hex or `0` octal, `_` ignored.
fn int(pair: &Pair<Rule>) -> Result<u64> {
    let span = span_of(pair);
    let digits: String = pair.as_str().chars().filter(|c| *c != '_').collect();
    let (text, radix, kind) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (hex, 16, "hexadecimal")
    } else if digits.len() > 1 && digits.starts_with('0') {
        (&digits[1..], 8, "octal")
    } else {
        (digits.as_str(), 10, "decimal")
    };
    u64::from_str_radix(text, radix).map_err(|e| {
        let problem = match e.kind() {
            std::num::IntErrorKind::PosOverflow => "does not fit in 64 bits",
            _ => "has an invalid digit",
        };
        Diagnostic::at(span, format!("{kind} integer literal {problem}"))
    })
}

/// Decodes a string literal's escapes (`\n \t \r \\ \" \' \0 \xNN`); a
/// `\xNN` above 0x7f becomes the character U+00NN.
fn string(pair: Pair<Rule>) -> Result<String> {
    let mut out = String::new();
    for chunk in pair.into_inner() {
        let text = chunk.as_str();
        if chunk.as_rule() == Rule::str_text {
            out.push_str(text);
            continue;
        }
        let escaped = &text[1..];
        let decoded = match escaped {
            "n" => '\n',
            "t" => '\t',
            "r" => '\r',
            "\\" => '\\',
            "\"" => '"',
            "'" => '\'',
            "0" => '\0',
            _ => match escaped.strip_prefix('x').map(|h| u8::from_str_radix(h, 16)) {
                Some(Ok(byte)) => char::from(byte),
                _ => {
                    return Err(Diagnostic::at(
                        span_of(&chunk),
                        format!("unknown escape sequence `{text}`"),
                    ))
                }
            },
        };
        out.push(decoded);
    }
    Ok(out)
}
