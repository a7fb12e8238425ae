//! Memory access: struct fields from BTF, tracepoint record fields,
//! function arguments by name, dereference, indexing, casts, `sizeof`,
//! `offsetof`.

use super::expr::has_btf_args;
use super::scope::Scope;
use super::tast::{Expr, ExprKind as K, Space};
use crate::diag::{Diagnostic, Result, Span};
use crate::kernel::btf::{Btf, Type, TypeId};
use crate::providers::Target;
use crate::syntax::ast::{self, BinOp, ExprKind, TypeName};
use crate::types::{Ty, STRING_SIZE};

/// How a value of a BTF type is read.
enum Shape {
    /// An integer, enum or pointer of `size` bytes.
    Scalar(Ty, u8),
    /// A struct or union (kept as an address).
    Record(TypeId),
    /// An array of `len` bytes read as a string or byte array.
    Bytes(u32),
    /// An array of other elements (kept as a pointer to the first).
    Array(TypeId),
}

fn shape(btf: &Btf, id: TypeId, span: Span) -> Result<Shape> {
    let id = btf.skip_modifiers(id);
    Ok(match btf.ty(id) {
        Type::Int { size, signed, .. } => Shape::Scalar(
            Ty::Int {
                size: *size as u8,
                signed: *signed,
            },
            *size as u8,
        ),
        Type::Enum { size, signed, .. } => Shape::Scalar(
            Ty::Int {
                size: *size as u8,
                signed: *signed,
            },
            *size as u8,
        ),
        Type::Ptr(p) => {
            let target = btf.skip_modifiers(*p);
            let pointee = if matches!(btf.ty(target), Type::Void) {
                None
            } else {
                Some(target)
            };
            Shape::Scalar(Ty::Ptr(pointee), 8)
        }
        Type::Struct { .. } | Type::Union { .. } => Shape::Record(id),
        Type::Array { elem, len } => match btf.ty(btf.skip_modifiers(*elem)) {
            Type::Int { size: 1, .. } => Shape::Bytes(*len),
            _ => Shape::Array(btf.skip_modifiers(*elem)),
        },
        _ => {
            return Err(Diagnostic::at(
                span,
                format!("cannot read a value of type {}", btf.type_name(id)),
            ))
        }
    })
}

/// The read of a value of BTF type `id` at `base + offset` in `space`
/// (kernel memory or the packet). Structs and arrays inside the packet stay
/// packet pointers, so reads through them are checked against its end.
/// `$t.N`: element N of a tuple.
fn tuple_element(tuple: Expr, items: &[Ty], field: &str, span: Span) -> Result<Expr> {
    let index: usize = field.parse().map_err(|_| {
        Diagnostic::at(
            span,
            format!(
                "a tuple's elements are .0 to .{}",
                items.len().saturating_sub(1)
            ),
        )
    })?;
    let ty = items.get(index).cloned().ok_or_else(|| {
        Diagnostic::at(
            span,
            format!(
                "the tuple has {} elements: .0 to .{}",
                items.len(),
                items.len().saturating_sub(1)
            ),
        )
    })?;
    if !(ty.is_scalar() || matches!(ty, Ty::Str(_) | Ty::Inet | Ty::Tuple(_))) {
        return Err(Diagnostic::at(
            span,
            format!("cannot read a tuple element of type {}", ty.describe()),
        ));
    }
    let kind = K::Element {
        tuple: Box::new(tuple),
        offset: crate::types::tuple_layout(items).0[index],
    };
    Ok(Expr { ty, kind, span })
}

fn read_at(
    btf: &Btf,
    base: Expr,
    offset: u32,
    id: TypeId,
    bitfield: Option<(u32, u32)>,
    space: Space,
    span: Span,
) -> Result<Expr> {
    // Fold nested offsets so `a->b.c.d` is one read.
    let (base, offset) = match base.kind {
        K::Offset(inner, o) => (*inner, o + offset),
        _ => (base, offset),
    };
    let mk = |ty: Ty, kind: K| Ok(Expr { ty, kind, span });
    match shape(btf, id, span)? {
        Shape::Scalar(ty, size) => {
            let (offset, size, bits) = match bitfield {
                Some((bit_off, bits)) => {
                    let start = offset + bit_off / 8;
                    let shift = bit_off % 8;
                    let need = (shift + bits).div_ceil(8);
                    let size = [1u32, 2, 4, 8]
                        .into_iter()
                        .find(|s| *s >= need)
                        .unwrap_or(8);
                    (start, size as u8, Some((shift as u8, bits as u8)))
                }
                None => (offset, size, None),
            };
            mk(
                ty,
                K::Load {
                    base: Some(Box::new(base)),
                    offset,
                    size,
                    bitfield: bits,
                    space,
                },
            )
        }
        Shape::Record(rid) if space == Space::Packet => {
            mk(Ty::PacketPtr(Some(rid)), K::Offset(Box::new(base), offset))
        }
        Shape::Record(rid) => mk(Ty::Record(rid), K::Offset(Box::new(base), offset)),
        Shape::Bytes(len) => mk(
            Ty::Str(len),
            K::LoadStr {
                base: Some(Box::new(base)),
                offset,
                nul_terminated: false,
                space,
                data_loc: false,
            },
        ),
        Shape::Array(elem) if space == Space::Packet => {
            mk(Ty::PacketPtr(Some(elem)), K::Offset(Box::new(base), offset))
        }
        Shape::Array(elem) => mk(Ty::Ptr(Some(elem)), K::Offset(Box::new(base), offset)),
    }
}

