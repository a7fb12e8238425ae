//! Code generation: register allocation over the IR and emission of BPF
//! instructions.

pub mod disasm;
pub mod emit;
pub mod insn;
pub mod liveness;
pub mod optimize;
pub mod regalloc;
#[cfg(test)]
mod tests_exec;
#[cfg(test)]
mod tests_exec_alu;
#[cfg(test)]
mod tests_golden;

use crate::bpf::MapId;
use crate::diag::Diagnostic;
use crate::ir::Function;
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

/// Compiles one IR function to BPF: repeated kernel reads removed and
/// nearby ones read together, liveness, linear-scan register allocation (spilling to
/// the stack as needed) and instruction emission.
/// Fails if the stack frame exceeds 512 bytes or a jump is out of range.
pub fn generate(func: &Function) -> Result<ProgramCode, Diagnostic> {
    // Read windows take stack, and kernel values kept for reuse take
    // registers (spilled, stack): a program they push past the stack
    // limit goes without the windows, then without both.
    generate_with(func, true, true)
        .or_else(|_| generate_with(func, true, false))
        .or_else(|_| generate_with(func, false, false))
}

/// [`generate`], with or without repeated kernel reads removed and read
/// windows.
fn generate_with(func: &Function, reuse: bool, windows: bool) -> Result<ProgramCode, Diagnostic> {
    let mut func = func.clone();
    drop_unreachable(&mut func);
    drop_jumps_to_next(&mut func);
    // Dead definitions first (the zeroing of variables assigned before
    // any read): pointers defined once can then be read in windows.
    drop_dead_defs(&mut func)?;
    if reuse {
        optimize::drop_repeated_reads(&mut func)?;
        drop_dead_defs(&mut func)?;
    }
    if windows {
        optimize::read_windows(&mut func);
    }
    optimize::expand_kernel_reads(&mut func);
    let lowered_slots = func.slots.len();
    let alloc = regalloc::allocate(&mut func)?;
    share_spill_slots(&mut func, lowered_slots);
    emit::emit(&func, &alloc)
}

pub use disasm::disassemble;

/// Lets spill slots (those from index `first` on, only ever accessed by
/// direct loads and stores) share stack space when their live ranges do
/// not overlap. A range runs from the first to the last access of a slot,
/// widened over every loop it overlaps, so a value that flows around a back
/// edge stays intact.
fn share_spill_slots(func: &mut Function, first: usize) {
    use crate::ir::{Addr, Inst, SlotInfo};
    let slot_of = |inst: &Inst| match inst {
        Inst::Load {
            addr: Addr::Stack(s, _),
            ..
        }
        | Inst::Store {
            addr: Addr::Stack(s, _),
            ..
        } if s.0 as usize >= first => Some(s.0 as usize),
        _ => None,
    };
    let mut ranges: Vec<Option<(usize, usize)>> = vec![None; func.slots.len()];
    for (i, inst) in func.insts.iter().enumerate() {
        if let Some(s) = slot_of(inst) {
            let r = ranges[s].get_or_insert((i, i));
            r.1 = i;
        }
    }
    // A label defined twice is reported by liveness; here it only costs the optimisation.
    let labels = liveness::label_positions(func).unwrap_or_default();
    let back_edges: Vec<(usize, usize)> = func
        .insts
        .iter()
        .enumerate()
        .filter_map(|(j, n)| match n {
            Inst::Jump(l) | Inst::Branch { target: l, .. } => {
                labels.get(l).filter(|k| **k <= j).map(|k| (*k, j))
            }
            _ => None,
        })
        .collect();
    for r in ranges.iter_mut().flatten() {
        loop {
            let before = *r;
            for &(k, j) in &back_edges {
                if k <= r.1 && j >= r.0 {
                    *r = (r.0.min(k), r.1.max(j));
                }
            }
            if *r == before {
                break;
            }
        }
    }
    // Greedy interval colouring: each spill slot reuses the first earlier
    // spill slot whose range has ended.
    let mut order: Vec<usize> = (first..func.slots.len())
        .filter(|s| ranges[*s].is_some())
        .collect();
    order.sort_by_key(|s| ranges[*s].map(|r| r.0));
    let mut owners: Vec<(usize, usize)> = Vec::new(); // (slot kept, end of its last range)
    let mut target: Vec<usize> = (0..func.slots.len()).collect();
    for s in order {
        let (start, end) = ranges[s].unwrap_or((0, 0));
        match owners.iter_mut().find(|(_, last)| *last < start) {
            Some(owner) => {
                target[s] = owner.0;
                owner.1 = end;
            }
            None => owners.push((s, end)),
        }
    }
    for inst in &mut func.insts {
        if let Inst::Load {
            addr: Addr::Stack(s, _),
            ..
        }
        | Inst::Store {
            addr: Addr::Stack(s, _),
            ..
        } = inst
        {
            s.0 = target[s.0 as usize] as u32;
        }
    }
    for (s, t) in target.iter().enumerate().skip(first) {
        if *t != s {
            func.slots[s] = SlotInfo { size: 0, align: 1 };
        }
    }
}

/// Removes instructions that no path from the entry reaches (the kernel
/// verifier rejects unreachable code, which constant conditions create).
fn drop_unreachable(func: &mut Function) {
    use crate::ir::Inst;
    let insts = &func.insts;
    // A label defined twice is reported by liveness; here it only costs the optimisation.
    let labels = liveness::label_positions(func).unwrap_or_default();
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

/// Removes moves, ALU operations and loads whose result is never read
/// (such as the zeroing of a variable that is always assigned before it is
/// read), so that values are live only from their real definition. A few
/// rounds catch chains that cross blocks.
fn drop_dead_defs(func: &mut Function) -> Result<(), Diagnostic> {
    use crate::ir::Inst;
    for _ in 0..3 {
        let live = liveness::analyze(func)?;
        let mut dead = vec![false; func.insts.len()];
        for (b, block) in live.blocks.iter().enumerate() {
            let mut now = live.live_out(b);
            for i in (block.start..=block.end).rev() {
                let inst = &func.insts[i];
                let pure = matches!(
                    inst,
                    Inst::Mov { .. }
                        | Inst::Alu { .. }
                        | Inst::Load { .. }
                        | Inst::ReadKernel { .. }
                );
                match liveness::def(inst) {
                    Some(d) if pure && !now.contains(d) => {
                        dead[i] = true;
                        continue;
                    }
                    Some(d) => now.remove(d),
                    None => {}
                }
                liveness::visit_uses(inst, |u| now.insert(u));
            }
        }
        if !dead.contains(&true) {
            break;
        }
        let mut d = dead.into_iter();
        func.insts.retain(|_| !d.next().unwrap_or(false));
    }
    Ok(())
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
