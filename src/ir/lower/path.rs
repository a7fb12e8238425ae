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
use crate::ir::{Addr, AluOp, Cond, Function, Label, Operand, Slot, VReg, Width};
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
        let now = self.f.helper_value(helper::KTIME_GET_NS);
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
            self.f.jump(create);
        } else {
            let missing = if starter { create } else { done };
            self.find_record(set, &layout, key.1, way, missing);
            // Only the first time a packet passes a stage counts (a
            // completing stage frees the record: there is no second time).
            if let StageTime::Record(ts) = layout.stage_time(stage) {
                let seen = self.load_at(p, ts);
                self.f.branch_imm(Cond::Ne, seen, 0, done);
            }
            self.f.jump(record);
        }
        self.f.bind(create);
        if starter {
            self.choose_way(info, &layout, maps, set, key.1, now, way);
            self.start_record(info, &layout, maps, key.1, now, way, extra)?;
        }
        self.f.bind(record);
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
        self.f.bind(done);
        Ok(())
    }

    /// A pointer to the set of [`RECORD_WAYS`] records the key hashed to
    /// `hash` may live in: an element of the path's record array, chosen
    /// by the hash's high bits (the verifier inlines the lookup).
    fn record_set(&mut self, maps: PathMaps, layout: &PathLayout, hash: VReg, done: Label) -> VReg {
        let index = self.f.vreg();
        self.f.alu_imm(AluOp::Rsh, index, hash, 32);
        let mask = layout.sets as i64 - 1;
        self.f.alu_imm(AluOp::And, index, index, mask);
        let slot = self.temp(8);
        self.f.store_reg(Addr::Stack(slot, 0), Width::B4, index);
        self.lookup_or(MapId(maps.records), slot, done)
    }

    /// Points `way` at way `n` of `set`.
    fn take_way(&mut self, set: VReg, layout: &PathLayout, n: u32, way: Way) {
        self.f.alu_imm(AluOp::Add, way.hash, set, 8 * n as i64);
        let record = layout.way_off(n) as i64;
        self.f.alu_imm(AluOp::Add, way.record, set, record);
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
            self.f.jump(found);
            self.f.bind(next);
        }
        self.f.jump(missing);
        self.f.bind(found);
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
        self.f.branch_reg(Cond::Ne, held, hash, differ);
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
        let oldest = self.f.imm(-1);
        for n in 0..RECORD_WAYS {
            let (next, consider, other) = (self.f.label(), self.f.label(), self.f.label());
            let started = self.f.imm(0);
            let held = self.load_at(set, 8 * n);
            self.f.branch_imm(Cond::Eq, held, 0, consider);
            self.match_way(set, layout, n, held, hash, way, other);
            self.f.jump(replace);
            self.f.bind(other);
            let first = self.load_at(set, SET_STARTED_OFF + 8 * n);
            self.f.mov_reg(started, first);
            self.f.bind(consider);
            self.f.branch_reg(Cond::Ge, started, oldest, next);
            self.f.mov_reg(oldest, started);
            self.take_way(set, layout, n, way);
            self.f.bind(next);
        }
        self.f.branch_imm(Cond::Eq, oldest, 0, chosen);
        let age = self.f.vreg();
        self.f.alu_reg(AluOp::Sub, age, now, oldest);
        let timeout = self.f.imm(info.timeout_ns as i64);
        self.f.branch_reg(Cond::Le, age, timeout, chosen);
        self.increment(counters, counter::EXPIRED);
        self.f.jump(chosen);
        self.f.bind(replace);
        self.increment(counters, counter::REPLACED);
        self.f.bind(chosen);
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
        let at = |off: i16| Addr::Reg(into, off);
        let skb_word = skb.map_or(Operand::Imm(0), Operand::Reg);
        self.f.store(at(ctx), Width::B8, skb_word);
        let pid = self.f.helper_value(helper::GET_CURRENT_PID_TGID);
        self.f.alu_imm(AluOp::Rsh, pid, pid, 32);
        self.f.store_reg(at(ctx + 8), Width::B4, pid);
        if let (Some(offsets), Some(skb)) = (info.dev_offsets, skb) {
            let dev = self.f.read_kernel(skb, offsets.dev, Width::B8);
            let ifindex = self.f.read_kernel(dev, offsets.ifindex, Width::B4);
            self.f.store_reg(at(ctx + 12), Width::B4, ifindex);
            let name = self.offset(dev, offsets.name as i64);
            let into = self.addr(Place {
                base: Base::Ptr(into),
                off: ctx as i32 + 40,
            });
            self.f.probe_read(into, 16, name);
        }
        let stack = match (info.stacks, self.maps.stacks) {
            (true, Some(stacks)) => Operand::Reg(self.stack_id(MapId(stacks))),
            _ => Operand::Imm(-1),
        };
        self.f.store(at(ctx + 16), Width::B8, stack);
        let comm = self.addr(Place {
            base: Base::Ptr(into),
            off: ctx as i32 + 24,
        });
        let args = [comm, Operand::Imm(16)];
        self.f.call_helper(helper::GET_CURRENT_COMM, &args, None);
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
        let (first, first_stage) = (self.f.imm(0), self.f.imm(0));
        for j in (0..=lead).rev() {
            let skip = self.f.label();
            let t = self.stage_time(layout, way, j, now);
            self.f.branch_imm(Cond::Eq, t, 0, skip);
            self.f.mov_reg(first, t);
            self.f.mov_imm(first_stage, j.into());
            self.f.bind(skip);
        }
        let total = self.f.vreg();
        self.f.alu_reg(AluOp::Sub, total, now, first);
        if info.histogram {
            let (prev_ts, prev_stage) = (self.f.vreg(), self.f.vreg());
            self.f.mov_reg(prev_ts, first);
            self.f.mov_reg(prev_stage, first_stage);
            for j in 1..info.stages.len() as u32 {
                let skip = self.f.label();
                let t = self.stage_time(layout, way, j, now);
                self.f.branch_imm(Cond::Eq, t, 0, skip);
                if j <= lead {
                    // Not after the first stage that fired.
                    self.f.branch_imm(Cond::Ge, prev_stage, j.into(), skip);
                }
                let seg = self.f.vreg();
                self.f.alu_reg(AluOp::Sub, seg, t, prev_ts);
                self.with_temps(|l| {
                    l.add_to_histogram(info, hist, Operand::Reg(prev_stage), j, seg)
                });
                self.f.mov_reg(prev_ts, t);
                self.f.mov_imm(prev_stage, j.into());
                self.f.bind(skip);
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
            let threshold = info.threshold_ns as i64;
            self.f.branch_imm(Cond::Lt, total, threshold, below);
            if info.rate_limit > 0 {
                self.rate_limit(MapId(maps.rate), 0, info.rate_limit, now, report);
                self.increment(MapId(maps.counters), counter::SUPPRESSED);
                self.f.jump(after);
            }
            self.f.bind(report);
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
            self.f.jump(after);
            self.f.bind(below);
            self.increment(MapId(maps.counters), counter::FILTERED);
            self.f.bind(after);
        }
        self.store_at(way.hash, 0, Operand::Imm(0));
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
        let (p1, p2) = (self.f.imm(PRIME1), self.f.imm(PRIME2));
        let lanes: Vec<VReg> = (0..words.min(4) as i64)
            .map(|i| self.f.imm(PRIME3.wrapping_add(i.wrapping_mul(PRIME2))))
            .collect();
        let rotate_left = |f: &mut Function, x: VReg, by: i64| {
            let high = f.vreg();
            f.alu_imm(AluOp::Rsh, high, x, 64 - by);
            f.alu_imm(AluOp::Lsh, x, x, by);
            f.alu_reg(AluOp::Or, x, x, high);
        };
        for i in 0..words {
            let v = lanes[i as usize % lanes.len()];
            let w = self.f.load(Addr::Stack(slot, 8 * i as i32), Width::B8);
            self.f.alu_reg(AluOp::Mul, w, w, p2);
            self.f.alu_reg(AluOp::Add, v, v, w);
            rotate_left(&mut self.f, v, 31);
            self.f.alu_reg(AluOp::Mul, v, v, p1);
        }
        let h = lanes[0];
        for (i, &v) in lanes.iter().enumerate() {
            rotate_left(&mut self.f, v, LANE_ROTATIONS[i]);
            if i > 0 {
                self.f.alu_reg(AluOp::Add, h, h, v);
            }
        }
        let high = self.f.vreg();
        for (shift, prime) in [(33, PRIME2), (29, PRIME3)] {
            self.f.alu_imm(AluOp::Rsh, high, h, shift);
            self.f.alu_reg(AluOp::Xor, h, h, high);
            self.f.alu_imm(AluOp::Mul, h, h, prime);
        }
        self.f.alu_imm(AluOp::Or, h, h, 1);
        h
    }
}
