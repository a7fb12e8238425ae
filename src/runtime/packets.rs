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
        let text = format!("{probe}: {n} packets too short for a read\n");
        let json = format!(
            "{{\"type\": \"packets_too_short\", \"data\": {{\"probe\": {}, \"packets\": {n}}}}}",
            crate::output::json::quote(&probe)
        );
        printer
            .report(&text, &json)
            .map_err(|e| Diagnostic::plain(format!("cannot write output: {}", e)))?;
    }
    Ok(())
}
