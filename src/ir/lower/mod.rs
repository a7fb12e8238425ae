//! Lowering: the checked program (`sema::tast`) to IR functions, one per
//! BPF program. Scalars live in virtual registers; strings, tuples and
//! addresses in stack slots; maps and events follow `ir::layout`.

mod buckets;
mod builtin;
mod cond;
mod expr;
mod load;
mod maps;
mod mem;
mod ops;
mod packet;
mod path;
mod path_capture;
mod path_hist;
mod rate_limit;
mod recall;

use super::layout::{self, event, MapTable};
use super::{Addr, AluOp, Cond, Function, Label, Operand, Slot, VReg, Width};
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::builtins::Func;
use crate::diag::Result;
use crate::sema::tast::{self, Agg, Expr, Script, Stmt};
use crate::types::Ty;
use mem::{Base, Place};

/// Lowers every program of a script. `start_ns` is the monotonic time
/// netscript started at (for `elapsed`).
pub fn lower(script: &Script, maps: &MapTable, start_ns: u64) -> Result<Vec<Function>> {
    (0..script.programs.len())
        .map(|index| Lower::new(script, index, maps, start_ns).program())
        .collect()
}

/// The span a statement's instructions are attributed to: its main expression.
fn stmt_span(s: &Stmt) -> Option<crate::diag::Span> {
    match s {
        Stmt::Expr(e) | Stmt::SetVar(_, e) | Stmt::If(e, ..) | Stmt::While(e, _) => Some(e.span),
        Stmt::SetMap { value, .. } => Some(value.span),
        Stmt::Aggregate { arg, keys, .. } => arg.as_ref().or(keys.first()).map(|e| e.span),
        Stmt::Delete { keys, .. } => keys.first().map(|e| e.span),
        Stmt::Printf(_, args) => args.first().map(|e| e.span),
        Stmt::MapAction(..) | Stmt::Exit | Stmt::Return | Stmt::Leave => None,
        Stmt::PathStage { key, .. } => Some(key.span),
        Stmt::PathMark { mark, .. } => Some(mark.span),
    }
}

/// Where a `$variable` lives.
#[derive(Debug, Clone, Copy)]
enum Home {
    Reg(VReg),
    Mem(Slot, u32),
}

/// A lowered expression value.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val {
    /// A scalar in a register.
    Reg(VReg),
    /// `size` bytes at the start of a stack slot.
    Mem(Slot, u32),
}

struct Lower<'a> {
    f: Function,
    script: &'a Script,
    prog: &'a tast::Program,
    /// The program's index in the script.
    index: usize,
    maps: &'a MapTable,
    vars: Vec<Home>,
    /// Temporary slots: (slot, size, in use). Freed after each statement.
    temps: Vec<(Slot, u32, bool)>,
    end: Label,
    start_ns: u64,
    /// The script location of the instructions being emitted.
    loc: Option<crate::diag::Span>,
    /// Where `Leave` jumps: the end of each inlined function, innermost last.
    leave: Vec<Label>,
    /// Temporary slots in use, as indices into `temps`, in order taken.
    taken: Vec<usize>,
    /// Where a failed packet bounds check jumps (see `packet`).
    short: Option<Label>,
}

/// When a ring-buffer record wakes the reader.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wake {
    /// At once (exit and map actions: the reader acts on them).
    Now,
    /// When enough records wait (printf and path events).
    Batched,
}

/// `bpf_ringbuf_query` flag: bytes written and not yet consumed.
const BPF_RB_AVAIL_DATA: i64 = 0;
/// `bpf_ringbuf_output` flags.
const BPF_RB_NO_WAKEUP: i64 = 1;
const BPF_RB_FORCE_WAKEUP: i64 = 2;

impl<'a> Lower<'a> {
    fn new(script: &'a Script, index: usize, maps: &'a MapTable, start_ns: u64) -> Self {
        let prog = &script.programs[index];
        let mut f = Function::new(prog.name.clone());
        let end = f.label();
        Lower {
            f,
            script,
            prog,
            index,
            maps,
            vars: Vec::new(),
            temps: Vec::new(),
            end,
            start_ns,
            loc: None,
            leave: Vec::new(),
            taken: Vec::new(),
            short: None,
        }
    }

