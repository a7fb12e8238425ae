//! BPF instructions (the kernel's eBPF ISA) and their 8-byte encoding.

/// Instruction classes.
pub mod class {
    /// Immediate/absolute loads (used by `ld_imm64`).
    pub const LD: u8 = 0x00;
    /// Loads from memory into a register.
    pub const LDX: u8 = 0x01;
    /// Stores of an immediate.
    pub const ST: u8 = 0x02;
    /// Stores of a register.
    pub const STX: u8 = 0x03;
    /// 32-bit arithmetic.
    pub const ALU: u8 = 0x04;
    /// 64-bit jumps.
    pub const JMP: u8 = 0x05;
    /// 32-bit jumps.
    pub const JMP32: u8 = 0x06;
    /// 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;
}

/// Operand source bit: immediate (`K`) or register (`X`).
pub mod src {
    /// Use the 32-bit immediate.
    pub const K: u8 = 0x00;
    /// Use the source register.
    pub const X: u8 = 0x08;
}

/// ALU operation codes (upper nibble).
pub mod alu {
    /// `+=`
    pub const ADD: u8 = 0x00;
    /// `-=`
    pub const SUB: u8 = 0x10;
    /// `*=`
    pub const MUL: u8 = 0x20;
    /// `/=` (unsigned)
    pub const DIV: u8 = 0x30;
    /// `|=`
    pub const OR: u8 = 0x40;
    /// `&=`
    pub const AND: u8 = 0x50;
    /// `<<=`
    pub const LSH: u8 = 0x60;
    /// `>>=` (logical)
    pub const RSH: u8 = 0x70;
    /// `= -dst`
    pub const NEG: u8 = 0x80;
    /// `%=` (unsigned)
    pub const MOD: u8 = 0x90;
    /// `^=`
    pub const XOR: u8 = 0xa0;
    /// `=`
    pub const MOV: u8 = 0xb0;
    /// `>>=` (arithmetic)
    pub const ARSH: u8 = 0xc0;
    /// Byte swap.
    pub const END: u8 = 0xd0;
}

/// Jump operation codes (upper nibble).
pub mod jmp {
    /// Unconditional jump.
    pub const JA: u8 = 0x00;
    /// `==`
    pub const JEQ: u8 = 0x10;
    /// `>` unsigned
    pub const JGT: u8 = 0x20;
    /// `>=` unsigned
    pub const JGE: u8 = 0x30;
    /// `&` non-zero
    pub const JSET: u8 = 0x40;
    /// `!=`
    pub const JNE: u8 = 0x50;
    /// `>` signed
    pub const JSGT: u8 = 0x60;
    /// `>=` signed
    pub const JSGE: u8 = 0x70;
    /// Helper call.
    pub const CALL: u8 = 0x80;
    /// Return from the program.
    pub const EXIT: u8 = 0x90;
    /// `<` unsigned
    pub const JLT: u8 = 0xa0;
    /// `<=` unsigned
    pub const JLE: u8 = 0xb0;
    /// `<` signed
    pub const JSLT: u8 = 0xc0;
    /// `<=` signed
    pub const JSLE: u8 = 0xd0;
}

/// Memory access sizes.
pub mod size {
    /// 4 bytes.
    pub const W: u8 = 0x00;
    /// 2 bytes.
    pub const H: u8 = 0x08;
    /// 1 byte.
    pub const B: u8 = 0x10;
    /// 8 bytes.
    pub const DW: u8 = 0x18;
}

/// Memory mode for loads and stores.
pub const MODE_MEM: u8 = 0x60;
/// Mode of atomic read-modify-write stores.
pub const MODE_ATOMIC: u8 = 0xc0;
/// `imm` of an atomic compare-and-exchange (`BPF_CMPXCHG`, which fetches into r0).
pub const ATOMIC_CMPXCHG: i32 = 0xf1;
/// Mode of the 16-byte immediate load.
pub const MODE_IMM: u8 = 0x00;
/// `src` value of an `ld_imm64` that refers to a map (patched by libbpf).
pub const PSEUDO_MAP_FD: u8 = 1;

/// The frame pointer register (read-only).
pub const R10: u8 = 10;

