//! Linear-scan register allocation over live intervals. When registers run
//! out, a virtual register is spilled by rewriting the IR (each def goes
//! through a fresh temporary that is stored to an 8-byte slot, each use
//! loads into a fresh temporary) and allocation starts over.

use super::liveness::{self, Interval};
use crate::diag::Diagnostic;
use crate::ir::{Addr, Function, Inst, Operand, VReg, Width};

/// Registers usable by values that do not live across a call, in order of preference.
const ANY_REGS: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];
/// Callee-saved registers: the only ones that survive a helper call.
const CALLEE_SAVED: [u8; 4] = [6, 7, 8, 9];

/// The BPF register of every virtual register that has a live interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    regs: Vec<Option<u8>>,
}

impl Allocation {
    /// The BPF register holding `r`, or `None` if `r` never occurs.
    pub fn reg(&self, r: VReg) -> Option<u8> {
        self.regs.get(r.0 as usize).copied().flatten()
    }
}

/// Allocates registers, spilling into new stack slots of `func` (the IR is
/// rewritten in place) until every interval has a register.
pub fn allocate(func: &mut Function) -> Result<Allocation, Diagnostic> {
    let first_temp = func.vreg_count;
    // Each round spills at least one original register, and never a temporary.
    for _ in 0..=first_temp {
        let intervals = liveness::intervals(func)?;
        let calls: Vec<usize> = func
            .insts
            .iter()
            .enumerate()
            .filter(|(_, i)| matches!(i, Inst::Call { .. }))
            .map(|(i, _)| i)
            .collect();
        match linear_scan(&intervals, &calls, func.vreg_count, |r| r.0 < first_temp)? {
            Ok(alloc) => return Ok(alloc),
            Err(spilled) => spill(func, &spilled),
        }
    }
    Err(Diagnostic::plain(
        "internal error: register allocation did not converge",
    ))
}

/// True if the interval must survive one of the `calls` (sorted instruction indices).
fn crosses_call(iv: &Interval, calls: &[usize]) -> bool {
    let first = calls.partition_point(|&c| 2 * (c as u32) < iv.start);
    calls.get(first).is_some_and(|&c| iv.crosses(c))
}

/// One linear-scan pass: the allocation, or the registers to spill.
fn linear_scan(
    intervals: &[Interval],
    calls: &[usize],
    vreg_count: u32,
    spillable: impl Fn(VReg) -> bool,
) -> Result<Result<Allocation, Vec<VReg>>, Diagnostic> {
    let mut regs = vec![None; vreg_count as usize];
    let mut active: Vec<(Interval, u8)> = Vec::new();
    let mut spilled = Vec::new();
    for iv in intervals {
        active.retain(|(a, _)| a.end >= iv.start);
        let allowed: &[u8] = if crosses_call(iv, calls) {
            &CALLEE_SAVED
        } else {
            &ANY_REGS
        };
        let free = allowed
            .iter()
            .copied()
            .find(|r| active.iter().all(|(_, used)| used != r));
        let reg = match free {
            Some(r) => r,
            None => {
                // Spill whichever candidate ends furthest away.
                let victim = active
                    .iter()
                    .enumerate()
                    .filter(|(_, (a, r))| allowed.contains(r) && spillable(a.vreg))
                    .max_by_key(|(_, (a, _))| a.end)
                    .map(|(i, (a, r))| (i, a.end, *r));
                match victim {
                    Some((i, end, r)) if end > iv.end || !spillable(iv.vreg) => {
                        spilled.push(active.remove(i).0.vreg);
                        r
                    }
                    _ if spillable(iv.vreg) => {
                        spilled.push(iv.vreg);
                        continue;
                    }
                    _ => {
                        return Err(Diagnostic::plain(
                            "internal error: too many spill temporaries live at once",
                        ))
                    }
                }
            }
        };
        regs[iv.vreg.0 as usize] = Some(reg);
        active.push((*iv, reg));
    }
    Ok(if spilled.is_empty() {
        Ok(Allocation { regs })
    } else {
        Err(spilled)
    })
}