    fn program(mut self) -> Result<Function> {
        for (i, ty) in self.prog.vars.iter().enumerate() {
            let home = match ty {
                Ty::Str(_) | Ty::Tuple(_) | Ty::Inet => {
                    let size = ty.storage_size();
                    // Variables of inlined calls get a slot per call (place_locals).
                    let entry = self.prog.entry_vars.get(i).copied().unwrap_or(true);
                    let slot = if entry {
                        self.f.slot(size.div_ceil(8) * 8, 8)
                    } else {
                        Slot(u32::MAX)
                    };
                    Home::Mem(slot, size)
                }
                _ => Home::Reg(self.f.vreg()),
            };
            self.vars.push(home);
        }
        let entry: Vec<usize> = (0..self.vars.len())
            .filter(|i| self.prog.entry_vars.get(*i).copied().unwrap_or(true))
            .collect();
        self.start_vars(&entry);
        let body = &self.prog.body;
        self.block(body)?;
        self.finish_packet_checks();
        self.f.bind(self.end);
        self.f.exit(self.prog.probe.kind.exit_code());
        Ok(self.f)
    }

    /// Sets variables to zero (every read must follow a write, for the verifier).
    pub(super) fn start_vars(&mut self, vars: &[usize]) {
        for &i in vars {
            match self.vars[i] {
                Home::Mem(slot, size) => self.zero(Place::stack(slot), size.div_ceil(8) * 8),
                Home::Reg(r) => self.f.mov_imm(r, 0),
            }
        }
    }

    /// Lowers statements; each statement's temporaries are free again
    /// after it (those of an enclosing expression stay taken).
    pub(super) fn block(&mut self, stmts: &[Stmt]) -> Result<()> {
        for s in stmts {
            self.with_temps(|l| l.stmt(s))?;
        }
        Ok(())
    }

