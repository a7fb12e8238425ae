//! Recalled first stages: a stage without a packet (an application's
//! send) marks its time under an owner (the socket) at a position (the
//! sequence number); the first stage with a packet recalls the mark its
//! span `(owner, start, length)` holds.

use super::mem::{Base, Place};
use super::{Lower, Val};
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::diag::{Diagnostic, Result};
use crate::ir::layout::{mark, PathLayout, PathMaps, StageTime, STAGE_CTX_SIZE};
use crate::ir::{Addr, AluOp, Cond, Operand, Slot, VReg, Width};
use crate::sema::tast::{Expr, PathInfo};
use crate::types::{tuple_layout, Ty};

/// The error of a mark or span the checker should have refused.
pub(super) const MARK_SHAPE: &str =
    "internal error: a recalled stage's mark is (owner, position), its span (owner, start, length)";

impl Lower<'_> {
    /// Marks the recalled first stage of path `path` at `mark`, `(owner,
    /// position)`: its time (and context, with packet reports) is kept
    /// under the owner, unless an earlier mark of the owner is pending (a
    /// packet holding both positions is given the earlier: the earliest
    /// send in a segment). A mark at the pending one's position replaces
    /// it (the earlier call queued nothing there), and so does any mark
    /// once the pending one is older than the path's timeout.
    pub(super) fn path_mark(&mut self, path: u32, mark: &Expr) -> Result<()> {
        let info = &self.script.paths[path as usize];
        let value = self.expr(mark)?;
        let (Some(marks), Some([owner, position])) = (
            self.maps.paths[path as usize].marks,
            self.integers(value, &mark.ty),
        ) else {
            return Err(Diagnostic::at(mark.span, MARK_SHAPE));
        };
        let now = self.f.helper_value(helper::KTIME_GET_NS);
        let (done, write) = (self.f.label(), self.f.label());
        let key = self.owner_key(owner);
        let m = self.value_ptr(MapId(marks), key, mark::size(info), done);
        let pending = self.load_at(m, mark::TIME);
        self.f.branch_imm(Cond::Eq, pending, 0, write);
        let at = self.load_at(m, mark::POS);
        self.f.branch_reg(Cond::Eq, at, position, write);
        let age = self.f.vreg();
        self.f.alu_reg(AluOp::Sub, age, now, pending);
        let timeout = info.timeout_ns as i64;
        self.f.branch_imm(Cond::Le, age, timeout, done);
        self.f.bind(write);
        self.store_at(m, mark::POS, Operand::Reg(position));
        if info.detail {
            self.stage_context(info, m, mark::CTX, None);
        }
        self.store_at(m, mark::TIME, Operand::Reg(now));
        self.f.bind(done);
        Ok(())
    }

    /// Gives the recalled first stage of the packet whose record is at `p`
    /// the time (and context) of its owner's pending mark when the
    /// packet's span `(owner, start, length)`, the tuple `value` of type
    /// `ty`, holds the mark's position (positions are compared modulo
    /// 2^32, as TCP sequence numbers are); the mark is then taken. A mark
    /// before the span is dropped: its packet went by unrecalled. A packet
    /// of length 0 recalls nothing and costs no lookup. `None` when the
    /// path has no marks or `value` is no span.
    pub(super) fn recall(
        &mut self,
        info: &PathInfo,
        layout: &PathLayout,
        maps: PathMaps,
        p: VReg,
        value: Val,
        ty: &Ty,
    ) -> Option<()> {
        let (marks, [owner, start, length]) = (maps.marks?, self.integers(value, ty)?);
        let (done, outside, take) = (self.f.label(), self.f.label(), self.f.label());
        self.f.branch_imm(Cond::Eq, length, 0, done);
        let key = self.owner_key(owner);
        let m = self.lookup_or(MapId(marks), key, done);
        let time = self.load_at(m, mark::TIME);
        self.f.branch_imm(Cond::Eq, time, 0, done);
        let distance = self.load_at(m, mark::POS);
        self.f.alu_reg(AluOp::Sub, distance, distance, start);
        self.f.alu_imm(AluOp::And, distance, distance, 0xffff_ffff);
        self.f.branch_reg(Cond::Ge, distance, length, outside);
        // The recalled stage is the path's first.
        if let StageTime::Record(ts) = layout.stage_time(0) {
            self.store_at(p, ts, Operand::Reg(time));
        }
        if info.detail {
            let at = |off: u32, base: VReg| Place {
                base: Base::Ptr(base),
                off: off as i32,
            };
            self.copy(
                at(layout.record_ctx(0), p),
                at(mark::CTX, m),
                STAGE_CTX_SIZE,
            );
        }
        self.f.jump(take);
        self.f.bind(outside);
        // At or after the span's end: still pending.
        self.f.branch_imm(Cond::Lt, distance, 1 << 31, done);
        self.f.bind(take);
        self.store_at(m, mark::TIME, Operand::Imm(0));
        self.f.bind(done);
        Some(())
    }

    /// The `N` integers of tuple `value` of type `ty` (a mark, a span, a
    /// capture), each in a register; `None` for anything else.
    pub(super) fn integers<const N: usize>(&mut self, value: Val, ty: &Ty) -> Option<[VReg; N]> {
        let (Ty::Tuple(items), Val::Mem(slot, _)) = (ty, value) else {
            return None;
        };
        let (offsets, _) = tuple_layout(items);
        let regs: Vec<VReg> = items
            .iter()
            .zip(offsets)
            .map(|(item, off)| {
                let width = Width::from_bytes(u64::from(item.storage_size()));
                let addr = Addr::Stack(slot, off as i32);
                self.f.load(addr, width.unwrap_or(Width::B8))
            })
            .collect();
        regs.try_into().ok()
    }

    /// A stack slot holding `owner`, a key of a marks map.
    fn owner_key(&mut self, owner: VReg) -> Slot {
        let key = self.temp(8);
        self.f.store_reg(Addr::Stack(key, 0), Width::B8, owner);
        key
    }
}
