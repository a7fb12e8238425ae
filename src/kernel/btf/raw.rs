//! The on-disk BTF layout (kernel `Documentation/bpf/btf.rst`): the header,
//! the walk over type records, and decoding one record into a [`Type`].

use super::{Btf, Member, Type, TypeId};
use crate::diag::Diagnostic;

/// BTF kind numbers (`BTF_KIND_*`).
pub(super) mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

const MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_type` (name_off, info, size/type).
const COMMON_SIZE: usize = 12;
/// Size of the part of `struct btf_header` this reader needs.
const HEADER_SIZE: usize = 24;

/// Reads a native-endian u32; 0 past the end (records are bounds-checked by
/// [`Layout::parse`], so this only guards against impossible cases).
pub(super) fn u32_at(data: &[u8], offset: usize) -> u32 {
    data.get(offset..offset + 4)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0)
}

/// Where the sections of a BTF blob are, and where each type record starts.
pub(super) struct Layout {
    /// Byte range of the string section within the blob.
    pub strings: std::ops::Range<usize>,
    /// Blob offset of each type record, in id order.
    pub records: Vec<u32>,
}

fn corrupt(what: &str) -> Diagnostic {
    Diagnostic::plain(format!("corrupt BTF: {what}"))
}

impl Layout {
    /// Validates the header and walks the type section once.
    pub fn parse(data: &[u8]) -> Result<Layout, Diagnostic> {
        if data.len() < HEADER_SIZE {
            return Err(corrupt("shorter than its header"));
        }
        let magic = u16::from_ne_bytes([data[0], data[1]]);
        if magic != MAGIC {
            return Err(corrupt(&format!(
                "bad magic {magic:#06x} (or foreign byte order)"
            )));
        }
        let header_len = u32_at(data, 4) as usize;
        let section = |offset_at: usize| -> Result<std::ops::Range<usize>, Diagnostic> {
            let start = header_len + u32_at(data, offset_at) as usize;
            let end = start + u32_at(data, offset_at + 4) as usize;
            if header_len < HEADER_SIZE || end > data.len() {
                return Err(corrupt("section out of bounds"));
            }
            Ok(start..end)
        };
        let types = section(8)?;
        let strings = section(16)?;
        let mut records = Vec::with_capacity(types.len() / 24);
        let mut offset = types.start;
        while offset < types.end {
            if offset + COMMON_SIZE > types.end {
                return Err(corrupt("truncated type record"));
            }
            let info = u32_at(data, offset + 4);
            let vlen = (info & 0xffff) as usize;
            let extra = match info_kind(info) {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen,
                kind::ENUM | kind::FUNC_PROTO => 8 * vlen,
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => 0,
                other => return Err(corrupt(&format!("unknown type kind {other}"))),
            };
            let end = offset + COMMON_SIZE + extra;
            if end > types.end {
                return Err(corrupt("truncated type record"));
            }
            records.push(offset as u32);
            offset = end;
        }
        Ok(Layout { strings, records })
    }
}

/// The kind field of `btf_type.info`.
pub(super) fn info_kind(info: u32) -> u32 {
    (info >> 24) & 0x1f
}

/// One type record, read in place.
pub(super) struct Record<'a> {
    btf: &'a Btf,
    offset: usize,
}

impl<'a> Record<'a> {
    /// The record at blob offset `offset` of `btf` (one of its own records).
    pub fn new(btf: &'a Btf, offset: usize) -> Self {
        Record { btf, offset }
    }

    fn word(&self, index: usize) -> u32 {
        u32_at(&self.btf.data, self.offset + 4 * index)
    }

    /// `name_off`.
    pub fn name_off(&self) -> u32 {
        self.word(0)
    }

    /// The kind.
    pub fn kind(&self) -> u32 {
        info_kind(self.word(1))
    }

    fn vlen(&self) -> usize {
        (self.word(1) & 0xffff) as usize
    }

    fn kind_flag(&self) -> bool {
        self.word(1) >> 31 != 0
    }

    /// The `size`/`type` word.
    fn size_or_type(&self) -> u32 {
        self.word(2)
    }

    /// Word `index` of the `n`-th trailing entry of `entry_words` words.
    fn entry(&self, n: usize, entry_words: usize, index: usize) -> u32 {
        self.word(3 + n * entry_words + index)
    }

    fn name(&self) -> String {
        self.btf.raw_str(self.name_off()).to_string()
    }

    /// `(name_off, value)` of each enumerator of an ENUM or ENUM64 record.
    pub fn enumerators(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        let wide = self.kind() == kind::ENUM64;
        let signed = self.kind_flag();
        (0..self.vlen()).map(move |n| {
            if wide {
                let low = u64::from(self.entry(n, 3, 1));
                let high = u64::from(self.entry(n, 3, 2));
                (self.entry(n, 3, 0), ((high << 32) | low) as i64)
            } else {
                let raw = self.entry(n, 2, 1);
                let value = if signed {
                    i64::from(raw as i32)
                } else {
                    i64::from(raw)
                };
                (self.entry(n, 2, 0), value)
            }
        })
    }

    /// The resolved view of this record.
    pub fn decode(&self) -> Type {
        let target = TypeId(self.size_or_type());
        let size = self.size_or_type();
        match self.kind() {
            kind::INT => {
                let encoding = self.entry(0, 1, 0) >> 24;
                Type::Int {
                    name: self.name(),
                    size,
                    signed: encoding & 1 != 0,
                    is_char: encoding & 2 != 0,
                    is_bool: encoding & 4 != 0,
                }
            }
            kind::PTR => Type::Ptr(target),
            kind::ARRAY => Type::Array {
                elem: TypeId(self.entry(0, 3, 0)),
                len: self.entry(0, 3, 2),
            },
            kind::STRUCT => Type::Struct {
                name: self.name(),
                size,
                members: self.members(),
            },
            kind::UNION => Type::Union {
                name: self.name(),
                size,
                members: self.members(),
            },
            kind::ENUM | kind::ENUM64 => Type::Enum {
                name: self.name(),
                size,
                signed: self.kind_flag(),
                values: self
                    .enumerators()
                    .map(|(name_off, value)| (self.btf.raw_str(name_off).to_string(), value))
                    .collect(),
            },
            kind::FWD => Type::Fwd {
                name: self.name(),
                is_union: self.kind_flag(),
            },
            kind::TYPEDEF => Type::Typedef {
                name: self.name(),
                ty: target,
            },
            kind::VOLATILE => Type::Volatile(target),
            kind::CONST => Type::Const(target),
            kind::RESTRICT => Type::Restrict(target),
            kind::TYPE_TAG => Type::TypeTag(target),
            kind::FUNC => Type::Func {
                name: self.name(),
                proto: target,
            },
            kind::FUNC_PROTO => Type::FuncProto {
                ret: target,
                params: (0..self.vlen())
                    .map(|n| {
                        let name = self.btf.raw_str(self.entry(n, 2, 0)).to_string();
                        (name, TypeId(self.entry(n, 2, 1)))
                    })
                    .collect(),
            },
            kind::VAR => Type::Var {
                name: self.name(),
                ty: target,
                linkage: self.entry(0, 1, 0),
            },
            kind::DATASEC => Type::DataSec {
                name: self.name(),
                size,
                vars: (0..self.vlen())
                    .map(|n| {
                        (
                            TypeId(self.entry(n, 3, 0)),
                            self.entry(n, 3, 1),
                            self.entry(n, 3, 2),
                        )
                    })
                    .collect(),
            },
            kind::FLOAT => Type::Float {
                name: self.name(),
                size,
            },
            kind::DECL_TAG => Type::DeclTag {
                name: self.name(),
                ty: target,
                component_idx: self.entry(0, 1, 0) as i32,
            },
            // Layout::parse rejected every other kind.
            _ => Type::Void,
        }
    }

    /// Members of a STRUCT/UNION record. With kind_flag the offset word packs
    /// `bitfield_size << 24 | bit_offset`; without it, a bitfield is an INT
    /// member whose encoding carries the bit offset and width.
    fn members(&self) -> Vec<Member> {
        let packed = self.kind_flag();
        (0..self.vlen())
            .map(|n| {
                let ty = TypeId(self.entry(n, 3, 1));
                let offset = self.entry(n, 3, 2);
                let (bit_offset, bitfield_size) = if packed {
                    (offset & 0x00ff_ffff, offset >> 24)
                } else {
                    match self.btf.legacy_int_bitfield(ty) {
                        Some((extra_offset, bits)) => (offset + extra_offset, bits),
                        None => (offset, 0),
                    }
                };
                Member {
                    name: self.btf.raw_str(self.entry(n, 3, 0)).to_string(),
                    ty,
                    bit_offset,
                    bitfield_size,
                }
            })
            .collect()
    }

    /// For an INT record: `(bit offset, bit width)` when it encodes a
    /// bitfield (width smaller than its size, or a non-zero bit offset).
    pub fn int_bitfield(&self) -> Option<(u32, u32)> {
        if self.kind() != kind::INT {
            return None;
        }
        let encoding = self.entry(0, 1, 0);
        let (bit_offset, bits) = ((encoding >> 16) & 0xff, encoding & 0xff);
        (bit_offset != 0 || bits != self.size_or_type() * 8).then_some((bit_offset, bits))
    }
}
