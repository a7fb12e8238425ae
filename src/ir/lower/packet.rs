//! Direct packet access in XDP programs. Every read through a packet
//! pointer is preceded by the check the verifier tracks, `p + end <=
//! data_end`; a variable added to a packet pointer is first bounded so the
//! verifier can follow the pointer's range. A failed check leaves the
//! program (the packet is passed on) and counts the packet in the
//! program's "too short" counter, which the runtime reports.

use super::mem::{Base, Place};
use super::{Lower, Val};
use crate::bpf::MapId;
use crate::diag::Result;
use crate::ir::{Addr, AluOp, Cond, Label, Operand, Slot, VReg, Width};
use crate::sema::tast::Expr;

/// Offsets of `data` and `data_end` in `struct xdp_md`.
const XDP_MD_DATA: i16 = 0;
const XDP_MD_DATA_END: i16 = 4;

/// The largest variable offset added to a packet pointer in one step; a
/// larger one is past the end of any XDP packet (whose linear data fits in
/// a page), so the packet counts as too short. Four such steps stay below
/// the verifier's packet offset limit of 0xffff.
pub(crate) const MAX_PACKET_STEP: i64 = 0x3fff;

impl Lower<'_> {
    /// The label of the program's "packet too short" exit.
    fn short_label(&mut self) -> Label {
        match self.short {
            Some(l) => l,
            None => {
                let l = self.f.label();
                self.short = Some(l);
                l
            }
        }
    }

    /// `pkt`: the packet's first byte.
    pub(super) fn packet_start(&mut self) -> VReg {
        self.f.ctx_load(XDP_MD_DATA, Width::B4)
    }

    /// `pkt_len`: `data_end - data`.
    pub(super) fn packet_len(&mut self) -> VReg {
        let start = self.packet_start();
        let end = self.f.ctx_load(XDP_MD_DATA_END, Width::B4);
        let len = self.f.vreg();
        self.f.alu_reg(AluOp::Sub, len, end, start);
        len
    }

    /// Leaves through the "too short" exit unless `p + end` is at most the
    /// packet's end.
    fn check_packet(&mut self, p: VReg, end: u32) {
        let last = self.offset(p, end as i64);
        let data_end = self.f.ctx_load(XDP_MD_DATA_END, Width::B4);
        let short = self.short_label();
        self.f.branch_reg(Cond::Gt, last, data_end, short);
    }

    /// A packet pointer's register.
    fn packet_pointer(&mut self, base: &Expr) -> Result<VReg> {
        let v = self.expr(base)?;
        Ok(self.scalar_of(v))
    }

    /// `*(width *)(base + offset)` read from the packet.
    pub(super) fn packet_load(&mut self, base: &Expr, offset: u32, width: Width) -> Result<VReg> {
        let p = self.packet_pointer(base)?;
        self.check_packet(p, offset + width.bytes());
        Ok(self.f.load(Addr::Reg(p, offset as i16), width))
    }

    /// Copies `len` bytes at `base + offset` in the packet to `slot`.
    pub(super) fn packet_copy(
        &mut self,
        base: &Expr,
        offset: u32,
        len: u32,
        slot: Slot,
    ) -> Result<()> {
        let p = self.packet_pointer(base)?;
        self.check_packet(p, offset + len);
        let src = Place {
            base: Base::Ptr(p),
            off: offset as i32,
        };
        self.copy(Place::stack(slot), src, len);
        Ok(())
    }

    /// `p + n` on a packet pointer. A constant up to [`MAX_PACKET_STEP`] is
    /// added as is; anything else is bounded first (a larger value leaves
    /// through the "too short" exit).
    pub(super) fn packet_add(&mut self, ptr: &Expr, n: &Expr) -> Result<Val> {
        let p = self.packet_pointer(ptr)?;
        let n = self.operand(n)?;
        if let Operand::Imm(k) = n {
            if (0..=MAX_PACKET_STEP).contains(&k) {
                return Ok(Val::Reg(self.offset(p, k)));
            }
        }
        let n = self.scalar_operand(n);
        let short = self.short_label();
        self.f.branch_imm(Cond::Gt, n, MAX_PACKET_STEP, short);
        let r = self.f.vreg();
        self.f.alu_reg(AluOp::Add, r, p, n);
        Ok(Val::Reg(r))
    }

    /// After the body: the "too short" exit, if a check jumps there, counts
    /// the packet in this program's counter, then joins the normal end.
    pub(super) fn finish_packet_checks(&mut self) {
        let Some(short) = self.short else {
            return;
        };
        self.f.jump(self.end);
        self.f.bind(short);
        if let Some(map) = self.maps.packet_short {
            self.increment(MapId(map), self.index as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::layout::MapTable;
    use crate::ir::{lower, Inst, Operand};
    use crate::providers::XDP_PASS;
    use crate::sema::{check, Options};
    use crate::syntax::parse;

    fn lowered(src: &str) -> crate::ir::Function {
        let script = check(&parse(src).expect("parses"), &Options::default()).expect("checks");
        let maps = MapTable::new(&script);
        assert!(maps.packet_short.is_some());
        lower::lower(&script, &maps, 0).expect("lowers").remove(0)
    }

    #[test]
    fn every_packet_load_follows_a_check_against_the_packet_end() {
        let f = lowered("xdp:lo { $x = ((struct iphdr *)(pkt + 14))->ttl; }");
        let text = f.to_string();
        let check = text.find("load32 [%0+4]").expect("data_end is read");
        let branch = text.find(" Gt ").expect("a bounds check");
        let load = text.find("load8 [").expect("a direct one-byte load");
        assert!(check < branch && branch < load, "{}", text);
        let body = &text[..text.find("L1:").expect("the too-short exit")];
        assert!(
            !body.contains("call"),
            "no helper in a packet read:\n{}",
            text
        );
        assert!(
            text[body.len()..].contains("call 1("),
            "the exit counts the packet"
        );
        assert!(matches!(
            f.insts.last(),
            Some(Inst::Exit(Operand::Imm(XDP_PASS)))
        ));
    }

    #[test]
    fn variable_offsets_are_bounded_before_they_move_a_packet_pointer() {
        // Also where the pointer is moved inside the read: an index, a
        // field of a cast sum, a dereference of one.
        for src in [
            "xdp:lo { $ip = (struct iphdr *)(pkt + 14); $l4 = pkt + 14 + $ip->ihl * 4; $p = *(uint16 *)$l4; }",
            "xdp:lo { $i = pkt_len - 20; $b = pkt[$i]; }",
            "xdp:lo { $i = pkt_len - 20; $b = ((uint16 *)pkt)[$i]; }",
            "xdp:lo { $o = pkt_len - 20; $p = ((struct ethhdr *)(pkt + $o))->h_proto; }",
            "xdp:lo { $o = pkt_len - 20; $p = *(uint16 *)(pkt + $o); }",
        ] {
            let text = lowered(src).to_string();
            assert!(
                text.contains(&format!("Gt {} goto", super::MAX_PACKET_STEP)),
                "{src}\n{text}"
            );
        }
    }
}
