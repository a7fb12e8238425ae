//! Lowering of `Stmt::PathStage`: the in-kernel half of packet paths.
//!
//! Records live in a set-associative table: an array of sets of
//! [`RECORD_WAYS`] records, the set chosen by the key's hash. Every access
//! is an inlined array lookup and a few compares, where a hash map would
//! cost a locked helper call per stage. The first stage (re)creates the
//! packet's record (a stage after optional stages only also creates it
//! when it is missing); later stages record their first timestamp and
//! context; the last stage adds every segment between stages that fired
//! (and the total) to the per-CPU histograms, builds the packet's event
//! from the record, its key and its own context when it passes the latency
//! threshold and the global rate limit, and frees its way. Every outcome
//! is counted. A record keeps only what the last stage cannot know
//! ([`PathLayout`]): a new packet touches as few cache lines as it can.
//!
//! A recalled first stage (before the packet exists) keeps its time in an
//! LRU hash instead, one pending mark per owner ([`mark`]); the first stage
//! with a packet takes it into the record it starts when the packet's span
//! holds the mark's position.

use super::mem::{Base, Place};
use super::path_hist::Hist;
use super::recall::MARK_SHAPE;
use super::{Lower, Val, Wake};
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::diag::{Diagnostic, Result};
use crate::ir::layout::{
    path_counter as counter, path_layout, PathLayout, PathMaps, StageTime, CAPTURE_SIZE,
    PATH_EVENT_BASE, RECORD_WAYS, SET_STARTED_OFF, STAGE_CTX_SIZE, TOTAL_SEGMENT,
};
use crate::ir::{Addr, AluOp, Cond, Inst, Label, Operand, Slot, VReg, Width};
use crate::sema::tast::{Expr, PathInfo};

/// The largest record table a path may have (kernel memory, locked).
const MAX_TABLE_BYTES: u64 = 1 << 30;

/// What a stage statement gives beyond its key and skb: the values the
/// path's `info` keeps (first stage), the packet's group (last stage of a
/// path with `hist_by`), the span that recalls a marked first stage and
/// where the packet `--pcap` captures is (a stage starting records).
#[derive(Clone, Copy, Default)]
pub(super) struct StageExtra<'e> {
    /// The `info` values.
    pub info: Option<&'e Expr>,
    /// The `hist_by` group.
    pub group: Option<&'e Expr>,
    /// The `(owner, start, length)` span.
    pub recall: Option<&'e Expr>,
    /// `pkt_capture($skb)`: `(start, length, wire length)`.
    pub capture: Option<&'e Expr>,
}

/// A way of a set: registers holding the address of its key hash word
/// (its start time is [`SET_STARTED_OFF`] further) and of its record.
#[derive(Clone, Copy)]
struct Way {
    hash: VReg,
    record: VReg,
}

