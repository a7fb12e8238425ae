//! Parameters inside expressions: a pass over the AST before type checking
//! puts each one's value in its place ([`substitute`]), and
//! `matches(x, param)` is built from ordinary comparisons, so that a filter
//! on a parameter left at `any` folds away.

use std::net::IpAddr;

use std::collections::HashMap;

use super::tast::{Expr, ExprKind as K};
use crate::builtins::{self, Func};
use crate::diag::{Diagnostic, Result, Span};
use crate::params::Value;
use crate::syntax::ast::{self, BinOp, ProbeSpec};
use crate::syntax::walk;
use crate::types::Ty;

fn int(v: i64, span: Span) -> Expr {
    Expr {
        ty: Ty::I64,
        kind: K::Int(v),
        span,
    }
}

fn binary(op: BinOp, lhs: Expr, rhs: Expr, span: Span) -> Expr {
    Expr {
        ty: Ty::U64,
        kind: K::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            signed: false,
        },
        span,
    }
    .folded()
}

/// `(x & mask) == value` over one 64-bit word.
fn masked_eq(x: Expr, mask: u64, value: u64, span: Span) -> Expr {
    let masked = binary(BinOp::BitAnd, x, int(mask as i64, span), span);
    binary(BinOp::Eq, masked, int((value & mask) as i64, span), span)
}

/// The first `bits` bits of `bytes` (network order) as little-endian words.
fn prefix_words(bytes: &[u8], bits: u32) -> Vec<(u64, u64)> {
    bytes
        .chunks(8)
        .enumerate()
        .map(|(i, chunk)| {
            let mut value = [0u8; 8];
            let mut mask = [0u8; 8];
            for (j, b) in chunk.iter().enumerate() {
                let bit = (i * 64 + j * 8) as u32;
                let keep = bits.saturating_sub(bit).min(8);
                let m = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
                mask[j] = m;
                value[j] = *b;
            }
            (u64::from_le_bytes(mask), u64::from_le_bytes(value))
        })
        .collect()
}

