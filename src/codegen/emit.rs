//! Instruction selection: turns allocated IR into BPF instruction slots,
//! lays out the stack frame and resolves jumps.

use super::insn::{alu, jmp, size, Insn, PSEUDO_MAP_FD, R10};
use super::regalloc::Allocation;
use super::{MapReloc, ProgramCode};
use crate::diag::Diagnostic;
use crate::ir::{Addr, AluOp, Cond, Function, Inst, Label, Operand, SlotInfo, VReg, Width};
use std::collections::HashMap;

/// The scratch register: call results, cycle breaking, large immediates.
const R0: u8 = 0;
/// The register holding the context at program entry.
const R1: u8 = 1;
/// The BPF stack size limit in bytes.
const MAX_STACK: u64 = 512;
/// Helper calls take at most this many arguments (r1..r5).
const MAX_ARGS: usize = 5;

/// Frame-pointer-relative offsets (negative) of every slot, each aligned;
/// an error if the frame exceeds the BPF stack limit.
pub fn frame_offsets(slots: &[SlotInfo]) -> Result<Vec<i32>, Diagnostic> {
    let mut depth: u64 = 0;
    let mut offsets = Vec::with_capacity(slots.len());
    for s in slots {
        let align = u64::from(s.align.max(1));
        depth = (depth + u64::from(s.size)).div_ceil(align) * align;
        offsets.push(-(depth.min(i32::MAX as u64) as i32));
    }
    if depth > MAX_STACK {
        return Err(Diagnostic::plain(format!(
            "program needs {depth} bytes of stack, BPF allows {MAX_STACK}"
        )));
    }
    Ok(offsets)
}

/// Emits the BPF code of `func` with registers from `alloc`.
pub fn emit(func: &Function, alloc: &Allocation) -> Result<ProgramCode, Diagnostic> {
    let mut e = Emitter {
        alloc,
        slot_offsets: frame_offsets(&func.slots)?,
        out: Vec::new(),
        map_relocs: Vec::new(),
        source_map: Vec::new(),
        jumps: Vec::new(),
        labels: HashMap::new(),
    };
    if let Some(ctx) = alloc.reg(func.ctx) {
        e.mov_reg(ctx, R1);
    }
    for inst in &func.insts {
        e.inst(inst)?;
    }
    e.resolve_jumps()?;
    Ok(ProgramCode {
        name: func.name.clone(),
        insns: e.out,
        map_relocs: e.map_relocs,
        source_map: e.source_map,
    })
}

/// The right-hand side of an ALU op, branch or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Reg(u8),
    Imm(i32),
}

struct Emitter<'a> {
    alloc: &'a Allocation,
    slot_offsets: Vec<i32>,
    out: Vec<Insn>,
    map_relocs: Vec<MapReloc>,
    source_map: Vec<(usize, crate::diag::Span)>,
    /// Jump instructions (slot index) waiting for their label's position.
    jumps: Vec<(usize, Label)>,
    labels: HashMap<Label, usize>,
}

fn internal(msg: String) -> Diagnostic {
    Diagnostic::plain(format!("internal error: {msg}"))
}

fn alu_code(op: AluOp) -> u8 {
    match op {
        AluOp::Add => alu::ADD,
        AluOp::Sub => alu::SUB,
        AluOp::Mul => alu::MUL,
        AluOp::Div => alu::DIV,
        AluOp::Mod => alu::MOD,
        AluOp::And => alu::AND,
        AluOp::Or => alu::OR,
        AluOp::Xor => alu::XOR,
        AluOp::Lsh => alu::LSH,
        AluOp::Rsh => alu::RSH,
        AluOp::Arsh => alu::ARSH,
        AluOp::FromBe => alu::END,
    }
}

fn is_commutative(op: AluOp) -> bool {
    matches!(
        op,
        AluOp::Add | AluOp::Mul | AluOp::And | AluOp::Or | AluOp::Xor
    )
}

fn jmp_code(cond: Cond) -> u8 {
    match cond {
        Cond::Eq => jmp::JEQ,
        Cond::Ne => jmp::JNE,
        Cond::Gt => jmp::JGT,
        Cond::Ge => jmp::JGE,
        Cond::Lt => jmp::JLT,
        Cond::Le => jmp::JLE,
        Cond::SGt => jmp::JSGT,
        Cond::SGe => jmp::JSGE,
        Cond::SLt => jmp::JSLT,
        Cond::SLe => jmp::JSLE,
        Cond::Set => jmp::JSET,
    }
}

fn size_code(w: Width) -> u8 {
    match w {
        Width::B1 => size::B,
        Width::B2 => size::H,
        Width::B4 => size::W,
        Width::B8 => size::DW,
    }
}

