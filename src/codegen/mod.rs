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
    /// Script locations: `(first instruction index, span)`, ascending.
    pub source_map: Vec<(usize, crate::diag::Span)>,
}

impl ProgramCode {
    /// The script location of the instruction at `index`, if known.
    pub fn span_of(&self, index: usize) -> Option<crate::diag::Span> {
        self.source_map
            .iter()
            .take_while(|(start, _)| *start <= index)
            .last()
            .map(|(_, s)| *s)
    }
}

/// Compiles one IR function to BPF: liveness, linear-scan register
/// allocation (spilling to the stack as needed) and instruction emission.
/// Fails if the stack frame exceeds 512 bytes or a jump is out of range.
pub fn generate(func: &Function) -> Result<ProgramCode, Diagnostic> {
    let mut func = func.clone();
    drop_unreachable(&mut func);
    drop_jumps_to_next(&mut func);
    let alloc = regalloc::allocate(&mut func)?;
    emit::emit(&func, &alloc)
}

pub use disasm::disassemble;

/// Removes instructions that no path from the entry reaches (the kernel
/// verifier rejects unreachable code, which constant conditions create).
fn drop_unreachable(func: &mut Function) {
    use crate::ir::Inst;
    let insts = &func.insts;
    let labels: std::collections::HashMap<_, _> = insts
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            if let Inst::Label(l) = n {
                Some((*l, i))
            } else {
                None
            }
        })
        .collect();
    let mut reached = vec![false; insts.len()];
    let mut work = vec![0usize];
    while let Some(i) = work.pop() {
        if i >= insts.len() || reached[i] {
            continue;
        }
        reached[i] = true;
        match &insts[i] {
            Inst::Jump(l) => work.extend(labels.get(l)),
            Inst::Branch { target, .. } => {
                work.extend(labels.get(target));
                work.push(i + 1);
            }
            Inst::Exit(_) => {}
            _ => work.push(i + 1),
        }
    }
    let mut r = reached.into_iter();
    func.insts.retain(|_| r.next().unwrap_or(true));
}

/// Removes jumps whose target label follows them with nothing but labels
/// and source markers in between.
fn drop_jumps_to_next(func: &mut Function) {
    use crate::ir::Inst;
    let insts = &func.insts;
    let keep: Vec<bool> = (0..insts.len())
        .map(|i| {
            let Inst::Jump(target) = insts[i] else {
                return true;
            };
            !insts[i + 1..]
                .iter()
                .take_while(|n| matches!(n, Inst::Label(_) | Inst::Loc(_)))
                .any(|n| *n == Inst::Label(target))
        })
        .collect();
    let mut k = keep.into_iter();
    func.insts.retain(|_| k.next().unwrap_or(true));
}