impl Lower<'_> {
    /// Records stage `stage` of path `path` for the packet with `key`;
    /// with `recall`, the packet's span, the time of the recalled first
    /// stage too.
    pub(super) fn path_stage(
        &mut self,
        path: u32,
        stage: u32,
        key: &Expr,
        skb: &Expr,
        extra: StageExtra<'_>,
    ) -> Result<()> {
        let StageExtra { group, recall, .. } = extra;
        let info = &self.script.paths[path as usize];
        let maps = self.maps.paths[path as usize];
        let layout = path_layout(info);
        if layout.set_size() > i16::MAX as u32 {
            let capture = match info.capture {
                true => format!(", --pcap's {}-byte capture", CAPTURE_SIZE),
                false => String::new(),
            };
            return Err(Diagnostic::at(
                key.span,
                format!(
                    "path '{}' keeps {} bytes per packet (info values, stage contexts{}); \
                     a set of {} records must fit in {} bytes",
                    info.name,
                    layout.record.size,
                    capture,
                    RECORD_WAYS,
                    i16::MAX
                ),
            ));
        }
        let table = layout.sets as u64 * layout.set_size() as u64;
        if table > MAX_TABLE_BYTES {
            return Err(Diagnostic::at(
                key.span,
                format!(
                    "path '{}': a record table of {} packets in flight of {} bytes each would \
                     take {} MiB of kernel memory (at most {} MiB); set `records` lower",
                    info.name,
                    layout.sets * RECORD_WAYS,
                    layout.record.size,
                    table >> 20,
                    MAX_TABLE_BYTES >> 20
                ),
            ));
        }
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
        let key = (key_slot, self.key_hash(key_slot, layout.key_size));
        // Evaluated before `info` (sema checked it first: see stage_program).
        let span = match recall {
            Some(e) => Some((self.expr(e)?, e)),
            None => None,
        };
        let skb_value = self.expr(skb)?;
        let skb = self.scalar_of(skb_value);
        let now = self.f.vreg();
        self.call(helper::KTIME_GET_NS, vec![], Some(now));
        let done = self.f.label();
        let set = self.record_set(maps, &layout, key.1, done);
        // A stage starts records if no stage before it must fire (the
        // first stage, or one after optional stages only).
        let starter = info.stages[..stage as usize].iter().all(|s| s.optional);
        let way = Way {
            hash: self.f.vreg(),
            record: self.f.vreg(),
        };
        let p = way.record;
        let (create, record) = (self.f.label(), self.f.label());
        if stage == info.leader() {
            // The first stage with a packet starts the packet again,
            // whatever came before (create_record counts a record it
            // replaces).
            self.f.push(Inst::Jump(create));
        } else {
            let missing = if starter { create } else { done };
            self.find_record(set, &layout, key.1, way, missing);
            // Only the first time a packet passes a stage counts (a
            // completing stage frees the record: there is no second time).
            if let StageTime::Record(ts) = layout.stage_time(stage) {
                let seen = self.load_at(p, ts);
                self.jump_if(Cond::Ne, seen, Operand::Imm(0), done);
            }
            self.f.push(Inst::Jump(record));
        }
        self.f.push(Inst::Label(create));
        if starter {
            self.choose_way(info, &layout, maps, set, key.1, now, way);
            self.start_record(info, &layout, maps, key.1, now, way, extra)?;
        }
        self.f.push(Inst::Label(record));
        if let StageTime::Record(ts) = layout.stage_time(stage) {
            self.store_at(p, ts, Operand::Reg(now));
        }
        if let Some((value, e)) = span {
            self.recall(info, &layout, maps, p, value, &e.ty)
                .ok_or_else(|| Diagnostic::at(e.span, MARK_SHAPE))?;
        }
        if last {
            let event = PATH_EVENT_BASE + u64::from(path);
            let group = match group {
                Some(e) => {
                    let g = self.expr(e)?;
                    Some(self.scalar_of(g))
                }
                None => None,
            };
            let hist = Hist { maps, group };
            self.complete(info, &layout, hist, way, (event, key.0), now, skb);
        } else if info.detail {
            self.stage_context(info, p, layout.record_ctx(stage), Some(skb));
        }
        self.f.push(Inst::Label(done));
        Ok(())
    }

    /// A pointer to the set of [`RECORD_WAYS`] records the key hashed to
    /// `hash` may live in: an element of the path's record array, chosen
    /// by the hash's high bits (the verifier inlines the lookup).
    fn record_set(&mut self, maps: PathMaps, layout: &PathLayout, hash: VReg, done: Label) -> VReg {
        let index = self.f.vreg();
        self.alu3(AluOp::Rsh, index, Operand::Reg(hash), Operand::Imm(32));
        let mask = Operand::Imm(layout.sets as i64 - 1);
        self.alu3(AluOp::And, index, Operand::Reg(index), mask);
        let slot = self.temp(8);
        self.f.push(Inst::Store {
            addr: Addr::Stack(slot, 0),
            width: Width::B4,
            src: Operand::Reg(index),
        });
        self.lookup_or(MapId(maps.records), slot, done)
    }

    /// Points `way` at way `n` of `set`.
    fn take_way(&mut self, set: VReg, layout: &PathLayout, n: u32, way: Way) {
        self.alu3(
            AluOp::Add,
            way.hash,
            Operand::Reg(set),
            Operand::Imm(8 * n as i64),
        );
        let record = Operand::Imm(layout.way_off(n) as i64);
        self.alu3(AluOp::Add, way.record, Operand::Reg(set), record);
    }

    /// Points `way` at the way of `set` holding the packet whose key
    /// hashed to `hash`, or jumps to `missing`.
    fn find_record(
        &mut self,
        set: VReg,
        layout: &PathLayout,
        hash: VReg,
        way: Way,
        missing: Label,
    ) {
        let found = self.f.label();
        for n in 0..RECORD_WAYS {
            let next = self.f.label();
            let held = self.load_at(set, 8 * n);
            self.match_way(set, layout, n, held, hash, way, next);
            self.f.push(Inst::Jump(found));
            self.f.push(Inst::Label(next));
        }
        self.f.push(Inst::Jump(missing));
        self.f.push(Inst::Label(found));
    }

    /// Points `way` at way `n` of `set` if it holds the packet whose key
    /// hashed to `hash` (the way holds `held`), else jumps to `differ`.
    #[allow(clippy::too_many_arguments)]
    fn match_way(
        &mut self,
        set: VReg,
        layout: &PathLayout,
        n: u32,
        held: VReg,
        hash: VReg,
        way: Way,
        differ: Label,
    ) {
        self.jump_if(Cond::Ne, held, Operand::Reg(hash), differ);
        self.take_way(set, layout, n, way);
    }

    /// Points `way` at the way of `set` a new record for `key` should
    /// take: the way already holding its key (counted as replaced), else
    /// the first free way, else the way started longest ago (counted as
    /// incomplete when older than the path's timeout, else left to the
    /// evicted figure, which user space derives).
    #[allow(clippy::too_many_arguments)]
    fn choose_way(
        &mut self,
        info: &PathInfo,
        layout: &PathLayout,
        maps: PathMaps,
        set: VReg,
        hash: VReg,
        now: VReg,
        way: Way,
    ) {
        let counters = MapId(maps.counters);
        let (chosen, replace) = (self.f.label(), self.f.label());
        // The best way so far (way 0 until one is better) and its start
        // time (0: free).
        self.take_way(set, layout, 0, way);
        let oldest = self.imm(-1);
        for n in 0..RECORD_WAYS {
            let (next, consider, other) = (self.f.label(), self.f.label(), self.f.label());
            let started = self.imm(0);
            let held = self.load_at(set, 8 * n);
            self.jump_if(Cond::Eq, held, Operand::Imm(0), consider);
            self.match_way(set, layout, n, held, hash, way, other);
            self.f.push(Inst::Jump(replace));
            self.f.push(Inst::Label(other));
            let first = self.load_at(set, SET_STARTED_OFF + 8 * n);
            self.f.push(Inst::Mov {
                dst: started,
                src: Operand::Reg(first),
            });
            self.f.push(Inst::Label(consider));
            self.jump_if(Cond::Ge, started, Operand::Reg(oldest), next);
            self.f.push(Inst::Mov {
                dst: oldest,
                src: Operand::Reg(started),
            });
            self.take_way(set, layout, n, way);
            self.f.push(Inst::Label(next));
        }
        self.jump_if(Cond::Eq, oldest, Operand::Imm(0), chosen);
        let age = self.f.vreg();
        self.alu3(AluOp::Sub, age, Operand::Reg(now), Operand::Reg(oldest));
        let timeout = self.imm(info.timeout_ns as i64);
        self.jump_if(Cond::Le, age, Operand::Reg(timeout), chosen);
        self.increment(counters, counter::EXPIRED);
        self.f.push(Inst::Jump(chosen));
        self.f.push(Inst::Label(replace));
        self.increment(counters, counter::REPLACED);
        self.f.push(Inst::Label(chosen));
    }

    /// Starts the record of the packet whose key hashed to `hash` in
    /// `way`: no timestamps and, for packet reports, its `info` values
    /// and the packet's capture (`extra`). The
    /// way's hash is cleared first and written last, so a stage reading the
    /// way meanwhile finds no record rather than half of one. Counts the
    /// record started.
    #[allow(clippy::too_many_arguments)]
    fn start_record(
        &mut self,
        info: &PathInfo,
        layout: &PathLayout,
        maps: PathMaps,
        hash: VReg,
        now: VReg,
        way: Way,
        extra: StageExtra<'_>,
    ) -> Result<()> {
        let p = way.record;
        self.store_at(way.hash, 0, Operand::Imm(0));
        if let Some(values) = extra.info.filter(|_| info.detail) {
            let v = self.expr(values)?;
            let place = Place {
                base: Base::Ptr(p),
                off: 0,
            };
            self.store_val(place, v, values.ty.storage_size());
        }
        if let Some(capture) = extra.capture {
            let into = Place {
                base: Base::Ptr(p),
                off: layout.record.capture_off as i32,
            };
            self.capture_packet(into, capture)?;
        }
        for stage in 0..info.stages.len() as u32 {
            if let StageTime::Record(ts) = layout.stage_time(stage) {
                self.store_at(p, ts, Operand::Imm(0));
            }
        }
        self.store_at(way.hash, SET_STARTED_OFF, Operand::Reg(now));
        self.store_at(way.hash, 0, Operand::Reg(hash));
        self.increment(MapId(maps.counters), counter::STARTED);
        Ok(())
    }

    /// The time the packet in `way` passed stage `stage` (0: it did
    /// not), `now` for the stage completing it.
    fn stage_time(&mut self, layout: &PathLayout, way: Way, stage: u32, now: VReg) -> VReg {
        match layout.stage_time(stage) {
            StageTime::Started => self.load_at(way.hash, SET_STARTED_OFF),
            StageTime::Record(ts) => self.load_at(way.record, ts),
            StageTime::Completing => now,
        }
    }

    /// `*(u64 *)(base + off) = src`.
    pub(super) fn store_at(&mut self, base: VReg, off: u32, src: Operand) {
        self.f.push(Inst::Store {
            addr: Addr::Reg(base, off as i16),
            width: Width::B8,
            src,
        });
    }

    /// `*(u64 *)(base + off)`.
    pub(super) fn load_at(&mut self, base: VReg, off: u32) -> VReg {
        let v = self.f.vreg();
        self.f.push(Inst::Load {
            dst: v,
            addr: Addr::Reg(base, off as i16),
            width: Width::B8,
        });
        v
    }

    /// Writes where a stage ran (for packet reports) at `into + off`:
    /// its skb, pid, ifindex, kernel stack, comm and device name (skb 0
    /// and no device for a recalled stage, which has no packet).
    pub(super) fn stage_context(
        &mut self,
        info: &PathInfo,
        into: VReg,
        off: u32,
        skb: Option<VReg>,
    ) {
        let ctx = off as i16;
        let store = |l: &mut Self, off: i16, width: Width, src: Operand| {
            l.f.push(Inst::Store {
                addr: Addr::Reg(into, off),
                width,
                src,
            })
        };
        store(
            self,
            ctx,
            Width::B8,
            skb.map_or(Operand::Imm(0), Operand::Reg),
        );
        let pid = self.f.vreg();
        self.call(helper::GET_CURRENT_PID_TGID, vec![], Some(pid));
        self.f.push(Inst::Alu {
            op: AluOp::Rsh,
            dst: pid,
            lhs: Operand::Reg(pid),
            rhs: Operand::Imm(32),
        });
        store(self, ctx + 8, Width::B4, Operand::Reg(pid));
        if let (Some(offsets), Some(skb)) = (info.dev_offsets, skb) {
            let dev = self.read_kernel(skb, offsets.dev, Width::B8);
            let ifindex = self.read_kernel(dev, offsets.ifindex, Width::B4);
            store(self, ctx + 12, Width::B4, Operand::Reg(ifindex));
            let name = self.offset(dev, offsets.name as i64);
            let into = self.addr(Place {
                base: Base::Ptr(into),
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
            base: Base::Ptr(into),
            off: ctx as i32 + 24,
        });
        self.call(helper::GET_CURRENT_COMM, vec![comm, Operand::Imm(16)], None);
    }

    /// The last stage: histograms, the event (of kind `event`, with the
    /// key in `key_slot`), the counters, and the record's way made free.
    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        info: &PathInfo,
        layout: &PathLayout,
        hist: Hist,
        way: Way,
        (event, key_slot): (u64, Slot),
        now: VReg,
        skb: VReg,
    ) {
        let maps = hist.maps;
        // The record was started by one of the stages up to the first
        // required one: the first of them that fired (the earliest with a
        // timestamp) is where the packet's time starts.
        let lead = info
            .stages
            .iter()
            .position(|s| !s.optional)
            .unwrap_or(info.stages.len() - 1) as u32;
        let (first, first_stage) = (self.imm(0), self.imm(0));
        for j in (0..=lead).rev() {
            let skip = self.f.label();
            let t = self.stage_time(layout, way, j, now);
            self.jump_if(Cond::Eq, t, Operand::Imm(0), skip);
            self.f.push(Inst::Mov {
                dst: first,
                src: Operand::Reg(t),
            });
            self.f.push(Inst::Mov {
                dst: first_stage,
                src: Operand::Imm(j as i64),
            });
            self.f.push(Inst::Label(skip));
        }
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
                src: Operand::Reg(first_stage),
            });
            for j in 1..info.stages.len() as u32 {
                let skip = self.f.label();
                let t = self.stage_time(layout, way, j, now);
                self.jump_if(Cond::Eq, t, Operand::Imm(0), skip);
                if j <= lead {
                    // Not after the first stage that fired.
                    self.jump_if(Cond::Ge, prev_stage, Operand::Imm(j as i64), skip);
                }
                let seg = self.f.vreg();
                self.f.push(Inst::Alu {
                    op: AluOp::Sub,
                    dst: seg,
                    lhs: Operand::Reg(t),
                    rhs: Operand::Reg(prev_ts),
                });
                self.with_temps(|l| {
                    l.add_to_histogram(info, hist, Operand::Reg(prev_stage), j, seg)
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
                hist,
                Operand::Imm(TOTAL_SEGMENT as i64),
                TOTAL_SEGMENT,
                total,
            );
        }
        if info.detail {
            let (report, after) = (self.f.label(), self.f.label());
            let below = self.f.label();
            self.jump_if(
                Cond::Lt,
                total,
                Operand::Imm(info.threshold_ns as i64),
                below,
            );
            if info.rate_limit > 0 {
                self.rate_limit(MapId(maps.rate), 0, info.rate_limit, now, report);
                self.increment(MapId(maps.counters), counter::SUPPRESSED);
                self.f.push(Inst::Jump(after));
            }
            self.f.push(Inst::Label(report));
            let scratch = self
                .maps
                .scratch
                .expect("a path with packet reports has a scratch map");
            let ev = self.lookup_index(MapId(scratch), 0, after);
            self.report_event(info, layout, way, (event, key_slot), ev, now, skb);
            self.send(
                Operand::Reg(ev),
                layout.event_size,
                (MapId(maps.counters), counter::LOST),
                Wake::Batched,
            );
            self.f.push(Inst::Jump(after));
            self.f.push(Inst::Label(below));
            self.increment(MapId(maps.counters), counter::FILTERED);
            self.f.push(Inst::Label(after));
        }
        self.f.push(Inst::Store {
            addr: Addr::Reg(way.hash, 0),
            width: Width::B8,
            src: Operand::Imm(0),
        });
        self.increment(MapId(maps.counters), counter::COMPLETED);
    }

    /// Builds the packet's report at `ev`: its kind and key, the record's
    /// `info` values, times and contexts, and the completing stage's.
    #[allow(clippy::too_many_arguments)]
    fn report_event(
        &mut self,
        info: &PathInfo,
        layout: &PathLayout,
        way: Way,
        (event, key_slot): (u64, Slot),
        ev: VReg,
        now: VReg,
        skb: VReg,
    ) {
        let at = |off: u32| Place {
            base: Base::Ptr(ev),
            off: off as i32,
        };
        self.store_at(ev, 0, Operand::Imm(event as i64));
        self.copy(at(layout.key_off), Place::stack(key_slot), layout.key_size);
        let record = |off: u32| Place {
            base: Base::Ptr(way.record),
            off: off as i32,
        };
        self.copy(at(layout.info_off), record(0), layout.info_size);
        let last = layout.stages - 1;
        for j in 0..layout.stages {
            let t = self.stage_time(layout, way, j, now);
            self.store_at(ev, layout.ts_off + 8 * j, Operand::Reg(t));
        }
        for j in 0..last {
            let (to, from) = (layout.event_ctx(j), layout.record_ctx(j));
            self.copy(at(to), record(from), STAGE_CTX_SIZE);
        }
        self.stage_context(info, ev, layout.event_ctx(last), Some(skb));
        if info.capture {
            let (to, from) = (layout.capture_off, layout.record.capture_off);
            self.copy(at(to), record(from), CAPTURE_SIZE);
        }
    }

    /// A 64-bit hash of the `size` bytes of key in `slot` (a multiple of
    /// 8), never 0 (0 marks a free way). xxHash64's structure: up to four
    /// lanes take every fourth word through a multiply-rotate-multiply
    /// round, so the rounds of different lanes run in parallel; the lanes
    /// are then rotated and summed, and the sum mixed (its avalanche step).
    fn key_hash(&mut self, slot: Slot, size: u32) -> VReg {
        const PRIME1: i64 = 0x9E37_79B1_85EB_CA87_u64 as i64;
        const PRIME2: i64 = 0xC2B2_AE3D_27D4_EB4F_u64 as i64;
        const PRIME3: i64 = 0x1656_67B1_9E37_79F9_u64 as i64;
        const LANE_ROTATIONS: [i64; 4] = [1, 7, 12, 18];
        let words = size / 8;
        let (p1, p2) = (
            Operand::Reg(self.imm(PRIME1)),
            Operand::Reg(self.imm(PRIME2)),
        );
        let lanes: Vec<VReg> = (0..words.min(4) as i64)
            .map(|i| self.imm(PRIME3.wrapping_add(i.wrapping_mul(PRIME2))))
            .collect();
        let rotate_left = |l: &mut Self, x: VReg, by: i64| {
            let high = l.f.vreg();
            l.alu3(AluOp::Rsh, high, Operand::Reg(x), Operand::Imm(64 - by));
            l.alu3(AluOp::Lsh, x, Operand::Reg(x), Operand::Imm(by));
            l.alu3(AluOp::Or, x, Operand::Reg(x), Operand::Reg(high));
        };
        for i in 0..words {
            let (v, w) = (lanes[i as usize % lanes.len()], self.f.vreg());
            self.f.push(Inst::Load {
                dst: w,
                addr: Addr::Stack(slot, 8 * i as i32),
                width: Width::B8,
            });
            self.alu3(AluOp::Mul, w, Operand::Reg(w), p2);
            self.alu3(AluOp::Add, v, Operand::Reg(v), Operand::Reg(w));
            rotate_left(self, v, 31);
            self.alu3(AluOp::Mul, v, Operand::Reg(v), p1);
        }
        let h = lanes[0];
        for (i, &v) in lanes.iter().enumerate() {
            rotate_left(self, v, LANE_ROTATIONS[i]);
            if i > 0 {
                self.alu3(AluOp::Add, h, Operand::Reg(h), Operand::Reg(v));
            }
        }
        let high = self.f.vreg();
        for (shift, prime) in [(33, PRIME2), (29, PRIME3)] {
            self.alu3(AluOp::Rsh, high, Operand::Reg(h), Operand::Imm(shift));
            self.alu3(AluOp::Xor, h, Operand::Reg(h), Operand::Reg(high));
            self.alu3(AluOp::Mul, h, Operand::Reg(h), Operand::Imm(prime));
        }
        self.alu3(AluOp::Or, h, Operand::Reg(h), Operand::Imm(1));
        h
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
        self.jump_if(Cond::Ge, tat, Operand::Reg(now), later);
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
        self.jump_if(Cond::Gt, ahead, Operand::Imm(burst), over);
        self.f.push(Inst::Alu {
            op: AluOp::Add,
            dst: base,
            lhs: Operand::Reg(base),
            rhs: Operand::Imm(period),
        });
        if self.script.plain_rate_limits {
            // No compare-and-exchange (before 5.12): CPUs racing for the
            // last slot may both take it.
            self.store_at(q, 0, Operand::Reg(base));
            self.f.push(Inst::Jump(allowed));
            self.f.push(Inst::Label(over));
            return;
        }
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
        self.jump_if(Cond::Eq, old, Operand::Reg(tat), allowed);
        self.f.push(Inst::Label(over));
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::layout::MapTable;
    use crate::ir::{lower, Addr, Inst, Width};
    use crate::sema::{check, Options};
    use crate::syntax::parse;

    /// `ratelimit()` lowered with `plain_rate_limits`: whether it has a
    /// compare-and-exchange, and how many 8-byte stores through a pointer.
    fn claims(plain: bool) -> (bool, usize) {
        let options = Options {
            plain_rate_limits: plain,
            ..Default::default()
        };
        let ast = parse("BEGIN { @a = ratelimit(10); }").expect("parses");
        let script = check(&ast, &options).expect("checks");
        let f = lower::lower(&script, &MapTable::new(&script), 0)
            .expect("lowers")
            .remove(0);
        let stores = f.insts.iter().filter(|i| {
            matches!(
                i,
                Inst::Store {
                    addr: Addr::Reg(..),
                    width: Width::B8,
                    ..
                }
            )
        });
        (f.uses_cmpxchg(), stores.count())
    }

    #[test]
    fn a_rate_limit_claims_its_slot_with_cmpxchg_else_a_plain_store() {
        let (cmpxchg, stores) = claims(false);
        assert!(cmpxchg);
        assert_eq!(claims(true), (false, stores + 1));
    }
}
