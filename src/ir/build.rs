//! Building a [`Function`] an instruction at a time: one short method per
//! shape lowering emits (in the spirit of ply's `ir_emit_*`), so a reader
//! sees `f.branch_imm(Cond::Eq, x, 0, skip)` rather than a struct literal.
//! A method that returns a [`VReg`] puts its result in a fresh register;
//! the others write registers the caller names.

use super::{Addr, AluOp, Cond, Function, Inst, Label, Operand, Slot, VReg, Width};
use crate::bpf::{helper, MapId};

impl Function {
    /// `dst = v`
    pub fn mov_imm(&mut self, dst: VReg, v: i64) {
        self.push(Inst::Mov {
            dst,
            src: Operand::Imm(v),
        });
    }

    /// `dst = src`
    pub fn mov_reg(&mut self, dst: VReg, src: VReg) {
        self.push(Inst::Mov {
            dst,
            src: Operand::Reg(src),
        });
    }

    /// A fresh register holding `v`.
    pub fn imm(&mut self, v: i64) -> VReg {
        let r = self.vreg();
        self.mov_imm(r, v);
        r
    }

    /// `dst = -src`
    pub fn neg(&mut self, dst: VReg, src: VReg) {
        self.push(Inst::Neg { dst, src });
    }

    /// `dst = lhs op rhs`, either operand a register or a constant.
    pub fn alu(&mut self, op: AluOp, dst: VReg, lhs: Operand, rhs: Operand) {
        self.push(Inst::Alu { op, dst, lhs, rhs });
    }

    /// `dst = lhs op imm`
    pub fn alu_imm(&mut self, op: AluOp, dst: VReg, lhs: VReg, imm: i64) {
        self.alu(op, dst, Operand::Reg(lhs), Operand::Imm(imm));
    }

    /// `dst = lhs op rhs`
    pub fn alu_reg(&mut self, op: AluOp, dst: VReg, lhs: VReg, rhs: VReg) {
        self.alu(op, dst, Operand::Reg(lhs), Operand::Reg(rhs));
    }

    /// `dst = *(width *)addr`, zero-extended.
    pub fn load_into(&mut self, dst: VReg, addr: Addr, width: Width) {
        self.push(Inst::Load { dst, addr, width });
    }

    /// `*(width *)addr` in a fresh register, zero-extended.
    pub fn load(&mut self, addr: Addr, width: Width) -> VReg {
        let dst = self.vreg();
        self.load_into(dst, addr, width);
        dst
    }

    /// `*(width *)(ctx + off)`: a field of the program's context.
    pub fn ctx_load(&mut self, off: i16, width: Width) -> VReg {
        self.load(Addr::Reg(self.ctx, off), width)
    }

    /// `*(width *)addr = src`, `src` a register or a constant.
    pub fn store(&mut self, addr: Addr, width: Width, src: Operand) {
        self.push(Inst::Store { addr, width, src });
    }

    /// `*(width *)addr = src`
    pub fn store_reg(&mut self, addr: Addr, width: Width, src: VReg) {
        self.store(addr, width, Operand::Reg(src));
    }

    /// `*(width *)addr = imm`
    pub fn store_imm(&mut self, addr: Addr, width: Width, imm: i64) {
        self.store(addr, width, Operand::Imm(imm));
    }

    /// `*(width *)(base + off)` read from kernel memory (zero when the
    /// read fails); see [`Inst::ReadKernel`].
    pub fn read_kernel(&mut self, base: VReg, off: u32, width: Width) -> VReg {
        let dst = self.vreg();
        self.push(Inst::ReadKernel {
            dst,
            base,
            off: off as i32,
            width,
        });
        dst
    }

    /// The address of `slot + off` (a stack pointer).
    pub fn stack_addr(&mut self, slot: Slot, off: i32) -> VReg {
        let dst = self.vreg();
        self.push(Inst::StackAddr { dst, slot, off });
        dst
    }

    /// The pointer to `map`.
    pub fn map_ptr(&mut self, map: MapId) -> VReg {
        let dst = self.vreg();
        self.push(Inst::MapPtr { dst, map });
        dst
    }

    /// Places `label`: jumps to it continue at the next instruction.
    pub fn bind(&mut self, label: Label) {
        self.push(Inst::Label(label));
    }

