//! Packet access in XDP probes (the interface of `xdp:IFACE`, a name or an
//! `iface` parameter, is resolved by `params::probe_parts`): the built-in
//! variables `pkt` and `pkt_len`,
//! and arithmetic on packet pointers. Reads through packet pointers are
//! typed in `access` (space `Packet`) and checked against the packet's end
//! by lowering.

use super::scope::Scope;
use super::tast::{Expr, ExprKind as K};
use crate::builtins::Var;
use crate::diag::{Diagnostic, Result, Span};
use crate::providers::Kind;
use crate::syntax::ast::BinOp;
use crate::types::Ty;

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

#[cfg(test)]
mod tests {
    use super::super::tast::{ExprKind as K, Space, Stmt};
    use super::super::{check, Options};
    use super::*;
    use crate::params::Value;
    use crate::syntax::parse;

    fn checked(src: &str, params: &[(&str, Value)]) -> Result<super::super::tast::Script> {
        let options = Options {
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
            ..Options::default()
        };
        check(&parse(src)?, &options)
    }

    /// The error message and the source text it points at.
    fn error(src: &str, params: &[(&str, Value)]) -> (String, String) {
        let e = checked(src, params).expect_err("should not check");
        let span = e.span.expect("a located error");
        (e.message, src[span.start..span.end].to_string())
    }

    /// The value assigned by the first statement of the only program.
    fn first_value(src: &str) -> super::super::tast::Expr {
        let s = checked(src, &[]).unwrap_or_else(|e| panic!("{}: {}", src, e.message));
        match &s.programs[0].body[0] {
            Stmt::SetVar(_, e) => e.clone(),
            other => panic!("unexpected {:?}", other),
        }
    }

    /// The value assigned by the last statement of the only program.
    fn last_value(src: &str) -> super::super::tast::Expr {
        let s = checked(src, &[]).unwrap_or_else(|e| panic!("{}: {}", src, e.message));
        match s.programs[0].body.last() {
            Some(Stmt::SetVar(_, e)) => e.clone(),
            other => panic!("unexpected {:?}", other),
        }
    }

    #[test]
    fn reads_through_packet_pointers_are_packet_loads() {
        let e = first_value("xdp:lo { $d = ((struct iphdr *)(pkt + 14))->daddr; }");
        assert_eq!(
            e.ty,
            Ty::Int {
                size: 4,
                signed: false
            }
        );
        let K::Load {
            offset,
            size,
            space,
            ..
        } = e.kind
        else {
            panic!("not a load: {:?}", e.kind)
        };
        assert_eq!((offset, size, space), (16, 4, Space::Packet));
        // Byte arrays are copied out of the packet, nested structs stay packet pointers.
        let mac = first_value("xdp:lo { $m = ((struct ethhdr *)pkt)->h_dest; }");
        assert_eq!(mac.ty, Ty::Str(6));
        assert!(matches!(
            mac.kind,
            K::LoadStr {
                space: Space::Packet,
                ..
            }
        ));
        let a = first_value("xdp:lo { $a = ((struct ipv6hdr *)(pkt + 14))->saddr; }");
        assert!(matches!(a.ty, Ty::PacketPtr(Some(_))));
        let b = first_value("xdp:lo { $b = *(uint8 *)(pkt + (pkt_len - 1)); }");
        assert!(matches!(
            b.kind,
            K::Load {
                space: Space::Packet,
                size: 1,
                ..
            }
        ));
    }

    /// The size and base of a one-value packet load.
    fn packet_load(e: super::super::tast::Expr) -> (u8, super::super::tast::Expr) {
        match e.kind {
            K::Load {
                base: Some(base),
                offset: 0,
                size,
                space: Space::Packet,
                ..
            } => (size, *base),
            other => panic!("not a packet load: {:?}", other),
        }
    }

    #[test]
    fn indexing_a_packet_pointer_reads_its_elements() {
        let u8 = Ty::Int {
            size: 1,
            signed: false,
        };
        // `p[i]` is `*(p + i)`: `pkt` points at bytes, a cast pointer at
        // its type; the address stays a packet pointer, so lowering bounds
        // a variable index (see ir::lower::packet).
        for (src, size, step) in [
            ("xdp:lo { $b = pkt[12]; }", 1, "Int(12)"),
            ("xdp:lo { $b = *(pkt + 12); }", 1, "Int(12)"),
            ("xdp:lo { $b = ((uint16 *)pkt)[3]; }", 2, "Int(6)"),
            ("xdp:lo { $i = 12; $b = pkt[$i]; }", 1, "Var(VarId(0))"),
        ] {
            let (got, base) = packet_load(last_value(src));
            assert_eq!(got, size, "{src}");
            assert!(matches!(base.ty, Ty::PacketPtr(_)), "{src}: {base:?}");
            let K::Binary { op, rhs, .. } = base.kind else {
                panic!("{src}: {base:?}")
            };
            assert_eq!((op, format!("{:?}", rhs.kind)), (BinOp::Add, step.into()));
        }
        assert_eq!(first_value("xdp:lo { $b = pkt[0]; }").ty, u8);
        assert_eq!(first_value("xdp:lo { $b = *pkt; }").ty, u8);
        let (m, at) = error("xdp:lo { $x = pkt[pkt]; }", &[]);
        assert_eq!(
            (m.as_str(), at.as_str()),
            ("an index must be an integer, not a packet pointer", "pkt")
        );
    }

    #[test]
    fn packet_pointer_arithmetic_keeps_the_packet_space() {
        let p = first_value("xdp:lo { $p = 14 + pkt; }");
        assert_eq!(p.ty, Ty::PacketPtr(None));
        let d = first_value("xdp:lo { $d = (pkt + 20) - pkt; }");
        assert_eq!(d.ty, Ty::I64);
        let c = first_value("xdp:lo { $c = (struct tcphdr *)(pkt + 34); }");
        assert!(matches!(c.ty, Ty::PacketPtr(Some(_))));
    }

    #[test]
    fn packet_errors_name_their_place() {
        let (m, at) = error("BEGIN { $x = pkt; }", &[]);
        assert_eq!(
            (m.as_str(), at.as_str()),
            ("pkt is only available in xdp probes", "pkt")
        );
        let (m, at) = error("xdp:lo { $x = pkt * 2; }", &[]);
        assert!(m.starts_with("packet pointers allow only"), "{}", m);
        assert_eq!(at, "pkt * 2");
        let (m, _) = error("xdp:lo { $x = (uint64)pkt; }", &[]);
        assert!(m.contains("cannot be cast to an integer"), "{}", m);
        let (m, at) = error("xdp:nope0 { }", &[]);
        assert_eq!(
            (m.as_str(), at.as_str()),
            ("no network interface named 'nope0'", "xdp:nope0")
        );
    }

    #[test]
    fn xdp_interfaces_come_from_iface_parameters() {
        let lo = Value::Ifaces(vec![("lo".into(), 1)]);
        let s = checked("xdp:dev { }", &[("dev", lo)]).expect("checks");
        assert_eq!(s.programs[0].probe.display(), "xdp:lo");
        let (m, at) = error("xdp:dev { }", &[("dev", Value::Any)]);
        assert_eq!(m, "xdp:dev needs one interface: pass --dev IFACE");
        assert_eq!(at, "xdp:dev");
        let (m, _) = error("xdp:n { }", &[("n", Value::Int(3))]);
        assert!(m.contains("is not one interface"), "{}", m);
    }
}
