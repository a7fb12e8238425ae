//! Map operations shared by every construct that lowers to map accesses:
//! lookups, updates, deletes, get-or-create, and in-place additions.

use super::mem::Place;
use super::Lower;
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::ir::{Addr, AluOp, Cond, Inst, Label, Operand, Slot, VReg, Width};

/// `BPF_NOEXIST` for `bpf_map_update_elem`.
const BPF_NOEXIST: i64 = 1;

impl Lower<'_> {
    /// `bpf_map_lookup_elem(map, &key)`: the value pointer, or 0.
    pub(super) fn lookup(&mut self, map: MapId, key: Slot) -> VReg {
        let p = self.f.vreg();
        self.lookup_into(map, key, p);
        p
    }

    /// [`Lower::lookup`] into an existing register.
    fn lookup_into(&mut self, map: MapId, key: Slot, p: VReg) {
        let (m, k) = (self.map_ptr(map), self.addr(Place::stack(key)));
        self.call(helper::MAP_LOOKUP_ELEM, vec![m, k], Some(p));
    }

    /// [`Lower::lookup`], jumping to `missing` when there is no value.
    pub(super) fn lookup_or(&mut self, map: MapId, key: Slot, missing: Label) -> VReg {
        let p = self.lookup(map, key);
        self.jump_if(Cond::Eq, p, Operand::Imm(0), missing);
        p
    }

    /// `bpf_map_update_elem(map, &key, &value, flags)` for a value in a stack slot.
    pub(super) fn update_from(&mut self, map: MapId, key: Slot, value: Slot, flags: i64) {
        let (m, k, v) = (
            self.map_ptr(map),
            self.addr(Place::stack(key)),
            self.addr(Place::stack(value)),
        );
        self.call(
            helper::MAP_UPDATE_ELEM,
            vec![m, k, v, Operand::Imm(flags)],
            None,
        );
    }

    /// `bpf_map_delete_elem(map, &key)`.
    pub(super) fn delete(&mut self, map: MapId, key: Slot) {
        let (m, k) = (self.map_ptr(map), self.addr(Place::stack(key)));
        self.call(helper::MAP_DELETE_ELEM, vec![m, k], None);
    }

    /// A pointer to the `size`-byte value for `key`, created zeroed if
    /// absent; jumps to `skip` if the map is full.
    pub(super) fn value_ptr(&mut self, map: MapId, key: Slot, size: u32, skip: Label) -> VReg {
        let have = self.f.label();
        let p = self.lookup(map, key);
        self.jump_if(Cond::Ne, p, Operand::Imm(0), have);
        let zero = self.temp(size);
        self.zero(Place::stack(zero), size);
        self.update_from(map, key, zero, BPF_NOEXIST);
        self.lookup_into(map, key, p);
        self.jump_if(Cond::Eq, p, Operand::Imm(0), skip);
        self.f.push(Inst::Label(have));
        p
    }

    /// A pointer to element `index` of an array map (jumps to `missing` if none).
    pub(super) fn lookup_index(&mut self, map: MapId, index: u32, missing: Label) -> VReg {
        let key = self.temp(8);
        self.f.push(Inst::Store {
            addr: Addr::Stack(key, 0),
            width: Width::B8,
            src: Operand::Imm(index as i64),
        });
        self.lookup_or(map, key, missing)
    }

    /// Adds one to element `index` of per-CPU array `map`.
    pub(super) fn increment(&mut self, map: MapId, index: u32) {
        let done = self.f.label();
        let p = self.lookup_index(map, index, done);
        self.add_at(p, 0, Operand::Imm(1));
        self.f.push(Inst::Label(done));
    }

    /// `*(u64 *)(p + off) += v` on a map value.
    pub(super) fn add_at(&mut self, p: VReg, off: i16, v: Operand) {
        let t = self.f.vreg();
        self.f.push(Inst::Load {
            dst: t,
            addr: Addr::Reg(p, off),
            width: Width::B8,
        });
        self.f.push(Inst::Alu {
            op: AluOp::Add,
            dst: t,
            lhs: Operand::Reg(t),
            rhs: v,
        });
        self.f.push(Inst::Store {
            addr: Addr::Reg(p, off),
            width: Width::B8,
            src: Operand::Reg(t),
        });
    }
}