    /// Runs `f`; the temporary slots it takes are free again afterwards.
    pub(super) fn with_temps<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let mark = self.taken.len();
        let out = f(self);
        for i in self.taken.drain(mark..) {
            self.temps[i].2 = false;
        }
        out
    }

    /// A temporary stack slot of at least `size` bytes for this statement.
    fn temp(&mut self, size: u32) -> Slot {
        let index = self.pooled_slot(size);
        self.taken.push(index);
        self.temps[index].0
    }

    /// Takes a free slot of at least `size` bytes from the pool shared by
    /// temporaries and the memory variables of inlined calls (the smallest
    /// that fits without wasting more than its size again plus 32 bytes, else the
    /// largest smaller free one grown to `size`, or a new one); returns its
    /// index in `temps`. A small value left in a big slot would make the
    /// next big value take a second one.
    fn pooled_slot(&mut self, size: u32) -> usize {
        let size = size.div_ceil(8).max(1) * 8;
        let free = || self.temps.iter().enumerate().filter(|(_, t)| !t.2);
        let best = free()
            .filter(|(_, t)| t.1 >= size && t.1 <= 2 * size + 32)
            .min_by_key(|(_, t)| t.1)
            .or_else(|| free().filter(|(_, t)| t.1 < size).max_by_key(|(_, t)| t.1))
            .map(|(i, _)| i);
        let index = match best {
            Some(i) => {
                if self.temps[i].1 < size {
                    // Slot sizes are fixed only when the frame is laid out.
                    self.temps[i].1 = size;
                    self.f.slots[self.temps[i].0 .0 as usize].size = size;
                }
                i
            }
            None => {
                let slot = self.f.slot(size, 8);
                self.temps.push((slot, size, false));
                self.temps.len() - 1
            }
        };
        self.temps[index].2 = true;
        index
    }

    /// Gives the memory variables among an inlined call's `locals` their
    /// slots from the pool for the duration of the call.
    pub(super) fn place_locals(&mut self, locals: &[usize]) {
        for &i in locals {
            if let Home::Mem(_, size) = self.vars[i] {
                let index = self.pooled_slot(size);
                self.vars[i] = Home::Mem(self.temps[index].0, size);
            }
        }
    }

    /// Returns the slots of an inlined call's memory variables to the pool
    /// once the call is done; the one holding its value (`kept`) stays
    /// taken until the end of the statement that reads it.
    pub(super) fn release_locals(&mut self, locals: &[usize], kept: Option<Slot>) {
        for &i in locals {
            if let Home::Mem(slot, _) = self.vars[i] {
                if let Some(index) = self.temps.iter().position(|t| t.0 == slot) {
                    if Some(slot) == kept {
                        self.taken.push(index);
                    } else {
                        self.temps[index].2 = false;
                    }
                }
            }
        }
    }

    fn stmt(&mut self, s: &Stmt) -> Result<()> {
        if let Some(span) = stmt_span(s) {
            self.set_loc(span);
        }
        match s {
            Stmt::Expr(e) => {
                self.expr(e)?;
            }
            // A tuple assigned to a variable is built in place.
            Stmt::SetVar(
                id,
                Expr {
                    kind: crate::sema::tast::ExprKind::Tuple(items),
                    ..
                },
            ) if matches!(self.vars[id.0 as usize], Home::Mem(..)) => {
                if let Home::Mem(slot, _) = self.vars[id.0 as usize] {
                    let ty = &self.prog.vars[id.0 as usize];
                    self.tuple_into(slot, items, ty)?;
                }
            }
            // A map value read into a variable of its type goes straight there.
            Stmt::SetVar(
                id,
                Expr {
                    kind: crate::sema::tast::ExprKind::MapRead { map, keys },
                    ty,
                    ..
                },
            ) if matches!(self.vars[id.0 as usize], Home::Mem(..))
                && self.prog.vars[id.0 as usize] == *ty =>
            {
                if let Home::Mem(slot, _) = self.vars[id.0 as usize] {
                    self.map_read(*map, keys, ty, None, Some(slot))?;
                }
            }
            Stmt::SetVar(id, e) => {
                let v = self.expr(e)?;
                match self.vars[id.0 as usize] {
                    Home::Reg(r) => {
                        let src = self.scalar_of(v);
                        self.f.mov_reg(r, src);
                    }
                    Home::Mem(slot, size) => self.store_val(Place::stack(slot), v, size),
                }
            }
            Stmt::SetMap { map, keys, value } => {
                let key = self.key(*map, keys, None)?;
                let decl = &self.script.maps[map.0 as usize];
                let size = layout::value_size(decl);
                let v = self.expr(value)?;
                let slot = match v {
                    // A memory value of the map's own value type is stored as it is.
                    Val::Mem(slot, _) if decl.value == tast::MapValue::Plain(value.ty.clone()) => {
                        slot
                    }
                    _ => {
                        let slot = self.temp(size);
                        if !value.ty.is_scalar() {
                            self.zero(Place::stack(slot), size);
                        }
                        self.store_val(Place::stack(slot), v, value.ty.storage_size());
                        slot
                    }
                };
                self.f.map_update(*map, key, slot, 0);
            }
            Stmt::Aggregate {
                map,
                keys,
                agg,
                arg,
            } => self.aggregate(*map, keys, *agg, arg.as_ref())?,
            Stmt::Delete { map, keys } => {
                let key = self.key(*map, keys, None)?;
                self.f.map_delete(*map, key);
            }
            Stmt::MapAction(Func::Table, maps) => {
                let words: Vec<i64> = std::iter::once(maps.len() as i64)
                    .chain(maps.iter().map(|m| m.0 as i64))
                    .collect();
                let slot = self.temp(8 * (words.len() as u32 + 1));
                self.map_event(event::PRINT_TABLE, slot, &words);
            }
            Stmt::MapAction(func, maps) => {
                let kind = match func {
                    Func::Print => event::PRINT,
                    Func::Clear => event::CLEAR,
                    _ => event::ZERO,
                };
                let slot = self.temp(16);
                for map in maps {
                    self.map_event(kind, slot, &[map.0 as i64]);
                }
            }
            Stmt::Printf(id, args) => {
                let tys: Vec<Ty> = args.iter().map(|a| a.ty.clone()).collect();
                let (offsets, size) = layout::args_layout(&tys);
                let size = 8 + size;
                // A large record is built in the per-CPU scratch map.
                let skip = self.f.label();
                let record = match self
                    .maps
                    .scratch
                    .filter(|_| size > layout::STACK_RECORD_MAX)
                {
                    Some(map) => Place {
                        base: Base::Ptr(self.lookup_index(MapId(map), 0, skip)),
                        off: 0,
                    },
                    None => Place::stack(self.temp(size)),
                };
                self.zero(record, size);
                // Each argument goes into the record as soon as it is
                // computed, so its temporaries are free for the next one.
                for ((a, off), ty) in args.iter().zip(offsets).zip(&tys) {
                    self.with_temps(|l| -> Result<()> {
                        let v = l.expr(a)?;
                        l.store_val(
                            Place {
                                off: record.off + 8 + off as i32,
                                ..record
                            },
                            v,
                            ty.storage_size(),
                        );
                        Ok(())
                    })?;
                }
                self.emit_event(event::PRINTF_BASE + *id as u64, record, size, Wake::Batched);
                self.f.bind(skip);
            }
            Stmt::Exit => {
                let slot = self.temp(8);
                self.emit_event(event::EXIT, Place::stack(slot), 8, Wake::Now);
            }
            // A constant condition (a parameter test) keeps only its branch.
            Stmt::If(cond, then_b, else_b) if matches!(cond.kind, tast::ExprKind::Int(_)) => {
                let tast::ExprKind::Int(v) = cond.kind else {
                    return Ok(());
                };
                self.block(if v != 0 { then_b } else { else_b })?;
            }
            Stmt::If(cond, then_b, else_b) => {
                let (else_l, done) = (self.f.label(), self.f.label());
                self.branch_unless(cond, else_l)?;
                self.block(then_b)?;
                self.f.jump(done);
                self.f.bind(else_l);
                self.block(else_b)?;
                self.f.bind(done);
            }
            Stmt::While(cond, body) => {
                let (top, done) = (self.f.label(), self.f.label());
                self.f.bind(top);
                self.branch_unless(cond, done)?;
                self.block(body)?;
                self.f.jump(top);
                self.f.bind(done);
            }
            Stmt::PathStage {
                path,
                stage,
                key,
                skb,
                info,
                group,
                recall,
                capture,
            } => {
                let extra = path::StageExtra {
                    info: info.as_ref(),
                    group: group.as_deref(),
                    recall: recall.as_deref(),
                    capture: capture.as_deref(),
                };
                self.path_stage(*path, *stage, key, skb, extra)?
            }
            Stmt::PathMark { path, mark } => self.path_mark(*path, mark)?,
            Stmt::Leave => {
                let out = *self
                    .leave
                    .last()
                    .expect("the checker only puts Leave inside functions");
                self.f.jump(out);
            }
            Stmt::Return => self.f.jump(self.end),
        }
        Ok(())
    }

    /// Builds a map key in a zeroed temporary slot; `bucket` goes into the
    /// histogram bucket position.
    fn key(&mut self, map: MapId, keys: &[Expr], bucket: Option<VReg>) -> Result<Slot> {
        let decl = &self.script.maps[map.0 as usize];
        let kl = layout::key_layout(decl);
        let mut vals = Vec::new();
        for k in keys {
            vals.push(self.expr(k)?);
        }
        let slot = self.temp(kl.size);
        // Keys made only of 8-byte scalars are written whole; others have
        // padding or string tails that must be zero to compare equal.
        let whole = decl.keys.iter().all(|k| k.is_scalar())
            && (kl.bucket.is_some() || !decl.keys.is_empty());
        if !whole {
            self.zero(Place::stack(slot), kl.size);
        }
        for ((v, off), ty) in vals.into_iter().zip(&kl.offsets).zip(&decl.keys) {
            self.store_val(
                Place {
                    off: *off as i32,
                    ..Place::stack(slot)
                },
                v,
                ty.storage_size(),
            );
        }
        if let (Some(b), Some(off)) = (bucket, kl.bucket) {
            let addr = Addr::Stack(slot, off as i32);
            self.f.store_reg(addr, Width::B8, b);
        }
        Ok(slot)
    }

    fn aggregate(&mut self, map: MapId, keys: &[Expr], agg: Agg, arg: Option<&Expr>) -> Result<()> {
        let x = match arg {
            Some(a) => {
                let v = self.expr(a)?;
                Some(self.scalar_of(v))
            }
            None => None,
        };
        let bucket = match (agg, x) {
            (Agg::Hist { bits }, Some(x)) => Some(self.hist_bucket(x, bits)),
            (Agg::Lhist { min, max, step }, Some(x)) => Some(self.linear_bucket(x, min, max, step)),
            _ => None,
        };
        let key = self.key(map, keys, bucket)?;
        let skip = self.f.label();
        let size = layout::value_size(&self.script.maps[map.0 as usize]);
        let p = self.value_ptr(map, key, size, skip);
        let add = |l: &mut Self, off: i16, v: Operand| l.add_at(p, off, v);
        let xo = x.map(Operand::Reg).unwrap_or(Operand::Imm(1));
        match agg {
            Agg::Count | Agg::Hist { .. } | Agg::Lhist { .. } => add(self, 0, Operand::Imm(1)),
            Agg::Sum => add(self, 0, xo),
            Agg::Avg | Agg::Stats => {
                add(self, 0, Operand::Imm(1));
                add(self, 8, xo);
            }
            Agg::Min | Agg::Max => {
                let (set, cur, keep) = (self.f.vreg(), self.f.vreg(), self.f.label());
                let write = self.f.label();
                self.f.load_into(set, Addr::Reg(p, 8), Width::B8);
                self.f.branch_imm(Cond::Eq, set, 0, write);
                self.f.load_into(cur, Addr::Reg(p, 0), Width::B8);
                let cond = if agg == Agg::Min {
                    Cond::SLe
                } else {
                    Cond::SGe
                };
                let xr = x.expect("min/max have an argument");
                self.f.branch_reg(cond, cur, xr, keep);
                self.f.bind(write);
                self.f.store_reg(Addr::Reg(p, 0), Width::B8, xr);
                self.f.store_imm(Addr::Reg(p, 8), Width::B8, 1);
                self.f.bind(keep);
            }
        }
        self.f.bind(skip);
        Ok(())
    }

    /// Sends a record of `kind` followed by the constant `words` (map ids,
    /// for user space to print, clear or zero), built in `slot`.
    fn map_event(&mut self, kind: u64, slot: Slot, words: &[i64]) {
        let size = 8 * (words.len() as u32 + 1);
        for (i, word) in words.iter().enumerate() {
            let addr = Addr::Stack(slot, 8 * (i as i32 + 1));
            self.f.store_imm(addr, Width::B8, *word);
        }
        self.emit_event(kind, Place::stack(slot), size, Wake::Now);
    }

    /// Sends the `size` bytes of `record` to the ring buffer with `kind`
    /// as the first word; a failed send increments the lost-event counter.
    fn emit_event(&mut self, kind: u64, record: Place, size: u32, wake: Wake) {
        self.f.store_imm(record.at(0), Width::B8, kind as i64);
        let data = self.addr(record);
        let lost = (MapId(self.maps.lost), 0);
        self.send(data, size, lost, wake);
    }

    /// Sends `size` bytes at `data` to the ring buffer; if it is full,
    /// increments counter `lost.1` of per-CPU array `lost.0`.
    pub(super) fn send(&mut self, data: Operand, size: u32, lost: (MapId, u32), wake: Wake) {
        let flags = match wake {
            // Forced: records before it may not have woken the reader.
            Wake::Now => Operand::Imm(BPF_RB_FORCE_WAKEUP),
            Wake::Batched => {
                // Waking the reader costs microseconds per record: a record
                // wakes it only when it fills the ring past a quarter, a
                // half or three quarters; the reader also reads every
                // 100 ms on its own (`RingReader::poll`).
                let quarter = (layout::RINGBUF_BYTES / 4).trailing_zeros() as i64;
                let (before, after, flags) = (self.f.vreg(), self.f.vreg(), self.f.vreg());
                let events = self.f.map_ptr(MapId(self.maps.events));
                let args = [Operand::Reg(events), Operand::Imm(BPF_RB_AVAIL_DATA)];
                self.f
                    .call_helper(helper::RINGBUF_QUERY, &args, Some(before));
                self.f.alu_imm(AluOp::Add, after, before, size as i64);
                self.f.alu_imm(AluOp::Rsh, before, before, quarter);
                self.f.alu_imm(AluOp::Rsh, after, after, quarter);
                self.f.mov_imm(flags, BPF_RB_NO_WAKEUP);
                let quiet = self.f.label();
                self.f.branch_reg(Cond::Eq, before, after, quiet);
                self.f.mov_imm(flags, BPF_RB_FORCE_WAKEUP);
                self.f.bind(quiet);
                Operand::Reg(flags)
            }
        };
        let ret = self.f.vreg();
        let events = self.f.map_ptr(MapId(self.maps.events));
        let args = [Operand::Reg(events), data, Operand::Imm(size as i64), flags];
        self.f.call_helper(helper::RINGBUF_OUTPUT, &args, Some(ret));
        let sent = self.f.label();
        self.f.branch_imm(Cond::SGe, ret, 0, sent);
        self.increment(lost.0, lost.1);
        self.f.bind(sent);
    }
}
