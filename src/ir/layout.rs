//! Where values live in BPF maps and ring-buffer records. Lowering writes
//! these layouts and the runtime reads them back, so both use this module.

use crate::bpf::{map_flags, map_type, MapSpec, MAP_ENTRIES, PCAP_SNAP, STACK_DEPTH};
use crate::sema::tast::{Agg, MapDecl, MapValue, PathInfo, Script};
use crate::types::{tuple_layout, Ty};

/// Size of the event ring buffer in bytes.
pub const RINGBUF_BYTES: u32 = 1 << 20;
/// Distinct kernel stacks kept.
pub const STACK_ENTRIES: u32 = 1024;
/// A printf record larger than this many bytes is built in the per-CPU
/// scratch map instead of the 512-byte BPF stack.
pub const STACK_RECORD_MAX: u32 = 128;

/// Kinds of ring-buffer records (the first u64 of each record).
pub mod event {
    /// `exit()`
    pub const EXIT: u64 = 0;
    /// `print(@m)`; followed by the map id.
    pub const PRINT: u64 = 1;
    /// `clear(@m)`; followed by the map id.
    pub const CLEAR: u64 = 2;
    /// `zero(@m)`; followed by the map id.
    pub const ZERO: u64 = 3;
    /// `table(@a, @b, ...)`: one table; followed by how many maps, then
    /// their ids.
    pub const PRINT_TABLE: u64 = 4;
    /// `printf` number n is `PRINTF_BASE + n`; followed by its arguments.
    pub const PRINTF_BASE: u64 = 16;
}

/// Ring-buffer records of path `n` have kind `PATH_EVENT_BASE + n`.
pub const PATH_EVENT_BASE: u64 = 1 << 32;
/// Bytes of context recorded per stage: skb address (u64), pid (u32),
/// ifindex (u32), kernel stack id (i64), comm (16 bytes), device name
/// (16 bytes).
pub const STAGE_CTX_SIZE: u32 = 56;
/// Bytes of a packet capture in a record and an event: the captured
/// length (u32), the packet's length (u32), then [`PCAP_SNAP`] bytes.
pub const CAPTURE_SIZE: u32 = 8 + PCAP_SNAP;
/// The `from`/`to` of the histogram of a path's total latency.
pub const TOTAL_SEGMENT: u32 = u32::MAX;
/// The most buckets a path's histograms may have in a per-CPU array (8
/// bytes each, on every CPU: 160 KiB); a path that needs more keeps them
/// in a per-CPU hash map keyed by (from, to, bucket and group).
pub const MAX_HIST_ARRAY: u32 = 20480;
/// The largest latency a path's histograms tell apart (2^36 ns, 68.7 s):
/// longer ones are counted in its bucket, so the buckets of a histogram
/// are bounded (274 with the default 3 sub-bucket bits).
pub const PATH_HIST_MAX_NS: i64 = 1 << 36;

/// Where a path's segment histograms live in a per-CPU array: in group
/// `g`, the buckets of segment `from -> to` (stage indexes, `from < to`)
/// start at `(g * segments + to * (to - 1) / 2 + from) * buckets`, those of
/// the total after every segment's. `None` when they would take more than
/// [`MAX_HIST_ARRAY`] entries (a hash map holds them then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistArray {
    /// Stages of the path.
    pub stages: u32,
    /// Buckets of one histogram (every index `hist(x, bits)` can give up
    /// to [`PATH_HIST_MAX_NS`]).
    pub buckets: u32,
    /// Groups the histograms are split into (`hist_groups`; at least 1).
    pub groups: u32,
}

/// The buckets of one of `path`'s histograms.
pub fn path_hist_buckets(path: &PathInfo) -> u32 {
    crate::format::loghist::hist_index(PATH_HIST_MAX_NS, path.hist_bits) as u32 + 1
}

