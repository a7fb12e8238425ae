//! The compiler pipeline from source text to a BPF object:
//! parse -> check -> lower -> generate code -> write the ELF object.
//! Its stages know nothing of the running kernel's features: the driver
//! (`src/driver.rs`) runs them with the fallbacks those call for.

use crate::codegen::{self, ProgramCode};
use crate::diag::{Diagnostic, Result, Source};
use crate::ir::{self, layout::MapTable, lower};
use crate::object::{self, ProgramSection};
use crate::sema::{self, tast::Script};
use crate::stack::{on_stack, COMPILE_STACK_BYTES};
use crate::syntax::{self, ast};

/// Everything the compiler produced for one script.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The parsed script.
    pub ast: ast::Program,
    /// The checked script (maps, printf formats, programs with probe points).
    pub script: Script,
    /// The BPF maps, user maps first.
    pub maps: MapTable,
    /// IR of each program, in `script.programs` order.
    pub ir: Vec<ir::Function>,
    /// BPF code of each program, in `script.programs` order.
    pub code: Vec<ProgramCode>,
    /// The ELF object.
    pub object: Vec<u8>,
}

/// The largest program the kernel loads (`BPF_COMPLEXITY_LIMIT_INSNS`):
/// a larger one is refused before code generation spends time on it.
const MAX_PROGRAM_INSTS: usize = 1_000_000;

/// Compiles a script. `start_ns` is the monotonic clock at start-up
/// (`elapsed` counts from it). Runs on stacks of its own (see
/// [`crate::stack`]). The command line and the REPL compile through the
/// driver, which adds the kernel's fallbacks.
pub fn compile(source: &Source, options: &sema::Options, start_ns: u64) -> Result<Compiled> {
    let ast = syntax::parse_source(source)?;
    on_stack(COMPILE_STACK_BYTES, || {
        let script = sema::check(&ast, options)?;
        let lowered = lower(&script, start_ns)?;
        generate(ast, script, lowered)
    })
}

/// A checked script lowered to IR.
pub struct Lowered {
    /// The BPF maps, user maps first.
    pub maps: MapTable,
    /// IR of each program, in `script.programs` order.
    pub ir: Vec<ir::Function>,
}

/// Lowers a checked script to IR (on a stack of [`COMPILE_STACK_BYTES`]).
pub fn lower(script: &Script, start_ns: u64) -> Result<Lowered> {
    let maps = MapTable::new(script);
    let ir = lower::lower(script, &maps, start_ns)?;
    Ok(Lowered { maps, ir })
}

/// Generates the BPF code of each program and the ELF object (on a stack
/// of [`COMPILE_STACK_BYTES`]).
pub fn generate(ast: ast::Program, script: Script, lowered: Lowered) -> Result<Compiled> {
    let Lowered { maps, ir } = lowered;
    let mut code = Vec::with_capacity(ir.len());
    for (f, prog) in ir.iter().zip(&script.programs) {
        if f.insts.len() > MAX_PROGRAM_INSTS {
            return Err(Diagnostic::at(
                prog.span,
                format!(
                    "{}: compiles to {} instructions; the kernel takes at most {} in one \
                     program: split the probe's work across probes",
                    prog.probe.display(),
                    f.insts.len(),
                    MAX_PROGRAM_INSTS
                ),
            ));
        }
        if f.maps_used() > crate::ir::MAX_MAPS_PER_PROGRAM {
            return Err(Diagnostic::at(
                prog.span,
                format!(
                    "{}: uses {} maps (netscript's own included); the kernel allows at most {} \
                     in one program: split the probe's work across probes",
                    prog.probe.display(),
                    f.maps_used(),
                    crate::ir::MAX_MAPS_PER_PROGRAM
                ),
            ));
        }
        let c = codegen::generate(f).map_err(|e| {
            Diagnostic::at(
                prog.span,
                format!("{}: {}", prog.probe.display(), e.message),
            )
        })?;
        code.push(c);
    }
    let sections: Vec<ProgramSection> = code
        .iter()
        .zip(&script.programs)
        .map(|(c, p)| ProgramSection {
            section: p.probe.section(),
            code: c.clone(),
        })
        .collect();
    let object = object::write_object(&sections, &maps.specs)?;
    Ok(Compiled {
        ast,
        script,
        maps,
        ir,
        code,
        object,
    })
}
