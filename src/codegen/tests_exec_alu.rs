//! Execution tests of arithmetic, conditions, loops and spilling in the
//! running kernel (see `tests_exec` for the harness).

use super::generate;
use super::tests_exec::{constant, run_code, run_value, sum_to_hundred};
use crate::ir::{AluOp, Cond, Function, Inst, Operand, VReg};

fn reference_alu(op: AluOp, a: u64, b: u64) -> u64 {
    match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Div => a.checked_div(b).unwrap_or(0),
        AluOp::Mod => a.checked_rem(b).unwrap_or(a),
        AluOp::And => a & b,
        AluOp::Or => a | b,
        AluOp::Xor => a ^ b,
        AluOp::Lsh => a << (b & 63),
        AluOp::Rsh => a >> (b & 63),
        AluOp::Arsh => ((a as i64) >> (b & 63)) as u64,
        AluOp::FromBe => match b {
            16 => (a as u16).swap_bytes() as u64,
            32 => (a as u32).swap_bytes() as u64,
            _ => a.swap_bytes(),
        },
    }
}

#[test]
fn byte_swaps_from_network_order_clear_the_bits_above() {
    if !crate::testing::bpf_available() {
        return;
    }
    let a: i64 = 0x1122_3344_5566_7788;
    for bits in [16, 32, 64] {
        let got = run_value(|f| {
            let x = constant(f, a);
            let dst = f.vreg();
            f.push(Inst::Alu {
                op: AluOp::FromBe,
                dst,
                lhs: Operand::Reg(x),
                rhs: Operand::Imm(bits),
            });
            dst
        });
        assert_eq!(
            got,
            reference_alu(AluOp::FromBe, a as u64, bits as u64),
            "{bits} bits"
        );
    }
}

#[test]
fn every_alu_op_with_every_operand_form() {
    if !crate::testing::bpf_available() {
        return;
    }
    use AluOp::*;
    let ops = [Add, Sub, Mul, Div, Mod, And, Or, Xor, Lsh, Rsh, Arsh];
    let a: i64 = -0x1234_5678_9abc_def0;
    for op in ops {
        let shift = matches!(op, Lsh | Rsh | Arsh);
        let (small, big) = if shift {
            (7, 7)
        } else {
            (-1000, 0x7_0000_0003)
        };
        // (description, lhs is register?, rhs)
        let cases: [(&str, bool, i64); 3] = [
            ("reg,small", true, small),
            ("reg,big", true, big),
            ("imm,reg", false, big),
        ];
        for (what, lhs_reg, b) in cases {
            let (lhs_val, rhs_val) = if lhs_reg {
                (a, b)
            } else {
                (0x7_0000_0003, if shift { 5 } else { a })
            };
            let expected = reference_alu(op, lhs_val as u64, rhs_val as u64);
            for rhs_in_reg in [false, true] {
                let got = run_value(|f| {
                    let lhs = if lhs_reg {
                        Operand::Reg(constant(f, lhs_val))
                    } else {
                        Operand::Imm(lhs_val)
                    };
                    let rhs = if rhs_in_reg || !lhs_reg {
                        Operand::Reg(constant(f, rhs_val))
                    } else {
                        Operand::Imm(rhs_val)
                    };
                    let dst = f.vreg();
                    f.push(Inst::Alu { op, dst, lhs, rhs });
                    dst
                });
                assert_eq!(
                    got, expected,
                    "{op:?} {what} rhs_in_reg={rhs_in_reg}: {lhs_val:#x}, {rhs_val:#x}"
                );
            }
        }
        // The destination is the right operand's register: `%r = lhs op %r`.
        let rhs_val = if shift { 3 } else { 0x55 };
        let got = run_value(|f| {
            let l = constant(f, a);
            let r = constant(f, rhs_val);
            f.push(Inst::Alu {
                op,
                dst: r,
                lhs: Operand::Reg(l),
                rhs: Operand::Reg(r),
            });
            r
        });
        assert_eq!(
            got,
            reference_alu(op, a as u64, rhs_val as u64),
            "{op:?} with dst == rhs"
        );
    }
}

