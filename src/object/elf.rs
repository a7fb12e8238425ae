//! The BPF ELF writer: program sections with their FUNC symbols and map
//! relocations, `.maps` with its BTF, and `license`.
//!
//! Programs that share a section name go into one section one after the
//! other, each with its own symbol (libbpf 1.x splits a section into
//! programs by its global FUNC symbols).

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    elf, Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags,
    SymbolKind, SymbolScope,
};

use super::btf::maps_btf;
use super::ProgramSection;
use crate::bpf::MapSpec;
use crate::diag::Diagnostic;

/// Size of one instruction slot in bytes.
const INSN_SIZE: u64 = 8;
/// The license every program is written under (GPL-only helpers need it).
const LICENSE: &[u8] = b"GPL\0";

/// A global symbol named `name` at `value..value+size` in `section`.
fn global_symbol(
    name: &str,
    kind: SymbolKind,
    section: SectionId,
    value: u64,
    size: u64,
) -> Symbol {
    Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size,
        kind,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    }
}

/// Adds `.maps`, its symbols and `.BTF`; returns one symbol per map.
fn add_maps(obj: &mut Object<'_>, maps: &[MapSpec]) -> Vec<SymbolId> {
    let btf = maps_btf(maps);
    let btf_section = obj.add_section(Vec::new(), b".BTF".to_vec(), SectionKind::Metadata);
    obj.set_section_data(btf_section, btf.bytes, 4);
    if maps.is_empty() {
        return Vec::new();
    }
    let maps_section = obj.add_section(Vec::new(), b".maps".to_vec(), SectionKind::Data);
    obj.set_section_data(maps_section, vec![0u8; btf.section_size as usize], 8);
    maps.iter()
        .zip(&btf.placements)
        .map(|(map, place)| {
            let symbol = global_symbol(
                &map.name,
                SymbolKind::Data,
                maps_section,
                place.offset.into(),
                place.size.into(),
            );
            obj.add_symbol(symbol)
        })
        .collect()
}

/// Checks what libbpf would otherwise reject with a less helpful message.
fn validate(programs: &[ProgramSection], maps: &[MapSpec]) -> Result<(), Diagnostic> {
    let mut names: Vec<&str> = programs
        .iter()
        .map(|p| p.code.name.as_str())
        .chain(maps.iter().map(|m| m.name.as_str()))
        .collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(Diagnostic::plain(format!(
            "internal error: symbol '{}' defined twice in the BPF object",
            pair[0]
        )));
    }
    for program in programs {
        if program.code.insns.is_empty() {
            return Err(Diagnostic::plain(format!(
                "internal error: program '{}' has no instructions",
                program.code.name
            )));
        }
        for reloc in &program.code.map_relocs {
            let at_ld_imm64 = program
                .code
                .insns
                .get(reloc.insn)
                .is_some_and(|insn| insn.is_ld_imm64());
            if !at_ld_imm64 || reloc.map.0 as usize >= maps.len() {
                return Err(Diagnostic::plain(format!(
                    "internal error: program '{}' has a bad map reference at instruction {}",
                    program.code.name, reloc.insn
                )));
            }
        }
    }
    Ok(())
}

