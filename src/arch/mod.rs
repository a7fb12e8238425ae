//! The CPU's calling convention as a kprobe sees it: where the kernel's
//! `struct pt_regs` (a kprobe's context) keeps a function's arguments and
//! its return value. One file per architecture, chosen by the target the
//! compiler is built for (netscript compiles for the kernel it runs on).

#[cfg(target_arch = "aarch64")]
#[path = "aarch64.rs"]
mod cpu;
#[cfg(target_arch = "x86_64")]
#[path = "x86_64.rs"]
mod cpu;

pub use cpu::{ARGS, RETVAL};

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "netscript knows where struct pt_regs keeps arguments on x86_64 and aarch64 only: \
     add src/arch/<arch>.rs for this target"
);

/// A register's place in the kernel's `struct pt_regs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg {
    /// The member of `struct pt_regs` holding it, as the kernel's BTF
    /// names it.
    pub member: &'static str,
    /// Its element when the member is an array (arm64's `regs[31]`), else 0.
    pub index: u32,
    /// Its byte offset from the start of `struct pt_regs`.
    pub offset: i16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::btf::Btf;

    #[test]
    fn every_argument_a_script_may_name_has_a_register() {
        // The checker accepts arg0..arg5.
        assert!(ARGS.len() >= 6);
    }

    #[test]
    fn the_offsets_are_those_of_the_running_kernels_pt_regs() {
        let Ok(btf) = Btf::vmlinux() else {
            eprintln!("no kernel BTF: struct pt_regs not checked");
            return;
        };
        let pt_regs = btf
            .find_struct("pt_regs")
            .expect("the kernel has struct pt_regs");
        for reg in ARGS.iter().chain([&RETVAL]) {
            let member = btf
                .member(pt_regs, reg.member)
                .unwrap_or_else(|| panic!("struct pt_regs has no member {}", reg.member));
            let offset = member.bit_offset / 8 + 8 * reg.index;
            assert_eq!(i64::from(reg.offset), i64::from(offset), "{reg:?}");
        }
    }
}