impl HistArray {
    /// The array layout of `path`'s histograms, if small enough.
    pub fn of(path: &PathInfo) -> Option<HistArray> {
        let layout = HistArray {
            stages: path.stages.len() as u32,
            buckets: path_hist_buckets(path),
            groups: path.hist_groups.len().max(1) as u32,
        };
        (layout.entries() <= MAX_HIST_ARRAY).then_some(layout)
    }

    /// Histograms (segments and the total) of one group.
    pub fn segments(&self) -> u32 {
        self.total_segment() + 1
    }

    /// The index of the first segment of histograms ending at stage `to`
    /// (add `from` to it, then multiply by `buckets`).
    pub fn first_segment_to(&self, to: u32) -> u32 {
        to * to.saturating_sub(1) / 2
    }

    /// The segment index of the total.
    pub fn total_segment(&self) -> u32 {
        self.first_segment_to(self.stages)
    }

    /// Entries of the array.
    pub fn entries(&self) -> u32 {
        self.groups * self.segments() * self.buckets
    }

    /// The group, the segment (`from`, `to`, or [`TOTAL_SEGMENT`] twice)
    /// and the bucket of array index `index`.
    pub fn segment_of(&self, index: u32) -> (u32, u32, u32, u32) {
        let (histogram, bucket) = (index / self.buckets, index % self.buckets);
        let (group, segment) = (histogram / self.segments(), histogram % self.segments());
        if segment >= self.total_segment() {
            return (group, TOTAL_SEGMENT, TOTAL_SEGMENT, bucket);
        }
        let to = (1..self.stages)
            .take_while(|to| self.first_segment_to(*to) <= segment)
            .last()
            .unwrap_or(1);
        (group, segment - self.first_segment_to(to), to, bucket)
    }
}

/// Per-CPU counters of a path, by index.
pub mod path_counter {
    /// Records created by the first stage.
    pub const STARTED: u32 = 0;
    /// Records completed by the last stage.
    pub const COMPLETED: u32 = 1;
    /// Completed below the latency threshold (not reported).
    pub const FILTERED: u32 = 2;
    /// Not reported because of the rate limit.
    pub const SUPPRESSED: u32 = 3;
    /// Not reported because the ring buffer was full.
    pub const LOST: u32 = 4;
    /// Records the first stage found already there and started again.
    pub const REPLACED: u32 = 5;
    /// Records older than the path's timeout whose way a new packet took.
    pub const EXPIRED: u32 = 6;
    /// Number of counters.
    pub const COUNT: u32 = 7;
}

/// Bytes of a CPU cache line.
const CACHE_LINE: u32 = 64;

/// Records of a path per set of its record table.
pub const RECORD_WAYS: u32 = 4;
/// Offset in a set of the time each way's record was started (ns), after
/// the ways' key hashes (0: the way is free). Both fit in one cache line.
pub const SET_STARTED_OFF: u32 = 8 * RECORD_WAYS;

/// Where things are in a path's packet report (the ring-buffer event), in
/// a record of its table and in a set of the table.
///
/// The event holds the event kind word, the key, the `info` values, one
/// timestamp per stage and one context per stage. It is built when the
/// last stage completes the packet; until then the record keeps only what
/// the last stage cannot know: the `info` values and context (with
/// packet reports) and the time of every stage but the last, the first
/// packet stage's time being the way's start time in the set's header
/// line when only that stage starts records. Packets are told apart by
/// the 64-bit hash of their key (two packets in flight in one set with
/// the same hash, about 2^-64 apart, would be taken for one); the key
/// itself is the completing stage's. A two-stage histogram path so keeps nothing
/// beyond its set's first cache line, the only line a new packet touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathLayout {
    /// Offset of the key in the event.
    pub key_off: u32,
    /// Size of the key.
    pub key_size: u32,
    /// Offset of the `info` values in the event.
    pub info_off: u32,
    /// Size of the `info` values.
    pub info_size: u32,
    /// Offset of the stage timestamps (u64 each, 0: not seen) in the event.
    pub ts_off: u32,
    /// Offset of the stage contexts in the event.
    pub ctx_off: u32,
    /// Offset of the packet capture in the event (`capture` paths).
    pub capture_off: u32,
    /// Event size (0: the path reports no packets).
    pub event_size: u32,
    /// The record of a packet in flight.
    pub record: RecordLayout,
    /// Number of stages.
    pub stages: u32,
    /// Sets in the record table (a power of two).
    pub sets: u32,
}

