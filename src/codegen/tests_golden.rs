//! Golden tests: exact disassembly of small generated functions.

use super::{disassemble, generate};
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::ir::{Addr, AluOp, Cond, Function, Inst, Operand, Width};

fn listing(f: &Function) -> String {
    disassemble(&generate(f).expect("code generation succeeds"))
}

#[test]
fn context_field_test_and_large_constant() {
    let mut f = Function::new("t");
    let (x, y) = (f.vreg(), f.vreg());
    let skip = f.label();
    f.push(Inst::Load {
        dst: x,
        addr: Addr::Reg(f.ctx, 8),
        width: Width::B4,
    });
    f.push(Inst::Branch {
        cond: Cond::SGt,
        lhs: x,
        rhs: Operand::Imm(-1),
        target: skip,
    });
    f.push(Inst::Alu {
        op: AluOp::Sub,
        dst: y,
        lhs: Operand::Imm(0x1_0000_0000),
        rhs: Operand::Reg(x),
    });
    f.push(Inst::Exit(Operand::Reg(y)));
    f.push(Inst::Label(skip));
    f.push(Inst::Exit(Operand::Imm(0)));
    assert_eq!(
        listing(&f),
        "  0: r1 = *(u32 *)(r1 + 8)
  1: if r1 s> 0xffffffff goto +6
  2: r0 = r1
  3: r1 = 0x100000000 ll
  5: r1 -= r0
  6: r0 = r1
  7: exit
  8: r0 = 0
  9: exit
"
    );
}

#[test]
fn map_lookup_with_null_check() {
    let mut f = Function::new("t");
    let key = f.slot(4, 4);
    let (m, k, p, v) = (f.vreg(), f.vreg(), f.vreg(), f.vreg());
    let miss = f.label();
    f.push(Inst::Store {
        addr: Addr::Stack(key, 0),
        width: Width::B4,
        src: Operand::Imm(0),
    });
    f.push(Inst::MapPtr {
        dst: m,
        map: MapId(2),
    });
    f.push(Inst::StackAddr {
        dst: k,
        slot: key,
        off: 0,
    });
    let args = vec![Operand::Reg(m), Operand::Reg(k)];
    f.push(Inst::Call {
        helper: helper::MAP_LOOKUP_ELEM,
        args,
        dst: Some(p),
    });
    f.push(Inst::Branch {
        cond: Cond::Eq,
        lhs: p,
        rhs: Operand::Imm(0),
        target: miss,
    });
    f.push(Inst::Load {
        dst: v,
        addr: Addr::Reg(p, 0),
        width: Width::B8,
    });
    f.push(Inst::Exit(Operand::Reg(v)));
    f.push(Inst::Label(miss));
    f.push(Inst::Exit(Operand::Imm(1)));
    assert_eq!(
        listing(&f),
        "  0: *(u32 *)(r10 - 4) = 0
  1: r1 = map[2] ll
  3: r2 = r10
  4: r2 += -4
  5: call 1
  6: r1 = r0
  7: if r1 == 0x0 goto +3
  8: r1 = *(u64 *)(r1 + 0)
  9: r0 = r1
 10: exit
 11: r0 = 1
 12: exit
"
    );
}

#[test]
fn call_arguments_swap_through_r0() {
    // Arguments arrive in the wrong registers: (b, a) with a in r1, b in r2.
    let mut f = Function::new("t");
    let (a, b) = (f.vreg(), f.vreg());
    f.push(Inst::Mov {
        dst: a,
        src: Operand::Imm(3),
    });
    f.push(Inst::Mov {
        dst: b,
        src: Operand::Imm(4),
    });
    let args = vec![Operand::Reg(b), Operand::Reg(a), Operand::Imm(1 << 40)];
    f.push(Inst::Call {
        helper: helper::PROBE_READ_KERNEL,
        args,
        dst: None,
    });
    f.push(Inst::Exit(Operand::Imm(0)));
    assert_eq!(
        listing(&f),
        "  0: r1 = 3
  1: r2 = 4
  2: r0 = r1
  3: r1 = r2
  4: r2 = r0
  5: r3 = 0x10000000000 ll
  7: call 113
  8: r0 = 0
  9: exit
"
    );
}

#[test]
fn loop_with_back_edge() {
    let mut f = Function::new("t");
    let s = super::tests_exec::sum_to_hundred(&mut f);
    f.push(Inst::Exit(Operand::Reg(s)));
    assert_eq!(
        listing(&f),
        "  0: r1 = 1
  1: r2 = 0
  2: r2 += r1
  3: r1 += 1
  4: if r1 <= 0x64 goto -3
  5: r0 = r2
  6: exit
"
    );
}

#[test]
fn oversized_stack_is_reported() {
    let mut f = Function::new("t");
    let s = f.slot(600, 8);
    f.push(Inst::Store {
        addr: Addr::Stack(s, 0),
        width: Width::B8,
        src: Operand::Imm(0),
    });
    f.push(Inst::Exit(Operand::Imm(0)));
    let err = generate(&f).unwrap_err();
    assert_eq!(
        err.message,
        "program needs 600 bytes of stack, BPF allows 512"
    );
}

#[test]
fn jump_out_of_range_is_reported() {
    let mut f = Function::new("t");
    let x = f.vreg();
    let end = f.label();
    // A conditional jump, so the code it skips stays reachable.
    f.push(Inst::Mov {
        dst: x,
        src: Operand::Imm(0),
    });
    f.push(Inst::Branch {
        cond: Cond::Eq,
        lhs: x,
        rhs: Operand::Imm(0),
        target: end,
    });
    let slot = f.slot(8, 8);
    for _ in 0..40_000 {
        f.push(Inst::Store {
            addr: Addr::Stack(slot, 0),
            width: Width::B8,
            src: Operand::Imm(1),
        });
    }
    f.push(Inst::Label(end));
    f.push(Inst::Exit(Operand::Imm(0)));
    let err = generate(&f).unwrap_err();
    assert_eq!(err.message, "jump of 40000 instructions is too far for BPF");
}
