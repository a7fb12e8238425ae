//! The interactive REPL (`netscript` without a script, or `netscript
//! repl`): probe blocks are compiled and attached as they are entered,
//! maps stay live and shared between inputs, `:` commands inspect and
//! detach. See docs/repl.md.

mod complete;
pub mod session;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use crate::diag::{Diagnostic, Source};
use crate::listing;
use crate::output::{Format, Printer};
pub use complete::{field_candidates, probe_candidates, ReplHelper, COMMANDS};
pub use session::{Outcome, Session};

const HELP: &str = "\
Enter probe blocks to attach them, e.g.
    tracepoint:net:netif_receive_skb { @rx = count(); }
A block continues over several lines until its braces balance. Definitions
(param, fn, stage) are kept for later inputs; maps are shared by all probes.
Commands:
    :probes                 attached probes: id, attach point, hits
    :detach ID | all        detach probes
    :maps                   the session's maps
    :print @name            print a map
    :clear @name            empty a map (probes keep running)
    :watch [SECONDS] [@m..] print events and these maps every SECONDS until Ctrl-C
    :set format text|json   output format
    :load FILE.ns [--flags] attach a script's probes and paths with its parameters
    :stages [GLOB]          the stdlib stage catalogue
    :paths                  packet paths attached in this session
    :list PATTERN           list probes (tracepoint:net:*, kprobe:tcp_*)
    :args PROBE             a probe's arguments
    :help                   this text
    :quit, Ctrl-D           detach everything and leave
Ctrl-C clears the line or stops :watch.
";

/// Net brace depth of `text`, ignoring strings and comments.
pub fn brace_depth(text: &str) -> i64 {
    let mut depth = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '"' => {
                while let Some(s) = chars.next() {
                    match s {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for s in chars.by_ref() {
                    if s == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for s in chars.by_ref() {
                    if last == '*' && s == '/' {
                        break;
                    }
                    last = s;
                }
            }
            _ => {}
        }
    }
    depth
}

/// The history file: `$HOME/.netscript_history`.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".netscript_history"))
}

/// The REPL: reads inputs until Ctrl-D or `:quit`, then detaches
/// everything.
pub struct Repl {
    session: Session,
    format: Format,
    inputs: u32,
    interrupted: Arc<AtomicBool>,
}

/// Prints a diagnostic (with its source line and caret when it has one).
fn report(diag: &Diagnostic, source: Option<&Source>) {
    eprint!("{}", diag.render(source));
}

