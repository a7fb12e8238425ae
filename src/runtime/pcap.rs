//! `--pcap FILE`: every packet a path reports, written to a pcapng file
//! as the kernel captured it at the stage that started its record (up to
//! [`PCAP_SNAP`] bytes from its IP header: link type RAW), timestamped in
//! wall-clock nanoseconds at that stage, with a comment giving the path,
//! each stage's time and each segment's latency. One interface per path.
//! The blocks (section header, interface descriptions, enhanced packets)
//! are written here, buffered; the run loop flushes them after each batch
//! of ring-buffer records it handles (`Pcap::flush`).

use std::io::Write;
use std::path::Path;

use super::path_report::{segments, u32_at, u64_at};
use crate::bpf::PCAP_SNAP;
use crate::diag::{Diagnostic, Result};
use crate::ir::layout::PathLayout;
use crate::sema::tast::PathInfo;

/// pcapng block types.
const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const ENHANCED_PACKET: u32 = 6;
/// `LINKTYPE_RAW`: each packet starts with its IPv4 or IPv6 header.
const LINKTYPE_RAW: u16 = 101;
/// Option codes: end of options, comment, `shb_userappl`, `if_name`,
/// `if_description`, `if_tsresol`.
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;

/// An open pcapng file the reported packets are written to.
pub struct Pcap {
    file: std::io::BufWriter<std::fs::File>,
    /// Where the file is, for errors.
    name: String,
    /// `CLOCK_REALTIME - CLOCK_MONOTONIC` (ns), taken when it was opened.
    wall_offset_ns: i64,
}

impl Pcap {
    /// Creates `file` with its section header and one interface per path
    /// of `paths` (interface `i` is path `i`).
    pub fn create(file: &Path, paths: &[PathInfo]) -> Result<Pcap> {
        let name = file.display().to_string();
        let opened = crate::output::create_file(file, "pcap file ")?;
        let mut pcap = Pcap {
            file: std::io::BufWriter::new(opened),
            name,
            wall_offset_ns: super::wall_offset_ns(),
        };
        let mut head = section_header();
        for path in paths {
            head.extend(interface(path));
        }
        pcap.write(&head)?;
        pcap.flush()?;
        Ok(pcap)
    }

    /// Writes the packet of path `index` (`path`, whose events are laid
    /// out as `layout`) that the ring-buffer event `record` reports.
    pub fn packet(
        &mut self,
        index: usize,
        path: &PathInfo,
        layout: &PathLayout,
        record: &[u8],
    ) -> Result<()> {
        let stages = path.stages.len() as u32;
        let ts: Vec<u64> = (0..stages)
            .map(|i| u64_at(record, layout.ts_off + 8 * i))
            .collect();
        // The stage that captured it: the first that fired with a packet
        // (a recalled stage has none).
        let captured = (0..stages)
            .find(|&i| ts[i as usize] != 0 && u64_at(record, layout.event_ctx(i)) != 0)
            .unwrap_or(0) as usize;
        let at = layout.capture_off;
        let caplen = u32_at(record, at).min(PCAP_SNAP);
        let bytes = record
            .get((at + 8) as usize..(at + 8 + caplen) as usize)
            .unwrap_or(&[]);
        let wire = u32_at(record, at + 4).max(bytes.len() as u32);
        let wall = self.wall(ts[captured]);
        let comment = comment(path, &ts, captured, |t| self.wall_text(t));
        let block = enhanced_packet(index as u32, wall, bytes, wire, &comment);
        self.write(&block)
    }

    /// Monotonic `ts` (ns) as ns since the Unix epoch.
    fn wall(&self, ts: u64) -> u64 {
        (ts as i64).saturating_add(self.wall_offset_ns).max(0) as u64
    }

    /// Monotonic `ts` as `SECONDS.NANOSECONDS` since the Unix epoch.
    fn wall_text(&self, ts: u64) -> String {
        let wall = self.wall(ts);
        format!("{}.{:09}", wall / 1_000_000_000, wall % 1_000_000_000)
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| self.error(e))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| self.error(e))
    }

    fn error(&self, e: std::io::Error) -> Diagnostic {
        Diagnostic::plain(format!("cannot write pcap file {}: {}", self.name, e))
    }
}

