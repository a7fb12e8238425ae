//! Clean-up of the IR before register allocation: kernel reads through
//! copies of one pointer (or of it plus a constant) recognised as reads
//! of that pointer, repeated ones removed, nearby
//! ones read together (windows), then the expansion of the kernel
//! reads that remain into `bpf_probe_read_kernel` calls.
//!
//! Inlined functions pass the same pointer through a chain of copies and
//! read the same fields again (a path stage's guard, filter and key each
//! find the packet's headers), and every kernel read is a helper call. A
//! forward dataflow pass finds, at each instruction, which registers are
//! copies of which, and which registers already hold which kernel word;
//! a kernel read through a copy reads through the original instead, and a
//! read of a word that some register still holds becomes a move. Kernel memory is only read
//! by the program, so a word read once per event keeps its value.

use super::liveness;
use crate::bpf::helper;
use crate::diag::Diagnostic;
use crate::ir::{Function, Inst, Operand, VReg, Width};
use std::collections::{HashMap, HashSet};

/// A kernel word: base register, offset, width.
type Word = (VReg, i32, Width);

/// What holds at a point of the program.
#[derive(Debug, Clone, Default, PartialEq)]
struct Facts {
    /// `r -> (s, k)`: `r` holds the value of `s` plus `k` (`s` is not
    /// itself a copy): a pointer, or a pointer a constant further on.
    copies: HashMap<VReg, (VReg, i32)>,
    /// `word -> r`: `r` holds that kernel word.
    words: HashMap<Word, VReg>,
}

impl Facts {
    /// The register whose value `r` holds, and the constant added to it.
    fn origin(&self, r: VReg) -> (VReg, i32) {
        self.copies.get(&r).copied().unwrap_or((r, 0))
    }

    /// Forgets everything that depends on `r`, which is being redefined.
    fn kill(&mut self, r: VReg) {
        self.copies.retain(|k, v| *k != r && v.0 != r);
        self.words.retain(|w, v| w.0 != r && *v != r);
    }

    /// What holds in both `self` and `other`.
    fn meet(&mut self, other: &Facts) {
        self.copies.retain(|k, v| other.copies.get(k) == Some(v));
        self.words.retain(|w, v| other.words.get(w) == Some(v));
    }

    /// Rewrites `inst` with what is known (uses of copies read the
    /// original; a kernel word already held is moved, not read), then
    /// updates the facts past it. Returns the rewritten instruction, if
    /// it changed.
    fn step(&mut self, inst: &Inst, defined_once: &HashSet<VReg>) -> Option<Inst> {
        // Kernel reads go through the original pointer, so that reads
        // through copies of it (or through it plus a constant, a header
        // at a known offset) are recognised (other uses keep their copy:
        // moves are cheap, and a copy updated in place would keep both alive).
        let rewritten = match *inst {
            Inst::ReadKernel {
                dst,
                base,
                off,
                width,
            } => {
                let (origin, k) = self.origin(base);
                let (base, off) = off.checked_add(k).map_or((base, off), |o| (origin, o));
                match self.words.get(&(base, off, width)) {
                    Some(&held) => Some(Inst::Mov {
                        dst,
                        src: Operand::Reg(held),
                    }),
                    None => Some(Inst::ReadKernel {
                        dst,
                        base,
                        off,
                        width,
                    })
                    .filter(|read| read != inst),
                }
            }
            _ => None,
        };
        let inst = rewritten.as_ref().unwrap_or(inst);
        if let Some(d) = liveness::def(inst) {
            self.kill(d);
        }
        let offset_copy = match *inst {
            Inst::Mov {
                dst,
                src: Operand::Reg(s),
            } => Some((dst, s, 0)),
            Inst::Alu {
                op: crate::ir::AluOp::Add,
                dst,
                lhs: Operand::Reg(s),
                rhs: Operand::Imm(k),
            } => i32::try_from(k).ok().map(|k| (dst, s, k)),
            _ => None,
        };
        if let Some((dst, s, k)) = offset_copy {
            // A copy defined once stands for a value whose first holder
            // is assigned more than once (say, a function's result): a
            // window needs a pointer defined once.
            let (origin, base_k) = self.origin(s);
            let own = defined_once.contains(&dst) && !defined_once.contains(&origin);
            if let (true, false, Some(k)) = (origin != dst, own, base_k.checked_add(k)) {
                self.copies.insert(dst, (origin, k));
            }
        }
        match *inst {
            Inst::ReadKernel {
                dst,
                base,
                off,
                width,
            } if base != dst => {
                self.words.insert((base, off, width), dst);
            }
            _ => {}
        }
        rewritten
    }
}

