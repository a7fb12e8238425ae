//! Our own reader of the kernel's BTF (`/sys/kernel/btf/vmlinux` and module
//! split BTF): types, struct members with their offsets, function
//! signatures and enumerators.
//!
//! Parsing only validates the header and records where each type starts;
//! a type is decoded into a [`Type`] the first time it is asked for, and the
//! name indexes are built on first lookup. That keeps start-up cheap.

mod c_name;
mod raw;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use self::raw::{kind, Layout, Record};
use super::name_index::NameIndex;
use crate::diag::Diagnostic;

/// A BTF type id. Id 0 is `void`; a split (module) BTF continues the ids of
/// its base.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// The resolved view of one BTF type.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// `void` (id 0), also returned for ids that do not exist.
    Void,
    /// An integer type; `is_char`/`is_bool` come from the BTF encoding.
    Int {
        name: String,
        size: u32,
        signed: bool,
        is_char: bool,
        is_bool: bool,
    },
    /// A pointer to the type.
    Ptr(TypeId),
    /// A fixed-size array.
    Array { elem: TypeId, len: u32 },
    /// A struct; `name` is empty for an anonymous one.
    Struct {
        name: String,
        size: u32,
        members: Vec<Member>,
    },
    /// A union; `name` is empty for an anonymous one.
    Union {
        name: String,
        size: u32,
        members: Vec<Member>,
    },
    /// An enum (BTF ENUM or ENUM64), with its enumerators.
    Enum {
        name: String,
        size: u32,
        signed: bool,
        values: Vec<(String, i64)>,
    },
    /// A forward declaration of a struct or union.
    Fwd { name: String, is_union: bool },
    /// A typedef.
    Typedef { name: String, ty: TypeId },
    /// `const` qualifier.
    Const(TypeId),
    /// `volatile` qualifier.
    Volatile(TypeId),
    /// `restrict` qualifier.
    Restrict(TypeId),
    /// A type tag (`__attribute__((btf_type_tag))`, e.g. `__user`).
    TypeTag(TypeId),
    /// A function; `proto` is its [`Type::FuncProto`].
    Func { name: String, proto: TypeId },
    /// A function prototype. A trailing parameter `("", TypeId(0))` marks a
    /// variadic function.
    FuncProto {
        ret: TypeId,
        params: Vec<(String, TypeId)>,
    },
    /// A floating-point type.
    Float { name: String, size: u32 },
    /// A variable (used by data sections).
    Var {
        name: String,
        ty: TypeId,
        linkage: u32,
    },
    /// A data section: `(variable, offset, size)` of each variable.
    DataSec {
        name: String,
        size: u32,
        vars: Vec<(TypeId, u32, u32)>,
    },
    /// A declaration tag on `ty` (on its member/parameter `component_idx`,
    /// or on the type itself when -1).
    DeclTag {
        name: String,
        ty: TypeId,
        component_idx: i32,
    },
}

/// A member of a struct or union, as declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Member name; empty for an anonymous struct/union member.
    pub name: String,
    /// Member type.
    pub ty: TypeId,
    /// Offset in bits from the start of the containing aggregate.
    pub bit_offset: u32,
    /// Width in bits of a bitfield, 0 when the member is not a bitfield.
    pub bitfield_size: u32,
}

/// A member found by [`Btf::member`], with its offset from the start of the
/// outer struct (through any anonymous struct/union members).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Member type.
    pub ty: TypeId,
    /// Offset in bits from the start of the outer aggregate.
    pub bit_offset: u32,
    /// Width in bits of a bitfield, 0 when the member is not a bitfield.
    pub bitfield_size: u32,
}

/// Guard against reference cycles in corrupt BTF.
const MAX_DEPTH: u32 = 64;
/// Pointer size of the (64-bit) kernels we target.
const POINTER_SIZE: u64 = 8;

static VOID: Type = Type::Void;

/// Enumerators of all enums: `(name_off, enum type id, value)`.
struct Enumerators {
    entries: Vec<(u32, u32, i64)>,
    index: NameIndex,
}

/// A parsed BTF blob: vmlinux BTF, or a module's split BTF on top of it.
pub struct Btf {
    data: Vec<u8>,
    layout: Layout,
    /// Id of the first own type (1 for a base BTF).
    first_id: u32,
    /// String offsets below this belong to the base.
    str_base: u32,
    base: Option<&'static Btf>,
    /// Decoded types, filled on first access (boxed: most stay empty).
    resolved: Vec<OnceLock<Box<Type>>>,
    names: OnceLock<NameIndex>,
    enumerators: OnceLock<Enumerators>,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("first_id", &self.first_id)
            .field("types", &self.layout.records.len())
            .field("split", &self.base.is_some())
            .finish()
    }
}

