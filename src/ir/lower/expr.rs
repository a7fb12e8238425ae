//! Lowering of expressions and conditions.

use super::mem::{Base, Place};
use super::{Home, Lower, Val};
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::builtins::Var;
use crate::diag::{Diagnostic, Result, Span};
use crate::ir::{Addr, AluOp, Cond, Inst, Label, Operand, VReg, Width};
use crate::providers::{self, ArgAccess};
use crate::sema::tast::{Agg, Expr, ExprKind as K, InlineResult, MapValue, Space};
use crate::syntax::ast::{BinOp, UnOp};
use crate::types::Ty;

/// Offsets of the argument registers in x86-64 `struct pt_regs`.
const PT_REGS_ARGS: [i16; 6] = [112, 104, 96, 88, 72, 64];
/// Offset of `ax` (the return value) in `struct pt_regs`.
const PT_REGS_RET: i16 = 80;

impl Lower<'_> {
    /// Lowers an expression; its instructions are attributed to its span.
    pub(super) fn expr(&mut self, e: &Expr) -> Result<Val> {
        let outer = self.loc;
        self.set_loc(e.span);
        let v = self.expr_kind(e);
        if let Some(outer) = outer {
            self.set_loc(outer);
        }
        v
    }

    /// Marks where the following instructions come from.
    pub(super) fn set_loc(&mut self, span: Span) {
        if self.loc != Some(span) {
            // A marker with no instruction after it is replaced, not kept.
            match self.f.insts.last_mut() {
                Some(Inst::Loc(last)) => *last = span,
                _ => self.f.push(Inst::Loc(span)),
            }
            self.loc = Some(span);
        }
    }

    fn expr_kind(&mut self, e: &Expr) -> Result<Val> {
        Ok(match &e.kind {
            K::Int(v) => Val::Reg(self.imm(*v)),
            K::Str(s) => {
                let len = e.ty.storage_size();
                let slot = self.temp(len);
                let mut bytes = s.as_bytes().to_vec();
                bytes.resize(len.div_ceil(8) as usize * 8, 0);
                for (i, chunk) in bytes.chunks(8).enumerate() {
                    let word = i64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
                    self.f.push(Inst::Store {
                        addr: Addr::Stack(slot, i as i32 * 8),
                        width: Width::B8,
                        src: Operand::Imm(word),
                    });
                }
                Val::Mem(slot, len)
            }
            K::Var(id) => match self.vars[id.0 as usize] {
                Home::Reg(r) => Val::Reg(r),
                Home::Mem(slot, size) => Val::Mem(slot, size),
            },
            K::MapRead { map, keys } => self.map_read(*map, keys, &e.ty, None, None)?,
            K::Builtin(v) => self.builtin(*v),
            K::Arg(n) => {
                let off = match providers::of_kind(self.prog.probe.kind).args {
                    ArgAccess::Regs => PT_REGS_ARGS[*n as usize],
                    _ => *n as i16 * 8,
                };
                Val::Reg(self.ctx_load(off, Width::B8))
            }
            K::Retval => {
                let off = match providers::of_kind(self.prog.probe.kind).args {
                    ArgAccess::Regs => PT_REGS_RET,
                    _ => self.prog.param_count as i16 * 8,
                };
                Val::Reg(self.ctx_load(off, Width::B8))
            }
            K::Load {
                base,
                offset,
                size,
                bitfield,
                space,
            } => {
                let width = Width::from_bytes(*size as u64).unwrap_or(Width::B8);
                let r = match (space, base) {
                    (Space::Kernel, Some(b)) => {
                        let v = self.expr(b)?;
                        let base = self.scalar_of(v);
                        self.read_kernel(base, *offset, width)
                    }
                    (Space::Packet, Some(b)) => self.packet_load(b, *offset, width)?,
                    _ => self.ctx_load(*offset as i16, width),
                };
                // The loaded word stays as it is (a repeated read reuses it);
                // a bitfield or a sign extension goes into a new register.
                let (lsh, bits) = match bitfield {
                    Some((shift, bits)) => (64 - *shift as i64 - *bits as i64, *bits as i64),
                    None if e.ty.is_signed() && *size < 8 => {
                        (64 - *size as i64 * 8, *size as i64 * 8)
                    }
                    None => return Ok(Val::Reg(r)),
                };
                let out = self.f.vreg();
                self.alu3(AluOp::Lsh, out, Operand::Reg(r), Operand::Imm(lsh));
                let op = if e.ty.is_signed() {
                    AluOp::Arsh
                } else {
                    AluOp::Rsh
                };
                self.alu(op, out, 64 - bits);
                Val::Reg(out)
            }
            K::LoadStr {
                base,
                offset,
                nul_terminated,
                space,
                data_loc,
            } => {
                let len = e.ty.storage_size();
                let slot = self.temp(len);
                if let (Space::Packet, Some(b)) = (space, base) {
                    self.packet_copy(b, *offset, len, slot)?;
                    return Ok(Val::Mem(slot, len));
                }
                self.zero(Place::stack(slot), len);
                let src = match (space, base) {
                    (Space::Kernel, Some(b)) => self.address(b, *offset)?,
                    _ => {
                        let a = self.f.vreg();
                        let off = if *data_loc {
                            let loc = self.ctx_load(*offset as i16, Width::B4);
                            self.alu(AluOp::And, loc, 0xffff);
                            Operand::Reg(loc)
                        } else {
                            Operand::Imm(*offset as i64)
                        };
                        let ctx = self.f.ctx;
                        self.f.push(Inst::Alu {
                            op: AluOp::Add,
                            dst: a,
                            lhs: Operand::Reg(ctx),
                            rhs: off,
                        });
                        a
                    }
                };
                let h = if *nul_terminated {
                    helper::PROBE_READ_KERNEL_STR
                } else {
                    helper::PROBE_READ_KERNEL
                };
                let dst = self.addr(Place::stack(slot));
                self.call(
                    h,
                    vec![dst, Operand::Imm(len as i64), Operand::Reg(src)],
                    None,
                );
                Val::Mem(slot, len)
            }
            K::Offset(base, off) => Val::Reg(self.address(base, *off)?),
            K::Unary(op, x) => {
                let v = self.expr(x)?;
                let x = self.scalar_of(v);
                let r = self.f.vreg();
                match op {
                    UnOp::Neg => self.f.push(Inst::Neg { dst: r, src: x }),
                    UnOp::BitNot => self.f.push(Inst::Alu {
                        op: AluOp::Xor,
                        dst: r,
                        lhs: Operand::Reg(x),
                        rhs: Operand::Imm(-1),
                    }),
                    _ => {
                        let done = self.f.label();
                        self.f.push(Inst::Mov {
                            dst: r,
                            src: Operand::Imm(1),
                        });
                        self.jump_if(Cond::Eq, x, Operand::Imm(0), done);
                        self.f.push(Inst::Mov {
                            dst: r,
                            src: Operand::Imm(0),
                        });
                        self.f.push(Inst::Label(done));
                    }
                }
                Val::Reg(r)
            }
            K::Binary { lhs, rhs, .. } if matches!(e.ty, Ty::PacketPtr(_)) => {
                let (ptr, n) = match lhs.ty {
                    Ty::PacketPtr(_) => (lhs, rhs),
                    _ => (rhs, lhs),
                };
                self.packet_add(ptr, n)?
            }
            K::Binary {
                op,
                lhs,
                rhs,
                signed,
            } => self.binary(e, *op, lhs, rhs, *signed)?,
            K::Ternary(c, a, b) => {
                let (else_l, done) = (self.f.label(), self.f.label());
                let size = e.ty.storage_size();
                let out = if e.ty.is_scalar() {
                    Val::Reg(self.f.vreg())
                } else {
                    Val::Mem(self.temp(size), size)
                };
                if let Val::Mem(slot, size) = out {
                    self.zero(Place::stack(slot), size);
                }
                self.branch_unless(c, else_l)?;
                self.assign_to(out, a)?;
                self.f.push(Inst::Jump(done));
                self.f.push(Inst::Label(else_l));
                self.assign_to(out, b)?;
                self.f.push(Inst::Label(done));
                out
            }
            K::FromNetwork { bits, value } => {
                let v = self.expr(value)?;
                let x = self.scalar_of(v);
                let r = self.f.vreg();
                self.alu3(
                    AluOp::FromBe,
                    r,
                    Operand::Reg(x),
                    Operand::Imm(*bits as i64),
                );
                Val::Reg(r)
            }
            K::Convert(x) => {
                let v = self.expr(x)?;
                let src = self.scalar_of(v);
                let r = self.f.vreg();
                self.f.push(Inst::Mov {
                    dst: r,
                    src: Operand::Reg(src),
                });
                if let Ty::Int { size, signed } = e.ty {
                    self.extend(r, size, signed);
                }
                Val::Reg(r)
            }
            K::Ntop { family, addr } => {
                let slot = self.temp(24);
                self.zero(Place::stack(slot), 24);
                self.f.push(Inst::Store {
                    addr: Addr::Stack(slot, 0),
                    width: Width::B4,
                    src: Operand::Imm(*family as i64),
                });
                match self.expr(addr)? {
                    Val::Reg(r) => self.f.push(Inst::Store {
                        addr: Addr::Stack(slot, 4),
                        width: Width::B4,
                        src: Operand::Reg(r),
                    }),
                    Val::Mem(src, n) => self.copy(
                        Place {
                            base: Base::Stack(slot),
                            off: 4,
                        },
                        Place::stack(src),
                        n.min(16),
                    ),
                }
                Val::Mem(slot, 20)
            }
            K::RateLimit { per_second, slot } => {
                let Some(map) = self.maps.rate_limits else {
                    return Err(crate::diag::Diagnostic::at(
                        e.span,
                        "internal error: no rate-limit map for ratelimit()",
                    ));
                };
                let (result, now) = (self.f.vreg(), self.f.vreg());
                self.f.push(Inst::Mov {
                    dst: result,
                    src: Operand::Imm(0),
                });
                self.call(helper::KTIME_GET_NS, vec![], Some(now));
                let (allowed, done) = (self.f.label(), self.f.label());
                self.rate_limit(MapId(map), *slot, *per_second, now, allowed);
                self.f.push(Inst::Jump(done));
                self.f.push(Inst::Label(allowed));
                self.f.push(Inst::Mov {
                    dst: result,
                    src: Operand::Imm(1),
                });
                self.f.push(Inst::Label(done));
                Val::Reg(result)
            }
            K::Kstack(limit) => {
                let v = self.builtin(Var::Kstack);
                if let (Val::Reg(r), 1..) = (v, *limit) {
                    self.f.push(Inst::Alu {
                        op: AluOp::Or,
                        dst: r,
                        lhs: Operand::Reg(r),
                        rhs: Operand::Imm((*limit as i64) << 32),
                    });
                }
                v
            }
            K::Retyped(x) => self.expr(x)?,
            K::Inline {
                body,
                result,
                locals,
            } => {
                let locals: Vec<usize> = locals.iter().map(|v| v.0 as usize).collect();
                self.place_locals(&locals);
                self.start_vars(&locals);
                let out = self.f.label();
                self.leave.push(out);
                let lowered = self.block(body);
                self.leave.pop();
                lowered?;
                self.f.push(Inst::Label(out));
                let value = match result {
                    InlineResult::Var(id) => match self.vars[id.0 as usize] {
                        Home::Reg(r) => Val::Reg(r),
                        Home::Mem(slot, size) => Val::Mem(slot, size),
                    },
                    InlineResult::Expr(e) => self.expr(e)?,
                    InlineResult::Nothing => Val::Reg(self.imm(0)),
                };
                let kept = match value {
                    Val::Mem(slot, _) => Some(slot),
                    Val::Reg(_) => None,
                };
                self.release_locals(&locals, kept);
                value
            }
            K::Word(x, off) => match self.expr(x)? {
                Val::Mem(slot, _) => {
                    let r = self.f.vreg();
                    self.f.push(Inst::Load {
                        dst: r,
                        addr: Addr::Stack(slot, *off as i32),
                        width: Width::B8,
                    });
                    Val::Reg(r)
                }
                v => v,
            },
            K::Tuple(items) => {
                let size = e.ty.storage_size();
                let slot = self.temp(size);
                self.tuple_into(slot, items, &e.ty)?;
                Val::Mem(slot, size)
            }
            K::Element { tuple, offset } => {
                if let K::MapRead { map, keys } = &tuple.kind {
                    return self.map_read(*map, keys, &e.ty, Some(*offset), None);
                }
                let Val::Mem(slot, _) = self.expr(tuple)? else {
                    return Err(Diagnostic::at(e.span, "a tuple element of a non-tuple"));
                };
                let from = Place {
                    base: Base::Stack(slot),
                    off: *offset as i32,
                };
                let size = e.ty.storage_size();
                if e.ty.is_scalar() {
                    let r = self.f.vreg();
                    self.f.push(Inst::Load {
                        dst: r,
                        addr: Addr::Stack(slot, *offset as i32),
                        width: Width::from_bytes(u64::from(size)).unwrap_or(Width::B8),
                    });
                    Val::Reg(r)
                } else {
                    let copy = self.temp(size);
                    self.copy(Place::stack(copy), from, size);
                    Val::Mem(copy, size)
                }
            }
        })
    }

    /// Builds a tuple in `slot` (zeroed first: it may have padding).
    /// Its layout is that of `ty` (the tuple's own type, or the wider one
    /// of the variable or map value it is built for).
    pub(super) fn tuple_into(
        &mut self,
        slot: crate::ir::Slot,
        items: &[Expr],
        ty: &Ty,
    ) -> Result<()> {
        let tys: Vec<Ty> = match ty {
            Ty::Tuple(tys) if tys.len() == items.len() => tys.clone(),
            _ => items.iter().map(|i| i.ty.clone()).collect(),
        };
        let (offsets, size) = crate::types::tuple_layout(&tys);
        self.zero(Place::stack(slot), size);
        for ((item, off), ty) in items.iter().zip(offsets).zip(&tys) {
            let v = self.expr(item)?;
            self.store_val(
                Place {
                    base: Base::Stack(slot),
                    off: off as i32,
                },
                v,
                ty.storage_size(),
            );
        }
        Ok(())
    }

    /// Evaluates `e` into an existing value location (ternary branches).
    fn assign_to(&mut self, out: Val, e: &Expr) -> Result<()> {
        let v = self.expr(e)?;
        match out {
            Val::Reg(r) => {
                let s = self.scalar_of(v);
                self.f.push(Inst::Mov {
                    dst: r,
                    src: Operand::Reg(s),
                });
            }
            Val::Mem(slot, size) => self.store_val(Place::stack(slot), v, size),
        }
        Ok(())
    }

    /// `base + offset` as a register.
    fn address(&mut self, base: &Expr, offset: u32) -> Result<VReg> {
        let v = self.expr(base)?;
        let b = self.scalar_of(v);
        Ok(self.offset(b, offset as i64))
    }

    pub(super) fn imm(&mut self, v: i64) -> VReg {
        let r = self.f.vreg();
        self.f.push(Inst::Mov {
            dst: r,
            src: Operand::Imm(v),
        });
        r
    }

    pub(super) fn alu(&mut self, op: AluOp, r: VReg, imm: i64) {
        self.f.push(Inst::Alu {
            op,
            dst: r,
            lhs: Operand::Reg(r),
            rhs: Operand::Imm(imm),
        });
    }

    /// Truncates `r` to `size` bytes, sign-extending when `signed`.
    fn extend(&mut self, r: VReg, size: u8, signed: bool) {
        if size >= 8 {
            return;
        }
        let shift = 64 - size as i64 * 8;
        self.alu(AluOp::Lsh, r, shift);
        self.alu(if signed { AluOp::Arsh } else { AluOp::Rsh }, r, shift);
    }

    pub(super) fn ctx_load(&mut self, off: i16, width: Width) -> VReg {
        let r = self.f.vreg();
        let ctx = self.f.ctx;
        self.f.push(Inst::Load {
            dst: r,
            addr: Addr::Reg(ctx, off),
            width,
        });
        r
    }

    fn builtin(&mut self, v: Var) -> Val {
        match v {
            Var::Packet => return Val::Reg(self.packet_start()),
            Var::PacketLen => return Val::Reg(self.packet_len()),
            _ => {}
        }
        let r = self.f.vreg();
        let call = |l: &mut Self, h: u32, args: Vec<Operand>| l.call(h, args, Some(r));
        match v {
            Var::Pid | Var::Tid => {
                call(self, helper::GET_CURRENT_PID_TGID, vec![]);
                self.alu(
                    if v == Var::Pid {
                        AluOp::Rsh
                    } else {
                        AluOp::Lsh
                    },
                    r,
                    32,
                );
                if v == Var::Tid {
                    self.alu(AluOp::Rsh, r, 32);
                }
            }
            Var::Uid | Var::Gid => {
                call(self, helper::GET_CURRENT_UID_GID, vec![]);
                self.alu(
                    if v == Var::Gid {
                        AluOp::Rsh
                    } else {
                        AluOp::Lsh
                    },
                    r,
                    32,
                );
                if v == Var::Uid {
                    self.alu(AluOp::Rsh, r, 32);
                }
            }
            Var::Nsecs => call(self, helper::KTIME_GET_NS, vec![]),
            Var::Elapsed => {
                call(self, helper::KTIME_GET_NS, vec![]);
                self.alu(AluOp::Sub, r, self.start_ns as i64);
            }
            Var::Cpu => call(self, helper::GET_SMP_PROCESSOR_ID, vec![]),
            Var::Curtask => call(self, helper::GET_CURRENT_TASK, vec![]),
            Var::Cgroup => call(self, helper::GET_CURRENT_CGROUP_ID, vec![]),
            Var::Comm => {
                let size = crate::types::COMM_SIZE;
                let slot = self.temp(size);
                let dst = self.addr(Place::stack(slot));
                self.call(
                    helper::GET_CURRENT_COMM,
                    vec![dst, Operand::Imm(size as i64)],
                    None,
                );
                return Val::Mem(slot, size);
            }
            Var::Kstack => {
                let stacks = MapId(self.maps.stacks.expect("the checker marks kstack use"));
                let (ctx, m) = (Operand::Reg(self.f.ctx), self.map_ptr(stacks));
                call(self, helper::GET_STACKID, vec![ctx, m, Operand::Imm(0)]);
            }
            Var::Packet | Var::PacketLen => unreachable!("packet variables are handled above"),
        }
        Val::Reg(r)
    }

    /// The value of `map[keys]` (zero when missing), or with `element`,
    /// the tuple element of type `ty` at that offset in it (read in
    /// place, not copying the whole tuple). A memory value is copied into
    /// `into` if given, else into a temporary slot.
    pub(super) fn map_read(
        &mut self,
        map: MapId,
        keys: &[Expr],
        ty: &Ty,
        element: Option<u32>,
        into: Option<crate::ir::Slot>,
    ) -> Result<Val> {
        let key = self.key(map, keys, None)?;
        let p = self.lookup(map, key);
        let missing = self.f.label();
        let agg = match &self.script.maps[map.0 as usize].value {
            MapValue::Agg(a) if element.is_none() => Some(*a),
            _ => None,
        };
        let (offset, width) = match element {
            Some(offset) => (offset, Width::from_bytes(u64::from(ty.storage_size()))),
            None => (0, Some(Width::B8)),
        };
        if ty.is_scalar() {
            let r = self.imm(0);
            self.jump_if(Cond::Eq, p, Operand::Imm(0), missing);
            self.f.push(Inst::Load {
                dst: r,
                addr: Addr::Reg(p, offset as i16),
                width: width.unwrap_or(Width::B8),
            });
            if agg == Some(Agg::Avg) {
                let sum = self.f.vreg();
                self.f.push(Inst::Load {
                    dst: sum,
                    addr: Addr::Reg(p, 8),
                    width: Width::B8,
                });
                self.f.push(Inst::Alu {
                    op: AluOp::Div,
                    dst: r,
                    lhs: Operand::Reg(sum),
                    rhs: Operand::Reg(r),
                });
            }
            self.f.push(Inst::Label(missing));
            return Ok(Val::Reg(r));
        }
        let size = ty.storage_size();
        let slot = into.unwrap_or_else(|| self.temp(size));
        self.zero(Place::stack(slot), size);
        self.jump_if(Cond::Eq, p, Operand::Imm(0), missing);
        self.copy(
            Place::stack(slot),
            Place {
                base: Base::Ptr(p),
                off: offset as i32,
            },
            size,
        );
        self.f.push(Inst::Label(missing));
        Ok(Val::Mem(slot, size))
    }

    fn binary(&mut self, e: &Expr, op: BinOp, lhs: &Expr, rhs: &Expr, signed: bool) -> Result<Val> {
        let r = self.f.vreg();
        if is_condition(op) || matches!(op, BinOp::And | BinOp::Or) {
            let done = self.f.label();
            self.f.push(Inst::Mov {
                dst: r,
                src: Operand::Imm(0),
            });
            self.branch_unless(e, done)?;
            self.f.push(Inst::Mov {
                dst: r,
                src: Operand::Imm(1),
            });
            self.f.push(Inst::Label(done));
            return Ok(Val::Reg(r));
        }
        let lv = self.expr(lhs)?;
        let l = self.scalar_of(lv);
        let rr = self.operand(rhs)?;
        let alu = match op {
            BinOp::Add => AluOp::Add,
            BinOp::Sub => AluOp::Sub,
            BinOp::Mul => AluOp::Mul,
            BinOp::Div | BinOp::Mod if signed => {
                let rv = self.scalar_operand(rr);
                return Ok(Val::Reg(self.signed_div(op == BinOp::Mod, l, rv)));
            }
            BinOp::Div => AluOp::Div,
            BinOp::Mod => AluOp::Mod,
            BinOp::BitAnd => AluOp::And,
            BinOp::BitOr => AluOp::Or,
            BinOp::BitXor => AluOp::Xor,
            BinOp::Shl => AluOp::Lsh,
            BinOp::Shr if signed => AluOp::Arsh,
            BinOp::Shr => AluOp::Rsh,
            _ => unreachable!("conditions are handled above"),
        };
        self.f.push(Inst::Alu {
            op: alu,
            dst: r,
            lhs: Operand::Reg(l),
            rhs: rr,
        });
        Ok(Val::Reg(r))
    }

    /// A scalar expression as an operand: constants stay immediates.
    pub(super) fn operand(&mut self, e: &Expr) -> Result<Operand> {
        if let K::Int(v) = e.kind {
            return Ok(Operand::Imm(v));
        }
        let v = self.expr(e)?;
        Ok(Operand::Reg(self.scalar_of(v)))
    }

    /// An operand in a register.
    pub(super) fn scalar_operand(&mut self, o: Operand) -> VReg {
        match o {
            Operand::Reg(r) => r,
            Operand::Imm(v) => self.imm(v),
        }
    }

    /// Jumps to `target` when `cond` is false (zero).
    pub(super) fn branch_unless(&mut self, cond: &Expr, target: Label) -> Result<()> {
        self.branch(cond, false, target)
    }

    /// Jumps to `target` when `cond` is `when` (true: non-zero).
    fn branch(&mut self, cond: &Expr, when: bool, target: Label) -> Result<()> {
        if let K::Int(v) = cond.kind {
            if (v != 0) == when {
                self.f.push(Inst::Jump(target));
            }
            return Ok(());
        }
        if let K::Binary {
            op,
            lhs,
            rhs,
            signed,
        } = &cond.kind
        {
            match op {
                BinOp::And | BinOp::Or => {
                    // `a && b` is false if either is; `a || b` is true if either is.
                    let short = (*op == BinOp::And) != when;
                    if short {
                        self.branch(lhs, when, target)?;
                        return self.branch(rhs, when, target);
                    }
                    let skip = self.f.label();
                    self.branch(lhs, !when, skip)?;
                    self.branch(rhs, when, target)?;
                    self.f.push(Inst::Label(skip));
                    return Ok(());
                }
                _ if is_condition(*op) && matches!(lhs.ty, Ty::Str(_)) => {
                    let equal = self.strings_equal(lhs, rhs)?;
                    let jump_when_equal = (*op == BinOp::Eq) == when;
                    let c = if jump_when_equal { Cond::Ne } else { Cond::Eq };
                    self.f.push(Inst::Branch {
                        cond: c,
                        lhs: equal,
                        rhs: Operand::Imm(0),
                        target,
                    });
                    return Ok(());
                }
                _ if is_condition(*op) => {
                    let lv = self.expr(lhs)?;
                    let l = self.scalar_of(lv);
                    let r = self.operand(rhs)?;
                    let c = comparison(*op, *signed);
                    let c = if when { c } else { negate(c) };
                    self.f.push(Inst::Branch {
                        cond: c,
                        lhs: l,
                        rhs: r,
                        target,
                    });
                    return Ok(());
                }
                _ => {}
            }
        }
        let v = self.expr(cond)?;
        let r = self.scalar_of(v);
        let c = if when { Cond::Ne } else { Cond::Eq };
        self.f.push(Inst::Branch {
            cond: c,
            lhs: r,
            rhs: Operand::Imm(0),
            target,
        });
        Ok(())
    }
}

fn is_condition(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
    )
}

fn comparison(op: BinOp, signed: bool) -> Cond {
    match (op, signed) {
        (BinOp::Eq, _) => Cond::Eq,
        (BinOp::Ne, _) => Cond::Ne,
        (BinOp::Lt, false) => Cond::Lt,
        (BinOp::Le, false) => Cond::Le,
        (BinOp::Gt, false) => Cond::Gt,
        (BinOp::Ge, false) => Cond::Ge,
        (BinOp::Lt, true) => Cond::SLt,
        (BinOp::Le, true) => Cond::SLe,
        (BinOp::Gt, true) => Cond::SGt,
        _ => Cond::SGe,
    }
}

fn negate(c: Cond) -> Cond {
    match c {
        Cond::Eq => Cond::Ne,
        Cond::Ne => Cond::Eq,
        Cond::Gt => Cond::Le,
        Cond::Ge => Cond::Lt,
        Cond::Lt => Cond::Ge,
        Cond::Le => Cond::Gt,
        Cond::SGt => Cond::SLe,
        Cond::SGe => Cond::SLt,
        Cond::SLt => Cond::SGe,
        Cond::SLe => Cond::SGt,
        Cond::Set => unreachable!("Set is never produced by comparisons"),
    }
}
