//! The stacks the compiler runs on. Parsing, semantic analysis, lowering
//! and code generation recurse once per level of the script's nesting, so
//! they run on threads whose stacks are sized for the deepest script the
//! nesting limits accept (`syntax::MAX_NESTING`, `syntax::MAX_DEPTH`),
//! whatever the caller's stack (2 MiB for a test thread, 8 MiB for the
//! main thread). Only the pages used are ever touched.

use crate::diag::{Diagnostic, Result};

/// The parser's stack. The AST builder takes up to ~25 KiB a level of
/// `syntax::MAX_NESTING` in a debug build, ~2 MiB in all; the parser
/// itself stops with "nested too deeply" when the stack runs short, so
/// hostile nesting costs no more than this.
pub const PARSE_STACK_BYTES: usize = 16 << 20;

/// The stack of semantic analysis, lowering and code generation. The
/// deepest accepted script needs about 60 MiB in a debug build (frames of
/// up to ~15 KiB a level for `syntax::MAX_DEPTH` levels) and a fifth of
/// that optimised.
pub const COMPILE_STACK_BYTES: usize = 256 << 20;

/// Runs `work` on a thread of its own with a stack of `bytes` and returns
/// its result; a panic in `work` is resumed on the caller's thread.
pub fn on_stack<T: Send>(bytes: usize, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("compile".to_string())
            .stack_size(bytes)
            .spawn_scoped(scope, work)
            .map_err(|e| Diagnostic::plain(format!("cannot start the compiler's thread: {e}")))?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
