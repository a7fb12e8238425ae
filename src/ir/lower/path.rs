//! Lowering of `Stmt::PathStage`: the in-kernel half of packet paths.
//!
//! The first stage (re)creates the packet's record in the path's LRU map
//! (a stage after optional stages only also creates it when it is
//! missing); later stages record their first timestamp and context; the last stage
//! adds every segment between stages that fired (and the total) to the
//! per-CPU histograms, sends the record as an event when it passes the
//! latency threshold and the global rate limit, and deletes it. Every
//! outcome is counted.

use super::mem::{Base, Place};
use super::{Lower, Val, Wake};
use crate::codegen::insn::helper;
use crate::diag::Result;
use crate::ir::layout::{
    path_counter as counter, path_layout, HistArray, PathLayout, PathMaps, PATH_EVENT_BASE,
    STAGE_CTX_SIZE, TOTAL_SEGMENT,
};
use crate::ir::{Addr, AluOp, Cond, Inst, Label, MapId, Operand, Slot, VReg, Width};
use crate::sema::tast::{Expr, PathInfo};

/// `BPF_ANY` for `bpf_map_update_elem`.
const BPF_ANY: i64 = 0;
/// `BPF_NOEXIST` for `bpf_map_update_elem`.
const BPF_NOEXIST: i64 = 1;