/// A packet's comment: `path NAME; captured at STAGE; stages: A SECS.NS,
/// B not seen, ...; segments: A -> C N ns (M us), ...; total N ns (M us)`,
/// with the stages' wall-clock times written by `wall`.
fn comment(path: &PathInfo, ts: &[u64], captured: usize, wall: impl Fn(u64) -> String) -> String {
    let names: Vec<&str> = path.stages.iter().map(|s| s.name.as_str()).collect();
    let latency = |ns: u64| format!("{} ns ({:.3} us)", ns, ns as f64 / 1000.0);
    let stages: Vec<String> = names
        .iter()
        .zip(ts)
        .map(|(name, &t)| match t {
            0 => format!("{} not seen", name),
            t => format!("{} {}", name, wall(t)),
        })
        .collect();
    let (_, segments, total) = segments(ts);
    let segments: Vec<String> = segments
        .iter()
        .map(|s| format!("{} -> {} {}", names[s.from], names[s.to], latency(s.ns)))
        .collect();
    format!(
        "path {}; captured at {}; stages: {}; segments: {}; total {}",
        path.name,
        names.get(captured).unwrap_or(&"-"),
        stages.join(", "),
        segments.join(", "),
        latency(total)
    )
}

/// A block: its type, its length, `body` and its length again.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend(kind.to_le_bytes());
    out.extend(len.to_le_bytes());
    out.extend(body);
    out.extend(len.to_le_bytes());
    out
}

/// Appends option `code` with `value`, padded to 4 bytes.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    // An option's length is 16 bits: a longer value is cut.
    let value = &value[..value.len().min(u16::MAX as usize - 3)];
    out.extend(code.to_le_bytes());
    out.extend((value.len() as u16).to_le_bytes());
    pad(out, value);
}

/// Appends `bytes` and zeros up to a multiple of 4 bytes.
fn pad(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend(bytes);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Ends a list of options.
fn end_options(out: &mut Vec<u8>) {
    option(out, OPT_END, &[]);
}

/// The section header: little-endian, version 1.0, length unknown.
fn section_header() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(0x1A2B_3C4D_u32.to_le_bytes());
    body.extend(1u16.to_le_bytes());
    body.extend(0u16.to_le_bytes());
    body.extend((-1i64).to_le_bytes());
    let app = format!("netscript {}", env!("CARGO_PKG_VERSION"));
    option(&mut body, SHB_USERAPPL, app.as_bytes());
    end_options(&mut body);
    block(SECTION_HEADER, &body)
}

/// The interface of `path`'s packets: raw IP, [`PCAP_SNAP`] bytes,
/// nanosecond timestamps, named after the path.
fn interface(path: &PathInfo) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(LINKTYPE_RAW.to_le_bytes());
    body.extend(0u16.to_le_bytes());
    body.extend(PCAP_SNAP.to_le_bytes());
    option(
        &mut body,
        IF_NAME,
        format!("netscript:{}", path.name).as_bytes(),
    );
    let stages: Vec<&str> = path.stages.iter().map(|s| s.name.as_str()).collect();
    let description = format!(
        "path {} ({}), captured at its first stage from the IP header",
        path.name,
        stages.join(" -> ")
    );
    option(&mut body, IF_DESCRIPTION, description.as_bytes());
    option(&mut body, IF_TSRESOL, &[9]);
    end_options(&mut body);
    block(INTERFACE_DESCRIPTION, &body)
}

/// A packet of interface `interface` at `wall` (ns since the epoch): the
/// captured `bytes` of a packet of `wire` bytes, with `comment`.
fn enhanced_packet(interface: u32, wall: u64, bytes: &[u8], wire: u32, comment: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(interface.to_le_bytes());
    body.extend(((wall >> 32) as u32).to_le_bytes());
    body.extend((wall as u32).to_le_bytes());
    body.extend((bytes.len() as u32).to_le_bytes());
    body.extend(wire.to_le_bytes());
    pad(&mut body, bytes);
    option(&mut body, OPT_COMMENT, comment.as_bytes());
    end_options(&mut body);
    block(ENHANCED_PACKET, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_padded_and_say_their_length_at_both_ends() {
        let epb = enhanced_packet(1, (7 << 32) | 5, &[0x45, 1, 2], 60, "hi");
        // 12 framing + 20 fixed + 4 (3 bytes padded) + 8 ("hi") + 4 (end).
        assert_eq!(epb.len(), 48);
        assert_eq!(&epb[..4], &ENHANCED_PACKET.to_le_bytes());
        assert_eq!(&epb[4..8], &48u32.to_le_bytes());
        assert_eq!(&epb[44..48], &48u32.to_le_bytes());
        let word = |at: usize| u32::from_le_bytes(epb[at..at + 4].try_into().unwrap());
        assert_eq!((word(8), word(12), word(16)), (1, 7, 5));
        assert_eq!((word(20), word(24)), (3, 60));
        assert_eq!(&epb[28..32], &[0x45, 1, 2, 0]);
        assert_eq!(&epb[32..40], &[1, 0, 2, 0, b'h', b'i', 0, 0]);
        let shb = section_header();
        assert_eq!(shb.len() % 4, 0);
        assert_eq!(&shb[8..12], &0x1A2B_3C4D_u32.to_le_bytes());
    }
}
