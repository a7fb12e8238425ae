//! The types of netscript values and how they are laid out in memory
//! (BPF stack, map keys and values, ring-buffer records).

use std::sync::Arc;

use crate::kernel::btf::TypeId;

/// Default size of a string buffer (bpftrace's default `strlen`).
pub const STRING_SIZE: u32 = 64;
/// Size of `comm`.
pub const COMM_SIZE: u32 = 16;

/// The type of an expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ty {
    /// An integer held in a 64-bit register; `size` and `signed` decide
    /// comparisons, printing and how it is stored.
    Int {
        /// Size in bytes (1, 2, 4 or 8).
        size: u8,
        /// Signedness.
        signed: bool,
    },
    /// A pointer into kernel memory to a BTF type (`None`: `void *`).
    Ptr(Option<TypeId>),
    /// A pointer into the packet of an XDP program to a BTF type (`None`:
    /// bytes). Reads through it are direct loads behind a bounds check;
    /// arithmetic on it counts bytes.
    PacketPtr(Option<TypeId>),
    /// A struct or union living in kernel memory at a known address; only
    /// an intermediate of field access, never stored.
    Record(TypeId),
    /// A NUL-terminated string in a buffer of `len` bytes.
    Str(u32),
    /// A kernel stack id (`kstack`), symbolised in user space.
    KStack,
    /// A kernel address printed as a symbol (`ksym()`).
    KSym,
    /// An IP address (`ntop()`): 4 bytes of family then 16 bytes of address.
    Inet,
    /// An integer printed by name (`enum_name()`, `flagstr()`).
    Named(Arc<Names>),
    /// A tuple of values.
    Tuple(Vec<Ty>),
    /// No value (actions such as `printf`).
    Void,
}

impl Ty {
    /// Unsigned 64-bit integer.
    pub const U64: Ty = Ty::Int {
        size: 8,
        signed: false,
    };
    /// Signed 64-bit integer (integer literals, arithmetic).
    pub const I64: Ty = Ty::Int {
        size: 8,
        signed: true,
    };

    /// True for integers and pointers (values that live in a register).
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Ty::Int { .. } | Ty::Ptr(_) | Ty::PacketPtr(_) | Ty::KSym | Ty::KStack | Ty::Named(_)
        )
    }

    /// True for values printf's integer conversions take: integers,
    /// pointers and redacted integers.
    pub fn prints_as_integer(&self) -> bool {
        match self {
            Ty::Int { .. } | Ty::Ptr(_) => true,
            Ty::Named(names) => matches!(names.as_ref(), Names::Redacted(_)),
            _ => false,
        }
    }

    /// True for signed integers.
    pub fn is_signed(&self) -> bool {
        matches!(self, Ty::Int { signed: true, .. })
    }

    /// Bytes the value takes when stored in a map, a variable slot or an event.
    pub fn storage_size(&self) -> u32 {
        match self {
            Ty::Int { .. }
            | Ty::Ptr(_)
            | Ty::PacketPtr(_)
            | Ty::KStack
            | Ty::KSym
            | Ty::Named(_)
            | Ty::Record(_) => 8,
            Ty::Str(n) => *n,
            Ty::Inet => 20,
            Ty::Tuple(items) => tuple_layout(items).1,
            Ty::Void => 0,
        }
    }

    /// Alignment when stored.
    pub fn storage_align(&self) -> u32 {
        match self {
            Ty::Str(_) => 1,
            Ty::Inet => 4,
            Ty::Tuple(_) => 8,
            Ty::Void => 1,
            _ => 8,
        }
    }

    /// Human-readable name used in error messages.
    pub fn describe(&self) -> String {
        match self {
            Ty::Int { size, signed } => {
                format!("{}int{}", if *signed { "" } else { "u" }, size * 8)
            }
            Ty::Ptr(_) => "pointer".into(),
            Ty::PacketPtr(_) => "packet pointer".into(),
            Ty::Record(_) => "struct".into(),
            Ty::Str(n) => format!("string[{}]", n),
            Ty::KStack => "kstack".into(),
            Ty::KSym => "ksym".into(),
            Ty::Inet => "inet".into(),
            Ty::Named(_) => "name".into(),
            Ty::Tuple(items) => {
                let parts: Vec<String> = items.iter().map(|t| t.describe()).collect();
                format!("({})", parts.join(", "))
            }
            Ty::Void => "void".into(),
        }
    }
}

/// How an integer is turned into a name in user space.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Names {
    /// The enumerators of a kernel enum (value, name with a prefix removed);
    /// a value without one prints as its number.
    Enum(Vec<(i64, String)>),
    /// One letter per bit, lowest bit first; the letters of the set bits
    /// print in that order (TCP flags: `FSRPAUEC`).
    Flags(Vec<char>),
    /// A value passed through `redact()`, of this integer type: printed as
    /// itself, or as a keyed hash of the same size under `--anonymize`.
    Redacted(Ty),
}

impl Names {
    /// The name of `value`.
    pub fn render(&self, value: u64) -> String {
        match self {
            Names::Enum(entries) => entries
                .iter()
                .find(|(v, _)| *v as u64 == value)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| value.to_string()),
            Names::Flags(letters) => letters
                .iter()
                .enumerate()
                .filter(|(bit, _)| value >> bit & 1 == 1)
                .map(|(_, c)| *c)
                .collect(),
            Names::Redacted(Ty::Int { signed: true, .. }) => (value as i64).to_string(),
            Names::Redacted(_) => value.to_string(),
        }
    }
}

/// Offsets of the members of a tuple (or a composite map key) and its
/// total size, each member aligned to its storage alignment, the total
/// rounded up to 8 bytes.
pub fn tuple_layout(items: &[Ty]) -> (Vec<u32>, u32) {
    let mut offsets = Vec::with_capacity(items.len());
    let mut off = 0u32;
    for t in items {
        let align = t.storage_align();
        off = off.div_ceil(align) * align;
        offsets.push(off);
        off += t.storage_size();
    }
    (offsets, off.div_ceil(8).max(1) * 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_layout_aligns_members_and_rounds_total() {
        let (offs, size) = tuple_layout(&[Ty::Str(16), Ty::U64, Ty::Str(3)]);
        assert_eq!(offs, vec![0, 16, 24]);
        assert_eq!(size, 32);
        assert_eq!(tuple_layout(&[]).1, 8);
    }
}