/// What a record of a path's table keeps for a packet in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLayout {
    /// The stage whose time is the way's start time (not in the record):
    /// the first stage with a packet, when only it starts records.
    pub started: Option<u32>,
    /// Offset of the kept stage timestamps (the `info` values come first).
    pub ts_off: u32,
    /// Offset of the contexts of the stages before the last (packet reports).
    pub ctx_off: u32,
    /// Offset of the packet capture (`capture` paths), after the contexts.
    pub capture_off: u32,
    /// Record size.
    pub size: u32,
}

/// The event and record layout of a path.
pub fn path_layout(path: &PathInfo) -> PathLayout {
    let words = |bytes: u32| bytes.div_ceil(8) * 8;
    let key_size = words(path.key.storage_size());
    let n = path.stages.len() as u32;
    let info_size = match path.detail {
        true => words(path.report.info.storage_size()),
        false => 0,
    };
    let (key_off, info_off) = (8, 8 + key_size);
    let (ts_off, ctx_off) = (info_off + info_size, info_off + info_size + 8 * n);
    // Only the first stage with a packet starts records when it must
    // fire; the last stage's time and context go straight into the event.
    let leader = path.leader();
    let started = path
        .stages
        .get(leader as usize)
        .and_then(|s| (!s.optional).then_some(leader));
    let kept = n.saturating_sub(1) - u32::from(started.is_some() && n > 1);
    let contexts = match path.detail {
        true => STAGE_CTX_SIZE * n.saturating_sub(1),
        false => 0,
    };
    let record_ctx = info_size + 8 * kept;
    let capture = match path.capture {
        true => CAPTURE_SIZE,
        false => 0,
    };
    // A record within one cache line where it fits, else whole lines: no
    // record straddles a line it need not touch.
    let record = match record_ctx + contexts + capture {
        0 => 0,
        size if size <= CACHE_LINE => size.next_power_of_two(),
        size => size.div_ceil(CACHE_LINE) * CACHE_LINE,
    };
    PathLayout {
        key_off,
        key_size,
        info_off,
        info_size,
        ts_off,
        ctx_off,
        capture_off: ctx_off + STAGE_CTX_SIZE * n,
        event_size: if path.detail {
            ctx_off + STAGE_CTX_SIZE * n + capture
        } else {
            0
        },
        record: RecordLayout {
            started,
            ts_off: info_size,
            ctx_off: record_ctx,
            capture_off: record_ctx + contexts,
            size: record,
        },
        stages: n,
        sets: (path.records.next_power_of_two() / RECORD_WAYS).max(1),
    }
}

/// Where a path stage's timestamp is kept for a packet in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageTime {
    /// The way's start time in the set's header line.
    Started,
    /// At this offset in the record.
    Record(u32),
    /// Not kept: the stage completes the record.
    Completing,
}

impl PathLayout {
    /// Where stage `stage`'s timestamp is kept for a packet in flight.
    pub fn stage_time(&self, stage: u32) -> StageTime {
        let started = self.record.started;
        if started == Some(stage) {
            StageTime::Started
        } else if stage + 1 == self.stages {
            StageTime::Completing
        } else {
            let before = started.is_some_and(|s| s < stage);
            StageTime::Record(self.record.ts_off + 8 * (stage - u32::from(before)))
        }
    }

    /// Offset in the event of stage `stage`'s context.
    pub fn event_ctx(&self, stage: u32) -> u32 {
        self.ctx_off + STAGE_CTX_SIZE * stage
    }

