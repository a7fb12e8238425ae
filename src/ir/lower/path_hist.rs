//! A path's latency histograms in the kernel: the last stage counts each
//! segment's latency and the total in a per-CPU array (or, past
//! [`crate::ir::layout::MAX_HIST_ARRAY`] counters, a per-CPU hash), split by
//! the packet's group when the path has `hist_by`.

use super::Lower;
use crate::bpf::MapId;
use crate::ir::layout::{HistArray, PathMaps, PATH_HIST_MAX_NS, TOTAL_SEGMENT};
use crate::ir::{Addr, AluOp, Cond, Operand, VReg, Width};
use crate::sema::tast::PathInfo;

/// Where the last stage counts a packet's latencies: the path's maps and
/// the packet's group (`hist_by`), if the histograms are split.
#[derive(Clone, Copy)]
pub(super) struct Hist {
    /// The path's maps.
    pub maps: PathMaps,
    /// The packet's group (`hist_by`).
    pub group: Option<VReg>,
}

impl Lower<'_> {
    /// Counts `value` in the histogram of segment `from -> to` (both
    /// [`TOTAL_SEGMENT`] for the total) of the packet's group. Latencies
    /// over [`PATH_HIST_MAX_NS`] count in its bucket; a group past the
    /// last counts in the last.
    pub(super) fn add_to_histogram(
        &mut self,
        info: &PathInfo,
        hist: Hist,
        from: Operand,
        to: u32,
        value: VReg,
    ) {
        let capped = self.at_most(value, PATH_HIST_MAX_NS, Cond::SLe);
        let bucket = self.hist_bucket(capped, info.hist_bits);
        let last_group = info.hist_groups.len() as i64 - 1;
        let group = hist.group.map(|g| self.at_most(g, last_group, Cond::Le));
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
                        self.f.alu(AluOp::Add, index, from, first);
                        Operand::Reg(index)
                    }
                };
                let histogram = match group {
                    Some(g) => {
                        let base = self.f.vreg();
                        self.f.alu_imm(AluOp::Mul, base, g, array.segments() as i64);
                        self.f.alu(AluOp::Add, index, Operand::Reg(base), segment);
                        Operand::Reg(index)
                    }
                    None => segment,
                };
                let buckets = Operand::Imm(array.buckets as i64);
                self.f.alu(AluOp::Mul, index, histogram, buckets);
                self.f.alu_reg(AluOp::Add, index, index, bucket);
                let key = self.temp(8);
                self.f.store_reg(Addr::Stack(key, 0), Width::B4, index);
                self.lookup_or(MapId(hist.maps.hists), key, skip)
            }
            None => {
                let key = self.temp(16);
                let at = |off| Addr::Stack(key, off);
                self.f.store(at(0), Width::B4, from);
                self.f.store_imm(at(4), Width::B4, to.into());
                self.f.store_reg(at(8), Width::B8, bucket);
                if let Some(g) = group {
                    self.f.store_reg(at(12), Width::B4, g);
                }
                self.value_ptr(MapId(hist.maps.hists), key, 8, skip)
            }
        };
        self.add_at(c, 0, Operand::Imm(1));
        self.f.bind(skip);
    }

    /// A copy of `value`, or `limit` where `value` is not `within` it
    /// (`Cond::SLe` signed, `Cond::Le` unsigned).
    fn at_most(&mut self, value: VReg, limit: i64, within: Cond) -> VReg {
        let (copy, done) = (self.f.vreg(), self.f.label());
        self.f.mov_reg(copy, value);
        self.f.branch_imm(within, copy, limit, done);
        self.f.mov_imm(copy, limit);
        self.f.bind(done);
        copy
    }
}
