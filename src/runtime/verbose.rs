//! `--verbose`: what each probe attached as and which path stages it
//! serves, and at exit how many times each program ran and its average
//! cost, from the kernel's BPF run statistics.

use super::LoadedObject;
use crate::pipeline::Compiled;
use crate::sema::tast::{Program, Stmt};

/// The `(path, stage)` indices a program records.
fn stages_in(body: &[Stmt], out: &mut Vec<(u32, u32)>) {
    for stmt in body {
        match stmt {
            Stmt::PathStage { path, stage, .. } => out.push((*path, *stage)),
            Stmt::If(_, then, otherwise) => {
                stages_in(then, out);
                stages_in(otherwise, out);
            }
            Stmt::While(_, body) => stages_in(body, out),
            _ => {}
        }
    }
}

/// A program as the verbose lines name it: its probe (the attach type
/// first: `kprobe:`, `tracepoint:`, ...) and the path stages it serves,
/// `tracepoint:net:netif_receive_skb (stages vm_tx.TUN_RX, vm_rx.PHY_RX)`.
fn label(compiled: &Compiled, program: &Program) -> String {
    let mut stages = Vec::new();
    stages_in(&program.body, &mut stages);
    let paths = &compiled.script.paths;
    let names: Vec<String> = stages
        .iter()
        .map(|&(path, stage)| {
            let path = &paths[path as usize];
            format!("{}.{}", path.name, path.stages[stage as usize].name)
        })
        .collect();
    match names.is_empty() {
        true => program.probe.display(),
        false => format!("{} (stages {})", program.probe.display(), names.join(", ")),
    }
}

/// One line per attached program, said once they are all attached.
pub fn attached(compiled: &Compiled, programs: &[&Program]) -> Vec<String> {
    programs
        .iter()
        .map(|p| format!("attached {}", label(compiled, p)))
        .collect()
}

/// One line per attached program, said at exit: how many times it ran
/// and its average run time.
pub fn runs(compiled: &Compiled, object: &LoadedObject, programs: &[&Program]) -> Vec<String> {
    let stats = object.program_stats();
    programs
        .iter()
        .map(|p| {
            let (time_ns, runs) = stats
                .iter()
                .find(|s| s.name == p.name)
                .map(|s| (s.run_time_ns, s.run_cnt))
                .unwrap_or_default();
            let each = time_ns.checked_div(runs).unwrap_or(0);
            format!(
                "{}: ran {} times, {} ns per run",
                label(compiled, p),
                runs,
                each
            )
        })
        .collect()
}
