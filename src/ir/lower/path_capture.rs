//! `--pcap`: the stage that starts a packet's record copies the packet's
//! first [`PCAP_SNAP`] bytes from its IP header into the record, with how
//! many of them are the packet's and its length; the completing stage
//! copies them into the event. Only paths checked with `capture` have it.

use super::mem::Place;
use super::{Lower, Val};
use crate::bpf::PCAP_SNAP;
use crate::diag::{Diagnostic, Result};
use crate::ir::{Cond, Width};
use crate::sema::tast::Expr;

impl Lower<'_> {
    /// Writes the capture `capture` (`pkt_capture($skb)`: start, bytes
    /// available, packet length) at `into`: the captured length (u32, at
    /// most [`PCAP_SNAP`]), the packet's length (u32), then the bytes. The
    /// bytes are read [`PCAP_SNAP`] at a time (a constant size the
    /// verifier needs no bounds for); past the packet's linear data they
    /// are the skb's own memory, and the captured length leaves them out.
    pub(super) fn capture_packet(&mut self, into: Place, capture: &Expr) -> Result<()> {
        let value: Val = self.expr(capture)?;
        let Some([start, available, wire]) = self.integers(value, &capture.ty) else {
            return Err(Diagnostic::at(
                capture.span,
                "internal error: pkt_capture($skb) is (start, length, wire length)",
            ));
        };
        let (snap, done) = (self.f.label(), self.f.label());
        let len = self.f.vreg();
        self.f.mov_reg(len, available);
        self.f.branch_imm(Cond::Le, len, PCAP_SNAP.into(), snap);
        self.f.mov_imm(len, PCAP_SNAP.into());
        self.f.bind(snap);
        // No packet (start 0): nothing captured.
        let none = self.f.label();
        self.f.branch_imm(Cond::Ne, start, 0, none);
        self.f.mov_imm(len, 0);
        self.f.bind(none);
        for (off, src) in [(0, len), (4, wire)] {
            self.f.store_reg(into.at(off), Width::B4, src);
        }
        self.f.branch_imm(Cond::Eq, len, 0, done);
        let bytes = self.addr(Place {
            off: into.off + 8,
            ..into
        });
        self.f.probe_read(bytes, PCAP_SNAP, start);
        self.f.bind(done);
        Ok(())
    }
}
