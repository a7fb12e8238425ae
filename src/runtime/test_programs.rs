//! Hand-assembled programs for the runtime tests (no compiler needed).

use crate::bpf::MapId;
use crate::bpf::{helper, map_type, MapSpec};
use crate::codegen::insn::{alu, jmp, size, Insn, PSEUDO_MAP_FD, R10};
use crate::codegen::{MapReloc, ProgramCode};
use crate::object::ProgramSection;

/// A program being assembled: instructions plus map references.
#[derive(Default)]
pub struct Asm {
    insns: Vec<Insn>,
    relocs: Vec<MapReloc>,
}

impl Asm {
    /// Appends instructions.
    pub fn push(&mut self, insns: &[Insn]) -> &mut Self {
        self.insns.extend_from_slice(insns);
        self
    }

    /// `dst = &map` (an `ld_imm64` with a relocation).
    pub fn load_map(&mut self, dst: u8, map: u32) -> &mut Self {
        self.relocs.push(MapReloc {
            insn: self.insns.len(),
            map: MapId(map),
        });
        self.push(&Insn::ld_imm64(dst, PSEUDO_MAP_FD, 0))
    }

    /// `dst = r10 + off`
    pub fn stack_ptr(&mut self, dst: u8, off: i32) -> &mut Self {
        self.push(&[
            Insn::alu64_reg(alu::MOV, dst, R10),
            Insn::alu64_imm(alu::ADD, dst, off),
        ])
    }

    /// `r0 = ret; exit`
    pub fn ret(&mut self, ret: i32) -> &mut Self {
        self.push(&[Insn::alu64_imm(alu::MOV, 0, ret), Insn::exit()])
    }

    /// Index of the next instruction.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// The finished program in section `section`.
    pub fn section(&self, section: &str, name: &str) -> ProgramSection {
        let code = ProgramCode {
            name: name.into(),
            insns: self.insns.clone(),
            map_relocs: self.relocs.clone(),
            source_map: Vec::new(),
        };
        ProgramSection {
            section: section.into(),
            code,
        }
    }
}

/// `mov dst, imm`
pub fn mov(dst: u8, imm: i32) -> Insn {
    Insn::alu64_imm(alu::MOV, dst, imm)
}