/// The integer types that may be written in casts.
pub(super) fn int_type(name: &str) -> Option<(u8, bool)> {
    Some(match name {
        "int8" | "s8" | "char" | "signed char" | "__s8" => (1, true),
        "uint8" | "u8" | "unsigned char" | "bool" | "__u8" => (1, false),
        "int16" | "s16" | "short" | "__s16" => (2, true),
        "uint16" | "u16" | "unsigned short" | "__u16" => (2, false),
        "int32" | "s32" | "int" | "__s32" => (4, true),
        "uint32" | "u32" | "unsigned int" | "unsigned" | "__u32" => (4, false),
        "int64" | "s64" | "long" | "long long" | "__s64" => (8, true),
        "uint64" | "u64" | "unsigned long" | "unsigned long long" | "__u64" => (8, false),
        _ => return None,
    })
}

/// The address a read goes through. A record's value is its address, and
/// so is a pointer's; a packet pointer stays one, so that lowering bounds
/// a variable added to it, as the verifier demands (`packet_add`).
fn address(p: Expr) -> Expr {
    match p.ty {
        Ty::PacketPtr(_) => p,
        _ => Expr { ty: Ty::U64, ..p },
    }
}

/// What a pointer of type `ty` points at, and in which address space: a
/// packet pointer without a type (`pkt`, `p + n`) points at bytes. `None`
/// for anything else.
fn pointee(btf: &Btf, ty: &Ty, span: Span) -> Result<Option<(TypeId, Space)>> {
    Ok(match *ty {
        Ty::Ptr(Some(t)) => Some((t, Space::Kernel)),
        Ty::PacketPtr(Some(t)) => Some((t, Space::Packet)),
        Ty::PacketPtr(None) => Some((btf_type(btf, "uint8", span)?, Space::Packet)),
        _ => None,
    })
}

/// The BTF id of a named type (`struct sk_buff`, `union x`, a typedef, or
/// an integer type through its kernel typedef).
fn btf_type(btf: &Btf, name: &str, span: Span) -> Result<TypeId> {
    let found = if let Some(n) = name
        .strip_prefix("struct ")
        .or_else(|| name.strip_prefix("union "))
    {
        btf.find_struct(n.trim())
    } else if let Some(n) = name.strip_prefix("enum ") {
        btf.find_enum(n.trim())
    } else if let Some((size, signed)) = int_type(name) {
        btf.find_typedef(&format!(
            "{}{}",
            if signed { "s" } else { "u" },
            size as u32 * 8
        ))
    } else {
        btf.find_typedef(name).or_else(|| btf.find_struct(name))
    };
    found.ok_or_else(|| {
        Diagnostic::at(
            span,
            format!("unknown type '{}' (not in the kernel's BTF)", name),
        )
    })
}

impl Scope<'_, '_> {
    /// `base.field` / `base->field`, including `args.field`.
    pub(super) fn field(&mut self, base: &ast::Expr, field: &str, span: Span) -> Result<Expr> {
        if matches!(&base.kind, ExprKind::Builtin(b) if b == "args") {
            return self.probe_arg(field, span);
        }
        let b = self.expr(base)?;
        let (rid, space) = match b.ty {
            Ty::Tuple(ref items) => return tuple_element(b.clone(), items, field, span),
            // An inference round may not know yet that a map holds tuples.
            _ if self.checker.round == super::Round::Infer && field.parse::<u32>().is_ok() => {
                return Ok(Expr {
                    ty: Ty::I64,
                    kind: K::Int(0),
                    span,
                })
            }
            Ty::Ptr(Some(t)) | Ty::Record(t) => (t, Space::Kernel),
            Ty::PacketPtr(Some(t)) => (t, Space::Packet),
            ref other => {
                return Err(Diagnostic::at(
                    base.span,
                    format!(
                        "cannot access field '{}' of a value of type {}",
                        field,
                        other.describe()
                    ),
                ))
            }
        };
        let btf = Btf::vmlinux()?;
        let m = btf.member(rid, field).ok_or_else(|| {
            Diagnostic::at(
                span,
                format!("{} has no field named '{}'", btf.type_name(rid), field),
            )
        })?;
        let (offset, bitfield) = match m.bitfield_size {
            0 => (m.bit_offset / 8, None),
            bits => (0, Some((m.bit_offset, bits))),
        };
        read_at(btf, address(b), offset, m.ty, bitfield, space, span)
    }