    /// `goto target`
    pub fn jump(&mut self, target: Label) {
        self.push(Inst::Jump(target));
    }

    /// `if lhs cond rhs goto target`, `rhs` a register or a constant.
    pub fn branch(&mut self, cond: Cond, lhs: VReg, rhs: Operand, target: Label) {
        self.push(Inst::Branch {
            cond,
            lhs,
            rhs,
            target,
        });
    }

    /// `if lhs cond imm goto target`
    pub fn branch_imm(&mut self, cond: Cond, lhs: VReg, imm: i64, target: Label) {
        self.branch(cond, lhs, Operand::Imm(imm), target);
    }

    /// `if lhs cond rhs goto target`
    pub fn branch_reg(&mut self, cond: Cond, lhs: VReg, rhs: VReg, target: Label) {
        self.branch(cond, lhs, Operand::Reg(rhs), target);
    }

    /// Calls kernel helper `helper` (a `bpf::helper` number) with up to
    /// five arguments (they go to r1..r5); its result (r0) goes to `dst`.
    pub fn call_helper(&mut self, helper: u32, args: &[Operand], dst: Option<VReg>) {
        self.push(Inst::Call {
            helper,
            args: args.to_vec(),
            dst,
        });
    }

    /// The result of helper `helper`, which takes no argument, in a fresh
    /// register.
    pub fn helper_value(&mut self, helper: u32) -> VReg {
        let dst = self.vreg();
        self.call_helper(helper, &[], Some(dst));
        dst
    }

    /// `bpf_probe_read_kernel(dst, len, src)`: copies `len` bytes of kernel
    /// memory at `src` to `dst` (zeroes them when the read fails).
    pub fn probe_read(&mut self, dst: Operand, len: u32, src: VReg) {
        let args = [dst, Operand::Imm(len.into()), Operand::Reg(src)];
        self.call_helper(helper::PROBE_READ_KERNEL, &args, None);
    }

    /// `bpf_probe_read_kernel_str(dst, len, src)`: [`Function::probe_read`]
    /// up to and including the first NUL.
    pub fn probe_read_str(&mut self, dst: Operand, len: u32, src: VReg) {
        let args = [dst, Operand::Imm(len.into()), Operand::Reg(src)];
        self.call_helper(helper::PROBE_READ_KERNEL_STR, &args, None);
    }

    /// `dst = bpf_map_lookup_elem(map, &key)`: the value's pointer, or 0.
    pub fn map_lookup(&mut self, dst: VReg, map: MapId, key: Slot) {
        let (m, k) = (self.map_ptr(map), self.stack_addr(key, 0));
        let args = [Operand::Reg(m), Operand::Reg(k)];
        self.call_helper(helper::MAP_LOOKUP_ELEM, &args, Some(dst));
    }

    /// `bpf_map_update_elem(map, &key, &value, flags)`.
    pub fn map_update(&mut self, map: MapId, key: Slot, value: Slot, flags: i64) {
        let (m, k, v) = (
            self.map_ptr(map),
            self.stack_addr(key, 0),
            self.stack_addr(value, 0),
        );
        let args = [
            Operand::Reg(m),
            Operand::Reg(k),
            Operand::Reg(v),
            Operand::Imm(flags),
        ];
        self.call_helper(helper::MAP_UPDATE_ELEM, &args, None);
    }

    /// `bpf_map_delete_elem(map, &key)`.
    pub fn map_delete(&mut self, map: MapId, key: Slot) {
        let (m, k) = (self.map_ptr(map), self.stack_addr(key, 0));
        let args = [Operand::Reg(m), Operand::Reg(k)];
        self.call_helper(helper::MAP_DELETE_ELEM, &args, None);
    }