/// A map spec.
pub fn map(name: &str, map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapSpec {
    MapSpec {
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags: 0,
    }
}

/// The ICMP payload size the ping test uses, and the resulting IP length.
pub const PING_PAYLOAD: u32 = 123;
/// `skb->len` of one such ping packet on `lo` (20 IP + 8 ICMP + payload).
pub const PING_IP_LEN: i32 = 28 + PING_PAYLOAD as i32;

/// `tracepoint/net/netif_receive_skb`: counts packets by length in hash
/// map 0 (lookup, null check, insert with `BPF_NOEXIST` or load/add/store)
/// and outputs `skbaddr` (8 bytes) to ring buffer map 1 for ping packets.
pub fn packet_counter() -> ProgramSection {
    let mut asm = Asm::default();
    asm.push(&[
        Insn::alu64_reg(alu::MOV, 6, 1),
        Insn::load(size::W, 2, 6, 16), // len
        Insn::store_reg(size::DW, R10, -8, 2),
        Insn::alu64_reg(alu::MOV, 7, 2),
    ]);
    asm.load_map(1, 0)
        .stack_ptr(2, -8)
        .push(&[Insn::call(helper::MAP_LOOKUP_ELEM as i32)]);
    let found = [
        Insn::load(size::DW, 1, 0, 0),
        Insn::alu64_imm(alu::ADD, 1, 1),
        Insn::store_reg(size::DW, 0, 0, 1),
    ];
    let mut insert = Asm::default();
    insert.push(&[Insn::store_imm(size::DW, R10, -16, 1)]);
    insert.load_map(1, 0).stack_ptr(2, -8).stack_ptr(3, -16);
    insert.push(&[mov(4, 1), Insn::call(helper::MAP_UPDATE_ELEM as i32)]);
    asm.push(&[Insn::jmp_imm(jmp::JEQ, 0, 0, found.len() as i16 + 1)])
        .push(&found);
    asm.push(&[Insn::ja(insert.len() as i16)]);
    let insert_at = asm.len();
    asm.push(&insert.insns);
    asm.relocs.extend(insert.relocs.iter().map(|r| MapReloc {
        insn: r.insn + insert_at,
        map: r.map,
    }));
    let mut output = Asm::default();
    output.push(&[
        Insn::load(size::DW, 1, 6, 8),
        Insn::store_reg(size::DW, R10, -16, 1),
    ]);
    output.load_map(1, 1).stack_ptr(2, -16);
    output.push(&[
        mov(3, 8),
        mov(4, 0),
        Insn::call(helper::RINGBUF_OUTPUT as i32),
    ]);
    asm.push(&[Insn::jmp_imm(jmp::JNE, 7, PING_IP_LEN, output.len() as i16)]);
    let output_at = asm.len();
    asm.push(&output.insns);
    asm.relocs.extend(output.relocs.iter().map(|r| MapReloc {
        insn: r.insn + output_at,
        map: r.map,
    }));
    asm.ret(0)
        .section("tracepoint/net/netif_receive_skb", "count_packets")
}

/// `raw_tp` program `name`: stores `value` under 4-byte `key` of array map
/// 0 and returns `ret`.
pub fn array_writer(name: &str, key: i32, value: i32, ret: i32) -> ProgramSection {
    let mut asm = Asm::default();
    asm.push(&[Insn::store_imm(size::W, R10, -4, key)]);
    asm.load_map(1, 0)
        .stack_ptr(2, -4)
        .push(&[Insn::call(helper::MAP_LOOKUP_ELEM as i32)]);
    asm.push(&[
        Insn::jmp_imm(jmp::JEQ, 0, 0, 2),
        Insn::store_imm(size::DW, 0, 0, value),
        mov(0, ret),
        Insn::exit(),
    ]);
    asm.section("raw_tp", name)
}

/// Program in `section` that updates 4-byte `key` of map 0 to the 8-byte
/// `value` with `bpf_map_update_elem` (per-CPU maps: this CPU's value).
pub fn updater(section: &str, name: &str, key: i32, value: i32) -> ProgramSection {
    let mut asm = Asm::default();
    asm.push(&[
        Insn::store_imm(size::W, R10, -4, key),
        Insn::store_imm(size::DW, R10, -16, value),
    ]);
    asm.load_map(1, 0)
        .stack_ptr(2, -4)
        .stack_ptr(3, -16)
        .push(&[mov(4, 0), Insn::call(helper::MAP_UPDATE_ELEM as i32)]);
    asm.ret(0).section(section, name)
}

/// `perf_event` program adding 1 to key 0 of array map 0.
pub fn tick_counter() -> ProgramSection {
    let mut asm = Asm::default();
    asm.push(&[Insn::store_imm(size::W, R10, -4, 0)]);
    asm.load_map(1, 0)
        .stack_ptr(2, -4)
        .push(&[Insn::call(helper::MAP_LOOKUP_ELEM as i32)]);
    asm.push(&[
        Insn::jmp_imm(jmp::JEQ, 0, 0, 3),
        Insn::load(size::DW, 1, 0, 0),
        Insn::alu64_imm(alu::ADD, 1, 1),
        Insn::store_reg(size::DW, 0, 0, 1),
    ]);
    asm.ret(0).section("perf_event", "tick")
}

/// A program in `section` that only returns `ret`.
pub fn returning(section: &str, name: &str, ret: i32) -> ProgramSection {
    Asm::default().ret(ret).section(section, name)
}

/// Index of the faulting load in [`unchecked_lookup`].
pub const UNCHECKED_LOAD_INSN: usize = 6;

/// `raw_tp` program the verifier rejects: it reads a map value without
/// checking the lookup result for NULL.
pub fn unchecked_lookup() -> ProgramSection {
    let mut asm = Asm::default();
    asm.push(&[Insn::store_imm(size::W, R10, -4, 0)]);
    asm.load_map(1, 0)
        .stack_ptr(2, -4)
        .push(&[Insn::call(helper::MAP_LOOKUP_ELEM as i32)]);
    assert_eq!(asm.len(), UNCHECKED_LOAD_INSN);
    asm.push(&[Insn::load(size::DW, 0, 0, 0), Insn::exit()]);
    asm.section("raw_tp", "bad")
}

/// An array map with 8-byte values.
pub fn array_map(name: &str, entries: u32) -> MapSpec {
    map(name, map_type::ARRAY, 4, 8, entries)
}
