//! The intermediate representation: one linear function per BPF program,
//! over an unlimited supply of 64-bit virtual registers, with labels and
//! explicit stack slots. Lowering (`ir::lower`) builds it from the checked
//! AST with one method of [`Function`] per instruction shape (`build.rs`);
//! the code generator (`codegen`) allocates registers and emits BPF.

mod build;
pub mod layout;
pub mod lower;

use crate::bpf::MapId;
use std::fmt;

/// A virtual register holding a 64-bit value (a scalar or a pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VReg(pub u32);

/// A jump target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(pub u32);

/// A stack slot of the function (index into [`Function::slots`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(pub u32);

/// A value used by an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// A virtual register.
    Reg(VReg),
    /// A constant; values outside i32 are materialised with `ld_imm64`.
    Imm(i64),
}

/// 64-bit arithmetic operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// unsigned `/` (BPF yields 0 on division by zero)
    Div,
    /// unsigned `%`
    Mod,
    /// `&`
    And,
    /// `|`
    Or,
    /// `^`
    Xor,
    /// `<<`
    Lsh,
    /// logical `>>`
    Rsh,
    /// arithmetic `>>`
    Arsh,
    /// the low `rhs` (an immediate: 16, 32 or 64) bits of `lhs` from
    /// network (big-endian) to host byte order, the bits above cleared
    FromBe,
}

/// Comparisons for conditional branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// unsigned `>`
    Gt,
    /// unsigned `>=`
    Ge,
    /// unsigned `<`
    Lt,
    /// unsigned `<=`
    Le,
    /// signed `>`
    SGt,
    /// signed `>=`
    SGe,
    /// signed `<`
    SLt,
    /// signed `<=`
    SLe,
    /// `lhs & rhs != 0`
    Set,
}

/// Width of a memory access in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    /// 1 byte
    B1,
    /// 2 bytes
    B2,
    /// 4 bytes
    B4,
    /// 8 bytes
    B8,
}

impl Width {
    /// Number of bytes.
    pub fn bytes(self) -> u32 {
        match self {
            Width::B1 => 1,
            Width::B2 => 2,
            Width::B4 => 4,
            Width::B8 => 8,
        }
    }

    /// The width for 1, 2, 4 or 8 bytes.
    pub fn from_bytes(n: u64) -> Option<Width> {
        match n {
            1 => Some(Width::B1),
            2 => Some(Width::B2),
            4 => Some(Width::B4),
            8 => Some(Width::B8),
            _ => None,
        }
    }
}

/// Where a load or store goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr {
    /// `reg + off` (a pointer the verifier knows: context, map value, stack, packet).
    Reg(VReg, i16),
    /// `slot + off` on the stack.
    Stack(Slot, i32),
}

/// One IR instruction. Loads zero-extend; sign extension is explicit.
#[derive(Debug, Clone, PartialEq)]
pub enum Inst {
    /// `dst = src`
    Mov {
        /// Destination.
        dst: VReg,
        /// Source.
        src: Operand,
    },
    /// `dst = lhs op rhs` (64-bit).
    Alu {
        /// Operation.
        op: AluOp,
        /// Destination.
        dst: VReg,
        /// Left operand.
        lhs: Operand,
        /// Right operand.
        rhs: Operand,
    },
    /// `dst = -src`
    Neg {
        /// Destination.
        dst: VReg,
        /// Source.
        src: VReg,
    },
    /// `dst = *(width *)addr`, zero-extended.
    Load {
        /// Destination.
        dst: VReg,
        /// Source address.
        addr: Addr,
        /// Access width.
        width: Width,
    },
    /// `dst = *(width *)(base + off)` from kernel memory, zero-extended
    /// (zero when the read fails). Code generation turns it into a
    /// `bpf_probe_read_kernel` call after repeated reads are removed.
    ReadKernel {
        /// Destination.
        dst: VReg,
        /// The kernel address.
        base: VReg,
        /// Byte offset from `base`.
        off: i32,
        /// Access width.
        width: Width,
    },
    /// `*(width *)addr = src`
    Store {
        /// Destination address.
        addr: Addr,
        /// Access width.
        width: Width,
        /// Stored value.
        src: Operand,
    },
    /// `dst = address of slot + off` (a stack pointer).
    StackAddr {
        /// Destination.
        dst: VReg,
        /// The slot.
        slot: Slot,
        /// Byte offset inside the slot.
        off: i32,
    },
    /// `dst = the map's pointer` (an `ld_imm64` relocated against the map).
    MapPtr {
        /// Destination.
        dst: VReg,
        /// The map.
        map: MapId,
    },
    /// Call a kernel helper; arguments go to r1..r5, the result comes from r0.
    Call {
        /// Helper number (see `bpf::helper`).
        helper: u32,
        /// Up to five arguments.
        args: Vec<Operand>,
        /// Where to put the result, if used.
        dst: Option<VReg>,
    },
    /// Unconditional jump.
    Jump(Label),
    /// `if lhs cond rhs goto target` (falls through otherwise).
    Branch {
        /// Comparison.
        cond: Cond,
        /// Left operand (a register, as BPF requires).
        lhs: VReg,
        /// Right operand.
        rhs: Operand,
        /// Target when the comparison holds.
        target: Label,
    },
    /// Marks a jump target.
    Label(Label),
    /// Atomically: `old = *(u64 *)(base + off); if old == expected { *(u64 *)(base + off) = new }`.
    CmpXchg {
        /// Pointer to the 8-byte word (a map value).
        base: VReg,
        /// Offset from `base`.
        off: i16,
        /// The value the word must hold for the exchange to happen.
        expected: VReg,
        /// The value stored when it does.
        new: VReg,
        /// What the word held.
        old: VReg,
    },
    /// Return from the program with a value.
    Exit(Operand),
    /// The instructions that follow come from this place in the script
    /// (emits no code; lets a verifier rejection point at the source).
    Loc(crate::diag::Span),
}

