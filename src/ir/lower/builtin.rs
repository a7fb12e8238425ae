//! Lowering of built-in variables (`pid`, `comm`, `kstack`, `pkt`, ...)
//! and of the built-in functions that are not rate limits: `kstack(n)`
//! and `ntop()`.

use super::mem::{Base, Place};
use super::{Lower, Val};
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::builtins::Var;
use crate::diag::Result;
use crate::ir::{Addr, AluOp, Operand, VReg, Width};
use crate::sema::tast::Expr;

/// Which half of a helper's 64-bit result a built-in variable is.
#[derive(Clone, Copy)]
enum Half {
    /// The upper 32 bits (the tgid of `pid_tgid`, the gid of `uid_gid`).
    High,
    /// The lower 32 bits.
    Low,
}

impl Lower<'_> {
    /// A built-in variable.
    pub(super) fn builtin(&mut self, v: Var) -> Val {
        let r = match v {
            Var::Packet => self.packet_start(),
            Var::PacketLen => self.packet_len(),
            Var::Pid => self.helper_half(helper::GET_CURRENT_PID_TGID, Half::High),
            Var::Tid => self.helper_half(helper::GET_CURRENT_PID_TGID, Half::Low),
            Var::Uid => self.helper_half(helper::GET_CURRENT_UID_GID, Half::Low),
            Var::Gid => self.helper_half(helper::GET_CURRENT_UID_GID, Half::High),
            Var::Nsecs => self.f.helper_value(helper::KTIME_GET_NS),
            Var::Elapsed => {
                let r = self.f.helper_value(helper::KTIME_GET_NS);
                self.f.alu_imm(AluOp::Sub, r, r, self.start_ns as i64);
                r
            }
            Var::Cpu => self.f.helper_value(helper::GET_SMP_PROCESSOR_ID),
            Var::Curtask => self.f.helper_value(helper::GET_CURRENT_TASK),
            Var::Cgroup => self.f.helper_value(helper::GET_CURRENT_CGROUP_ID),
            Var::Comm => return self.comm(),
            Var::Kstack => {
                let stacks = self.maps.stacks.expect("the checker marks kstack use");
                self.stack_id(MapId(stacks))
            }
        };
        Val::Reg(r)
    }

    /// One half of the result of a helper that takes no argument.
    fn helper_half(&mut self, helper: u32, half: Half) -> VReg {
        let r = self.f.helper_value(helper);
        match half {
            Half::High => self.f.alu_imm(AluOp::Rsh, r, r, 32),
            Half::Low => {
                self.f.alu_imm(AluOp::Lsh, r, r, 32);
                self.f.alu_imm(AluOp::Rsh, r, r, 32);
            }
        }
        r
    }

    /// `comm`: the current task's name, in a temporary slot.
    fn comm(&mut self) -> Val {
        let size = crate::types::COMM_SIZE;
        let slot = self.temp(size);
        let dst = self.addr(Place::stack(slot));
        let args = [dst, Operand::Imm(size.into())];
        self.f.call_helper(helper::GET_CURRENT_COMM, &args, None);
        Val::Mem(slot, size)
    }

    /// The id of the current kernel stack in stack-trace map `stacks`.
    pub(super) fn stack_id(&mut self, stacks: MapId) -> VReg {
        let id = self.f.vreg();
        let m = self.f.map_ptr(stacks);
        let args = [Operand::Reg(self.f.ctx), Operand::Reg(m), Operand::Imm(0)];
        self.f.call_helper(helper::GET_STACKID, &args, Some(id));
        id
    }

    /// `kstack(limit)`: the stack's id, with how many frames to print in
    /// its upper 32 bits.
    pub(super) fn kstack(&mut self, limit: u8) -> Val {
        let v = self.builtin(Var::Kstack);
        if let (Val::Reg(r), 1..) = (v, limit) {
            self.f.alu_imm(AluOp::Or, r, r, i64::from(limit) << 32);
        }
        v
    }

    /// `ntop(family, addr)`: the family (u32) and the address's 4 or 16
    /// bytes, for user space to print.
    pub(super) fn ntop(&mut self, family: u32, addr: &Expr) -> Result<Val> {
        let slot = self.temp(24);
        self.zero(Place::stack(slot), 24);
        let family = i64::from(family);
        self.f.store_imm(Addr::Stack(slot, 0), Width::B4, family);
        match self.expr(addr)? {
            Val::Reg(r) => self.f.store_reg(Addr::Stack(slot, 4), Width::B4, r),
            Val::Mem(src, n) => self.copy(
                Place {
                    base: Base::Stack(slot),
                    off: 4,
                },
                Place::stack(src),
                n.min(16),
            ),
        }
        Ok(Val::Mem(slot, 20))
    }
}