/// `matches(x, param)`.
pub(super) fn matches(x: Expr, value: &Value, span: Span) -> Result<Expr> {
    Ok(match value {
        Value::Any => int(1, span),
        Value::Int(v) => binary(BinOp::Eq, x, int(*v, span), span),
        Value::Word(w) => binary(
            BinOp::Eq,
            x,
            Expr {
                ty: Ty::Str(w.len() as u32 + 1),
                kind: K::Str(w.clone()),
                span,
            },
            span,
        ),
        Value::Ifaces(list) => list
            .iter()
            .map(|(_, index)| binary(BinOp::Eq, x.clone(), int(*index as i64, span), span))
            .reduce(|a, b| binary(BinOp::Or, a, b, span))
            .unwrap_or_else(|| int(0, span)),
        Value::Prefix(ip, len) => {
            let bytes = match ip {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            match (&x.ty, bytes.len()) {
                // An IPv4 address read from a packet or a socket: a u32 in network order.
                (Ty::Int { .. }, 4) => {
                    let (mask, value) = prefix_words(&bytes, *len as u32)[0];
                    masked_eq(x, mask & 0xffff_ffff, value & 0xffff_ffff, span)
                }
                // 16 bytes of an IPv6 address: two words.
                (Ty::Str(16), 16) => prefix_words(&bytes, *len as u32)
                    .into_iter()
                    .enumerate()
                    .filter(|(_, (mask, _))| *mask != 0)
                    .map(|(i, (mask, value))| {
                        let word = Expr { ty: Ty::U64, kind: K::Word(Box::new(x.clone()), i as u32 * 8), span };
                        masked_eq(word, mask, value, span)
                    })
                    .reduce(|a, b| binary(BinOp::And, a, b, span))
                    .unwrap_or_else(|| int(1, span)),
                // An address of the other family never matches.
                (Ty::Int { .. }, 16) | (Ty::Str(16), 4) => int(0, span),
                _ => {
                    return Err(Diagnostic::at(
                        x.span,
                        format!("matches() compares an address parameter with an IPv4 integer or 16 IPv6 bytes, not {}", x.ty.describe()),
                    ))
                }
            }
        }
    })
}

/// A probe's target parts with every part that names a script parameter
/// replaced by its value: an integer or enum (`interval:s:period` with
/// `--period 5` is `interval:s:5`) or one interface (`xdp:dev` with
/// `--dev eth0` is `xdp:eth0`). Parameters take precedence over probe
/// names; other parts are kept as written.
pub(super) fn probe_parts(
    spec: &ProbeSpec,
    params: &std::collections::HashMap<String, Value>,
) -> Result<Vec<String>> {
    let flag = |part: &str| part.replace('_', "-");
    // A provider whose target is an interface takes only interface parameters.
    let wants_interface = crate::providers::lookup(&spec.provider)
        .is_some_and(|p| p.kind == crate::providers::Kind::Xdp);
    spec.target
        .iter()
        .map(|part| match params.get(part) {
            None => Ok(part.clone()),
            Some(Value::Int(v)) if !wants_interface => Ok(v.to_string()),
            Some(Value::Word(w)) if !wants_interface => Ok(w.clone()),
            Some(Value::Ifaces(ifaces)) if ifaces.len() == 1 => Ok(ifaces[0].0.clone()),
            Some(Value::Any) => Err(Diagnostic::at(
                spec.span,
                format!(
                    "{}:{} needs one interface: pass --{} IFACE",
                    spec.provider,
                    part,
                    flag(part)
                ),
            )),
            Some(_) => Err(Diagnostic::at(
                spec.span,
                format!(
                    "parameter '{}' is not one interface (declare it `iface`)",
                    part
                ),
            )),
        })
        .collect()
}

/// Puts each parameter used as a value in `items` in its place: a name
/// (`latency_us`, or one named like a built-in variable, `pid`, which it
/// replaces) becomes the literal of its value. The second argument of
/// `matches()` stays a name. Returns the errors (a parameter holding
/// several values used as one).
pub(super) fn substitute(
    items: &mut [ast::Item],
    params: &HashMap<String, Value>,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    if params.is_empty() {
        return errors;
    }
    walk::program(items, &mut |e| put(e, params, &mut errors));
    errors
}

/// [`substitute`] at one expression; false when the walk is done with it.
fn put(e: &mut ast::Expr, params: &HashMap<String, Value>, errors: &mut Vec<Diagnostic>) -> bool {
    match &mut e.kind {
        ast::ExprKind::Builtin(name) | ast::ExprKind::Ident(name) => {
            let Some(value) = params.get(name.as_str()) else {
                return false;
            };
            // A bad use is reported here and checked on as 0.
            e.kind = literal(name, value, e.span).unwrap_or_else(|error| {
                errors.push(error);
                ast::ExprKind::Int(0)
            });
            false
        }
        ast::ExprKind::Call { name, args }
            if builtins::function(name).is_some_and(|d| d.func == Func::Matches) =>
        {
            if let Some(x) = args.first_mut() {
                walk::expr(x, &mut |e| put(e, params, errors));
            }
            false
        }
        _ => true,
    }
}

/// The literal a parameter used as a value stands for.
fn literal(name: &str, value: &Value, span: Span) -> Result<ast::ExprKind> {
    let int = |v: i64| Ok(ast::ExprKind::Int(v as u64));
    match value {
        Value::Int(v) => int(*v),
        Value::Word(w) => Ok(ast::ExprKind::Str(w.clone())),
        Value::Any => int(0),
        Value::Ifaces(list) if list.len() == 1 => int(list[0].1 as i64),
        Value::Prefix(IpAddr::V4(a), 32) => int(u32::from_le_bytes(a.octets()) as i64),
        _ => Err(Diagnostic::at(
            span,
            format!(
                "parameter {} holds several values; test it with matches(x, {})",
                name, name
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masks_cover_exactly_the_prefix_bits() {
        let w = prefix_words(&[10, 1, 2, 3], 12);
        assert_eq!(
            w,
            vec![(
                u64::from_le_bytes([0xff, 0xf0, 0, 0, 0, 0, 0, 0]),
                u64::from_le_bytes([10, 1, 2, 3, 0, 0, 0, 0])
            )]
        );
        let w6 = prefix_words(&[0xfd; 16], 72);
        assert_eq!(w6[0].0, u64::MAX);
        assert_eq!(w6[1].0, 0xff);
    }

    /// `src` after substitution with `params`: its first probe's body,
    /// printed back as the AST, and the errors' messages.
    fn substituted(src: &str, params: &[(&str, Value)]) -> (String, Vec<String>) {
        let mut program = crate::syntax::parse(src).unwrap_or_else(|e| panic!("{}", e.message));
        let params = params
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        let errors = substitute(&mut program.items, &params);
        let ast::Item::Probe(probe) = &program.items[0] else {
            panic!("not a probe")
        };
        let kinds: Vec<String> = (probe.body.stmts.iter())
            .map(|s| match &s.kind {
                ast::StmtKind::Assign { value, .. } => format!("{:?}", value.kind),
                other => format!("{:?}", other),
            })
            .collect();
        (
            kinds.join("; "),
            errors.into_iter().map(|e| e.message).collect(),
        )
    }

    #[test]
    fn a_parameter_used_as_a_value_becomes_its_literal() {
        let (body, errors) = substituted(
            "BEGIN { $a = port; $b = mode; $c = pid; $d = matches(pid, pid); }",
            &[
                ("port", Value::Int(443)),
                ("mode", Value::Word("detail".into())),
                ("pid", Value::Any),
            ],
        );
        assert!(errors.is_empty(), "{:?}", errors);
        let kinds: Vec<&str> = body.split("; ").collect();
        assert_eq!(kinds[..3], ["Int(443)", "Str(\"detail\")", "Int(0)"]);
        // matches() keeps its parameter's name, and its value is substituted.
        assert!(
            kinds[3].contains("Int(0)") && kinds[3].contains("Builtin(\"pid\")"),
            "{}",
            kinds[3]
        );
    }

    #[test]
    fn a_parameter_of_several_values_used_as_one_is_an_error_checked_on_as_0() {
        let prefix = Value::Prefix(IpAddr::V4([10, 0, 0, 0].into()), 24);
        let (body, errors) = substituted("BEGIN { $a = src; }", &[("src", prefix)]);
        assert_eq!(body, "Int(0)");
        assert_eq!(
            errors,
            ["parameter src holds several values; test it with matches(x, src)"]
        );
    }
}