/// Points kernel reads at original registers and removes repeated ones
/// (see the module comment). Instructions left without a reader are removed later by
/// dead-definition elimination.
pub fn drop_repeated_reads(func: &mut Function) -> Result<(), Diagnostic> {
    let blocks = liveness::blocks(func)?;
    let mut defs: HashMap<VReg, usize> = HashMap::new();
    for d in func.insts.iter().filter_map(liveness::def) {
        *defs.entry(d).or_default() += 1;
    }
    let defined_once: HashSet<VReg> = defs
        .into_iter()
        .filter(|(_, n)| *n == 1)
        .map(|(r, _)| r)
        .collect();
    let mut preds = vec![Vec::new(); blocks.len()];
    for (b, block) in blocks.iter().enumerate() {
        for &s in &block.succs {
            preds[s].push(b);
        }
    }
    // Facts at the end of each block; `None` until the block is first
    // reached (it then takes no part in its successors' meets).
    let mut out: Vec<Option<Facts>> = vec![None; blocks.len()];
    let entry_facts = |b: usize, out: &[Option<Facts>]| -> Option<Facts> {
        if b == 0 {
            return Some(Facts::default());
        }
        let mut known = preds[b].iter().filter_map(|p| out[*p].as_ref());
        let mut facts = known.next()?.clone();
        known.for_each(|o| facts.meet(o));
        Some(facts)
    };
    // Sweeps in block order, visiting only the blocks whose predecessors'
    // facts changed since the block's last visit (the others would find
    // what they found before).
    let mut stale = vec![true; blocks.len()];
    while stale.contains(&true) {
        for (b, block) in blocks.iter().enumerate() {
            if !std::mem::take(&mut stale[b]) {
                continue;
            }
            let Some(mut facts) = entry_facts(b, &out) else {
                continue;
            };
            for inst in &func.insts[block.start..=block.end] {
                facts.step(inst, &defined_once);
            }
            if out[b].as_ref() != Some(&facts) {
                out[b] = Some(facts);
                block.succs.iter().for_each(|&s| stale[s] = true);
            }
        }
    }
    for (b, block) in blocks.iter().enumerate() {
        let Some(mut facts) = entry_facts(b, &out) else {
            continue;
        };
        for i in block.start..=block.end {
            if let Some(rewritten) = facts.step(&func.insts[i], &defined_once) {
                func.insts[i] = rewritten;
            }
        }
    }
    Ok(())
}

/// The widest span of kernel memory read at once into a window.
const MAX_WINDOW: i32 = 64;

/// Reads nearby kernel words of one pointer with one helper call: the
/// words read through a register that is defined once (a stage's skb, a
/// header found once) whose offsets lie within [`MAX_WINDOW`] bytes of
/// each other are copied to a stack window right after the register is
/// defined, and read from there. The window is read on every path through
/// the definition, also where no word of it is needed: one call in place
/// of several. Words that would sit misaligned in the window stay as they
/// are (the verifier wants aligned stack access).
pub fn read_windows(func: &mut Function) {
    let mut defs: HashMap<VReg, Vec<usize>> = HashMap::new();
    let mut reads: HashMap<VReg, Vec<(i32, Width)>> = HashMap::new();
    for (i, inst) in func.insts.iter().enumerate() {
        if let Some(d) = liveness::def(inst) {
            defs.entry(d).or_default().push(i);
        }
        if let Inst::ReadKernel {
            base, off, width, ..
        } = inst
        {
            reads.entry(*base).or_default().push((*off, *width));
        }
    }
    // (base, lo, size, slot) of each window, and where it is read.
    let mut windows: Vec<(VReg, i32, i32, crate::ir::Slot)> = Vec::new();
    let mut after: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut bases: Vec<&VReg> = reads.keys().collect();
    bases.sort();
    for base in bases {
        let Some([def]) = defs.get(base).map(Vec::as_slice) else {
            continue;
        };
        let mut words = reads[base].clone();
        words.sort_by_key(|(off, w)| (*off, w.bytes()));
        words.dedup();
        let mut i = 0;
        while i < words.len() {
            let lo = words[i].0.div_euclid(8) * 8;
            let mut hi = lo;
            let mut count = 0;
            for &(off, w) in &words[i..] {
                let end = off + w.bytes() as i32;
                if end - lo > MAX_WINDOW {
                    break;
                }
                count += 1;
                if (off - lo) % w.bytes() as i32 == 0 {
                    hi = hi.max(end);
                }
            }
            if words[i..i + count]
                .iter()
                .filter(|(off, w)| (off - lo) % w.bytes() as i32 == 0)
                .count()
                >= 2
            {
                let size = (hi - lo + 7) / 8 * 8;
                let slot = func.slot(size as u32, 8);
                after.entry(*def).or_default().push(windows.len());
                windows.push((*base, lo, size, slot));
            }
            i += count.max(1);
        }
    }
    if windows.is_empty() {
        return;
    }
    let window_of = |base: VReg, off: i32, w: Width| {
        windows.iter().find(|(b, lo, size, _)| {
            *b == base
                && off >= *lo
                && off + w.bytes() as i32 <= lo + size
                && (off - lo) % w.bytes() as i32 == 0
        })
    };
    let insts = std::mem::take(&mut func.insts);
    for (i, inst) in insts.into_iter().enumerate() {
        let inst = match inst {
            Inst::ReadKernel {
                dst,
                base,
                off,
                width,
            } => match window_of(base, off, width) {
                Some(&(_, lo, _, slot)) => Inst::Load {
                    dst,
                    addr: crate::ir::Addr::Stack(slot, off - lo),
                    width,
                },
                None => inst,
            },
            other => other,
        };
        func.insts.push(inst);
        for &w in after.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
            let (base, lo, size, slot) = windows[w];
            let addr = offset(func, base, lo);
            probe_read(func, slot, size, addr);
        }
    }
}