    /// Leaves the program, returning `code`.
    pub fn exit(&mut self, code: i64) {
        self.push(Inst::Exit(Operand::Imm(code)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instructions `build` adds to a function with registers %0..%3
    /// and two labels, and how many registers it added.
    fn built(build: impl FnOnce(&mut Function)) -> (Vec<Inst>, u32) {
        let mut f = Function::new("t");
        for _ in 0..3 {
            f.vreg();
        }
        for _ in 0..2 {
            f.label();
        }
        build(&mut f);
        (f.insts, f.vreg_count - 4)
    }

    #[test]
    fn moves_and_arithmetic_name_their_operands() {
        let (r1, r2) = (VReg(1), VReg(2));
        let (insts, fresh) = built(|f| {
            f.mov_imm(r1, 7);
            f.mov_reg(r2, r1);
            f.alu_imm(AluOp::Add, r1, r2, 3);
            f.alu_reg(AluOp::Sub, r2, r2, r1);
            assert_eq!(f.imm(-1), VReg(4));
        });
        assert_eq!(
            insts,
            vec![
                Inst::Mov {
                    dst: r1,
                    src: Operand::Imm(7)
                },
                Inst::Mov {
                    dst: r2,
                    src: Operand::Reg(r1)
                },
                Inst::Alu {
                    op: AluOp::Add,
                    dst: r1,
                    lhs: Operand::Reg(r2),
                    rhs: Operand::Imm(3)
                },
                Inst::Alu {
                    op: AluOp::Sub,
                    dst: r2,
                    lhs: Operand::Reg(r2),
                    rhs: Operand::Reg(r1)
                },
                Inst::Mov {
                    dst: VReg(4),
                    src: Operand::Imm(-1)
                },
            ]
        );
        assert_eq!(fresh, 1);
    }

    #[test]
    fn branches_compare_a_register_with_a_constant_or_a_register() {
        let (x, skip, back) = (VReg(1), Label(0), Label(1));
        let (insts, _) = built(|f| {
            f.bind(back);
            f.branch_imm(Cond::Eq, x, 0, skip);
            f.branch_reg(Cond::SLt, x, VReg(2), back);
            f.jump(back);
            f.bind(skip);
            f.exit(2);
        });
        let branch = |cond, rhs, target| Inst::Branch {
            cond,
            lhs: x,
            rhs,
            target,
        };
        assert_eq!(
            insts,
            vec![
                Inst::Label(back),
                branch(Cond::Eq, Operand::Imm(0), skip),
                branch(Cond::SLt, Operand::Reg(VReg(2)), back),
                Inst::Jump(back),
                Inst::Label(skip),
                Inst::Exit(Operand::Imm(2)),
            ]
        );
    }

    #[test]
    fn loads_take_a_fresh_register_and_context_loads_read_through_ctx() {
        let (insts, fresh) = built(|f| {
            assert_eq!(f.ctx_load(112, Width::B8), VReg(4));
            assert_eq!(f.read_kernel(VReg(4), 16, Width::B4), VReg(5));
            f.store_reg(Addr::Stack(Slot(0), 8), Width::B2, VReg(5));
        });
        assert_eq!(
            insts,
            vec![
                Inst::Load {
                    dst: VReg(4),
                    addr: Addr::Reg(VReg(0), 112),
                    width: Width::B8
                },
                Inst::ReadKernel {
                    dst: VReg(5),
                    base: VReg(4),
                    off: 16,
                    width: Width::B4
                },
                Inst::Store {
                    addr: Addr::Stack(Slot(0), 8),
                    width: Width::B2,
                    src: Operand::Reg(VReg(5))
                },
            ]
        );
        assert_eq!(fresh, 2);
    }

    #[test]
    fn a_kernel_read_copies_into_the_given_address() {
        let (insts, _) = built(|f| f.probe_read(Operand::Reg(VReg(1)), 16, VReg(2)));
        assert_eq!(
            insts,
            vec![Inst::Call {
                helper: helper::PROBE_READ_KERNEL,
                args: vec![
                    Operand::Reg(VReg(1)),
                    Operand::Imm(16),
                    Operand::Reg(VReg(2))
                ],
                dst: None
            }]
        );
    }

    #[test]
    fn a_map_lookup_passes_the_map_and_the_key_slot_address() {
        let (map, key, p) = (MapId(3), Slot(1), VReg(1));
        let (insts, fresh) = built(|f| f.map_lookup(p, map, key));
        assert_eq!(
            insts,
            vec![
                Inst::MapPtr { dst: VReg(4), map },
                Inst::StackAddr {
                    dst: VReg(5),
                    slot: key,
                    off: 0
                },
                Inst::Call {
                    helper: helper::MAP_LOOKUP_ELEM,
                    args: vec![Operand::Reg(VReg(4)), Operand::Reg(VReg(5))],
                    dst: Some(p)
                },
            ]
        );
        assert_eq!(fresh, 2);
    }
}