/// One 8-byte BPF instruction slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class | source | operation (or class | size | mode).
    pub code: u8,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register (0..=10), or a pseudo value for `ld_imm64`.
    pub src: u8,
    /// Signed offset (memory access or jump distance in slots).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Little-endian encoding as the kernel expects on x86-64.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    /// Decodes one slot (inverse of [`Insn::encode`]).
    pub fn decode(b: &[u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// `dst op= imm` (64-bit).
    pub fn alu64_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn {
            code: class::ALU64 | src::K | op,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }

    /// `dst = be{bits} dst`: the low `bits` bits of `dst` to big-endian
    /// order (a swap on little-endian BPF), the bits above cleared.
    pub fn to_be(dst: u8, bits: i32) -> Insn {
        Insn {
            code: class::ALU | src::X | alu::END,
            dst,
            src: 0,
            off: 0,
            imm: bits,
        }
    }

    /// `dst op= src` (64-bit).
    pub fn alu64_reg(op: u8, dst: u8, src_reg: u8) -> Insn {
        Insn {
            code: class::ALU64 | src::X | op,
            dst,
            src: src_reg,
            off: 0,
            imm: 0,
        }
    }

    /// `dst = *(size *)(src + off)`
    pub fn load(sz: u8, dst: u8, src_reg: u8, off: i16) -> Insn {
        Insn {
            code: class::LDX | MODE_MEM | sz,
            dst,
            src: src_reg,
            off,
            imm: 0,
        }
    }

    /// `*(size *)(dst + off) = src`
    pub fn store_reg(sz: u8, dst: u8, off: i16, src_reg: u8) -> Insn {
        Insn {
            code: class::STX | MODE_MEM | sz,
            dst,
            src: src_reg,
            off,
            imm: 0,
        }
    }

    /// `*(size *)(dst + off) = imm`
    pub fn store_imm(sz: u8, dst: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code: class::ST | MODE_MEM | sz,
            dst,
            src: 0,
            off,
            imm,
        }
    }

    /// The two slots of `dst = imm64`; `src` is 0, or [`PSEUDO_MAP_FD`] for a map.
    pub fn ld_imm64(dst: u8, src_pseudo: u8, value: u64) -> [Insn; 2] {
        [
            Insn {
                code: class::LD | size::DW | MODE_IMM,
                dst,
                src: src_pseudo,
                off: 0,
                imm: value as u32 as i32,
            },
            Insn {
                code: 0,
                dst: 0,
                src: 0,
                off: 0,
                imm: (value >> 32) as u32 as i32,
            },
        ]
    }

    /// `r0 = cmpxchg((u64 *)(dst + off), r0, src)`.
    pub fn cmpxchg64(dst: u8, off: i16, src_reg: u8) -> Insn {
        Insn {
            code: class::STX | MODE_ATOMIC | size::DW,
            dst,
            src: src_reg,
            off,
            imm: ATOMIC_CMPXCHG,
        }
    }

    /// Conditional jump comparing `dst` with an immediate; `off` in slots.
    pub fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn {
            code: class::JMP | src::K | op,
            dst,
            src: 0,
            off,
            imm,
        }
    }

    /// Conditional jump comparing `dst` with `src`; `off` in slots.
    pub fn jmp_reg(op: u8, dst: u8, src_reg: u8, off: i16) -> Insn {
        Insn {
            code: class::JMP | src::X | op,
            dst,
            src: src_reg,
            off,
            imm: 0,
        }
    }

    /// Unconditional jump by `off` slots.
    pub fn ja(off: i16) -> Insn {
        Insn {
            code: class::JMP | jmp::JA,
            dst: 0,
            src: 0,
            off,
            imm: 0,
        }
    }

    /// Call of a kernel helper by number.
    pub fn call(helper: i32) -> Insn {
        Insn {
            code: class::JMP | jmp::CALL,
            dst: 0,
            src: 0,
            off: 0,
            imm: helper,
        }
    }

    /// Return `r0`.
    pub fn exit() -> Insn {
        Insn {
            code: class::JMP | jmp::EXIT,
            dst: 0,
            src: 0,
            off: 0,
            imm: 0,
        }
    }

    /// True for the first slot of a 16-byte `ld_imm64`.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == class::LD | size::DW | MODE_IMM
    }
}
