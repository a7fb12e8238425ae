//! arm64: the AAPCS64 argument registers x0..x7, and x0 for the return
//! value, in the kernel's `struct pt_regs`, which starts with `struct
//! user_pt_regs` and its `u64 regs[31]` (arch/arm64/include/asm/ptrace.h).

use super::Reg;

/// Register `xN`: `regs[N]`.
const fn x(n: u32) -> Reg {
    Reg {
        member: "regs",
        index: n,
        offset: 8 * n as i16,
    }
}

/// Where argument n (`argN` of a kprobe) is.
pub const ARGS: [Reg; 8] = [x(0), x(1), x(2), x(3), x(4), x(5), x(6), x(7)];

/// Where the return value (`retval` of a kretprobe) is.
pub const RETVAL: Reg = x(0);