    /// `args.name`: a tracepoint record field or a named function argument.
    fn probe_arg(&mut self, field: &str, span: Span) -> Result<Expr> {
        if let Some(tp) = &self.tracepoint {
            let f = tp.fields.iter().find(|f| f.name == field).ok_or_else(|| {
                let names: Vec<&str> = tp.fields.iter().map(|f| f.name.as_str()).collect();
                Diagnostic::at(
                    span,
                    format!(
                        "tracepoint {}:{} has no field '{}' (fields: {})",
                        tp.category,
                        tp.name,
                        field,
                        names.join(", ")
                    ),
                )
            })?;
            let mk = |ty: Ty, kind: K| Ok(Expr { ty, kind, span });
            if f.data_loc {
                return mk(
                    Ty::Str(STRING_SIZE),
                    K::LoadStr {
                        base: None,
                        offset: f.offset,
                        nul_terminated: true,
                        space: Space::Ctx,
                        data_loc: true,
                    },
                );
            }
            if f.array_len.is_some() {
                let nul = f.c_type.contains("char");
                return mk(
                    Ty::Str(f.size),
                    K::LoadStr {
                        base: None,
                        offset: f.offset,
                        nul_terminated: nul,
                        space: Space::Ctx,
                        data_loc: false,
                    },
                );
            }
            if !matches!(f.size, 1 | 2 | 4 | 8) {
                return Err(Diagnostic::at(
                    span,
                    format!("field '{}' has an unsupported size {}", field, f.size),
                ));
            }
            let ty = if f.c_type.contains('*') {
                let pointee = f
                    .c_type
                    .trim_end_matches('*')
                    .trim()
                    .trim_start_matches("const ")
                    .to_string();
                Ty::Ptr(
                    Btf::vmlinux()
                        .ok()
                        .and_then(|b| btf_type(b, &pointee, span).ok()),
                )
            } else {
                Ty::Int {
                    size: f.size as u8,
                    signed: f.signed,
                }
            };
            return mk(
                ty,
                K::Load {
                    base: None,
                    offset: f.offset,
                    size: f.size as u8,
                    bitfield: None,
                    space: Space::Ctx,
                },
            );
        }
        let Target::Function { name, .. } = &self.point.target else {
            return Err(Diagnostic::at(
                span,
                "args is only available in tracepoint and kernel function probes",
            ));
        };
        if !has_btf_args(&self.point) {
            return Err(Diagnostic::at(span, "args is not available here"));
        }
        let btf = Btf::of_function(name).map_err(|e| {
            Diagnostic::at(
                span,
                format!("args.{}: {}: use arg0 to arg5", field, e.message),
            )
        })?;
        let (params, _) = btf.func_signature(name).ok_or_else(|| {
            Diagnostic::at(
                span,
                format!("no BTF signature for kernel function {}", name),
            )
        })?;
        let (index, (_, ty)) = params
            .iter()
            .enumerate()
            .find(|(_, (n, _))| n == field)
            .ok_or_else(|| {
                let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
                Diagnostic::at(
                    span,
                    format!(
                        "{} has no parameter '{}' (parameters: {})",
                        name,
                        field,
                        names.join(", ")
                    ),
                )
            })?;
        if index > 5 {
            return Err(Diagnostic::at(
                span,
                "only the first six arguments can be read",
            ));
        }
        let ty = match shape(btf, *ty, span)? {
            // Types are vmlinux ids from here on: a pointer to a module's own
            // type (`struct sw_flow_key *`) is kept as an untyped pointer.
            Shape::Scalar(Ty::Ptr(Some(id)), _) if !Btf::vmlinux()?.has_type(id) => Ty::Ptr(None),
            Shape::Scalar(t, _) => t,
            _ => {
                return Err(Diagnostic::at(
                    span,
                    format!(
                        "parameter '{}' is passed by value as a struct; not supported",
                        field
                    ),
                ))
            }
        };
        Ok(Expr {
            ty,
            kind: K::Arg(index as u32),
            span,
        })
    }

    /// `*p`; `*pkt` reads a byte.
    pub(super) fn deref(&mut self, p: Expr, span: Span) -> Result<Expr> {
        if let Ty::Record(_) = p.ty {
            return Ok(p);
        }
        let btf = Btf::vmlinux()?;
        match pointee(btf, &p.ty, span)? {
            Some((t, space)) => read_at(btf, address(p), 0, t, None, space, span),
            None => Err(Diagnostic::at(
                span,
                format!("cannot dereference a value of type {}", p.ty.describe()),
            )),
        }
    }