/// Rewrites `func` so that each of `victims` lives in a new 8-byte stack
/// slot, in one pass over the instructions. The result is the one spilling
/// them one after another would give (each victim's temporaries numbered
/// after the previous victim's, its loads after theirs), so a spill does
/// not change the allocation's tie-breaks.
fn spill(func: &mut Function, victims: &[VReg]) {
    let mut victim_of = vec![None; func.vreg_count as usize];
    for (k, v) in victims.iter().enumerate() {
        victim_of[v.0 as usize] = Some(k);
    }
    let victim = |r: VReg| victim_of.get(r.0 as usize).copied().flatten();
    // The victims `inst` reads, in victim order, into `read`.
    let victims_read = |inst: &Inst, read: &mut Vec<usize>| {
        read.clear();
        liveness::visit_uses(inst, |r| read.extend(victim(r)));
        read.sort_unstable();
        read.dedup();
    };
    // Temporaries per victim: the context's entry copy, one per reading
    // and one per writing instruction.
    let mut temps = vec![0u32; victims.len()];
    if let Some(k) = victim(func.ctx) {
        temps[k] += 1;
    }
    let mut read = Vec::new();
    for inst in &func.insts {
        victims_read(inst, &mut read);
        read.iter().for_each(|&k| temps[k] += 1);
        if let Some(k) = liveness::def(inst).and_then(victim) {
            temps[k] += 1;
        }
    }
    let mut next: Vec<u32> = temps
        .iter()
        .scan(func.vreg_count, |first, n| {
            *first += n;
            Some(*first - n)
        })
        .collect();
    func.vreg_count += temps.iter().sum::<u32>();
    let slots: Vec<Addr> = victims
        .iter()
        .map(|_| Addr::Stack(func.slot(8, 8), 0))
        .collect();
    let mut temp = |k: usize| {
        next[k] += 1;
        VReg(next[k] - 1)
    };
    let mut out = Vec::with_capacity(func.insts.len() + temps.iter().sum::<u32>() as usize);
    if let Some(k) = victim(func.ctx) {
        func.ctx = temp(k);
        out.push(Inst::Store {
            addr: slots[k],
            width: Width::B8,
            src: Operand::Reg(func.ctx),
        });
    }
    for mut inst in std::mem::take(&mut func.insts) {
        victims_read(&inst, &mut read);
        for &k in &read {
            let loaded = temp(k);
            out.push(Inst::Load {
                dst: loaded,
                addr: slots[k],
                width: Width::B8,
            });
            liveness::visit_uses_mut(&mut inst, |r| {
                if *r == victims[k] {
                    *r = loaded
                }
            });
        }
        let stored = match liveness::def_mut(&mut inst) {
            Some(d) => victim(*d).map(|k| {
                *d = temp(k);
                (k, *d)
            }),
            None => None,
        };
        out.push(inst);
        if let Some((k, t)) = stored {
            out.push(Inst::Store {
                addr: slots[k],
                width: Width::B8,
                src: Operand::Reg(t),
            });
        }
    }
    func.insts = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::helper;
    use crate::ir::AluOp;

    /// `n` values live at once, then summed; returns the function and the values.
    fn many_live(n: usize) -> (Function, Vec<VReg>) {
        let mut f = Function::new("many");
        let vals: Vec<VReg> = (0..n).map(|_| f.vreg()).collect();
        for (k, &v) in vals.iter().enumerate() {
            f.push(Inst::Mov {
                dst: v,
                src: Operand::Imm(k as i64 + 1),
            });
        }
        let sum = f.vreg();
        f.push(Inst::Mov {
            dst: sum,
            src: Operand::Imm(0),
        });
        for &v in &vals {
            f.push(Inst::Alu {
                op: AluOp::Add,
                dst: sum,
                lhs: Operand::Reg(sum),
                rhs: Operand::Reg(v),
            });
        }
        f.push(Inst::Exit(Operand::Reg(sum)));
        (f, vals)
    }

    #[test]
    fn values_crossing_a_call_get_callee_saved_registers() {
        let mut f = Function::new("t");
        let (a, b, t, c) = (f.vreg(), f.vreg(), f.vreg(), f.vreg());
        f.push(Inst::Mov {
            dst: a,
            src: Operand::Imm(1),
        });
        f.push(Inst::Mov {
            dst: b,
            src: Operand::Imm(2),
        });
        f.push(Inst::Call {
            helper: helper::KTIME_GET_NS,
            args: vec![],
            dst: Some(t),
        });
        f.push(Inst::Alu {
            op: AluOp::Add,
            dst: c,
            lhs: Operand::Reg(a),
            rhs: Operand::Reg(b),
        });
        f.push(Inst::Alu {
            op: AluOp::Add,
            dst: c,
            lhs: Operand::Reg(c),
            rhs: Operand::Reg(t),
        });
        f.push(Inst::Exit(Operand::Reg(c)));
        let alloc = allocate(&mut f).unwrap();
        for r in [a, b] {
            let reg = alloc.reg(r).unwrap();
            assert!((6..=9).contains(&reg), "{r:?} in r{reg}");
        }
        // The call result does not cross a call: a caller-saved register is preferred.
        assert!((1..=5).contains(&alloc.reg(t).unwrap()));
    }

    #[test]
    fn more_than_four_values_across_a_call_spill() {
        let mut f = Function::new("t");
        let vals: Vec<VReg> = (0..6).map(|_| f.vreg()).collect();
        for &v in &vals {
            f.push(Inst::Mov {
                dst: v,
                src: Operand::Imm(7),
            });
        }
        f.push(Inst::Call {
            helper: helper::KTIME_GET_NS,
            args: vec![],
            dst: None,
        });
        let sum = f.vreg();
        f.push(Inst::Mov {
            dst: sum,
            src: Operand::Imm(0),
        });
        for &v in &vals {
            f.push(Inst::Alu {
                op: AluOp::Add,
                dst: sum,
                lhs: Operand::Reg(sum),
                rhs: Operand::Reg(v),
            });
        }
        f.push(Inst::Exit(Operand::Reg(sum)));
        let alloc = allocate(&mut f).unwrap();
        assert_eq!(f.slots.len(), 2, "two of six values spilled");
        let call = f
            .insts
            .iter()
            .position(|i| matches!(i, Inst::Call { .. }))
            .unwrap();
        for iv in liveness::intervals(&f).unwrap() {
            if iv.crosses(call) {
                assert!((6..=9).contains(&alloc.reg(iv.vreg).unwrap()));
            }
        }
    }

    #[test]
    fn twenty_live_values_spill_and_never_share_a_register() {
        let (mut f, _) = many_live(20);
        let alloc = allocate(&mut f).unwrap();
        assert!(
            f.slots.len() >= 11,
            "at least 11 of 20 values spilled, got {}",
            f.slots.len()
        );
        let ivs = liveness::intervals(&f).unwrap();
        for (i, x) in ivs.iter().enumerate() {
            for y in &ivs[i + 1..] {
                if y.start <= x.end {
                    assert_ne!(
                        alloc.reg(x.vreg),
                        alloc.reg(y.vreg),
                        "{x:?} and {y:?} overlap"
                    );
                }
            }
        }
    }

    #[test]
    fn spilling_several_at_once_is_spilling_them_in_turn() {
        let (f, vals) = many_live(6);
        let sum = VReg(f.vreg_count - 1);
        // Out of register order, with the context and an instruction
        // (`sum += v`) that reads two of them.
        let victims = [vals[4], sum, f.ctx, vals[1]];
        let mut at_once = f.clone();
        spill(&mut at_once, &victims);
        let mut in_turn = f;
        for v in victims {
            spill(&mut in_turn, &[v]);
        }
        assert_eq!(at_once.insts, in_turn.insts);
        assert_eq!(
            (at_once.vreg_count, at_once.ctx, at_once.slots.len()),
            (in_turn.vreg_count, in_turn.ctx, in_turn.slots.len())
        );
    }

    #[test]
    fn spilled_context_is_stored_at_entry() {
        let mut f = Function::new("t");
        let ctx = f.ctx;
        spill(&mut f, &[ctx]);
        assert_ne!(f.ctx, ctx);
        assert_eq!(
            f.insts[0],
            Inst::Store {
                addr: Addr::Stack(crate::ir::Slot(0), 0),
                width: Width::B8,
                src: Operand::Reg(f.ctx)
            }
        );
    }
}
