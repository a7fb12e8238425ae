//! Code generation: register allocation over the IR and emission of BPF
//! instructions.

pub mod disasm;
pub mod emit;
pub mod insn;
pub mod liveness;
pub mod regalloc;
#[cfg(test)]
mod tests_exec;
#[cfg(test)]
mod tests_exec_alu;
#[cfg(test)]
mod tests_golden;

use crate::diag::Diagnostic;
use crate::ir::{Function, MapId};
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

/// Compiles one IR function to BPF: liveness, linear-scan register
/// allocation (spilling to the stack as needed) and instruction emission.
/// Fails if the stack frame exceeds 512 bytes or a jump is out of range.
pub fn generate(func: &Function) -> Result<ProgramCode, Diagnostic> {
    let mut func = func.clone();
    let alloc = regalloc::allocate(&mut func)?;
    emit::emit(&func, &alloc)
}

pub use disasm::disassemble;