impl Repl {
    /// A REPL with an empty session, whose inputs' parameters may not
    /// take the flags `reserved` (netscript's own options).
    pub fn new(reserved: Vec<String>) -> Result<Repl, Diagnostic> {
        let interrupted = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&interrupted))
                .map_err(|e| Diagnostic::plain(format!("cannot handle signals: {e}")))?;
        }
        Ok(Repl {
            session: Session::new(reserved),
            format: Format::Text,
            inputs: 0,
            interrupted,
        })
    }

    fn printer(&self) -> Printer {
        Printer::new(self.format, Box::new(std::io::stdout()))
    }

    /// Runs the read-eval-print loop.
    pub fn run(&mut self) -> Result<(), Diagnostic> {
        let config = Config::builder().auto_add_history(false).build();
        let mut editor: Editor<ReplHelper, FileHistory> = Editor::with_config(config)
            .map_err(|e| Diagnostic::plain(format!("cannot start the line editor: {e}")))?;
        editor.set_helper(Some(ReplHelper::default()));
        let history = history_path();
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        println!("netscript REPL: enter probe blocks, :help for commands, Ctrl-D to leave");
        let mut pending = String::new();
        loop {
            if let Some(h) = editor.helper_mut() {
                h.pending = pending.clone();
                h.maps = self.session.maps().map(|m| m.name.clone()).collect();
            }
            let prompt = if pending.is_empty() { "ns> " } else { "... " };
            match editor.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                        if let Some(path) = &history {
                            let _ = editor.save_history(path);
                        }
                    }
                    self.drain();
                    if pending.is_empty() && line.trim_start().starts_with(':') {
                        if !self.command(line.trim()) {
                            break;
                        }
                        continue;
                    }
                    pending.push_str(&line);
                    pending.push('\n');
                    if brace_depth(&pending) > 0 {
                        continue;
                    }
                    let text = std::mem::take(&mut pending);
                    if !text.trim().is_empty() {
                        self.inputs += 1;
                        let name = format!("<input {}>", self.inputs);
                        self.submit(&name, &text, &[]);
                    }
                }
                Err(ReadlineError::Interrupted) => pending.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("netscript: cannot read input: {e}");
                    break;
                }
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        self.leave();
        Ok(())
    }

    /// Detaches everything (Ctrl-D, `:quit`).
    fn leave(&mut self) {
        let mut printer = self.printer();
        match self.session.detach_all(&mut printer) {
            Ok(ids) if !ids.is_empty() => println!("detached {} probe(s)", ids.len()),
            Ok(_) => {}
            Err(e) => report(&e, None),
        }
    }

    /// Prints what the probes sent since the last prompt.
    fn drain(&mut self) {
        let mut printer = self.printer();
        match self.session.drain(&mut printer) {
            Ok(exited) => {
                for id in exited {
                    println!("probe {id} called exit(): detached");
                }
            }
            Err(e) => report(&e, None),
        }
        let _ = printer.flush();
    }

    /// Compiles and attaches one input, reporting the outcome.
    fn submit(&mut self, name: &str, text: &str, args: &[String]) {
        match self.session.submit(name, text, args) {
            Ok(Outcome::Attached(id)) => {
                let probe = self.session.probes().iter().find(|p| p.id == id);
                let points = probe.map(|p| p.points.clone()).unwrap_or_default();
                println!("attached probe {id}: {}", points.join(", "));
            }
            Ok(Outcome::Defined(names)) => println!("defined {}", names.join(", ")),
            Ok(Outcome::Help(text)) => print!("{text}"),
            Err(failure) => report(&failure.0, failure.1.as_ref()),
        }
    }

    /// Runs one `:` command; false to leave.
    fn command(&mut self, line: &str) -> bool {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("");
        let args: Vec<String> = words.map(str::to_string).collect();
        let result = match name {
            ":help" | ":h" => {
                print!("{HELP}");
                Ok(())
            }
            ":quit" | ":q" | ":exit" => return false,
            ":probes" => {
                self.probes();
                Ok(())
            }
            ":detach" => self.detach(&args),
            ":maps" => self.session.map_lines().map(|lines| {
                lines.iter().for_each(|l| println!("{l}"));
            }),
            ":print" => self.each_map(&args, |s, m, p| s.print_map(m, p)),
            ":clear" => self.each_map(&args, |s, m, _| s.clear_map(m)),
            ":set" => self.set(&args),
            ":load" => self.load(&args),
            ":stages" => {
                let glob = args.first().map_or("*", String::as_str);
                self.list(&format!("stage:{glob}"), true)
            }
            ":paths" => {
                self.paths();
                Ok(())
            }
            ":list" => self.list(args.first().map_or("", String::as_str), false),
            ":args" => match args.first() {
                Some(probe) => self.list(probe, true),
                None => Err(Diagnostic::plain(
                    "usage: :args PROBE (e.g. :args kprobe:tcp_sendmsg)",
                )),
            },
            ":watch" => self.watch(&args),
            _ => Err(Diagnostic::plain(format!(
                "unknown command {name}: :help lists the commands"
            ))),
        };
        if let Err(e) = result {
            report(&e, None);
        }
        true
    }

    fn probes(&self) {
        println!(
            "{:<4} {:<8} {:<12} {:<18} ATTACHED TO",
            "ID", "HITS", "PROG IDS", "INPUT"
        );
        for p in self.session.probes() {
            let ids: Vec<String> = p.program_ids().iter().map(u32::to_string).collect();
            println!(
                "{:<4} {:<8} {:<12} {:<18} {}",
                p.id,
                p.hits(),
                ids.join(","),
                p.origin,
                p.points.join(", ")
            );
        }
    }

    fn detach(&mut self, args: &[String]) -> Result<(), Diagnostic> {
        let mut printer = self.printer();
        match args.first().map(String::as_str) {
            Some("all") => {
                let ids = self.session.detach_all(&mut printer)?;
                println!("detached {} probe(s)", ids.len());
                Ok(())
            }
            Some(id) => {
                let id: u32 = id.parse().map_err(|_| {
                    Diagnostic::plain(format!("'{id}' is not a probe id (see :probes)"))
                })?;
                if self.session.detach(id, &mut printer)? {
                    println!("detached probe {id}");
                    Ok(())
                } else {
                    Err(Diagnostic::plain(format!("no probe {id} (see :probes)")))
                }
            }
            None => Err(Diagnostic::plain("usage: :detach ID | all")),
        }
    }

    /// Runs `op` on every map named in `args`.
    fn each_map(
        &mut self,
        args: &[String],
        op: impl Fn(&Session, &str, &mut Printer) -> Result<(), Diagnostic>,
    ) -> Result<(), Diagnostic> {
        if args.is_empty() {
            return Err(Diagnostic::plain("name a map: @name (see :maps)"));
        }
        let mut printer = self.printer();
        for name in args {
            op(&self.session, name, &mut printer)?;
        }
        printer
            .flush()
            .map_err(|e| Diagnostic::plain(format!("cannot write output: {e}")))
    }

    fn set(&mut self, args: &[String]) -> Result<(), Diagnostic> {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        self.format = match words.as_slice() {
            ["format", "text"] => Format::Text,
            ["format", "json"] => Format::Json,
            _ => return Err(Diagnostic::plain("usage: :set format text|json")),
        };
        Ok(())
    }

    fn load(&mut self, args: &[String]) -> Result<(), Diagnostic> {
        let Some(file) = args.first() else {
            return Err(Diagnostic::plain("usage: :load FILE.ns [--flags]"));
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| Diagnostic::plain(format!("cannot read {file}: {e}")))?;
        self.submit(file, &text, &args[1..]);
        Ok(())
    }

    fn paths(&self) {
        for p in self.session.probes() {
            for name in p.path_names() {
                println!("{name}  (probe {}, {})", p.id, p.origin);
            }
        }
    }

    fn list(&self, pattern: &str, verbose: bool) -> Result<(), Diagnostic> {
        let mut out = std::io::stdout().lock();
        for line in listing::list(pattern, verbose)? {
            let _ = writeln!(out, "{line}");
        }
        Ok(())
    }

    /// `:watch [SECONDS] [@map...]`: prints events as they come and the
    /// maps every SECONDS until Ctrl-C.
    fn watch(&mut self, args: &[String]) -> Result<(), Diagnostic> {
        let (every, maps) = match args.first().map(|a| a.parse::<f64>()) {
            Some(Ok(s)) if s > 0.0 => (Duration::from_secs_f64(s), &args[1..]),
            Some(Ok(_)) => return Err(Diagnostic::plain("the interval must be positive")),
            _ => (Duration::from_secs(1), args),
        };
        self.interrupted.store(false, Ordering::Relaxed);
        let mut next = Instant::now() + every;
        while !self.interrupted.swap(false, Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            self.drain();
            if !maps.is_empty() && Instant::now() >= next {
                next += every;
                self.each_map(maps, |s, m, p| s.print_map(m, p))?;
            }
        }
        println!();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::brace_depth;

    #[test]
    fn braces_in_strings_and_comments_do_not_count() {
        assert_eq!(brace_depth("kprobe:f {"), 1);
        assert_eq!(brace_depth("kprobe:f { @x = 1; }"), 0);
        assert_eq!(brace_depth("kprobe:f { printf(\"{\\\"\"); // }\n"), 1);
        assert_eq!(brace_depth("kprobe:f { /* } */ }"), 0);
        assert_eq!(brace_depth("}"), -1);
    }
}
