//! Output: the values a script produces (map contents, printf lines) and
//! their rendering in bpftrace's text format or as JSON lines.

pub mod anonymize;
pub mod buckets;
pub mod fallback;
pub mod json;
pub mod latency;
pub mod model;
pub mod order;
pub mod printf;
pub mod prometheus;
pub mod report;
pub mod table;
pub mod text;

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use crate::diag::Diagnostic;
use model::MapDump;
use text::MapShape;

/// The output format (`-f text` / `-f json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// bpftrace's human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// The sink the runtime writes script output to, in bpftrace's format.
pub struct Printer {
    format: Format,
    out: fallback::Fallback,
    console: fallback::Fallback,
    /// The first write error, after which output went to stderr.
    failure: Rc<RefCell<Option<String>>>,
    /// Keeps what is printed for `--report`.
    recorder: Option<report::Recorder>,
}

impl Printer {
    /// A printer writing to `out`, with the blank lines before the exit
    /// dump on stdout, as in bpftrace (`-o FILE` puts them in the file
    /// too: [`Printer::with_console`]).
    pub fn new(format: Format, out: Box<dyn Write>) -> Printer {
        Printer::with_console(format, out, Box::new(io::stdout()))
    }

    /// A printer writing to `out`, with the exit-dump separator written to
    /// `console` instead of stdout.
    pub fn with_console(format: Format, out: Box<dyn Write>, console: Box<dyn Write>) -> Printer {
        let failure = Rc::new(RefCell::new(None));
        Printer {
            format,
            out: fallback::Fallback::new(out, Rc::clone(&failure)),
            console: fallback::Fallback::new(console, Rc::clone(&failure)),
            failure,
            recorder: None,
        }
    }

    /// Gives what is printed from now on, as data, to `recorder` too.
    pub fn record_to(&mut self, recorder: report::Recorder) {
        self.recorder = Some(recorder);
    }

    /// The recorder given by [`Printer::record_to`], with what it kept.
    pub fn take_recorder(&mut self) -> Option<report::Recorder> {
        self.recorder.take()
    }

    /// The write error output met, if any (what followed went to stderr).
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Prints a map (`print(@x)`, or one map of the exit dump).
    pub fn map(&mut self, dump: &MapDump) -> io::Result<()> {
        self.map_shaped(dump, MapShape::of_dump(dump))
    }

    /// Prints a map whose layout is given by the caller (for empty maps:
    /// bpftrace prints an empty avg/stats map as two newlines).
    pub fn map_shaped(&mut self, dump: &MapDump, shape: MapShape) -> io::Result<()> {
        self.keep(report::Record::Map(dump));
        let rendered = match self.format {
            Format::Json => json::map_json(dump),
            Format::Text => text::map_text_shaped(dump, shape),
        };
        self.out.write_all(rendered.as_bytes())
    }

    /// Gives `record` to the recorder of `--report`, if there is one.
    fn keep(&mut self, record: report::Record) {
        if let Some(recorder) = &mut self.recorder {
            recorder.record(record);
        }
    }

    /// Prints maps (each with its shape) as one table (`table(@a, @b)`;
    /// maps with keys when `keyed`); in JSON, each map as
    /// [`Printer::map_shaped`] would.
    pub fn table(&mut self, maps: &[(MapDump, MapShape)], keyed: bool) -> io::Result<()> {
        match self.format {
            Format::Text => {
                for (d, _) in maps {
                    self.keep(report::Record::Map(d));
                }
                self.out
                    .write_all(table::table_text(maps, keyed).as_bytes())
            }
            Format::Json => maps.iter().try_for_each(|(d, s)| self.map_shaped(d, *s)),
        }
    }

    /// Prints a report that has a text form and a JSON form (one line,
    /// without the newline), building only the form the output format
    /// prints, and gives what `--report`'s page shows of it (`record`) to
    /// the recorder. The line goes out in one write with its newline, so
    /// output another process writes to the same file (the command of
    /// `-c`) never lands inside it.
    pub fn report(
        &mut self,
        text: impl FnOnce() -> String,
        json: impl FnOnce() -> String,
        record: Option<report::Record>,
    ) -> io::Result<()> {
        if let Some(record) = record {
            self.keep(record);
        }
        match self.format {
            Format::Text => self.out.write_all(text().as_bytes()),
            Format::Json => {
                let mut line = json();
                line.push('\n');
                self.out.write_all(line.as_bytes())
            }
        }
    }

    /// Prints the output of one `printf()` call (already formatted).
    pub fn printf(&mut self, formatted: &str) -> io::Result<()> {
        match self.format {
            Format::Text => self.out.write_all(formatted.as_bytes()),
            Format::Json => self.out.write_all(json::printf_json(formatted).as_bytes()),
        }
    }

    /// Prints `Attaching N probes...` (`probe...` for one).
    pub fn attached(&mut self, probes: u64) -> io::Result<()> {
        let line = match self.format {
            Format::Text if probes == 1 => "Attaching 1 probe...\n".to_string(),
            Format::Text => format!("Attaching {probes} probes...\n"),
            Format::Json => json::attached_probes_json(probes),
        };
        self.out.write_all(line.as_bytes())
    }

    /// Reports events lost by the ring buffer: `Lost N events`.
    pub fn lost(&mut self, events: u64) -> io::Result<()> {
        let line = match self.format {
            Format::Text => format!("Lost {events} events\n"),
            Format::Json => json::lost_events_json(events),
        };
        self.out.write_all(line.as_bytes())
    }