#[test]
fn division_by_constant_zero_follows_bpf_semantics() {
    if !crate::testing::bpf_available() {
        return;
    }
    for (op, expected) in [(AluOp::Div, 0), (AluOp::Mod, 77)] {
        let got = run_value(|f| {
            let x = constant(f, 77);
            let d = f.vreg();
            f.push(Inst::Alu {
                op,
                dst: d,
                lhs: Operand::Reg(x),
                rhs: Operand::Imm(0),
            });
            d
        });
        assert_eq!(got, expected, "{op:?} by 0");
    }
}

#[test]
fn neg_and_large_moves() {
    if !crate::testing::bpf_available() {
        return;
    }
    let got = run_value(|f| {
        let x = constant(f, 0x1_2345_6789);
        let n = f.vreg();
        f.push(Inst::Neg { dst: n, src: x });
        n
    });
    assert_eq!(got, (-0x1_2345_6789i64) as u64);
}

fn reference_cond(cond: Cond, a: i64, b: i64) -> bool {
    let (ua, ub) = (a as u64, b as u64);
    match cond {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::Gt => ua > ub,
        Cond::Ge => ua >= ub,
        Cond::Lt => ua < ub,
        Cond::Le => ua <= ub,
        Cond::SGt => a > b,
        Cond::SGe => a >= b,
        Cond::SLt => a < b,
        Cond::SLe => a <= b,
        Cond::Set => ua & ub != 0,
    }
}

#[test]
fn every_condition_signed_and_unsigned() {
    if !crate::testing::bpf_available() {
        return;
    }
    use Cond::*;
    let conds = [Eq, Ne, Gt, Ge, Lt, Le, SGt, SGe, SLt, SLe, Set];
    let pairs: [(i64, i64); 5] = [
        (-5, 3),
        (3, -5),
        (7, 7),
        (-1, 0x1_0000_0000),
        (0x1_0000_0000, 2),
    ];
    for cond in conds {
        for (a, b) in pairs {
            for rhs_in_reg in [false, true] {
                let mut f = Function::new("t");
                let taken = f.label();
                let l = constant(&mut f, a);
                let rhs = if rhs_in_reg {
                    Operand::Reg(constant(&mut f, b))
                } else {
                    Operand::Imm(b)
                };
                f.push(Inst::Branch {
                    cond,
                    lhs: l,
                    rhs,
                    target: taken,
                });
                f.push(Inst::Exit(Operand::Imm(0)));
                f.push(Inst::Label(taken));
                f.push(Inst::Exit(Operand::Imm(1)));
                let got = run_code(&generate(&f).unwrap(), &[]);
                let expected = u32::from(reference_cond(cond, a, b));
                assert_eq!(got, expected, "{a} {cond:?} {b} (rhs_in_reg={rhs_in_reg})");
            }
        }
    }
}

#[test]
fn bounded_loop_sums_one_to_hundred() {
    if !crate::testing::bpf_available() {
        return;
    }
    let got = run_value(sum_to_hundred);
    assert_eq!(got, 5050);
}

/// Builds `n` simultaneously live values (k*k + 1 for k in 0..n) and
/// returns their sum.
fn many_live_values(f: &mut Function, n: i64) -> VReg {
    let vals: Vec<VReg> = (0..n).map(|k| constant(f, k * k + 1)).collect();
    let sum = constant(f, 0);
    for v in vals {
        f.push(Inst::Alu {
            op: AluOp::Add,
            dst: sum,
            lhs: Operand::Reg(sum),
            rhs: Operand::Reg(v),
        });
    }
    sum
}

#[test]
fn twenty_and_thirty_live_values_spill_correctly() {
    if !crate::testing::bpf_available() {
        return;
    }
    for n in [20, 30] {
        let got = run_value(|f| many_live_values(f, n));
        assert_eq!(
            got,
            (0..n as u64).map(|k| k * k + 1).sum::<u64>(),
            "{n} live values"
        );
    }
}