impl Lower<'_> {
    /// Records stage `stage` of path `path` for the packet with `key`.
    pub(super) fn path_stage(
        &mut self,
        path: u32,
        stage: u32,
        key: &Expr,
        skb: &Expr,
        info_values: Option<&Expr>,
    ) -> Result<()> {
        let info = &self.script.paths[path as usize];
        let maps = self.maps.paths[path as usize];
        let layout = path_layout(info);
        let last = stage as usize + 1 == info.stages.len();
        // A key built in memory of the key's size (a tuple: zeroed, then
        // filled) is used where it is; anything else is copied into a
        // zeroed slot of that size.
        let key_slot = match self.expr(key)? {
            Val::Mem(slot, len) if len == layout.key_size => slot,
            value => {
                let slot = self.temp(layout.key_size);
                self.zero(Place::stack(slot), layout.key_size);
                self.store_val(Place::stack(slot), value, key.ty.storage_size());
                slot
            }
        };
        let hashed = self.key_hash(key_slot, layout.key_size);
        let skb_value = self.expr(skb)?;
        let skb = self.scalar_of(skb_value);
        let now = self.f.vreg();
        self.call(helper::KTIME_GET_NS, vec![], Some(now));
        let done = self.f.label();
        let records = MapId(maps.records);
        // A stage starts records if no stage before it must fire (the
        // first stage, or one after optional stages only).
        let starter = info.stages[..stage as usize].iter().all(|s| s.optional);
        let p = self.f.vreg();
        let (create, record) = (self.f.label(), self.f.label());
        if stage == 0 {
            // The first stage starts the packet again, whatever came before
            // (create_record counts a record it replaces).
            self.f.push(Inst::Jump(create));
        } else {
            let existing = self.lookup(records, hashed);
            let missing = if starter { create } else { done };
            self.f.push(Inst::Branch {
                cond: Cond::Eq,
                lhs: existing,
                rhs: Operand::Imm(0),
                target: missing,
            });
            // Another packet whose key has the same hash is not this one.
            self.same_key(existing, layout.key_off, key_slot, layout.key_size, missing);
            // Only the first time a packet passes a stage counts.
            let seen = self.f.vreg();
            let ts = (layout.ts_off + 8 * stage) as i16;
            self.f.push(Inst::Load {
                dst: seen,
                addr: Addr::Reg(existing, ts),
                width: Width::B8,
            });
            self.f.push(Inst::Branch {
                cond: Cond::Ne,
                lhs: seen,
                rhs: Operand::Imm(0),
                target: done,
            });
            self.f.push(Inst::Mov {
                dst: p,
                src: Operand::Reg(existing),
            });
            self.f.push(Inst::Jump(record));
        }
        self.f.push(Inst::Label(create));
        if starter {
            let created = self.create_record(
                path,
                stage,
                &layout,
                maps,
                (key_slot, hashed),
                info_values,
                done,
            )?;
            self.f.push(Inst::Mov {
                dst: p,
                src: Operand::Reg(created),
            });
        }
        self.f.push(Inst::Label(record));
        self.record_context(info, p, stage, now, skb, layout.ts_off, layout.ctx_off);
        if last {
            self.complete(info, maps, p, now, hashed, layout.ts_off, layout.size);
        }
        self.f.push(Inst::Label(done));
        Ok(())
    }

    /// Creates the record of the packet whose key is in `keys.0` (its hash,
    /// the record map's key, in `keys.1`): zeroed,
    /// with its event kind, key and `info` values; counts it started. At
    /// the first stage, a record already there is replaced and counted.
    #[allow(clippy::too_many_arguments)]
    fn create_record(
        &mut self,
        path: u32,
        stage: u32,
        layout: &PathLayout,
        maps: PathMaps,
        (key_slot, hashed): (Slot, Slot),
        info_values: Option<&Expr>,
        done: Label,
    ) -> Result<VReg> {
        let records = MapId(maps.records);
        // A zeroed record from the per-CPU scratch array (never written).
        let zero = self.lookup_index(MapId(maps.zero), 0, done);
        // At the first stage, one hash operation when the packet is new:
        // insert unless present.
        let flags = if stage == 0 { BPF_NOEXIST } else { BPF_ANY };
        let failed = self.update(records, hashed, Operand::Reg(zero), flags);
        if stage == 0 {
            let inserted = self.f.label();
            self.f.push(Inst::Branch {
                cond: Cond::Eq,
                lhs: failed,
                rhs: Operand::Imm(0),
                target: inserted,
            });
            self.increment(MapId(maps.counters), counter::REPLACED);
            self.update(records, hashed, Operand::Reg(zero), BPF_ANY);
            self.f.push(Inst::Label(inserted));
        }
        let p = self.lookup_or(records, hashed, done);
        let kind = PATH_EVENT_BASE as i64 + path as i64;
        self.f.push(Inst::Store {
            addr: Addr::Reg(p, 0),
            width: Width::B8,
            src: Operand::Imm(kind),
        });
        self.copy(
            Place {
                base: Base::Ptr(p),
                off: layout.key_off as i32,
            },
            Place::stack(key_slot),
            layout.key_size,
        );
        if let Some(values) = info_values {
            let v = self.expr(values)?;
            let place = Place {
                base: Base::Ptr(p),
                off: layout.info_off as i32,
            };
            self.store_val(place, v, values.ty.storage_size());
        }
        self.increment(MapId(maps.counters), counter::STARTED);
        Ok(p)
    }

    /// Writes a stage's timestamp and, for packet reports, its context
    /// into the record at `p`.
    fn record_context(
        &mut self,
        info: &PathInfo,
        p: VReg,
        stage: u32,
        now: VReg,
        skb: VReg,
        ts_off: u32,
        ctx_off: u32,
    ) {
        let ctx = (ctx_off + STAGE_CTX_SIZE * stage) as i16;
        let store = |l: &mut Self, off: i16, width: Width, src: Operand| {
            l.f.push(Inst::Store {
                addr: Addr::Reg(p, off),
                width,
                src,
            })
        };
        store(
            self,
            (ts_off + 8 * stage) as i16,
            Width::B8,
            Operand::Reg(now),
        );
        // Only a packet report shows where each stage ran.
        if !info.detail {
            return;
        }
        store(self, ctx, Width::B8, Operand::Reg(skb));
        let pid = self.f.vreg();
        self.call(helper::GET_CURRENT_PID_TGID, vec![], Some(pid));
        self.f.push(Inst::Alu {
            op: AluOp::Rsh,
            dst: pid,
            lhs: Operand::Reg(pid),
            rhs: Operand::Imm(32),
        });
        store(self, ctx + 8, Width::B4, Operand::Reg(pid));
        if let Some(offsets) = info.dev_offsets {
            let dev = self.read_kernel(skb, offsets.dev, Width::B8);
            let ifindex = self.read_kernel(dev, offsets.ifindex, Width::B4);
            store(self, ctx + 12, Width::B4, Operand::Reg(ifindex));
            let name = self.offset(dev, offsets.name as i64);
            let into = self.addr(Place {
                base: Base::Ptr(p),
                off: ctx as i32 + 40,
            });
            let size = Operand::Imm(16);
            self.call(
                helper::PROBE_READ_KERNEL,
                vec![into, size, Operand::Reg(name)],
                None,
            );
        }
        let stack = match (info.stacks, self.maps.stacks) {
            (true, Some(stacks)) => {
                let id = self.f.vreg();
                let (c, m) = (Operand::Reg(self.f.ctx), self.map_ptr(MapId(stacks)));
                self.call(helper::GET_STACKID, vec![c, m, Operand::Imm(0)], Some(id));
                Operand::Reg(id)
            }
            _ => Operand::Imm(-1),
        };
        store(self, ctx + 16, Width::B8, stack);
        let comm = self.addr(Place {
            base: Base::Ptr(p),
            off: ctx as i32 + 24,
        });
        self.call(helper::GET_CURRENT_COMM, vec![comm, Operand::Imm(16)], None);
    }

    /// The last stage: histograms, the event, the counters, and the record's removal.
    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        info: &PathInfo,
        maps: PathMaps,
        p: VReg,
        now: VReg,
        hashed: crate::ir::Slot,
        ts_off: u32,
        size: u32,
    ) {
        let first = self.f.vreg();
        self.f.push(Inst::Load {
            dst: first,
            addr: Addr::Reg(p, ts_off as i16),
            width: Width::B8,
        });
        let total = self.f.vreg();
        self.f.push(Inst::Alu {
            op: AluOp::Sub,
            dst: total,
            lhs: Operand::Reg(now),
            rhs: Operand::Reg(first),
        });
        if info.histogram {
            let (prev_ts, prev_stage) = (self.f.vreg(), self.f.vreg());
            self.f.push(Inst::Mov {
                dst: prev_ts,
                src: Operand::Reg(first),
            });
            self.f.push(Inst::Mov {
                dst: prev_stage,
                src: Operand::Imm(0),
            });
            for j in 1..info.stages.len() as u32 {
                let skip = self.f.label();
                let t = self.f.vreg();
                self.f.push(Inst::Load {
                    dst: t,
                    addr: Addr::Reg(p, (ts_off + 8 * j) as i16),
                    width: Width::B8,
                });
                self.f.push(Inst::Branch {
                    cond: Cond::Eq,
                    lhs: t,
                    rhs: Operand::Imm(0),
                    target: skip,
                });
                let seg = self.f.vreg();
                self.f.push(Inst::Alu {
                    op: AluOp::Sub,
                    dst: seg,
                    lhs: Operand::Reg(t),
                    rhs: Operand::Reg(prev_ts),
                });
                self.with_temps(|l| {
                    l.add_to_histogram(info, maps, Operand::Reg(prev_stage), j, seg)
                });
                self.f.push(Inst::Mov {
                    dst: prev_ts,
                    src: Operand::Reg(t),
                });
                self.f.push(Inst::Mov {
                    dst: prev_stage,
                    src: Operand::Imm(j as i64),
                });
                self.f.push(Inst::Label(skip));
            }
            self.add_to_histogram(
                info,
                maps,
                Operand::Imm(TOTAL_SEGMENT as i64),
                TOTAL_SEGMENT,
                total,
            );
        }
        if info.detail {
            let (report, after) = (self.f.label(), self.f.label());
            let below = self.f.label();
            self.f.push(Inst::Branch {
                cond: Cond::Lt,
                lhs: total,
                rhs: Operand::Imm(info.threshold_ns as i64),
                target: below,
            });
            if info.rate_limit > 0 {
                self.rate_limit(MapId(maps.rate), 0, info.rate_limit, now, report);
                self.increment(MapId(maps.counters), counter::SUPPRESSED);
                self.f.push(Inst::Jump(after));
            }
            self.f.push(Inst::Label(report));
            let data = Operand::Reg(p);
            self.send(
                data,
                size,
                (MapId(maps.counters), counter::LOST),
                Wake::Batched,
            );
            self.f.push(Inst::Jump(after));
            self.f.push(Inst::Label(below));
            self.increment(MapId(maps.counters), counter::FILTERED);
            self.f.push(Inst::Label(after));
        }
        self.delete(MapId(maps.records), hashed);
        self.increment(MapId(maps.counters), counter::COMPLETED);
    }

    /// Counts `value` in the histogram of segment `from -> to` (both
    /// [`TOTAL_SEGMENT`] for the total).
    fn add_to_histogram(
        &mut self,
        info: &PathInfo,
        maps: PathMaps,
        from: Operand,
        to: u32,
        value: VReg,
    ) {
        let bucket = self.hist_bucket(value, info.hist_bits);
        let skip = self.f.label();
        let c = match HistArray::of(info) {
            // An array element: the verifier inlines the lookup, no hashing.
            Some(array) => {
                let index = self.f.vreg();
                let segment = match (to, from) {
                    (TOTAL_SEGMENT, _) => Operand::Imm(array.total_segment() as i64),
                    (_, Operand::Imm(f)) => Operand::Imm(array.first_segment_to(to) as i64 + f),
                    (_, from) => {
                        let first = Operand::Imm(array.first_segment_to(to) as i64);
                        self.alu3(AluOp::Add, index, from, first);
                        Operand::Reg(index)
                    }
                };
                let buckets = Operand::Imm(array.buckets as i64);
                self.alu3(AluOp::Mul, index, segment, buckets);
                self.alu3(AluOp::Add, index, Operand::Reg(index), Operand::Reg(bucket));
                let key = self.temp(8);
                self.f.push(Inst::Store {
                    addr: Addr::Stack(key, 0),
                    width: Width::B4,
                    src: Operand::Reg(index),
                });
                self.lookup_or(MapId(maps.hists), key, skip)
            }
            None => {
                let key = self.temp(16);
                self.f.push(Inst::Store {
                    addr: Addr::Stack(key, 0),
                    width: Width::B4,
                    src: from,
                });
                self.f.push(Inst::Store {
                    addr: Addr::Stack(key, 4),
                    width: Width::B4,
                    src: Operand::Imm(to as i64),
                });
                self.f.push(Inst::Store {
                    addr: Addr::Stack(key, 8),
                    width: Width::B8,
                    src: Operand::Reg(bucket),
                });
                self.value_ptr(MapId(maps.hists), key, 8, skip)
            }
        };
        self.add_at(c, 0, Operand::Imm(1));
        self.f.push(Inst::Label(skip));
    }

    /// A 64-bit hash of the `size` bytes of key in `slot` (a multiple of
    /// 8), in a slot of its own: the record map's key. Hashing a wide key
    /// (two addresses and six numbers: 96 bytes) at every map operation
    /// costs more than hashing it once here. Each word goes through a
    /// multiply-rotate-multiply round (xxHash64's), then the result is
    /// mixed (its avalanche step).
    fn key_hash(&mut self, slot: Slot, size: u32) -> Slot {
        const PRIME1: i64 = 0x9E37_79B1_85EB_CA87_u64 as i64;
        const PRIME2: i64 = 0xC2B2_AE3D_27D4_EB4F_u64 as i64;
        const PRIME3: i64 = 0x1656_67B1_9E37_79F9_u64 as i64;
        let h = self.imm(PRIME3);
        let (hr, w, high) = (Operand::Reg(h), self.f.vreg(), self.f.vreg());
        let (wr, highr) = (Operand::Reg(w), Operand::Reg(high));
        for i in 0..size / 8 {
            self.f.push(Inst::Load {
                dst: w,
                addr: Addr::Stack(slot, 8 * i as i32),
                width: Width::B8,
            });
            self.alu3(AluOp::Mul, w, wr, Operand::Imm(PRIME2));
            self.alu3(AluOp::Add, h, hr, wr);
            self.alu3(AluOp::Rsh, high, hr, Operand::Imm(33));
            self.alu3(AluOp::Lsh, h, hr, Operand::Imm(31));
            self.alu3(AluOp::Or, h, hr, highr);
            self.alu3(AluOp::Mul, h, hr, Operand::Imm(PRIME1));
        }
        for (shift, prime) in [(33, PRIME2), (29, PRIME3)] {
            self.alu3(AluOp::Rsh, high, hr, Operand::Imm(shift));
            self.alu3(AluOp::Xor, h, hr, highr);
            self.alu3(AluOp::Mul, h, hr, Operand::Imm(prime));
        }
        let hashed = self.temp(8);
        self.f.push(Inst::Store {
            addr: Addr::Stack(hashed, 0),
            width: Width::B8,
            src: Operand::Reg(h),
        });
        hashed
    }

    /// Jumps to `differ` unless the `size` bytes at `record + off` equal
    /// the key in `slot`.
    fn same_key(&mut self, record: VReg, off: u32, slot: Slot, size: u32, differ: Label) {
        for i in 0..size / 8 {
            let (a, b) = (self.f.vreg(), self.f.vreg());
            self.f.push(Inst::Load {
                dst: a,
                addr: Addr::Reg(record, (off + 8 * i) as i16),
                width: Width::B8,
            });
            self.f.push(Inst::Load {
                dst: b,
                addr: Addr::Stack(slot, 8 * i as i32),
                width: Width::B8,
            });
            self.f.push(Inst::Branch {
                cond: Cond::Ne,
                lhs: a,
                rhs: Operand::Reg(b),
                target: differ,
            });
        }
    }

    /// A token bucket shared by all CPUs (the generic cell rate algorithm:
    /// one "next allowed time" per limiter, element `index` of array `map`,
    /// advanced with compare-and-exchange): jumps to `allowed` when an
    /// event may be sent now, falls through when it is over the limit. A
    /// burst of a tenth of a second's worth is allowed. Used by paths and
    /// by `ratelimit()`.
    pub(super) fn rate_limit(
        &mut self,
        map: MapId,
        index: u32,
        per_second: u64,
        now: VReg,
        allowed: Label,
    ) {
        let period = (1_000_000_000 / per_second).max(1) as i64;
        let burst = period * (per_second as i64 / 10).max(1);
        let over = self.f.label();
        let q = self.lookup_index(map, index, over);
        let (tat, base, ahead) = (self.f.vreg(), self.f.vreg(), self.f.vreg());
        self.f.push(Inst::Load {
            dst: tat,
            addr: Addr::Reg(q, 0),
            width: Width::B8,
        });
        self.f.push(Inst::Mov {
            dst: base,
            src: Operand::Reg(tat),
        });
        let later = self.f.label();
        self.f.push(Inst::Branch {
            cond: Cond::Ge,
            lhs: tat,
            rhs: Operand::Reg(now),
            target: later,
        });
        self.f.push(Inst::Mov {
            dst: base,
            src: Operand::Reg(now),
        });
        self.f.push(Inst::Label(later));
        self.f.push(Inst::Alu {
            op: AluOp::Sub,
            dst: ahead,
            lhs: Operand::Reg(base),
            rhs: Operand::Reg(now),
        });
        self.f.push(Inst::Branch {
            cond: Cond::Gt,
            lhs: ahead,
            rhs: Operand::Imm(burst),
            target: over,
        });
        self.f.push(Inst::Alu {
            op: AluOp::Add,
            dst: base,
            lhs: Operand::Reg(base),
            rhs: Operand::Imm(period),
        });
        // Claim the slot atomically: if another CPU moved the time on
        // since we read it, this event is over the limit.
        let old = self.f.vreg();
        self.f.push(Inst::CmpXchg {
            base: q,
            off: 0,
            expected: tat,
            new: base,
            old,
        });
        self.f.push(Inst::Branch {
            cond: Cond::Eq,
            lhs: old,
            rhs: Operand::Reg(tat),
            target: allowed,
        });
        self.f.push(Inst::Label(over));
    }
}