/// Writes `programs` and `maps` as a relocatable BPF ELF object that
/// libbpf 1.x (and bpftool) load. Map references in the code become
/// `R_BPF_64_64` relocations against the map symbols.
pub fn write_object(programs: &[ProgramSection], maps: &[MapSpec]) -> Result<Vec<u8>, Diagnostic> {
    validate(programs, maps)?;
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    let map_symbols = add_maps(&mut obj, maps);

    let mut sections: Vec<(&str, SectionId)> = Vec::new();
    for program in programs {
        let section = match sections.iter().find(|(name, _)| *name == program.section) {
            Some(&(_, id)) => id,
            None => {
                let id = obj.add_section(
                    Vec::new(),
                    program.section.as_bytes().to_vec(),
                    SectionKind::Text,
                );
                sections.push((&program.section, id));
                id
            }
        };
        let code: Vec<u8> = program
            .code
            .insns
            .iter()
            .flat_map(|insn| insn.encode())
            .collect();
        let size = code.len() as u64;
        let start = obj.append_section_data(section, &code, INSN_SIZE);
        obj.add_symbol(global_symbol(
            &program.code.name,
            SymbolKind::Text,
            section,
            start,
            size,
        ));
        for reloc in &program.code.map_relocs {
            let relocation = Relocation {
                offset: start + reloc.insn as u64 * INSN_SIZE,
                symbol: map_symbols[reloc.map.0 as usize],
                addend: 0,
                flags: RelocationFlags::Elf {
                    r_type: elf::R_BPF_64_64,
                },
            };
            obj.add_relocation(section, relocation)
                .map_err(|e| Diagnostic::plain(format!("cannot relocate map reference: {e}")))?;
        }
    }

    let license = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    obj.set_section_data(license, LICENSE.to_vec(), 1);
    obj.add_symbol(global_symbol(
        "_license",
        SymbolKind::Data,
        license,
        0,
        LICENSE.len() as u64,
    ));

    obj.write()
        .map_err(|e| Diagnostic::plain(format!("cannot write the BPF object: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::map_type;
    use crate::bpf::MapId;
    use crate::codegen::insn::{Insn, PSEUDO_MAP_FD};
    use crate::codegen::{MapReloc, ProgramCode};
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

    fn program(section: &str, name: &str, map: Option<u32>) -> ProgramSection {
        let mut insns = vec![Insn::exit()];
        let mut map_relocs = Vec::new();
        if let Some(map) = map {
            map_relocs.push(MapReloc {
                insn: 0,
                map: MapId(map),
            });
            insns.splice(0..0, Insn::ld_imm64(1, PSEUDO_MAP_FD, 0));
        }
        ProgramSection {
            section: section.into(),
            code: ProgramCode {
                name: name.into(),
                insns,
                map_relocs,
                source_map: Vec::new(),
            },
        }
    }

    fn maps() -> Vec<MapSpec> {
        let spec = |name: &str| MapSpec {
            name: name.into(),
            map_type: map_type::HASH,
            key_size: 8,
            value_size: 8,
            max_entries: 4,
            flags: 0,
        };
        vec![spec("a"), spec("b")]
    }

    #[test]
    fn shared_section_symbols_and_relocations() {
        let programs = [
            program("raw_tp", "begin", Some(0)),
            program("raw_tp", "end", Some(1)),
        ];
        let bytes = write_object(&programs, &maps()).expect("written");
        let file = object::File::parse(&*bytes).expect("parses");
        assert_eq!(file.architecture(), Architecture::Bpf);
        let section = file.section_by_name("raw_tp").expect("raw_tp section");
        assert_eq!(section.size(), 2 * 3 * INSN_SIZE);
        let symbol = |name: &str| {
            file.symbols()
                .find(|s| s.name() == Ok(name))
                .expect("symbol")
        };
        assert_eq!(
            (symbol("begin").address(), symbol("end").address()),
            (0, 24)
        );
        assert_eq!(
            (
                symbol("a").address(),
                symbol("b").address(),
                symbol("b").size()
            ),
            (0, 32, 32)
        );
        assert!(symbol("_license").is_global());
        let relocs: Vec<(u64, object::RelocationTarget)> = section
            .relocations()
            .map(|(off, r)| (off, r.target()))
            .collect();
        let target = |name: &str| object::RelocationTarget::Symbol(symbol(name).index());
        assert_eq!(relocs, vec![(0, target("a")), (24, target("b"))]);
        assert_eq!(
            file.section_by_name("license").and_then(|s| s.data().ok()),
            Some(&b"GPL\0"[..])
        );
    }

    #[test]
    fn bad_input_is_a_diagnostic() {
        let dangling = program("xdp", "p", Some(5));
        assert!(write_object(&[dangling], &maps()).is_err());
        let twice = [program("xdp", "p", None), program("xdp", "p", None)];
        assert!(write_object(&twice, &[]).is_err());
    }
}