    /// The exit dump: two newlines on the console, then every map ordered
    /// by name (each given with its shape, see [`Printer::map_shaped`]).
    pub fn exit_maps(&mut self, mut maps: Vec<(MapDump, MapShape)>) -> io::Result<()> {
        self.out.flush()?;
        self.console.write_all(b"\n\n")?;
        self.console.flush()?;
        maps.sort_by(|a, b| order::exit_order(&a.0, &b.0));
        for (dump, shape) in &maps {
            self.map_shaped(dump, *shape)?;
        }
        self.flush()
    }

    /// Flushes everything written so far.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.console.flush()
    }
}

/// The counters of a packet path, in the order its counters line gives
/// them (`started N, completed N, ...`; JSON `"type": "stats"`).
pub const PATH_COUNTERS: [&str; 8] = [
    "started",
    "completed",
    "incomplete",
    "evicted",
    "replaced",
    "filtered",
    "suppressed",
    "lost",
];

/// Creates (or truncates) an output file (`-o`, `--report`, `--pcap`):
/// mode 0644 at most whatever the umask, and never through a symbolic
/// link (which could point anywhere a root process may write). Errors
/// read `cannot create {what}{path}: why`.
pub fn create_file(path: &std::path::Path, what: &str) -> Result<std::fs::File, Diagnostic> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::ELOOP) => {
                    "it is a symbolic link; give the file it points to".to_string()
                }
                _ => e.to_string(),
            };
            Diagnostic::plain(format!("cannot create {what}{}: {why}", path.display()))
        })
}

/// Local date and time (`2025-01-15`, `10:30:45.123`) of `unix_ns`,
/// nanoseconds since the Unix epoch (seconds since it, when the C library
/// cannot say).
pub fn local_time(unix_ns: u64) -> (String, String) {
    let secs = (unix_ns / 1_000_000_000) as libc::time_t;
    // SAFETY: localtime_r writes only into tm, which lives on this stack.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    let millis = unix_ns / 1_000_000 % 1000;
    if !ok {
        return (String::new(), format!("{}.{:03}", secs, millis));
    }
    (
        format!(
            "{:04}-{:02}-{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday
        ),
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            tm.tm_hour, tm.tm_min, tm.tm_sec, millis
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// What a printer wrote, one element per write call.
    #[derive(Clone, Default)]
    struct Capture(Rc<RefCell<Vec<Vec<u8>>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn printed(format: Format, action: impl Fn(&mut Printer) -> io::Result<()>) -> String {
        let capture = Capture::default();
        let mut printer =
            Printer::with_console(format, Box::new(capture.clone()), Box::new(capture.clone()));
        action(&mut printer).expect("write");
        let bytes = capture.0.borrow().concat();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_json_report_is_one_write_with_its_newline() {
        let capture = Capture::default();
        let mut printer = Printer::with_console(
            Format::Json,
            Box::new(capture.clone()),
            Box::new(capture.clone()),
        );
        let line = format!("{{\"type\": \"path\", \"data\": \"{}\"}}", "x".repeat(3000));
        printer
            .report(|| "unused".into(), || line.clone(), None)
            .expect("write");
        assert_eq!(*capture.0.borrow(), vec![format!("{line}\n").into_bytes()]);
    }

    #[test]
    fn the_report_is_given_what_is_printed_in_text_too() {
        let outline = report::PathOutline {
            name: "p".into(),
            title: "P".into(),
            stages: vec!["A".into(), "B".into()],
        };
        let recorder = report::Recorder::new("x.ns", "now".into(), vec![outline]);
        let mut printer = Printer::with_console(
            Format::Text,
            Box::new(Capture::default()),
            Box::new(Capture::default()),
        );
        printer.record_to(recorder);
        let mut buckets = vec![0; 8];
        buckets[5] = 3;
        let hist = MapDump::new("@lat", vec![(vec![], model::Aggregate::Hist(buckets))]);
        printer.map(&hist).expect("write");
        let segments = [report::Segment {
            from: 0,
            to: 1,
            ns: 700,
        }];
        let packet = report::Record::Packet {
            path: "p",
            segments: &segments,
            total_ns: 700,
        };
        printer
            .report(|| "text".into(), || "{}".into(), Some(packet))
            .expect("write");
        let html = printer.take_recorder().expect("the recorder").html();
        for needle in ["<h3>@lat</h3>", "A -&gt; B", "total</td><td>1</td>"] {
            assert!(html.contains(needle), "{needle} in {html}");
        }
        assert!(
            !html.contains("Nothing was printed for this path"),
            "{html}"
        );
    }

    #[test]
    fn attached_and_lost_lines() {
        assert_eq!(
            printed(Format::Text, |p| p.attached(3)),
            "Attaching 3 probes...\n"
        );
        assert_eq!(printed(Format::Text, |p| p.lost(2)), "Lost 2 events\n");
        assert_eq!(
            printed(Format::Json, |p| p.lost(2)),
            "{\"type\": \"lost_events\", \"data\": {\"events\": 2}}\n"
        );
    }

    #[test]
    fn empty_map_prints_nothing_in_json() {
        let empty = MapDump {
            name: "@e".into(),
            entries: vec![],
        };
        assert_eq!(printed(Format::Json, |p| p.map(&empty)), "");
        assert_eq!(printed(Format::Text, |p| p.map(&empty)), "\n");
    }
}
