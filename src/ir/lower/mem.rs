//! Memory helpers of lowering: places, zeroing, copying and storing values.

use super::{Lower, Val};
use crate::ir::{Addr, AluOp, Operand, Slot, VReg, Width};

/// Where bytes are: a stack slot or a pointer register, plus an offset.
#[derive(Debug, Clone, Copy)]
pub(super) struct Place {
    /// The base.
    pub base: Base,
    /// Byte offset from the base.
    pub off: i32,
}

/// The base of a [`Place`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Base {
    /// A stack slot.
    Stack(Slot),
    /// A pointer the verifier can follow (map value).
    Ptr(VReg),
}

impl Place {
    /// The start of a stack slot.
    pub fn stack(slot: Slot) -> Place {
        Place {
            base: Base::Stack(slot),
            off: 0,
        }
    }

    /// How far the place is past an 8-byte boundary (slots and map values
    /// start on one).
    fn misalignment(self) -> u32 {
        self.off.rem_euclid(8) as u32
    }

    pub fn at(self, extra: u32) -> Addr {
        let off = self.off + extra as i32;
        match self.base {
            Base::Stack(s) => Addr::Stack(s, off),
            Base::Ptr(r) => Addr::Reg(r, off as i16),
        }
    }
}

/// Splits `len` bytes into the widest chunks aligned on both sides of a
/// copy, whose starts are `starts` bytes past an 8-byte boundary: (offset, width).
fn chunks(len: u32, starts: [u32; 2]) -> impl Iterator<Item = (u32, Width)> {
    let mut off = 0;
    std::iter::from_fn(move || {
        let left = len - off;
        let w = [8u32, 4, 2, 1]
            .into_iter()
            .find(|w| *w <= left && starts.iter().all(|s| (off + s) % w == 0))?;
        let at = off;
        off += w;
        Width::from_bytes(w as u64).map(|w| (at, w))
    })
}

impl Lower<'_> {
    /// Writes `len` zero bytes.
    pub(super) fn zero(&mut self, place: Place, len: u32) {
        for (off, width) in chunks(len, [place.misalignment(); 2]) {
            self.f.store_imm(place.at(off), width, 0);
        }
    }

    /// Copies `len` bytes.
    pub(super) fn copy(&mut self, dst: Place, src: Place, len: u32) {
        let t = self.f.vreg();
        for (off, width) in chunks(len, [dst.misalignment(), src.misalignment()]) {
            self.f.load_into(t, src.at(off), width);
            self.f.store_reg(dst.at(off), width, t);
        }
    }

    /// Stores a value: scalars as 8 bytes, memory values copied (at most
    /// `size` bytes).
    pub(super) fn store_val(&mut self, dst: Place, v: Val, size: u32) {
        match v {
            Val::Reg(r) => self.f.store_reg(dst.at(0), Width::B8, r),
            Val::Mem(slot, len) => self.copy(dst, Place::stack(slot), len.min(size)),
        }
    }

    /// `base + off` (just `base` when `off` is 0).
    pub(super) fn offset(&mut self, base: VReg, off: i64) -> VReg {
        if off == 0 {
            return base;
        }
        let r = self.f.vreg();
        self.f.alu_imm(AluOp::Add, r, base, off);
        r
    }

    /// `*(u64 *)(base + off) = src`.
    pub(super) fn store_at(&mut self, base: VReg, off: u32, src: Operand) {
        self.f.store(Addr::Reg(base, off as i16), Width::B8, src);
    }

    /// `*(u64 *)(base + off)`.
    pub(super) fn load_at(&mut self, base: VReg, off: u32) -> VReg {
        self.f.load(Addr::Reg(base, off as i16), Width::B8)
    }

    /// The address of a place, as an operand for a helper call.
    pub(super) fn addr(&mut self, place: Place) -> Operand {
        let r = match place.base {
            Base::Stack(slot) => self.f.stack_addr(slot, place.off),
            Base::Ptr(p) => {
                let r = self.f.vreg();
                self.f.alu_imm(AluOp::Add, r, p, place.off.into());
                r
            }
        };
        Operand::Reg(r)
    }

    /// The register of a scalar value (the checker guarantees scalars).
    pub(super) fn scalar_of(&mut self, v: Val) -> VReg {
        match v {
            Val::Reg(r) => r,
            Val::Mem(slot, _) => self.f.load(Addr::Stack(slot, 0), Width::B8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_length_with_aligned_widths() {
        let c: Vec<(u32, u32)> = chunks(15, [0, 0]).map(|(o, w)| (o, w.bytes())).collect();
        assert_eq!(c, vec![(0, 8), (8, 4), (12, 2), (14, 1)]);
        assert_eq!(chunks(0, [0, 0]).count(), 0);
        let c: Vec<(u32, u32)> = chunks(16, [4, 4]).map(|(o, w)| (o, w.bytes())).collect();
        assert_eq!(c, vec![(0, 4), (4, 8), (12, 4)]);
        let c: Vec<(u32, u32)> = chunks(16, [4, 0]).map(|(o, w)| (o, w.bytes())).collect();
        assert_eq!(c, vec![(0, 4), (4, 4), (8, 4), (12, 4)]);
    }
}