    /// Offset in the record of stage `stage`'s context (a stage before the
    /// last, with packet reports).
    pub fn record_ctx(&self, stage: u32) -> u32 {
        self.record.ctx_off + STAGE_CTX_SIZE * stage
    }

    /// Offset in a set of way `way`'s record.
    pub fn way_off(&self, way: u32) -> u32 {
        2 * SET_STARTED_OFF + way * self.record.size
    }

    /// Size of a set: the ways' hashes and start times, then their records.
    pub fn set_size(&self) -> u32 {
        self.way_off(RECORD_WAYS)
    }
}

/// The maps of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathMaps {
    /// Array of sets of [`RECORD_WAYS`] records, indexed by the key's hash.
    pub records: u32,
    /// The segment histograms: a per-CPU array laid out by [`HistArray`],
    /// or, for paths too big for one, a per-CPU hash (from stage, to
    /// stage, bucket) -> count.
    pub hists: u32,
    /// Per-CPU array of [`path_counter`]s.
    pub counters: u32,
    /// Array holding the rate limiter's next allowed time (ns).
    pub rate: u32,
    /// With a recalled stage: LRU hash from a mark's owner to its pending
    /// mark, laid out by [`mark`].
    pub marks: Option<u32>,
}

/// A recalled stage's pending mark, the value of its path's `marks` map
/// (one per owner): its position, its time (0: none pending) and, with
/// packet reports, the stage's context.
pub mod mark {
    use super::STAGE_CTX_SIZE;
    use crate::sema::tast::PathInfo;

    /// Offset of the position (u64).
    pub const POS: u32 = 0;
    /// Offset of the time (u64, ns; 0 once recalled).
    pub const TIME: u32 = 8;
    /// Offset of the stage context (packet reports).
    pub const CTX: u32 = 16;

    /// Size of a mark of `path`.
    pub fn size(path: &PathInfo) -> u32 {
        CTX + if path.detail { STAGE_CTX_SIZE } else { 0 }
    }
}

/// Layout of a user map's key: the offsets of the key components, the
/// offset of the histogram bucket (hist/lhist maps) and the total size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    /// Offset of each key component.
    pub offsets: Vec<u32>,
    /// Offset of the u64 bucket index for hist/lhist maps.
    pub bucket: Option<u32>,
    /// Key size in bytes (at least 8).
    pub size: u32,
}

/// The key layout of a user map.
pub fn key_layout(decl: &MapDecl) -> KeyLayout {
    let (offsets, size) = tuple_layout(&decl.keys);
    let size = if decl.keys.is_empty() { 8 } else { size };
    match decl.value {
        MapValue::Agg(Agg::Hist { .. } | Agg::Lhist { .. }) if !decl.keys.is_empty() => KeyLayout {
            offsets,
            bucket: Some(size),
            size: size + 8,
        },
        MapValue::Agg(Agg::Hist { .. } | Agg::Lhist { .. }) => KeyLayout {
            offsets,
            bucket: Some(0),
            size: 8,
        },
        _ => KeyLayout {
            offsets,
            bucket: None,
            size,
        },
    }
}

/// How many entries a user map can hold: every possible entry of a map
/// without a key (one value, or every histogram bucket), else `map_keys`.
pub fn capacity(decl: &MapDecl, map_keys: u32) -> u32 {
    if !decl.keys.is_empty() {
        return map_keys;
    }
    match decl.value {
        MapValue::Agg(Agg::Hist { bits }) => {
            crate::format::loghist::hist_index(i64::MAX, bits) as u32 + 1
        }
        MapValue::Agg(Agg::Lhist { min, max, step }) => ((max - min) / step + 2) as u32,
        _ => 1,
    }
}

