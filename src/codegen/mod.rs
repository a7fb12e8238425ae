//! Code generation: register allocation over the IR and emission of BPF
//! instructions.

pub mod insn;

use crate::ir::MapId;
use insn::Insn;

/// A map reference inside generated code: the `ld_imm64` at `insn` loads
/// the pointer of `map` (libbpf patches it through an ELF relocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapReloc {
    /// Index of the first slot of the `ld_imm64` instruction.
    pub insn: usize,
    /// The referenced map.
    pub map: MapId,
}

/// The BPF code of one program.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramCode {
    /// Symbol name of the program.
    pub name: String,
    /// Instruction slots (an `ld_imm64` takes two).
    pub insns: Vec<Insn>,
    /// Map references to relocate.
    pub map_relocs: Vec<MapReloc>,
}