/// `base + off` in a new register (`base` itself for 0).
fn offset(func: &mut Function, base: VReg, off: i32) -> VReg {
    if off == 0 {
        return base;
    }
    let a = func.vreg();
    func.push(Inst::Alu {
        op: crate::ir::AluOp::Add,
        dst: a,
        lhs: Operand::Reg(base),
        rhs: Operand::Imm(off as i64),
    });
    a
}

/// `bpf_probe_read_kernel(&slot, size, addr)`.
fn probe_read(func: &mut Function, slot: crate::ir::Slot, size: i32, addr: VReg) {
    let into = func.vreg();
    func.push(Inst::StackAddr {
        dst: into,
        slot,
        off: 0,
    });
    func.push(Inst::Call {
        helper: helper::PROBE_READ_KERNEL,
        args: vec![
            Operand::Reg(into),
            Operand::Imm(size as i64),
            Operand::Reg(addr),
        ],
        dst: None,
    });
}

/// Turns every `ReadKernel` into `bpf_probe_read_kernel` into one 8-byte
/// stack slot of the function, followed by a load from it.
pub fn expand_kernel_reads(func: &mut Function) {
    if !func
        .insts
        .iter()
        .any(|i| matches!(i, Inst::ReadKernel { .. }))
    {
        return;
    }
    let slot = func.slot(8, 8);
    let insts = std::mem::take(&mut func.insts);
    for inst in insts {
        let Inst::ReadKernel {
            dst,
            base,
            off,
            width,
        } = inst
        else {
            func.insts.push(inst);
            continue;
        };
        let addr = offset(func, base, off);
        probe_read(func, slot, width.bytes() as i32, addr);
        func.push(Inst::Load {
            dst,
            addr: crate::ir::Addr::Stack(slot, 0),
            width,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Addr, Cond, Slot};

    fn read(f: &mut Function, base: VReg, off: i32, width: Width) -> VReg {
        let dst = f.vreg();
        f.push(Inst::ReadKernel {
            dst,
            base,
            off,
            width,
        });
        dst
    }

    fn calls(f: &Function) -> usize {
        f.insts
            .iter()
            .filter(|i| matches!(i, Inst::Call { .. }))
            .count()
    }

    /// `%p = load ctx+8`, and `%q`, a copy of it.
    fn pointer_and_copy(f: &mut Function) -> (VReg, VReg) {
        let (p, q) = (f.vreg(), f.vreg());
        f.push(Inst::Load {
            dst: p,
            addr: Addr::Reg(f.ctx, 8),
            width: Width::B8,
        });
        f.push(Inst::Mov {
            dst: q,
            src: Operand::Reg(p),
        });
        (p, q)
    }

    #[test]
    fn a_word_read_again_through_copies_is_moved_not_read() {
        let mut f = Function::new("t");
        let (p, q) = pointer_and_copy(&mut f);
        // A copy of the copy.
        let r = f.vreg();
        f.push(Inst::Mov {
            dst: r,
            src: Operand::Reg(q),
        });
        let a = read(&mut f, p, 180, Width::B2);
        let b = read(&mut f, r, 180, Width::B2);
        f.push(Inst::Exit(Operand::Reg(b)));
        drop_repeated_reads(&mut f).expect("analysis");
        assert!(f.insts.contains(&Inst::Mov {
            dst: b,
            src: Operand::Reg(a)
        }));
        expand_kernel_reads(&mut f);
        assert_eq!(calls(&f), 1, "{}", f);
    }

    #[test]
    fn a_word_read_in_one_branch_only_is_read_again_after_it() {
        let mut f = Function::new("t");
        let (p, _) = pointer_and_copy(&mut f);
        let join = f.label();
        f.push(Inst::Branch {
            cond: Cond::Eq,
            lhs: p,
            rhs: Operand::Imm(0),
            target: join,
        });
        read(&mut f, p, 184, Width::B4);
        f.push(Inst::Label(join));
        let b = read(&mut f, p, 184, Width::B4);
        f.push(Inst::Exit(Operand::Reg(b)));
        drop_repeated_reads(&mut f).expect("analysis");
        let reads = f
            .insts
            .iter()
            .filter(|i| matches!(i, Inst::ReadKernel { .. }))
            .count();
        assert_eq!(reads, 2, "{}", f);
    }

    #[test]
    fn a_redefined_pointer_is_read_again() {
        let mut f = Function::new("t");
        let (p, _) = pointer_and_copy(&mut f);
        read(&mut f, p, 0, Width::B8);
        f.push(Inst::Alu {
            op: crate::ir::AluOp::Add,
            dst: p,
            lhs: Operand::Reg(p),
            rhs: Operand::Imm(8),
        });
        let b = read(&mut f, p, 0, Width::B8);
        f.push(Inst::Exit(Operand::Reg(b)));
        drop_repeated_reads(&mut f).expect("analysis");
        assert!(matches!(f.insts.last(), Some(Inst::Exit(_))));
        assert!(matches!(
            f.insts[f.insts.len() - 2],
            Inst::ReadKernel { .. }
        ));
    }

    #[test]
    fn a_read_through_the_pointer_plus_a_constant_is_a_read_of_the_pointer() {
        let mut f = Function::new("t");
        let (p, q) = pointer_and_copy(&mut f);
        // `%h = %q + 20`: a header at a fixed distance, through a copy.
        let h = f.vreg();
        f.push(Inst::Alu {
            op: crate::ir::AluOp::Add,
            dst: h,
            lhs: Operand::Reg(q),
            rhs: Operand::Imm(20),
        });
        let a = read(&mut f, p, 24, Width::B4);
        let b = read(&mut f, h, 4, Width::B4);
        let c = read(&mut f, h, 8, Width::B4);
        f.push(Inst::Exit(Operand::Reg(c)));
        drop_repeated_reads(&mut f).expect("analysis");
        // `%h + 4` is `%p + 24`, already read; `%h + 8` is read through %p.
        assert!(f.insts.contains(&Inst::Mov {
            dst: b,
            src: Operand::Reg(a)
        }));
        assert!(f.insts.contains(&Inst::ReadKernel {
            dst: c,
            base: p,
            off: 28,
            width: Width::B4
        }));
        read_windows(&mut f);
        expand_kernel_reads(&mut f);
        assert_eq!(calls(&f), 1, "one window for both words: {}", f);
    }

    #[test]
    fn nearby_words_of_a_pointer_defined_once_are_read_in_one_window() {
        let mut f = Function::new("t");
        let (p, _) = pointer_and_copy(&mut f);
        let a = read(&mut f, p, 180, Width::B2);
        let b = read(&mut f, p, 192, Width::B8);
        let far = read(&mut f, p, 16, Width::B8);
        let sum = f.vreg();
        f.push(Inst::Alu {
            op: crate::ir::AluOp::Add,
            dst: sum,
            lhs: Operand::Reg(a),
            rhs: Operand::Reg(b),
        });
        f.push(Inst::Exit(Operand::Reg(sum)));
        read_windows(&mut f);
        // The window [176, 200) is read right after %p is defined.
        let window = Slot(f.slots.len() as u32 - 1);
        assert_eq!(f.slots[window.0 as usize].size, 24);
        assert!(
            matches!(
                f.insts[1],
                Inst::Alu {
                    rhs: Operand::Imm(176),
                    ..
                }
            ),
            "{}",
            f
        );
        assert!(f.insts.contains(&Inst::Load {
            dst: a,
            addr: Addr::Stack(window, 4),
            width: Width::B2
        }));
        assert!(f.insts.contains(&Inst::Load {
            dst: b,
            addr: Addr::Stack(window, 16),
            width: Width::B8
        }));
        // A word too far from the others stays a read of its own.
        assert!(f
            .insts
            .iter()
            .any(|i| matches!(i, Inst::ReadKernel { dst, .. } if *dst == far)));
        expand_kernel_reads(&mut f);
        assert_eq!(calls(&f), 2, "{}", f);
    }
}