impl Btf {
    /// The running kernel's BTF (`/sys/kernel/btf/vmlinux`), read and parsed
    /// once, on first use.
    pub fn vmlinux() -> Result<&'static Btf, Diagnostic> {
        static VMLINUX: OnceLock<Result<Btf, Diagnostic>> = OnceLock::new();
        VMLINUX
            .get_or_init(|| Btf::from_vec(read_btf_file("vmlinux")?, None))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The split BTF of kernel module `name` (`/sys/kernel/btf/<name>`),
    /// on top of vmlinux BTF.
    pub fn module(name: &str) -> Result<Btf, Diagnostic> {
        if name.is_empty() || name.contains('/') || name == "vmlinux" {
            return Err(Diagnostic::plain(format!(
                "invalid kernel module name '{name}'"
            )));
        }
        let base = Btf::vmlinux()?;
        Btf::from_vec(read_btf_file(name)?, Some(base))
    }

    /// The BTF describing kernel function `name`: vmlinux's when it has the
    /// function, else the split BTF of the module defining it (found in
    /// kallsyms), read once per module and kept for the process.
    pub fn of_function(name: &str) -> Result<&'static Btf, Diagnostic> {
        static MODULES: OnceLock<Mutex<HashMap<String, &'static Btf>>> = OnceLock::new();
        let vmlinux = Btf::vmlinux()?;
        if vmlinux.find_func(name).is_some() {
            return Ok(vmlinux);
        }
        let kallsyms = super::symbols::Kallsyms::global()?;
        let Some(module) = kallsyms.module_of(name) else {
            return Ok(vmlinux);
        };
        let mut modules = MODULES
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(btf) = modules.get(module) {
            return Ok(btf);
        }
        if Btf::module_without_btf(name).is_some() {
            return Err(Diagnostic::plain(format!(
                "kernel function {name} is in module {module}, which has no BTF on this kernel (module BTF: Linux 5.11+)"
            )));
        }
        let btf: &'static Btf = Box::leak(Box::new(Btf::module(module)?));
        modules.insert(module.to_string(), btf);
        Ok(btf)
    }

    /// The module defining kernel function `name` when that module has no
    /// BTF on this kernel (modules have BTF from Linux 5.11 on): its
    /// functions can be kprobed, not fentry-attached, and their
    /// parameters have no types. `None` for vmlinux functions, unknown
    /// names and modules with BTF.
    pub fn module_without_btf(name: &str) -> Option<String> {
        if Btf::vmlinux().is_ok_and(|btf| btf.find_func(name).is_some()) {
            return None;
        }
        let module = super::symbols::Kallsyms::global().ok()?.module_of(name)?;
        let path = std::path::Path::new("/sys/kernel/btf").join(module);
        (!path.exists()).then(|| module.to_string())
    }

    /// True when `id` is a type of this BTF or of its base (so a module's
    /// BTF has the ids of vmlinux, and vmlinux's not the module's).
    pub fn has_type(&self, id: TypeId) -> bool {
        id.0 < self.type_count()
    }

    /// Parses a BTF blob; with `base`, as split BTF whose type ids and string
    /// offsets continue after the base's.
    pub fn from_bytes(data: &[u8], base: Option<&'static Btf>) -> Result<Btf, Diagnostic> {
        Btf::from_vec(data.to_vec(), base)
    }

    /// [`Btf::from_bytes`] taking ownership of the blob (no copy).
    fn from_vec(data: Vec<u8>, base: Option<&'static Btf>) -> Result<Btf, Diagnostic> {
        let layout = Layout::parse(&data)?;
        let (first_id, str_base) = match base {
            Some(base) => (
                base.type_count(),
                base.str_base + base.layout.strings.len() as u32,
            ),
            None => (1, 0),
        };
        let mut resolved = Vec::new();
        resolved.resize_with(layout.records.len(), OnceLock::new);
        Ok(Btf {
            data,
            layout,
            first_id,
            str_base,
            base,
            resolved,
            names: OnceLock::new(),
            enumerators: OnceLock::new(),
        })
    }

    /// One past the highest valid type id.
    fn type_count(&self) -> u32 {
        self.first_id + self.layout.records.len() as u32
    }

    /// The own record of `id`, or `None` if `id` is void or the base's.
    fn record(&self, id: TypeId) -> Option<Record<'_>> {
        let index = id.0.checked_sub(self.first_id)? as usize;
        let offset = *self.layout.records.get(index)?;
        Some(Record::new(self, offset as usize))
    }

    /// The string at `offset` of the (possibly split) string section; empty
    /// when out of range or not UTF-8.
    fn raw_str(&self, offset: u32) -> &str {
        if offset < self.str_base {
            return self.base.map_or("", |base| base.raw_str(offset));
        }
        let start = self.layout.strings.start + (offset - self.str_base) as usize;
        let Some(tail) = self.data.get(start..self.layout.strings.end) else {
            return "";
        };
        let len = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        std::str::from_utf8(&tail[..len]).unwrap_or("")
    }

    /// For a legacy (no kind_flag) struct member of INT type: the bitfield
    /// encoded in the INT.
    fn legacy_int_bitfield(&self, id: TypeId) -> Option<(u32, u32)> {
        match self.record(id) {
            Some(record) => record.int_bitfield(),
            None => self.base.and_then(|base| base.legacy_int_bitfield(id)),
        }
    }

    /// The type with id `id`; ids of the base resolve into the base, unknown
    /// ids give [`Type::Void`].
    pub fn ty(&self, id: TypeId) -> &Type {
        match id.0.checked_sub(self.first_id) {
            Some(index) => match (self.resolved.get(index as usize), self.record(id)) {
                (Some(slot), Some(record)) => slot.get_or_init(|| Box::new(record.decode())),
                _ => &VOID,
            },
            None => self.base.map_or(&VOID, |base| base.ty(id)),
        }
    }

    fn names(&self) -> &NameIndex {
        self.names.get_or_init(|| {
            NameIndex::build(self.layout.records.iter().enumerate().filter_map(
                |(index, &offset)| {
                    let record = Record::new(self, offset as usize);
                    let named = matches!(
                        record.kind(),
                        kind::STRUCT
                            | kind::UNION
                            | kind::FWD
                            | kind::TYPEDEF
                            | kind::ENUM
                            | kind::ENUM64
                            | kind::FUNC
                    );
                    (named && record.name_off() != 0).then(|| {
                        (
                            self.raw_str(record.name_off()),
                            self.first_id + index as u32,
                        )
                    })
                },
            ))
        })
    }

    /// The first type named `name` whose kind is in `kinds`, searching this
    /// BTF and then its base.
    fn find_kind(&self, name: &str, kinds: &[u32]) -> Option<TypeId> {
        let own = self.names().candidates(name).map(TypeId).find(|&id| {
            self.record(id)
                .is_some_and(|r| kinds.contains(&r.kind()) && self.raw_str(r.name_off()) == name)
        });
        own.or_else(|| self.base.and_then(|base| base.find_kind(name, kinds)))
    }

    /// A struct or union named `name`, preferring a complete definition over
    /// a forward declaration.
    pub fn find_struct(&self, name: &str) -> Option<TypeId> {
        self.find_kind(name, &[kind::STRUCT, kind::UNION])
            .or_else(|| self.find_kind(name, &[kind::FWD]))
    }

    /// A typedef named `name`.
    pub fn find_typedef(&self, name: &str) -> Option<TypeId> {
        self.find_kind(name, &[kind::TYPEDEF])
    }

    /// An enum (ENUM or ENUM64) named `name`.
    pub fn find_enum(&self, name: &str) -> Option<TypeId> {
        self.find_kind(name, &[kind::ENUM, kind::ENUM64])
    }

    /// A function (FUNC) named `name`.
    pub fn find_func(&self, name: &str) -> Option<TypeId> {
        self.find_kind(name, &[kind::FUNC])
    }

    fn enumerators(&self) -> &Enumerators {
        self.enumerators.get_or_init(|| {
            let mut entries = Vec::new();
            for (index, &offset) in self.layout.records.iter().enumerate() {
                let record = Record::new(self, offset as usize);
                if matches!(record.kind(), kind::ENUM | kind::ENUM64) {
                    let id = self.first_id + index as u32;
                    entries.extend(
                        record
                            .enumerators()
                            .map(|(name_off, value)| (name_off, id, value)),
                    );
                }
            }
            let index = NameIndex::build(
                entries
                    .iter()
                    .enumerate()
                    .map(|(n, &(name_off, _, _))| (self.raw_str(name_off), n as u32)),
            );
            Enumerators { entries, index }
        })
    }

    /// The enum type and value of enumerator `constant` (e.g.
    /// `TCP_ESTABLISHED`), searched across all enums.
    pub fn enum_value(&self, constant: &str) -> Option<(TypeId, i64)> {
        let enumerators = self.enumerators();
        let own = enumerators.index.candidates(constant).find_map(|n| {
            let &(name_off, id, value) = enumerators.entries.get(n as usize)?;
            (self.raw_str(name_off) == constant).then_some((TypeId(id), value))
        });
        own.or_else(|| self.base.and_then(|base| base.enum_value(constant)))
    }

    /// `id` with typedefs, const/volatile/restrict and type tags stripped.
    pub fn skip_modifiers(&self, id: TypeId) -> TypeId {
        let mut id = id;
        for _ in 0..MAX_DEPTH {
            match self.ty(id) {
                Type::Typedef { ty, .. }
                | Type::Const(ty)
                | Type::Volatile(ty)
                | Type::Restrict(ty)
                | Type::TypeTag(ty) => id = *ty,
                _ => break,
            }
        }
        id
    }

    /// Size in bytes of a value of the type; `None` for void, functions and
    /// forward declarations.
    pub fn size_of(&self, id: TypeId) -> Option<u64> {
        self.size_of_at_depth(id, 0)
    }

    fn size_of_at_depth(&self, id: TypeId, depth: u32) -> Option<u64> {
        if depth > MAX_DEPTH {
            return None;
        }
        let id = self.skip_modifiers(id);
        match self.ty(id) {
            Type::Int { size, .. }
            | Type::Struct { size, .. }
            | Type::Union { size, .. }
            | Type::Enum { size, .. }
            | Type::Float { size, .. }
            | Type::DataSec { size, .. } => Some(u64::from(*size)),
            Type::Ptr(_) => Some(POINTER_SIZE),
            Type::Array { elem, len } => self
                .size_of_at_depth(*elem, depth + 1)?
                .checked_mul(u64::from(*len)),
            Type::Var { ty, .. } => self.size_of_at_depth(*ty, depth + 1),
            _ => None,
        }
    }

    /// Member `name` of struct/union `agg` (which may be a typedef or
    /// qualified), looking through anonymous struct/union members; the
    /// offset is from the start of `agg`.
    pub fn member(&self, agg: TypeId, name: &str) -> Option<MemberInfo> {
        self.member_at_depth(agg, name, 0)
    }

    fn member_at_depth(&self, agg: TypeId, name: &str, depth: u32) -> Option<MemberInfo> {
        if depth > MAX_DEPTH {
            return None;
        }
        let members = match self.ty(self.skip_modifiers(agg)) {
            Type::Struct { members, .. } | Type::Union { members, .. } => members,
            _ => return None,
        };
        members.iter().find_map(|m| {
            if m.name == name {
                Some(MemberInfo {
                    ty: m.ty,
                    bit_offset: m.bit_offset,
                    bitfield_size: m.bitfield_size,
                })
            } else if m.name.is_empty() {
                let inner = self.member_at_depth(m.ty, name, depth + 1)?;
                Some(MemberInfo {
                    bit_offset: m.bit_offset + inner.bit_offset,
                    ..inner
                })
            } else {
                None
            }
        })
    }

    /// The C spelling of a type: `struct sk_buff *`, `unsigned int`,
    /// `char[16]`, `int (*)(struct sock *)`.
    pub fn type_name(&self, id: TypeId) -> String {
        c_name::type_name(self, id)
    }

    /// Parameters (name, type) and return type of kernel function `name`.
    pub fn func_signature(&self, name: &str) -> Option<(Vec<(String, TypeId)>, TypeId)> {
        let Type::Func { proto, .. } = self.ty(self.find_func(name)?) else {
            return None;
        };
        match self.ty(*proto) {
            Type::FuncProto { ret, params } => Some((params.clone(), *ret)),
            _ => None,
        }
    }

    /// Names of every FUNC of this BTF (for a module: its own functions, not
    /// the base's), in id order.
    pub fn func_names(&self) -> impl Iterator<Item = &str> {
        self.layout.records.iter().filter_map(move |&offset| {
            let record = Record::new(self, offset as usize);
            (record.kind() == kind::FUNC).then(|| self.raw_str(record.name_off()))
        })
    }
}

fn read_btf_file(name: &str) -> Result<Vec<u8>, Diagnostic> {
    let path = format!("/sys/kernel/btf/{name}");
    std::fs::read(&path).map_err(|e| {
        let hint = if name == "vmlinux" {
            " (the kernel needs CONFIG_DEBUG_INFO_BTF)"
        } else {
            " (is the module loaded and built with BTF?)"
        };
        Diagnostic::plain(format!("cannot read kernel BTF {path}: {e}{hint}"))
    })
}

#[cfg(test)]
mod tests;