/// Size of a user map's value. Aggregations: count/sum/hist buckets are one
/// u64; min/max are (value, set flag); avg/stats are (count, sum).
pub fn value_size(decl: &MapDecl) -> u32 {
    match &decl.value {
        MapValue::Plain(ty) => ty.storage_size().div_ceil(8) * 8,
        MapValue::Agg(Agg::Count | Agg::Sum | Agg::Hist { .. } | Agg::Lhist { .. }) => 8,
        MapValue::Agg(Agg::Min | Agg::Max | Agg::Avg | Agg::Stats) => 16,
    }
}

/// The layout of a printf record's arguments (after the kind word).
pub fn args_layout(args: &[Ty]) -> (Vec<u32>, u32) {
    tuple_layout(args)
}

/// Which BPF maps a script needs: user maps first (same index as their
/// `MapId`), then the event ring buffer, the lost-event counter, when
/// `kstack` is used, the stack-trace map, when `ratelimit()` is used, its
/// limiters, then the maps of each path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapTable {
    /// Every map, in `bpf::MapId` order.
    pub specs: Vec<MapSpec>,
    /// Index of the ring buffer.
    pub events: u32,
    /// Index of the per-CPU lost-event counter.
    pub lost: u32,
    /// Index of the stack-trace map, when `kstack` is used.
    pub stacks: Option<u32>,
    /// The maps of each path, by path id.
    pub paths: Vec<PathMaps>,
    /// Index of the per-CPU array counting, per program (by index in the
    /// script), packets too short for one of its reads; present when the
    /// script has XDP probes.
    pub packet_short: Option<u32>,
    /// Index of the array of `ratelimit()` limiters (next allowed time,
    /// ns, one per call in the source), when the script has any.
    pub rate_limits: Option<u32>,
    /// Index of the per-CPU array (one element, the size of the largest
    /// record) where printf records over [`STACK_RECORD_MAX`] are built.
    pub scratch: Option<u32>,
}

