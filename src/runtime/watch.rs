//! What a run checks about once a second while it waits for events: the
//! events the ring buffer lost since they were last shown (`Lost N events`
//! as they happen, as bpftrace prints them, not only at exit), and XDP
//! programs whose interface was deleted under them.

use std::time::{Duration, Instant};

use super::LoadedObject;
use crate::bpf::AttachPoint;
use crate::diag::{Diagnostic, Result};
use crate::output::Printer;
use crate::pipeline::Compiled;
use crate::sema::tast::Program;

/// How often [`Watch::tick`] looks.
const PERIOD: Duration = Duration::from_secs(1);

/// The state of the checks of one run.
pub struct Watch {
    /// The BPF map counting lost events.
    lost_map: String,
    /// Lost events already shown.
    lost_shown: u64,
    /// The attached XDP programs whose interface is still there:
    /// `(probe, ifindex)`.
    xdp: Vec<(String, i32)>,
    /// Whether every attached program is an XDP program.
    only_xdp: bool,
    /// When to look next.
    next: Instant,
}

impl Watch {
    /// The checks for a run of `compiled` with `attached` attached.
    pub fn new(compiled: &Compiled, attached: &[&Program]) -> Watch {
        let xdp: Vec<(String, i32)> = attached
            .iter()
            .filter_map(|p| match p.probe.attach_point() {
                AttachPoint::Xdp { ifindex } => Some((p.probe.display(), ifindex)),
                _ => None,
            })
            .collect();
        Watch {
            lost_map: compiled.maps.specs[compiled.maps.lost as usize]
                .name
                .clone(),
            lost_shown: 0,
            only_xdp: !attached.is_empty() && xdp.len() == attached.len(),
            xdp,
            next: Instant::now() + PERIOD,
        }
    }

    /// At most once per [`PERIOD`]: shows the events lost since last shown
    /// and warns once for each XDP interface that is gone. True when
    /// nothing attached can run any more (every program was XDP on an
    /// interface now deleted): the run should end.
    pub fn tick(&mut self, object: &LoadedObject, printer: &mut Printer) -> Result<bool> {
        if Instant::now() < self.next {
            return Ok(false);
        }
        self.next = Instant::now() + PERIOD;
        self.show_lost(object, printer)?;
        self.xdp.retain(|(probe, ifindex)| {
            let present = interface_exists(*ifindex);
            if !present {
                eprintln!(
                    "netscript: warning: {probe}: the interface was deleted; its XDP program no longer runs"
                );
            }
            present
        });
        Ok(self.only_xdp && self.xdp.is_empty())
    }

    /// Shows the events lost since last shown, if any.
    pub fn show_lost(&mut self, object: &LoadedObject, printer: &mut Printer) -> Result<()> {
        let lost = object.percpu_counter(&self.lost_map, 0)?;
        if lost > self.lost_shown {
            printer
                .lost(lost - self.lost_shown)
                .map_err(|e| Diagnostic::plain(format!("cannot write output: {e}")))?;
            self.lost_shown = lost;
        }
        Ok(())
    }
}

/// Whether the interface with this index exists (in this network namespace).
fn interface_exists(ifindex: i32) -> bool {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has the IF_NAMESIZE bytes if_indextoname may write.
    !unsafe { libc::if_indextoname(ifindex as libc::c_uint, name.as_mut_ptr()) }.is_null()
}
