//! A readable listing of BPF code in the style of `bpftool prog dump xlated`.

use super::insn::{
    alu, class, jmp, size, Insn, ATOMIC_CMPXCHG, MODE_ATOMIC, MODE_MEM, PSEUDO_MAP_FD,
};
use super::ProgramCode;
use std::fmt::Write;

/// One line per instruction, prefixed by its slot index (`  5: call 1`).
pub fn disassemble(code: &ProgramCode) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < code.insns.len() {
        let insn = &code.insns[i];
        let text = if insn.is_ld_imm64() {
            let map = code
                .map_relocs
                .iter()
                .find(|r| r.insn == i)
                .map(|r| r.map.0);
            ld_imm64(insn, code.insns.get(i + 1), map)
        } else {
            format_insn(insn)
        };
        let _ = writeln!(out, "{i:>3}: {text}");
        i += if insn.is_ld_imm64() { 2 } else { 1 };
    }
    out
}

fn ld_imm64(first: &Insn, second: Option<&Insn>, map: Option<u32>) -> String {
    let Some(second) = second else {
        return format!("r{} = <truncated ld_imm64>", first.dst);
    };
    let value = u64::from(first.imm as u32) | (u64::from(second.imm as u32) << 32);
    match (first.src, map) {
        (PSEUDO_MAP_FD, Some(m)) => format!("r{} = map[{m}] ll", first.dst),
        (PSEUDO_MAP_FD, None) => format!("r{} = map_fd[{}] ll", first.dst, first.imm),
        (0, _) => format!("r{} = {value:#x} ll", first.dst),
        (pseudo, _) => format!("r{} = <pseudo {pseudo}> {value:#x} ll", first.dst),
    }
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        size::B => "u8",
        size::H => "u16",
        size::W => "u32",
        _ => "u64",
    }
}

/// `(r6 + 8)` or `(r10 - 16)`.
fn mem(base: u8, off: i16) -> String {
    if off < 0 {
        format!("(r{base} - {})", -i32::from(off))
    } else {
        format!("(r{base} + {off})")
    }
}

fn alu_op(op: u8) -> Option<&'static str> {
    Some(match op {
        alu::ADD => "+=",
        alu::SUB => "-=",
        alu::MUL => "*=",
        alu::DIV => "/=",
        alu::OR => "|=",
        alu::AND => "&=",
        alu::LSH => "<<=",
        alu::RSH => ">>=",
        alu::MOD => "%=",
        alu::XOR => "^=",
        alu::ARSH => "s>>=",
        _ => return None,
    })
}

fn jmp_op(op: u8) -> Option<&'static str> {
    Some(match op {
        jmp::JEQ => "==",
        jmp::JGT => ">",
        jmp::JGE => ">=",
        jmp::JSET => "&",
        jmp::JNE => "!=",
        jmp::JSGT => "s>",
        jmp::JSGE => "s>=",
        jmp::JLT => "<",
        jmp::JLE => "<=",
        jmp::JSLT => "s<",
        jmp::JSLE => "s<=",
        _ => return None,
    })
}

fn invalid(i: &Insn) -> String {
    format!(
        "invalid insn code={:#04x} dst=r{} src=r{} off={} imm={}",
        i.code, i.dst, i.src, i.off, i.imm
    )
}

