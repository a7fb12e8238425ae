//! A minimal BTF encoder: just the types libbpf 1.x needs to create
//! BTF-defined maps from a `.maps` section.
//!
//! Each map is a global variable of an anonymous struct whose members are
//! `int (*name)[N]`: pointers to arrays whose element count encodes the
//! number (`type`, `max_entries`, `key_size`, `value_size`), as libbpf's
//! `__uint(name, N)` macro produces. A `DATASEC` named `.maps` lists the
//! variables with their offsets and sizes in the section.

use crate::bpf::MapSpec;

/// `BTF_MAGIC`
const MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_header`.
const HEADER_LEN: u32 = 24;

/// BTF type kinds (`BTF_KIND_*`).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
}

/// `BTF_INT_SIGNED`, in the encoding byte of an `INT`'s extra word.
const INT_SIGNED: u32 = 1;
/// `BTF_VAR_GLOBAL_ALLOCATED`
const VAR_GLOBAL_ALLOCATED: u32 = 1;
/// Size of a member of a map definition struct (a pointer).
const POINTER_SIZE: u32 = 8;

/// Where one map variable lives in the `.maps` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapPlacement {
    /// Byte offset in `.maps`.
    pub offset: u32,
    /// Size of the variable in bytes.
    pub size: u32,
}

/// The encoded `.BTF` section and where each map goes in `.maps`.
#[derive(Debug, Clone)]
pub struct MapsBtf {
    /// The `.BTF` section contents.
    pub bytes: Vec<u8>,
    /// One placement per map, in the order given.
    pub placements: Vec<MapPlacement>,
    /// Total size of the `.maps` section.
    pub section_size: u32,
}

/// The numeric fields of a map definition, as (member name, value).
fn map_fields(map: &MapSpec) -> Vec<(&'static str, u32)> {
    let mut fields = vec![("type", map.map_type), ("max_entries", map.max_entries)];
    if map.flags != 0 {
        fields.push(("map_flags", map.flags));
    }
    if map.map_type != crate::bpf::map_type::RINGBUF {
        fields.push(("key_size", map.key_size));
        fields.push(("value_size", map.value_size));
    }
    fields
}

/// Accumulates BTF types and strings; type ids start at 1 (0 is `void`).
#[derive(Default)]
struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
    int_id: u32,
    /// `(N, id of int (*)[N])`, so each number gets one array and one pointer.
    number_ptrs: Vec<(u32, u32)>,
}

impl Builder {
    fn new() -> Self {
        let mut builder = Builder {
            strings: vec![0],
            next_id: 1,
            ..Default::default()
        };
        let name = builder.string("int");
        builder.int_id = builder.push(name, kind::INT, 0, 4, &[(INT_SIGNED << 24) | 32]);
        builder
    }

    /// Adds a string, returns its offset in the string section.
    fn string(&mut self, s: &str) -> u32 {
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        offset
    }

    /// Appends `struct btf_type` plus kind-specific words, returns the type id.
    fn push(
        &mut self,
        name_off: u32,
        kind: u32,
        vlen: u32,
        size_or_type: u32,
        extra: &[u32],
    ) -> u32 {
        for word in [name_off, (kind << 24) | vlen, size_or_type]
            .iter()
            .chain(extra)
        {
            self.types.extend_from_slice(&word.to_le_bytes());
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The id of `int (*)[n]`, created on first use.
    fn number_ptr(&mut self, n: u32) -> u32 {
        if let Some(&(_, id)) = self.number_ptrs.iter().find(|(value, _)| *value == n) {
            return id;
        }
        let array = self.push(0, kind::ARRAY, 0, 0, &[self.int_id, self.int_id, n]);
        let ptr = self.push(0, kind::PTR, 0, array, &[]);
        self.number_ptrs.push((n, ptr));
        ptr
    }

    /// Adds the anonymous definition struct and the variable of one map;
    /// returns the variable's id and its size.
    fn map_var(&mut self, map: &MapSpec) -> (u32, u32) {
        let mut members = Vec::new();
        for (index, (name, value)) in map_fields(map).into_iter().enumerate() {
            let ptr = self.number_ptr(value);
            let name_off = self.string(name);
            members.extend_from_slice(&[name_off, ptr, index as u32 * POINTER_SIZE * 8]);
        }
        let count = members.len() as u32 / 3;
        let size = count * POINTER_SIZE;
        let def = self.push(0, kind::STRUCT, count, size, &members);
        let name_off = self.string(&map.name);
        (
            self.push(name_off, kind::VAR, 0, def, &[VAR_GLOBAL_ALLOCATED]),
            size,
        )
    }

    /// Header, types and strings as one byte vector.
    fn finish(self) -> Vec<u8> {
        let type_len = self.types.len() as u32;
        let mut out =
            Vec::with_capacity(HEADER_LEN as usize + self.types.len() + self.strings.len());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        for word in [HEADER_LEN, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// Encodes the BTF describing `maps` as BTF-defined maps in `.maps`.
pub fn maps_btf(maps: &[MapSpec]) -> MapsBtf {
    let mut builder = Builder::new();
    let mut placements = Vec::with_capacity(maps.len());
    let mut secinfo = Vec::with_capacity(maps.len() * 3);
    let mut offset = 0;
    for map in maps {
        let (var, size) = builder.map_var(map);
        placements.push(MapPlacement { offset, size });
        secinfo.extend_from_slice(&[var, offset, size]);
        offset += size;
    }
    // libbpf fails to open an object whose BTF names a missing section.
    if !maps.is_empty() {
        let name_off = builder.string(".maps");
        builder.push(name_off, kind::DATASEC, maps.len() as u32, offset, &secinfo);
    }
    MapsBtf {
        bytes: builder.finish(),
        placements,
        section_size: offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::map_type;

    fn word(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    }

    #[test]
    fn header_and_layout() {
        let maps = [
            MapSpec {
                name: "counts".into(),
                map_type: map_type::HASH,
                key_size: 8,
                value_size: 8,
                max_entries: 1024,
                flags: 0,
            },
            MapSpec {
                name: "events".into(),
                map_type: map_type::RINGBUF,
                key_size: 0,
                value_size: 0,
                max_entries: 4096,
                flags: 0,
            },
        ];
        let btf = maps_btf(&maps);
        assert_eq!(u16::from_le_bytes([btf.bytes[0], btf.bytes[1]]), MAGIC);
        let type_len = word(&btf.bytes, 12) as usize;
        let str_off = word(&btf.bytes, 16) as usize;
        let str_len = word(&btf.bytes, 20) as usize;
        assert_eq!(str_off, type_len);
        assert_eq!(btf.bytes.len(), HEADER_LEN as usize + type_len + str_len);
        assert_eq!(
            btf.placements,
            vec![
                MapPlacement {
                    offset: 0,
                    size: 32
                },
                MapPlacement {
                    offset: 32,
                    size: 16
                }
            ]
        );
        assert_eq!(btf.section_size, 48);
        let strings = &btf.bytes[HEADER_LEN as usize + str_off..];
        let text = String::from_utf8_lossy(strings);
        for name in [
            "int",
            "type",
            "max_entries",
            "key_size",
            "value_size",
            "counts",
            "events",
            ".maps",
        ] {
            assert!(text.split('\0').any(|s| s == name), "missing string {name}");
        }
    }

    #[test]
    fn equal_numbers_share_one_array_type() {
        let map = MapSpec {
            name: "m".into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: 2,
            flags: 0,
        };
        let one = maps_btf(std::slice::from_ref(&map));
        let two = maps_btf(&[
            map.clone(),
            MapSpec {
                name: "n".into(),
                ..map
            },
        ]);
        // The second map adds only a struct (3 words + 4 members of 3 words) and a var (4 words).
        let type_len = |b: &MapsBtf| word(&b.bytes, 12);
        assert_eq!(type_len(&two) - type_len(&one), (3 + 4 * 3 + 4 + 3) * 4);
    }
}