impl Emitter<'_> {
    fn reg(&self, r: VReg) -> Result<u8, Diagnostic> {
        self.alloc
            .reg(r)
            .ok_or_else(|| internal(format!("%{} has no register", r.0)))
    }

    fn mov_reg(&mut self, dst: u8, src: u8) {
        if dst != src {
            self.out.push(Insn::alu64_reg(alu::MOV, dst, src));
        }
    }

    fn load_imm(&mut self, dst: u8, value: i64) {
        match i32::try_from(value) {
            Ok(v) => self.out.push(Insn::alu64_imm(alu::MOV, dst, v)),
            Err(_) => self.out.extend(Insn::ld_imm64(dst, 0, value as u64)),
        }
    }

    /// `dst = operand`.
    fn mov_operand(&mut self, dst: u8, src: Operand) -> Result<(), Diagnostic> {
        match src {
            Operand::Reg(r) => {
                let s = self.reg(r)?;
                self.mov_reg(dst, s)
            }
            Operand::Imm(v) => self.load_imm(dst, v),
        }
        Ok(())
    }

    /// The operand as an instruction source; immediates outside i32 are
    /// first loaded into `scratch`.
    fn source(&mut self, o: Operand, scratch: u8) -> Result<Src, Diagnostic> {
        Ok(match o {
            Operand::Reg(r) => Src::Reg(self.reg(r)?),
            Operand::Imm(v) => match i32::try_from(v) {
                Ok(k) => Src::Imm(k),
                Err(_) => {
                    self.load_imm(scratch, v);
                    Src::Reg(scratch)
                }
            },
        })
    }

    /// Base register and offset of a memory operand.
    fn address(&self, a: Addr) -> Result<(u8, i16), Diagnostic> {
        match a {
            Addr::Reg(r, off) => Ok((self.reg(r)?, off)),
            Addr::Stack(slot, off) => {
                let total = i64::from(self.slot_offset(slot.0)?) + i64::from(off);
                let off = i16::try_from(total)
                    .map_err(|_| internal(format!("stack offset {total} out of range")))?;
                Ok((R10, off))
            }
        }
    }

    fn slot_offset(&self, slot: u32) -> Result<i32, Diagnostic> {
        self.slot_offsets
            .get(slot as usize)
            .copied()
            .ok_or_else(|| internal(format!("unknown stack slot {slot}")))
    }

    fn inst(&mut self, inst: &Inst) -> Result<(), Diagnostic> {
        match inst {
            Inst::Mov { dst, src } => {
                let d = self.reg(*dst)?;
                self.mov_operand(d, *src)?;
            }
            Inst::Alu { op, dst, lhs, rhs } => self.alu(*op, *dst, *lhs, *rhs)?,
            Inst::Neg { dst, src } => {
                let (d, s) = (self.reg(*dst)?, self.reg(*src)?);
                self.mov_reg(d, s);
                self.out.push(Insn::alu64_imm(alu::NEG, d, 0));
            }
            Inst::Load { dst, addr, width } => {
                let d = self.reg(*dst)?;
                let (base, off) = self.address(*addr)?;
                self.out.push(Insn::load(size_code(*width), d, base, off));
            }
            Inst::ReadKernel { .. } => {
                return Err(internal(
                    "kernel reads are expanded before emission".to_string(),
                ))
            }
            Inst::Store { addr, width, src } => {
                let (base, off) = self.address(*addr)?;
                let insn = match self.source(*src, R0)? {
                    Src::Reg(s) => Insn::store_reg(size_code(*width), base, off, s),
                    Src::Imm(k) => Insn::store_imm(size_code(*width), base, off, k),
                };
                self.out.push(insn);
            }
            Inst::CmpXchg {
                base,
                off,
                expected,
                new,
                old,
            } => {
                let (b, e, n, o) = (
                    self.reg(*base)?,
                    self.reg(*expected)?,
                    self.reg(*new)?,
                    self.reg(*old)?,
                );
                self.mov_reg(R0, e);
                self.out.push(Insn::cmpxchg64(b, *off, n));
                self.mov_reg(o, R0);
            }
            Inst::StackAddr { dst, slot, off } => {
                let d = self.reg(*dst)?;
                let total = i64::from(self.slot_offset(slot.0)?) + i64::from(*off);
                let total = i32::try_from(total)
                    .map_err(|_| internal(format!("stack offset {total} out of range")))?;
                self.mov_reg(d, R10);
                self.out.push(Insn::alu64_imm(alu::ADD, d, total));
            }
            Inst::MapPtr { dst, map } => {
                let d = self.reg(*dst)?;
                self.map_relocs.push(MapReloc {
                    insn: self.out.len(),
                    map: *map,
                });
                self.out.extend(Insn::ld_imm64(d, PSEUDO_MAP_FD, 0));
            }
            Inst::Call { helper, args, dst } => {
                if args.len() > MAX_ARGS {
                    return Err(internal(format!(
                        "helper {helper} called with {} arguments",
                        args.len()
                    )));
                }
                let mut moves = Vec::with_capacity(args.len());
                for (i, a) in args.iter().enumerate() {
                    moves.push((i as u8 + 1, *a));
                }
                self.parallel_move(&moves)?;
                let number = i32::try_from(*helper)
                    .map_err(|_| internal(format!("bad helper number {helper}")))?;
                self.out.push(Insn::call(number));
                if let Some(d) = dst {
                    let d = self.reg(*d)?;
                    self.mov_reg(d, R0);
                }
            }
            Inst::Jump(l) => {
                self.jumps.push((self.out.len(), *l));
                self.out.push(Insn::ja(0));
            }
            Inst::Branch {
                cond,
                lhs,
                rhs,
                target,
            } => {
                let l = self.reg(*lhs)?;
                let insn = match self.source(*rhs, R0)? {
                    Src::Reg(r) => Insn::jmp_reg(jmp_code(*cond), l, r, 0),
                    Src::Imm(k) => Insn::jmp_imm(jmp_code(*cond), l, k, 0),
                };
                self.jumps.push((self.out.len(), *target));
                self.out.push(insn);
            }
            Inst::Label(l) => {
                self.labels.insert(*l, self.out.len());
            }
            Inst::Loc(span) => self.source_map.push((self.out.len(), *span)),
            Inst::Exit(v) => {
                self.mov_operand(R0, *v)?;
                self.out.push(Insn::exit());
            }
        }
        Ok(())
    }

    /// `dst = lhs op rhs` in BPF's two-address form.
    fn alu(&mut self, op: AluOp, dst: VReg, lhs: Operand, rhs: Operand) -> Result<(), Diagnostic> {
        let d = self.reg(dst)?;
        if matches!(op, AluOp::Div | AluOp::Mod) && rhs == Operand::Imm(0) {
            // BPF semantics without the verifier's "division by zero" rejection:
            // x / 0 = 0 and x % 0 = x.
            return match op {
                AluOp::Div => self.mov_operand(d, Operand::Imm(0)),
                _ => self.mov_operand(d, lhs),
            };
        }
        if op == AluOp::FromBe {
            let Operand::Imm(bits @ (16 | 32 | 64)) = rhs else {
                return Err(internal(format!("byte swap of {:?} bits", rhs)));
            };
            self.mov_operand(d, lhs)?;
            self.out.push(Insn::to_be(d, bits as i32));
            return Ok(());
        }
        let lhs_reg = match lhs {
            Operand::Reg(r) => Some(self.reg(r)?),
            Operand::Imm(_) => None,
        };
        let mut rhs_src = self.source(rhs, R0)?;
        if rhs_src == Src::Reg(d) && lhs_reg != Some(d) {
            if let (true, Some(l)) = (is_commutative(op), lhs_reg) {
                self.out.push(Insn::alu64_reg(alu_code(op), d, l));
                return Ok(());
            }
            self.mov_reg(R0, d);
            rhs_src = Src::Reg(R0);
        }
        self.mov_operand(d, lhs)?;
        self.out.push(match rhs_src {
            Src::Reg(r) => Insn::alu64_reg(alu_code(op), d, r),
            Src::Imm(k) => Insn::alu64_imm(alu_code(op), d, k),
        });
        Ok(())
    }

    /// Sets the registers `moves[i].0` to the operands `moves[i].1` all at
    /// once: register sources first (cycles broken through r0), then immediates.
    fn parallel_move(&mut self, moves: &[(u8, Operand)]) -> Result<(), Diagnostic> {
        let mut pending = Vec::new();
        for &(d, src) in moves {
            if let Operand::Reg(r) = src {
                let s = self.reg(r)?;
                if s != d {
                    pending.push((d, s));
                }
            }
        }
        while !pending.is_empty() {
            let ready = pending
                .iter()
                .position(|&(d, _)| pending.iter().all(|&(_, s)| s != d));
            match ready {
                Some(i) => {
                    let (d, s) = pending.remove(i);
                    self.mov_reg(d, s);
                }
                None => {
                    // Every destination is still needed as a source: a cycle.
                    let saved = pending[0].0;
                    self.mov_reg(R0, saved);
                    for m in pending.iter_mut().filter(|m| m.1 == saved) {
                        m.1 = R0;
                    }
                }
            }
        }
        for &(d, src) in moves {
            if let Operand::Imm(v) = src {
                self.load_imm(d, v);
            }
        }
        Ok(())
    }

    fn resolve_jumps(&mut self) -> Result<(), Diagnostic> {
        for &(at, label) in &self.jumps {
            let target = *self
                .labels
                .get(&label)
                .ok_or_else(|| internal(format!("undefined label L{}", label.0)))?;
            let distance = target as i64 - at as i64 - 1;
            self.out[at].off = i16::try_from(distance).map_err(|_| {
                Diagnostic::plain(format!(
                    "jump of {distance} instructions is too far for BPF"
                ))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_aligned_and_limited() {
        let slots = [
            SlotInfo { size: 4, align: 4 },
            SlotInfo { size: 8, align: 8 },
            SlotInfo { size: 1, align: 1 },
        ];
        assert_eq!(frame_offsets(&slots).unwrap(), vec![-4, -16, -17]);
        let big = [
            SlotInfo {
                size: 500,
                align: 8,
            },
            SlotInfo { size: 16, align: 8 },
        ];
        let err = frame_offsets(&big).unwrap_err();
        assert_eq!(
            err.message,
            "program needs 520 bytes of stack, BPF allows 512"
        );
        assert!(err.span.is_none());
    }
}