impl MapTable {
    /// The maps of a checked script.
    pub fn new(script: &Script) -> MapTable {
        // Kernels from 6.1 allocate hash elements on insert safely in any
        // program: keyed maps then cost nothing to create.
        let keyed_flags = match crate::kernel::symbols::kernel_version() {
            Some(v) if v >= (6, 1) => map_flags::NO_PREALLOC,
            _ => 0,
        };
        let mut specs: Vec<MapSpec> = script
            .maps
            .iter()
            .enumerate()
            .map(|(i, m)| MapSpec {
                name: format!("m{}_{}", i, sanitize(&m.name)),
                map_type: match m.value {
                    MapValue::Agg(_) => map_type::PERCPU_HASH,
                    MapValue::Plain(_) => map_type::HASH,
                },
                key_size: key_layout(m).size,
                value_size: value_size(m),
                max_entries: capacity(m, script.map_keys),
                flags: if m.keys.is_empty() { 0 } else { keyed_flags },
            })
            .collect();
        let events = specs.len() as u32;
        specs.push(MapSpec {
            name: "events".into(),
            map_type: map_type::RINGBUF,
            key_size: 0,
            value_size: 0,
            max_entries: RINGBUF_BYTES,
            flags: 0,
        });
        let lost = specs.len() as u32;
        specs.push(MapSpec {
            name: "lost".into(),
            map_type: map_type::PERCPU_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            flags: 0,
        });
        // Large printf records and packet reports are built here.
        let printfs = script.printfs.iter().map(|p| 8 + args_layout(&p.args).1);
        let reports = script.paths.iter().map(|p| path_layout(p).event_size);
        let scratch = printfs
            .filter(|size| *size > STACK_RECORD_MAX)
            .chain(reports)
            .filter(|size| *size > 0)
            .max()
            .map(|size| {
                specs.push(MapSpec {
                    name: "scratch".into(),
                    map_type: map_type::PERCPU_ARRAY,
                    key_size: 4,
                    value_size: size,
                    max_entries: 1,
                    flags: 0,
                });
                specs.len() as u32 - 1
            });
        let stacks = script.uses_kstack.then(|| {
            specs.push(MapSpec {
                name: "stacks".into(),
                map_type: map_type::STACK_TRACE,
                key_size: 4,
                value_size: 8 * STACK_DEPTH,
                max_entries: STACK_ENTRIES,
                flags: 0,
            });
            specs.len() as u32 - 1
        });
        let rate_limits = (script.rate_limits > 0).then(|| {
            specs.push(MapSpec {
                name: "ratelimits".into(),
                map_type: map_type::ARRAY,
                key_size: 4,
                value_size: 8,
                max_entries: script.rate_limits,
                flags: 0,
            });
            specs.len() as u32 - 1
        });
        let paths = script
            .paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let layout = path_layout(path);
                let mut add = |kind: &str,
                               map_type: u32,
                               key_size: u32,
                               value_size: u32,
                               max_entries: u32,
                               flags: u32| {
                    specs.push(MapSpec {
                        name: format!("p{}_{}", i, kind),
                        map_type,
                        key_size,
                        value_size,
                        max_entries,
                        flags,
                    });
                    specs.len() as u32 - 1
                };
                PathMaps {
                    // Page-aligned values, so each set's header is one
                    // cache line (an array's values otherwise start 312
                    // bytes into its allocation: 56 bytes into a line).
                    records: add(
                        "records",
                        map_type::ARRAY,
                        4,
                        layout.set_size(),
                        layout.sets,
                        map_flags::MMAPABLE,
                    ),
                    hists: match HistArray::of(path) {
                        Some(array) => {
                            add("hists", map_type::PERCPU_ARRAY, 4, 8, array.entries(), 0)
                        }
                        None => add(
                            "hists",
                            map_type::PERCPU_HASH,
                            16,
                            8,
                            MAP_ENTRIES,
                            keyed_flags,
                        ),
                    },
                    counters: add(
                        "counters",
                        map_type::PERCPU_ARRAY,
                        4,
                        8,
                        path_counter::COUNT,
                        0,
                    ),
                    rate: add("rate", map_type::ARRAY, 4, 8, 1, 0),
                    marks: path.stages.iter().any(|s| s.recalled).then(|| {
                        let size = mark::size(path);
                        add("marks", map_type::LRU_HASH, 8, size, path.records, 0)
                    }),
                }
            })
            .collect();
        let has_packets = script
            .programs
            .iter()
            .any(|p| p.probe.kind == crate::providers::Kind::Xdp);
        let packet_short = has_packets.then(|| {
            specs.push(MapSpec {
                name: "pkt_short".into(),
                map_type: map_type::PERCPU_ARRAY,
                key_size: 4,
                value_size: 8,
                max_entries: script.programs.len() as u32,
                flags: 0,
            });
            specs.len() as u32 - 1
        });
        MapTable {
            packet_short,
            paths,
            rate_limits,
            specs,
            events,
            lost,
            stacks,
            scratch,
        }
    }
}

fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    s.truncate(8);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_array_index_names_one_group_segment_and_bucket() {
        let array = HistArray {
            stages: 4,
            buckets: 3,
            groups: 2,
        };
        // Per group: segments 0->1, 0->2, 1->2, 0->3, 1->3, 2->3, the total.
        assert_eq!(array.entries(), 2 * 7 * 3);
        let mut seen = std::collections::HashSet::new();
        for group in 0..2 {
            let base = group * array.segments();
            for to in 1..4 {
                for from in 0..to {
                    for bucket in 0..3 {
                        let index = (base + array.first_segment_to(to) + from) * 3 + bucket;
                        assert_eq!(array.segment_of(index), (group, from, to, bucket));
                        assert!(seen.insert(index));
                    }
                }
            }
            for bucket in 0..3 {
                let total = (base + array.total_segment()) * 3 + bucket;
                assert_eq!(
                    array.segment_of(total),
                    (group, TOTAL_SEGMENT, TOTAL_SEGMENT, bucket)
                );
                assert!(seen.insert(total) && total < array.entries());
            }
        }
        assert_eq!(seen.len() as u32, array.entries());
    }
}
