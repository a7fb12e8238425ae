//! Rate limits: `ratelimit(n)` and the global limit of a path's reports,
//! both a token bucket shared by all CPUs.

use super::Lower;
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::diag::{Diagnostic, Result, Span};
use crate::ir::{Addr, AluOp, Cond, Inst, Label, Operand, VReg, Width};

impl Lower<'_> {
    /// `ratelimit(per_second)`, the call's limiter element `slot` of the
    /// rate-limit map: 1 when an event may be sent now, else 0.
    pub(super) fn ratelimit(&mut self, span: Span, per_second: u64, slot: u32) -> Result<VReg> {
        let Some(map) = self.maps.rate_limits else {
            return Err(Diagnostic::at(
                span,
                "internal error: no rate-limit map for ratelimit()",
            ));
        };
        let (result, now) = (self.f.vreg(), self.f.vreg());
        self.f.mov_imm(result, 0);
        self.f.call_helper(helper::KTIME_GET_NS, &[], Some(now));
        let (allowed, done) = (self.f.label(), self.f.label());
        self.rate_limit(MapId(map), slot, per_second, now, allowed);
        self.f.jump(done);
        self.f.bind(allowed);
        self.f.mov_imm(result, 1);
        self.f.bind(done);
        Ok(result)
    }

    /// A token bucket shared by all CPUs (the generic cell rate algorithm:
    /// one "next allowed time" per limiter, element `index` of array `map`,
    /// advanced with compare-and-exchange): jumps to `allowed` when an
    /// event may be sent now, falls through when it is over the limit. A
    /// burst of a tenth of a second's worth is allowed. Used by paths and
    /// by `ratelimit()`.
    pub(super) fn rate_limit(
        &mut self,
        map: MapId,
        index: u32,
        per_second: u64,
        now: VReg,
        allowed: Label,
    ) {
        let period = (1_000_000_000 / per_second).max(1) as i64;
        let burst = period * (per_second as i64 / 10).max(1);
        let over = self.f.label();
        let q = self.lookup_index(map, index, over);
        let (tat, base, ahead) = (self.f.vreg(), self.f.vreg(), self.f.vreg());
        self.f.load_into(tat, Addr::Reg(q, 0), Width::B8);
        self.f.mov_reg(base, tat);
        let later = self.f.label();
        self.f.branch_reg(Cond::Ge, tat, now, later);
        self.f.mov_reg(base, now);
        self.f.bind(later);
        self.f.alu_reg(AluOp::Sub, ahead, base, now);
        self.f.branch_imm(Cond::Gt, ahead, burst, over);
        self.f.alu_imm(AluOp::Add, base, base, period);
        if self.script.plain_rate_limits {
            // No compare-and-exchange (before 5.12): CPUs racing for the
            // last slot may both take it.
            self.store_at(q, 0, Operand::Reg(base));
            self.f.jump(allowed);
            self.f.bind(over);
            return;
        }
        // Claim the slot atomically: if another CPU moved the time on
        // since we read it, this event is over the limit.
        let old = self.f.vreg();
        self.f.push(Inst::CmpXchg {
            base: q,
            off: 0,
            expected: tat,
            new: base,
            old,
        });
        self.f.branch_reg(Cond::Eq, old, tat, allowed);
        self.f.bind(over);
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::layout::MapTable;
    use crate::ir::{lower, Addr, Inst, Width};
    use crate::sema::{check, Options};
    use crate::syntax::parse;

    /// `ratelimit()` lowered with `plain_rate_limits`: whether it has a
    /// compare-and-exchange, and how many 8-byte stores through a pointer.
    fn claims(plain: bool) -> (bool, usize) {
        let options = Options {
            plain_rate_limits: plain,
            ..Default::default()
        };
        let ast = parse("BEGIN { @a = ratelimit(10); }").expect("parses");
        let script = check(&ast, &options).expect("checks");
        let f = lower::lower(&script, &MapTable::new(&script), 0)
            .expect("lowers")
            .remove(0);
        let stores = f.insts.iter().filter(|i| {
            matches!(
                i,
                Inst::Store {
                    addr: Addr::Reg(..),
                    width: Width::B8,
                    ..
                }
            )
        });
        (f.uses_cmpxchg(), stores.count())
    }

    #[test]
    fn a_rate_limit_claims_its_slot_with_cmpxchg_else_a_plain_store() {
        let (cmpxchg, stores) = claims(false);
        assert!(cmpxchg);
        assert_eq!(claims(true), (false, stores + 1));
    }
}
