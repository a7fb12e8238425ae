//! Packet access in XDP probes: the interface of `xdp:IFACE` (a name or a
//! parameter of type `iface`), the built-in variables `pkt` and `pkt_len`,
//! and arithmetic on packet pointers. Reads through packet pointers are
//! typed in `access` (space `Packet`) and checked against the packet's end
//! by lowering.

use std::collections::HashMap;

use super::expr::Scope;
use super::tast::{Expr, ExprKind as K};
use super::types::Ty;
use crate::builtins::Var;
use crate::diag::{Diagnostic, Result, Span};
use crate::params::Value;
use crate::providers::{self, Kind};
use crate::syntax::ast::{BinOp, ProbeSpec};

/// The target parts of a probe spec with parameters substituted: in
/// `xdp:NAME`, a NAME that is a script parameter of type `iface` stands for
/// the interface it was given (parameters take precedence over interface
/// names).
pub(super) fn probe_target(
    params: &HashMap<String, Value>,
    spec: &ProbeSpec,
) -> Result<Vec<String>> {
    let is_xdp = providers::lookup(&spec.provider).is_some_and(|p| p.kind == Kind::Xdp);
    let param = spec
        .target
        .first()
        .and_then(|n| params.get(n).map(|v| (n, v)));
    let (true, Some((name, value))) = (is_xdp, param) else {
        return Ok(spec.target.clone());
    };
    match value {
        Value::Ifaces(ifaces) if ifaces.len() == 1 => Ok(vec![ifaces[0].0.clone()]),
        Value::Any => Err(Diagnostic::at(
            spec.span,
            format!(
                "xdp:{} needs one interface: pass --{} IFACE",
                name,
                name.replace('_', "-")
            ),
        )),
        _ => Err(Diagnostic::at(
            spec.span,
            format!(
                "parameter '{}' is not one interface (declare it `iface`)",
                name
            ),
        )),
    }
}

impl Scope<'_, '_> {
    /// `pkt` (a packet pointer to the first byte of the packet) and
    /// `pkt_len` (its length in bytes), only in XDP probes.
    pub(super) fn packet_builtin(&mut self, name: &str, span: Span) -> Result<Expr> {
        if self.point.kind != Kind::Xdp {
            return Err(Diagnostic::at(
                span,
                format!("{} is only available in xdp probes", name),
            ));
        }
        let (ty, var) = match name {
            "pkt" => (Ty::PacketPtr(None), Var::Packet),
            _ => (Ty::U64, Var::PacketLen),
        };
        Ok(Expr {
            ty,
            kind: K::Builtin(var),
            span,
        })
    }

    /// Arithmetic with a packet pointer: `p + n` and `n + p` (bytes; a
    /// packet pointer to bytes), `p - q` (the distance between two packet
    /// pointers) and comparisons of two packet pointers.
    pub(super) fn packet_arith(&mut self, op: BinOp, l: Expr, r: Expr, span: Span) -> Result<Expr> {
        let is_ptr = |e: &Expr| matches!(e.ty, Ty::PacketPtr(_));
        let binary = |ty: Ty, lhs: Expr, rhs: Expr, signed: bool| Expr {
            ty,
            kind: K::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                signed,
            },
            span,
        };
        match (op, is_ptr(&l), is_ptr(&r)) {
            (BinOp::Add, true, false) | (BinOp::Add, false, true) => {
                let (ptr, n) = if is_ptr(&l) { (l, r) } else { (r, l) };
                self.expect_scalar(&n, "an offset")?;
                if !matches!(n.ty, Ty::Int { .. }) {
                    return Err(Diagnostic::at(n.span, "a packet offset must be an integer"));
                }
                Ok(binary(Ty::PacketPtr(None), ptr, n, false))
            }
            (BinOp::Sub, true, true) => Ok(binary(Ty::I64, l, r, true)),
            (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge, true, true) => {
                Ok(binary(Ty::U64, l, r, false))
            }
            _ => Err(Diagnostic::at(
                span,
                "packet pointers allow only `p + n`, `p - q` and comparisons of two packet pointers",
            )),
        }
    }
}