    /// `p[i]`: `*(p + i)`, `i` counted in elements of what `p` points at.
    pub(super) fn index(
        &mut self,
        base: &ast::Expr,
        index: &ast::Expr,
        span: Span,
    ) -> Result<Expr> {
        let b = self.expr(base)?;
        let i = self.expr(index)?;
        self.expect_scalar(&i, "an index")?;
        if matches!(i.ty, Ty::Ptr(_) | Ty::PacketPtr(_)) {
            return Err(Diagnostic::at(
                i.span,
                format!("an index must be an integer, not a {}", i.ty.describe()),
            ));
        }
        let btf = Btf::vmlinux()?;
        let Some((elem, _)) = pointee(btf, &b.ty, span)? else {
            return Err(Diagnostic::at(
                span,
                format!("cannot index a value of type {}", b.ty.describe()),
            ));
        };
        let size = btf.size_of(elem).unwrap_or(1) as i64;
        let binary = |op, lhs, rhs| K::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            signed: false,
        };
        let offset = match size {
            1 => i,
            _ => Expr {
                ty: Ty::U64,
                kind: binary(
                    BinOp::Mul,
                    i,
                    Expr {
                        ty: Ty::I64,
                        kind: K::Int(size),
                        span,
                    },
                ),
                span,
            }
            .folded(),
        };
        let addr = Expr {
            ty: b.ty.clone(),
            kind: binary(BinOp::Add, b, offset),
            span,
        };
        self.deref(addr, span)
    }

    /// `&x` of a struct member that is itself a struct.
    pub(super) fn address_of(&mut self, x: Expr, span: Span) -> Result<Expr> {
        match x.ty {
            Ty::Record(t) => Ok(Expr {
                ty: Ty::Ptr(Some(t)),
                ..x
            }),
            _ => Err(Diagnostic::at(
                span,
                "& can only take the address of a struct member that is a struct",
            )),
        }
    }

    /// `(type)expr`
    pub(super) fn cast(&mut self, ty: &TypeName, inner: &ast::Expr, span: Span) -> Result<Expr> {
        let x = self.expr(inner)?;
        if ty.pointer_depth == 0 {
            let (size, signed) = int_type(&ty.base).ok_or_else(|| {
                Diagnostic::at(
                    ty.span,
                    format!(
                        "cannot cast to '{}': only integer and pointer casts are allowed",
                        ty.base
                    ),
                )
            })?;
            self.expect_scalar(&x, "a cast operand")?;
            if let Ty::PacketPtr(_) = x.ty {
                return Err(Diagnostic::at(
                    span,
                    "a packet pointer cannot be cast to an integer; subtract pkt for its offset",
                ));
            }
            return Ok(Expr {
                ty: Ty::Int { size, signed },
                kind: K::Convert(Box::new(x)),
                span,
            });
        }
        if ty.pointer_depth > 1 {
            return Err(Diagnostic::at(
                ty.span,
                "casts to pointers to pointers are not supported yet",
            ));
        }
        self.expect_scalar(&x, "a cast operand")?;
        let pointee = if ty.base == "void" {
            None
        } else {
            Some(btf_type(Btf::vmlinux()?, &ty.base, ty.span)?)
        };
        let ty = match x.ty {
            Ty::PacketPtr(_) => Ty::PacketPtr(pointee),
            _ => Ty::Ptr(pointee),
        };
        Ok(Expr { ty, ..x })
    }
}

/// `sizeof(type)`
pub(super) fn type_size(ty: &TypeName) -> Result<u64> {
    if ty.pointer_depth > 0 {
        return Ok(8);
    }
    if let Some((size, _)) = int_type(&ty.base) {
        return Ok(size as u64);
    }
    let btf = Btf::vmlinux()?;
    let id = btf_type(btf, &ty.base, ty.span)?;
    btf.size_of(id)
        .ok_or_else(|| Diagnostic::at(ty.span, format!("'{}' has no size", ty.base)))
}

/// `offsetof(type, a.b)`
pub(super) fn offsetof(ty: &TypeName, path: &[String]) -> Result<u64> {
    let btf = Btf::vmlinux()?;
    let mut id = btf_type(btf, &ty.base, ty.span)?;
    let mut off = 0u64;
    for f in path {
        let m = btf.member(id, f).ok_or_else(|| {
            Diagnostic::at(
                ty.span,
                format!("{} has no field named '{}'", btf.type_name(id), f),
            )
        })?;
        off += (m.bit_offset / 8) as u64;
        id = btf.skip_modifiers(m.ty);
    }
    Ok(off)
}
