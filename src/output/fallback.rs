//! Output that survives a write error (a full disk, a closed pipe): the
//! first failure is said once on standard error, and everything after it,
//! the maps printed at exit included, goes to standard error instead of
//! being lost. The failure is kept for the exit status.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

/// A writer that falls back to standard error once its own fails.
pub struct Fallback {
    primary: Option<Box<dyn Write>>,
    failure: Rc<RefCell<Option<String>>>,
}

impl Fallback {
    /// `primary`, recording its failure in `failure` (shared by the writers
    /// of one printer, so that it is said once).
    pub fn new(primary: Box<dyn Write>, failure: Rc<RefCell<Option<String>>>) -> Fallback {
        Fallback {
            primary: Some(primary),
            failure,
        }
    }

    /// Gives up on the primary writer after `e`.
    fn failed(&mut self, e: io::Error) {
        self.primary = None;
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            eprintln!(
                "netscript: error: cannot write output: {e}; what follows goes to standard error"
            );
            *failure = Some(e.to_string());
        }
    }
}

impl Write for Fallback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(primary) = &mut self.primary {
            match primary.write(buf) {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => self.failed(e),
                result => return result,
            }
        }
        io::stderr().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(primary) = &mut self.primary {
            match primary.flush() {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => self.failed(e),
                result => return result,
            }
        }
        io::stderr().flush()
    }
}