/// Text of one instruction (not the first slot of an `ld_imm64`).
pub fn format_insn(i: &Insn) -> String {
    let cls = i.code & 0x07;
    let is_reg_src = i.code & 0x08 != 0;
    let op = i.code & 0xf0;
    match cls {
        class::ALU64 | class::ALU => {
            let p = if cls == class::ALU64 { "r" } else { "w" };
            let rhs = if is_reg_src {
                format!("{p}{}", i.src)
            } else {
                i.imm.to_string()
            };
            match op {
                alu::MOV => format!("{p}{} = {rhs}", i.dst),
                alu::NEG => format!("{p}{} = -{p}{}", i.dst, i.dst),
                alu::END => {
                    let kind = match (cls, is_reg_src) {
                        (class::ALU64, _) => "bswap",
                        (_, true) => "be",
                        _ => "le",
                    };
                    format!("r{} = {kind}{} r{}", i.dst, i.imm, i.dst)
                }
                _ => match alu_op(op) {
                    Some(o) => format!("{p}{} {o} {rhs}", i.dst),
                    None => invalid(i),
                },
            }
        }
        class::LDX if i.code & 0xe0 == MODE_MEM => {
            format!(
                "r{} = *({} *){}",
                i.dst,
                size_name(i.code),
                mem(i.src, i.off)
            )
        }
        class::STX if i.code & 0xe0 == MODE_MEM => {
            format!(
                "*({} *){} = r{}",
                size_name(i.code),
                mem(i.dst, i.off),
                i.src
            )
        }
        class::STX if i.code & 0xe0 == MODE_ATOMIC && i.imm == ATOMIC_CMPXCHG => {
            format!("r0 = cmpxchg({}, r0, r{})", mem(i.dst, i.off), i.src)
        }
        class::STX if i.code & 0xe0 == MODE_ATOMIC => match alu_op(i.imm as u8) {
            Some(o) if i.imm & !0xf0 == 0 => format!(
                "lock *({} *){} {o} r{}",
                size_name(i.code),
                mem(i.dst, i.off),
                i.src
            ),
            _ => invalid(i),
        },
        class::ST if i.code & 0xe0 == MODE_MEM => {
            format!(
                "*({} *){} = {}",
                size_name(i.code),
                mem(i.dst, i.off),
                i.imm
            )
        }
        class::JMP | class::JMP32 => {
            let p = if cls == class::JMP { "r" } else { "w" };
            match op {
                jmp::JA => format!("goto {:+}", i.off),
                jmp::CALL => format!("call {}", i.imm),
                jmp::EXIT => "exit".to_string(),
                _ => match jmp_op(op) {
                    Some(o) => {
                        let rhs = if is_reg_src {
                            format!("{p}{}", i.src)
                        } else {
                            format!("{:#x}", i.imm)
                        };
                        format!("if {p}{} {o} {rhs} goto {:+}", i.dst, i.off)
                    }
                    None => invalid(i),
                },
            }
        }
        _ => invalid(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::MapId;
    use crate::codegen::MapReloc;

    #[test]
    fn formats_each_instruction_kind() {
        let mut insns = vec![
            Insn::alu64_reg(alu::MOV, 6, 1),
            Insn::alu64_imm(alu::ADD, 2, -16),
            Insn::alu64_imm(alu::NEG, 3, 0),
            Insn::alu64_reg(alu::ARSH, 3, 4),
        ];
        insns.extend(Insn::ld_imm64(1, PSEUDO_MAP_FD, 0));
        insns.extend(Insn::ld_imm64(2, 0, 0x1_0000_0000));
        insns.extend([
            Insn::call(1),
            Insn::jmp_imm(jmp::JEQ, 0, 0, 4),
            Insn::jmp_reg(jmp::JSLT, 1, 2, -3),
            Insn::load(size::W, 1, 6, 8),
            Insn::store_reg(size::DW, 10, -16, 1),
            Insn::store_imm(size::B, 10, -1, 7),
            Insn::ja(-9),
            Insn::exit(),
            Insn {
                code: 0xff,
                dst: 1,
                src: 2,
                off: 3,
                imm: 4,
            },
        ]);
        let code = ProgramCode {
            name: "t".into(),
            insns,
            map_relocs: vec![MapReloc {
                insn: 4,
                map: MapId(2),
            }],
            source_map: Vec::new(),
        };
        let expected = "  0: r6 = r1
  1: r2 += -16
  2: r3 = -r3
  3: r3 s>>= r4
  4: r1 = map[2] ll
  6: r2 = 0x100000000 ll
  8: call 1
  9: if r0 == 0x0 goto +4
 10: if r1 s< r2 goto -3
 11: r1 = *(u32 *)(r6 + 8)
 12: *(u64 *)(r10 - 16) = r1
 13: *(u8 *)(r10 - 1) = 7
 14: goto -9
 15: exit
 16: invalid insn code=0xff dst=r1 src=r2 off=3 imm=4
";
        assert_eq!(disassemble(&code), expected);
    }

    #[test]
    fn decodes_raw_bytes_round_trip() {
        let insn = Insn::load(size::H, 3, 7, -2);
        assert_eq!(
            format_insn(&Insn::decode(&insn.encode())),
            "r3 = *(u16 *)(r7 - 2)"
        );
        assert_eq!(
            format_insn(&Insn::jmp_imm(jmp::JNE, 5, -1, 2)),
            "if r5 != 0xffffffff goto +2"
        );
    }
}
