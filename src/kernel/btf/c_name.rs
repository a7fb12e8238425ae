//! C spelling of BTF types, built declarator-style: the "inner" part (what
//! is being declared: `*`, `[16]`, `(*)(int)`) grows while walking from the
//! outer type to the base type, which is then written in front of it.

use super::{Btf, Type, TypeId, MAX_DEPTH};

/// The C spelling of `id`, e.g. `struct sk_buff *` or `char[16]`.
pub(super) fn type_name(btf: &Btf, id: TypeId) -> String {
    declare(btf, id, String::new(), 0)
}

/// `base` followed by the declarator `inner`.
fn with_base(base: &str, inner: &str) -> String {
    if inner.is_empty() {
        base.to_string()
    } else if inner.starts_with('[') {
        format!("{base}{inner}")
    } else {
        format!("{base} {inner}")
    }
}

fn tagged(keyword: &str, name: &str) -> String {
    if name.is_empty() {
        format!("{keyword} (anon)")
    } else {
        format!("{keyword} {name}")
    }
}

fn declare(btf: &Btf, id: TypeId, inner: String, depth: u32) -> String {
    if depth > MAX_DEPTH {
        return with_base("?", &inner);
    }
    let next = |ty: TypeId, inner: String| declare(btf, ty, inner, depth + 1);
    match btf.ty(id) {
        Type::Void => with_base("void", &inner),
        Type::Int { name, .. } | Type::Float { name, .. } | Type::Typedef { name, .. } => {
            with_base(name, &inner)
        }
        Type::Struct { name, .. } => with_base(&tagged("struct", name), &inner),
        Type::Union { name, .. } => with_base(&tagged("union", name), &inner),
        Type::Enum { name, .. } => with_base(&tagged("enum", name), &inner),
        Type::Fwd { name, is_union } => with_base(
            &tagged(if *is_union { "union" } else { "struct" }, name),
            &inner,
        ),
        Type::Ptr(target) => match btf.ty(*target) {
            Type::Array { .. } | Type::FuncProto { .. } => next(*target, format!("(*{inner})")),
            _ => next(*target, format!("*{inner}")),
        },
        Type::Array { elem, len } => next(*elem, format!("{inner}[{len}]")),
        Type::Const(target) => qualify(btf, "const", *target, inner, depth),
        Type::Volatile(target) => qualify(btf, "volatile", *target, inner, depth),
        Type::Restrict(target) => qualify(btf, "restrict", *target, inner, depth),
        Type::TypeTag(target) | Type::DeclTag { ty: target, .. } | Type::Var { ty: target, .. } => {
            next(*target, inner)
        }
        Type::FuncProto { ret, params } => {
            let args = if params.is_empty() {
                "void".to_string()
            } else {
                params
                    .iter()
                    .map(|(_, ty)| {
                        if ty.0 == 0 {
                            "...".to_string()
                        } else {
                            next(*ty, String::new())
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            next(*ret, format!("{inner}({args})"))
        }
        Type::Func { name, proto } => next(*proto, format!("{name}{inner}")),
        Type::DataSec { name, .. } => with_base(name, &inner),
    }
}

/// A qualifier: after the `*` for a qualified pointer (`char *const`),
/// in front otherwise (`const char`).
fn qualify(btf: &Btf, qualifier: &str, target: TypeId, inner: String, depth: u32) -> String {
    if matches!(btf.ty(target), Type::Ptr(_)) {
        declare(btf, target, with_base(qualifier, &inner), depth + 1)
    } else {
        format!("{qualifier} {}", declare(btf, target, inner, depth + 1))
    }
}
