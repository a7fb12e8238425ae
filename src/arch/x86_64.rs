//! x86-64: the System V calling convention's argument registers (rdi, rsi,
//! rdx, rcx, r8, r9) and rax, in the kernel's `struct pt_regs`
//! (arch/x86/include/asm/ptrace.h).

use super::Reg;

/// A register by its `struct pt_regs` member and offset.
const fn reg(member: &'static str, offset: i16) -> Reg {
    Reg {
        member,
        index: 0,
        offset,
    }
}

/// Where argument n (`argN` of a kprobe) is.
pub const ARGS: [Reg; 6] = [
    reg("di", 112),
    reg("si", 104),
    reg("dx", 96),
    reg("cx", 88),
    reg("r8", 72),
    reg("r9", 64),
];

/// Where the return value (`retval` of a kretprobe) is.
pub const RETVAL: Reg = reg("ax", 80);
