//! Map operations shared by every construct that lowers to map accesses:
//! lookups, get-or-create, and in-place additions (plain updates and
//! deletes are the builder's `map_update` and `map_delete`).

use super::mem::Place;
use super::Lower;
use crate::bpf::MapId;
use crate::ir::{Addr, AluOp, Cond, Label, Operand, Slot, VReg, Width};

/// `BPF_NOEXIST` for `bpf_map_update_elem`.
const BPF_NOEXIST: i64 = 1;

impl Lower<'_> {
    /// `bpf_map_lookup_elem(map, &key)`: the value pointer, or 0.
    pub(super) fn lookup(&mut self, map: MapId, key: Slot) -> VReg {
        let p = self.f.vreg();
        self.f.map_lookup(p, map, key);
        p
    }

    /// [`Lower::lookup`], jumping to `missing` when there is no value.
    pub(super) fn lookup_or(&mut self, map: MapId, key: Slot, missing: Label) -> VReg {
        let p = self.lookup(map, key);
        self.f.branch_imm(Cond::Eq, p, 0, missing);
        p
    }

    /// A pointer to the `size`-byte value for `key`, created zeroed if
    /// absent; jumps to `skip` if the map is full.
    pub(super) fn value_ptr(&mut self, map: MapId, key: Slot, size: u32, skip: Label) -> VReg {
        let have = self.f.label();
        let p = self.lookup(map, key);
        self.f.branch_imm(Cond::Ne, p, 0, have);
        let zero = self.temp(size);
        self.zero(Place::stack(zero), size);
        self.f.map_update(map, key, zero, BPF_NOEXIST);
        self.f.map_lookup(p, map, key);
        self.f.branch_imm(Cond::Eq, p, 0, skip);
        self.f.bind(have);
        p
    }

    /// A pointer to element `index` of an array map (jumps to `missing` if none).
    pub(super) fn lookup_index(&mut self, map: MapId, index: u32, missing: Label) -> VReg {
        let key = self.temp(8);
        let index = i64::from(index);
        self.f.store_imm(Addr::Stack(key, 0), Width::B8, index);
        self.lookup_or(map, key, missing)
    }

    /// Adds one to element `index` of per-CPU array `map`.
    pub(super) fn increment(&mut self, map: MapId, index: u32) {
        let done = self.f.label();
        let p = self.lookup_index(map, index, done);
        self.add_at(p, 0, Operand::Imm(1));
        self.f.bind(done);
    }

    /// `*(u64 *)(p + off) += v` on a map value.
    pub(super) fn add_at(&mut self, p: VReg, off: i16, v: Operand) {
        let t = self.f.load(Addr::Reg(p, off), Width::B8);
        self.f.alu(AluOp::Add, t, Operand::Reg(t), v);
        self.f.store_reg(Addr::Reg(p, off), Width::B8, t);
    }
}