/// Size and alignment of a stack slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotInfo {
    /// Size in bytes.
    pub size: u32,
    /// Alignment in bytes (1, 2, 4 or 8).
    pub align: u32,
}

/// The most maps one BPF program may use (the kernel's `MAX_USED_MAPS`).
pub const MAX_MAPS_PER_PROGRAM: usize = 64;

/// One BPF program in IR form.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Program (symbol) name.
    pub name: String,
    /// The instructions; execution starts at the first one.
    pub insts: Vec<Inst>,
    /// Stack slots used by `Addr::Stack` and `StackAddr`.
    pub slots: Vec<SlotInfo>,
    /// The register that holds the program context (r1 at entry).
    pub ctx: VReg,
    /// Number of virtual registers used (all are `< vreg_count`).
    pub vreg_count: u32,
    /// Number of labels used.
    pub label_count: u32,
}

impl Function {
    /// Whether the function has a compare-and-exchange (which kernels
    /// before 5.12 reject).
    pub fn uses_cmpxchg(&self) -> bool {
        self.insts.iter().any(|i| matches!(i, Inst::CmpXchg { .. }))
    }

    /// An empty function whose context register is `VReg(0)`.
    pub fn new(name: impl Into<String>) -> Self {
        Function {
            name: name.into(),
            insts: Vec::new(),
            slots: Vec::new(),
            ctx: VReg(0),
            vreg_count: 1,
            label_count: 0,
        }
    }

    /// How many different maps the function uses (the kernel allows
    /// [`MAX_MAPS_PER_PROGRAM`]).
    pub fn maps_used(&self) -> usize {
        let maps: std::collections::BTreeSet<MapId> = self
            .insts
            .iter()
            .filter_map(|i| match i {
                Inst::MapPtr { map, .. } => Some(*map),
                _ => None,
            })
            .collect();
        maps.len()
    }

    /// A fresh virtual register.
    pub fn vreg(&mut self) -> VReg {
        self.vreg_count += 1;
        VReg(self.vreg_count - 1)
    }

    /// A fresh label.
    pub fn label(&mut self) -> Label {
        self.label_count += 1;
        Label(self.label_count - 1)
    }

    /// A fresh stack slot.
    pub fn slot(&mut self, size: u32, align: u32) -> Slot {
        self.slots.push(SlotInfo { size, align });
        Slot(self.slots.len() as u32 - 1)
    }

    /// Appends an instruction.
    pub fn push(&mut self, inst: Inst) {
        self.insts.push(inst);
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Reg(r) => write!(f, "%{}", r.0),
            Operand::Imm(i) => write!(f, "{}", i),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Reg(r, off) => write!(f, "[%{}{:+}]", r.0, off),
            Addr::Stack(s, off) => write!(f, "[slot{}{:+}]", s.0, off),
        }
    }
}

impl fmt::Display for Inst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inst::Mov { dst, src } => write!(f, "  %{} = {}", dst.0, src),
            Inst::Alu { op, dst, lhs, rhs } => {
                write!(f, "  %{} = {:?} {}, {}", dst.0, op, lhs, rhs)
            }
            Inst::Neg { dst, src } => write!(f, "  %{} = neg %{}", dst.0, src.0),
            Inst::Load { dst, addr, width } => {
                write!(f, "  %{} = load{} {}", dst.0, width.bytes() * 8, addr)
            }
            Inst::ReadKernel {
                dst,
                base,
                off,
                width,
            } => write!(
                f,
                "  %{} = read_kernel{} [%{}{:+}]",
                dst.0,
                width.bytes() * 8,
                base.0,
                off
            ),
            Inst::Store { addr, width, src } => {
                write!(f, "  store{} {}, {}", width.bytes() * 8, addr, src)
            }
            Inst::StackAddr { dst, slot, off } => {
                write!(f, "  %{} = &slot{}{:+}", dst.0, slot.0, off)
            }
            Inst::MapPtr { dst, map } => write!(f, "  %{} = map#{}", dst.0, map.0),
            Inst::Call { helper, args, dst } => {
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                match dst {
                    Some(d) => write!(f, "  %{} = call {}({})", d.0, helper, args.join(", ")),
                    None => write!(f, "  call {}({})", helper, args.join(", ")),
                }
            }
            Inst::Jump(l) => write!(f, "  goto L{}", l.0),
            Inst::Branch {
                cond,
                lhs,
                rhs,
                target,
            } => {
                write!(f, "  if %{} {:?} {} goto L{}", lhs.0, cond, rhs, target.0)
            }
            Inst::Label(l) => write!(f, "L{}:", l.0),
            Inst::CmpXchg {
                base,
                off,
                expected,
                new,
                old,
            } => {
                write!(
                    f,
                    "  %{} = cmpxchg [%{}{:+}], %{}, %{}",
                    old.0, base.0, off, expected.0, new.0
                )
            }
            Inst::Exit(v) => write!(f, "  exit {}", v),
            Inst::Loc(s) => write!(f, "  ; source {}..{}", s.start, s.end),
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fn {}(ctx=%{}):", self.name, self.ctx.0)?;
        for (i, s) in self.slots.iter().enumerate() {
            writeln!(f, "  slot{}: {} bytes, align {}", i, s.size, s.align)?;
        }
        for inst in &self.insts {
            writeln!(f, "{}", inst)?;
        }
        Ok(())
    }
}
