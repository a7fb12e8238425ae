//! The exit report of XDP programs: packets that were too short for one of
//! a program's reads (the program stopped and passed the packet on).

use super::LoadedObject;
use crate::diag::{Diagnostic, Result};
use crate::output::Printer;
use crate::pipeline::Compiled;
use crate::providers::Kind;

/// Packets too short for a read, per XDP program that had any:
/// `(probe name, count)`, in program order.
pub fn too_short_counts(compiled: &Compiled, object: &LoadedObject) -> Result<Vec<(String, u64)>> {
    let Some(map) = compiled.maps.packet_short else {
        return Ok(Vec::new());
    };
    let name = &compiled.maps.specs[map as usize].name;
    let mut counts = Vec::new();
    for (index, program) in compiled.script.programs.iter().enumerate() {
        if program.probe.kind != Kind::Xdp {
            continue;
        }
        let n = object.percpu_counter(name, index as u32)?;
        if n > 0 {
            counts.push((program.probe.display(), n));
        }
    }
    Ok(counts)
}

/// One line per XDP program that met packets too short for a read:
/// `xdp:eth0: 3 packets too short for a read`, in JSON
/// `{"type": "packets_too_short", "data": {"probe": "xdp:eth0", "packets": 3}}`.
pub fn report_too_short(
    compiled: &Compiled,
    object: &LoadedObject,
    printer: &mut Printer,
) -> Result<()> {
    for (probe, n) in too_short_counts(compiled, object)? {
        let text = || format!("{probe}: {n} packets too short for a read\n");
        let json = || {
            format!(
                "{{\"type\": \"packets_too_short\", \"data\": {{\"probe\": {}, \"packets\": {n}}}}}",
                crate::output::json::quote(&probe)
            )
        };
        printer
            .report(text, json, None)
            .map_err(|e| Diagnostic::plain(format!("cannot write output: {}", e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Source;
    use crate::providers::XDP_PASS;
    use crate::testing::bpf_available;

    /// Reads the TTL and the destination port (after a variable-length IP
    /// header) of each packet into plain maps.
    const SCRIPT: &str = "xdp:lo {
        $ip = (struct iphdr *)(pkt + 14);
        @ttl = $ip->ttl;
        $l4 = pkt + 14 + $ip->ihl * 4;
        @dport = *(uint16 *)($l4 + 2);
        @len = pkt_len;
    }";

    /// An Ethernet + IPv4 (header of `ihl` words) + UDP frame to port
    /// 0x1234, cut or padded to `len` bytes.
    fn frame(ihl: u8, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x40 | ihl, 0, 0, 0, 0, 0, 0, 0, 64, 17]);
        f.resize(14 + ihl as usize * 4, 0);
        f.extend_from_slice(&[0x30, 0x39, 0x12, 0x34, 0, 8, 0, 0]);
        f.resize(len, 0);
        f
    }

    fn value(object: &LoadedObject, compiled: &Compiled, map: &str) -> u64 {
        let index = compiled
            .script
            .maps
            .iter()
            .position(|m| m.name == map)
            .expect("the map exists");
        let values = object
            .map_lookup(&compiled.maps.specs[index].name, &[0; 8])
            .expect("lookup works")
            .expect("the map has a value");
        u64::from_le_bytes(values[0][..8].try_into().expect("8 bytes"))
    }

    #[test]
    fn packets_too_short_for_a_read_are_passed_on_and_counted() {
        if !bpf_available() {
            return;
        }
        let source = Source::new("t.ns", SCRIPT);
        let compiled = crate::pipeline::compile(&source, &Default::default(), 0).expect("compiles");
        let object = crate::runtime::load(&compiled.object).expect("the verifier accepts it");
        let program = &compiled.script.programs[0].name;
        let run = |packet: &[u8]| object.run_on_packet(program, packet).expect("runs");

        let full = frame(5, 64);
        assert_eq!(run(&full), XDP_PASS as u64);
        assert_eq!(value(&object, &compiled, "@ttl"), 64);
        assert_eq!(value(&object, &compiled, "@dport"), 0x3412);
        assert_eq!(value(&object, &compiled, "@len"), 64);
        // IP options move the UDP header: ihl is read from the packet.
        assert_eq!(run(&frame(8, 64)), XDP_PASS as u64);
        assert_eq!(value(&object, &compiled, "@dport"), 0x3412);
        assert!(too_short_counts(&compiled, &object).unwrap().is_empty());

        // Too short for the TTL; then long enough for the TTL but not for
        // the port behind a 60-byte IP header.
        assert_eq!(run(&frame(5, 20)), XDP_PASS as u64);
        assert_eq!(run(&frame(15, 60)), XDP_PASS as u64);
        assert_eq!(value(&object, &compiled, "@ttl"), 64);
        assert_eq!(
            too_short_counts(&compiled, &object).unwrap(),
            vec![("xdp:lo".to_string(), 2)]
        );
    }
}
