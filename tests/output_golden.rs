//! Golden tests: our renderer against real bpftrace 0.17 output stored in
//! tests/fixtures/output (re-captured by tests/fixtures/output/regen.sh).
//! Each test rebuilds, by hand, the map contents and printf calls of the
//! matching `.bt` script and compares the whole stdout byte for byte.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use netscript::format::printf::parse_format;
use netscript::output::model::{Aggregate, MapDump, Value};
use netscript::output::printf::format;
use netscript::output::text::MapShape;
use netscript::output::{Format, Printer};

/// A `Write` that appends to a buffer shared by the printer's two outputs.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Something a script does before exiting.
enum Event {
    Print(MapDump),
    Printf(&'static str, Vec<Value>),
}

fn int(v: i64) -> Value {
    Value::Int(v)
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

fn dump(name: &str, entries: Vec<(Vec<Value>, Aggregate)>) -> MapDump {
    MapDump {
        name: name.to_string(),
        entries,
    }
}

/// A map as it reaches the exit dump, its shape taken from its entries.
fn shaped(dump: MapDump) -> (MapDump, MapShape) {
    let shape = MapShape::of_dump(&dump);
    (dump, shape)
}

/// The 65 log2 buckets bpftrace keeps for `hist()` of `values`.
fn hist(values: &[i64]) -> Aggregate {
    let mut buckets = vec![0u64; 65];
    for v in values {
        let index = match *v {
            v if v < 0 => 0,
            0 => 1,
            v => 2 + v.ilog2() as usize,
        };
        buckets[index] += 1;
    }
    Aggregate::Hist(buckets)
}

/// The buckets of `lhist(value, min, max, step)` over `values`.
fn lhist(values: &[i64], min: i64, max: i64, step: i64) -> Aggregate {
    let n = ((max - min) / step) as usize;
    let mut buckets = vec![0u64; n + 2];
    for v in values {
        let index = if *v < min {
            0
        } else if *v >= max {
            n + 1
        } else {
            ((v - min) / step) as usize + 1
        };
        buckets[index] += 1;
    }
    Aggregate::Lhist {
        min,
        max,
        step,
        buckets,
    }
}

fn stats(values: &[i64]) -> Aggregate {
    let total: i64 = values.iter().sum();
    let count = values.len() as u64;
    Aggregate::Stats {
        count,
        avg: total / count as i64,
        total,
    }
}

/// Replays a script run through a `Printer` and returns what it printed.
fn run(format_kind: Format, events: &[Event], exit_maps: &[(MapDump, MapShape)]) -> String {
    let buffer = Shared::default();
    let mut printer = Printer::with_console(
        format_kind,
        Box::new(buffer.clone()),
        Box::new(buffer.clone()),
    );
    printer.attached(1).expect("write");
    for event in events {
        match event {
            Event::Print(dump) => printer.map(dump).expect("write"),
            Event::Printf(fmt, args) => {
                let pieces = parse_format(fmt).expect("format accepted");
                printer.printf(&format(&pieces, args)).expect("write");
            }
        }
    }
    printer.exit_maps(exit_maps.to_vec()).expect("write");
    let bytes = buffer.0.borrow().clone();
    String::from_utf8(bytes).expect("utf-8 output")
}

/// Compares both formats of `case` with the stored bpftrace output.
fn check(case: &str, events: &[Event], exit_maps: Vec<(MapDump, MapShape)>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/output");
    for (format_kind, ext) in [(Format::Text, "txt"), (Format::Json, "json")] {
        let path = format!("{dir}/{case}.{ext}");
        let expected = std::fs::read_to_string(&path).expect("fixture exists");
        let actual = run(format_kind, events, &exit_maps);
        assert_eq!(actual, expected, "{path}");
    }
}

#[test]
fn count_with_int_keys() {
    let c = dump(
        "@c",
        vec![
            (vec![int(-4)], Aggregate::Count(4)),
            (vec![int(1)], Aggregate::Count(1)),
            (vec![int(3)], Aggregate::Count(2)),
            (vec![int(2)], Aggregate::Count(3)),
        ],
    );
    check("count_int", &[], vec![shaped(c)]);
}

#[test]
fn count_with_string_keys() {
    let c = dump(
        "@c",
        vec![
            (vec![s("sshd")], Aggregate::Count(2)),
            (vec![s("a b")], Aggregate::Count(3)),
            (vec![s("abc")], Aggregate::Count(1)),
        ],
    );
    check("count_str", &[], vec![shaped(c)]);
}

#[test]
fn multi_key_maps() {
    let m = dump(
        "@m",
        vec![
            (vec![int(2), s("bar")], Aggregate::Count(2)),
            (vec![int(1), s("foo")], Aggregate::Count(1)),
        ],
    );
    let strings = dump(
        "@s",
        vec![
            (vec![int(2), s("x")], Aggregate::Scalar(s("v1"))),
            (vec![int(1), s("y")], Aggregate::Scalar(s("v2"))),
            (vec![int(1), s("b")], Aggregate::Scalar(s("v3"))),
        ],
    );
    check("multikey", &[], vec![shaped(strings), shaped(m)]);
}

#[test]
fn sum_min_max_avg_with_negatives() {
    let maps = vec![
        dump("@sum", vec![(vec![], Aggregate::Sum(-3))]),
        dump(
            "@sk",
            vec![
                (vec![int(2)], Aggregate::Sum(7)),
                (vec![int(3)], Aggregate::Sum(0)),
                (vec![int(1)], Aggregate::Sum(-10)),
            ],
        ),
        dump("@mn", vec![(vec![], Aggregate::Min(4))]),
        dump(
            "@mnk",
            vec![
                (vec![s("b")], Aggregate::Min(3)),
                (vec![s("a")], Aggregate::Min(-6)),
            ],
        ),
        dump("@mx", vec![(vec![], Aggregate::Max(11))]),
        dump(
            "@mxk",
            vec![
                (vec![int(7)], Aggregate::Max(2)),
                (vec![int(8)], Aggregate::Max(1)),
            ],
        ),
        dump("@avg", vec![(vec![], Aggregate::Avg(-2))]),
        dump(
            "@avgk",
            vec![
                (vec![s("a")], Aggregate::Avg(10)),
                (vec![s("b")], Aggregate::Avg(-4)),
            ],
        ),
    ];
    check("aggs", &[], maps.into_iter().map(shaped).collect());
}

#[test]
fn stats_maps() {
    let maps = vec![
        dump("@s", vec![(vec![], stats(&[3, 5]))]),
        dump(
            "@sk",
            vec![
                (vec![s("x")], stats(&[10])),
                (vec![s("y")], stats(&[-2, -3])),
            ],
        ),
    ];
    check("stats", &[], maps.into_iter().map(shaped).collect());
}

#[test]
fn hist_with_zero_negative_and_large_values() {
    let mut big = vec![0u64; 65];
    // bpftrace 0.17 puts both 2^40 and 3e9 in the [2G, 4G) bucket.
    big[33] = 2;
    let maps = vec![
        dump(
            "@h",
            vec![(vec![], hist(&[5, 0, -1, 1_000_000, 1_000_000]))],
        ),
        dump("@big", vec![(vec![], Aggregate::Hist(big))]),
        dump(
            "@hk",
            vec![(vec![int(1)], hist(&[2, 3])), (vec![int(2)], hist(&[700]))],
        ),
        dump(
            "@ht",
            vec![(vec![int(1)], hist(&[1])), (vec![int(256)], hist(&[1]))],
        ),
    ];
    check("hist", &[], maps.into_iter().map(shaped).collect());
}

#[test]
fn lhist_below_within_and_above() {
    let maps = vec![
        dump(
            "@l",
            vec![(vec![], lhist(&[5, 55, 55, -5, 500], 0, 100, 10))],
        ),
        dump("@in", vec![(vec![], lhist(&[35, 72], 0, 100, 10))]),
        dump("@k", vec![(vec![], lhist(&[5000, 1024], 0, 8192, 1024))]),
        dump("@n", vec![(vec![], lhist(&[15, 42], 10, 50, 10))]),
        dump(
            "@lk",
            vec![
                (vec![s("b")], lhist(&[3, 30], 0, 10, 2)),
                (vec![s("a")], lhist(&[1], 0, 10, 2)),
            ],
        ),
    ];
    check("lhist", &[], maps.into_iter().map(shaped).collect());
}

#[test]
fn scalars_strings_and_tuples() {
    let maps = vec![
        dump("@x", vec![(vec![], Aggregate::Scalar(int(5)))]),
        dump("@neg", vec![(vec![], Aggregate::Scalar(int(-3)))]),
        dump("@str", vec![(vec![], Aggregate::Scalar(s("hi")))]),
        dump(
            "@t",
            vec![(
                vec![],
                Aggregate::Scalar(Value::Tuple(vec![int(1), s("abc")])),
            )],
        ),
        dump(
            "@sv",
            vec![
                (vec![int(-1)], Aggregate::Scalar(s("n"))),
                (vec![int(3)], Aggregate::Scalar(s("c"))),
                (vec![int(1)], Aggregate::Scalar(s("a"))),
            ],
        ),
        dump(
            "@iv",
            vec![
                (vec![int(-3)], Aggregate::Scalar(int(3))),
                (vec![int(5)], Aggregate::Scalar(int(-2))),
                (vec![int(-1)], Aggregate::Scalar(int(1))),
            ],
        ),
        dump(
            "@tk",
            vec![(
                vec![s("k")],
                Aggregate::Scalar(Value::Tuple(vec![int(-2), s("q")])),
            )],
        ),
    ];
    check("scalars", &[], maps.into_iter().map(shaped).collect());
}

#[test]
fn empty_maps_and_zero_key_map() {
    let maps = vec![
        (dump("@e", vec![]), MapShape::Plain),
        (dump("@h", vec![]), MapShape::Histogram),
        (dump("@s", vec![]), MapShape::Stats),
        shaped(dump("@z", vec![(vec![], Aggregate::Scalar(int(1)))])),
    ];
    check("empty", &[], maps);
}

#[test]
fn printf_conversions_and_widths() {
    let minus_one = || int(-1);
    let events = vec![
        Event::Printf("100%%\n", vec![]),
        Event::Printf("%d%%|%%%d\n", vec![int(5), int(6)]),
        Event::Printf(
            "[%5d][%-5d][%05d][%x][%X][%lx][%d][%d][%u][%lu][%ld][%lld][%llu]\n",
            vec![
                int(42),
                int(42),
                int(42),
                int(255),
                int(255),
                minus_one(),
                minus_one(),
                int(4294967301),
                minus_one(),
                minus_one(),
                minus_one(),
                minus_one(),
                minus_one(),
            ],
        ),
        Event::Printf(
            "[%s][%10s][%-10s][%.2s][%c][%p][%p][%hhd][%hd][%o][%.3d][%8.3x]\n",
            vec![
                s("abc"),
                s("abc"),
                s("abc"),
                s("abc"),
                int(65),
                int(0),
                int(4096),
                int(300),
                int(70000),
                int(8),
                int(7),
                int(255),
            ],
        ),
        Event::Printf("q\"b\\s\tt\u{1}e\n", vec![]),
        Event::Printf("no newline", vec![]),
        Event::Printf("\n", vec![]),
    ];
    check("printf", &events, vec![]);
}

#[test]
fn print_in_probe_then_exit() {
    let c = dump(
        "@c",
        vec![
            (vec![int(2)], Aggregate::Count(2)),
            (vec![int(1)], Aggregate::Count(1)),
        ],
    );
    let h = dump("@h", vec![(vec![], hist(&[4]))]);
    let st = dump("@s", vec![(vec![], stats(&[2]))]);
    let events = vec![
        Event::Print(c.clone()),
        Event::Print(h.clone()),
        Event::Print(st.clone()),
        Event::Printf("after\n", vec![]),
    ];
    check(
        "print_in_probe",
        &events,
        vec![shaped(st), shaped(c), shaped(h)],
    );
}

#[test]
fn stacks_symbols_and_addresses() {
    let frames = || {
        Value::Stack(vec![
            "perf_syscall_enter+397".into(),
            "syscall_trace_enter+384".into(),
        ])
    };
    let localhost = || Value::Addr(std::net::IpAddr::from([127, 0, 0, 1]));
    let maps = vec![
        dump("@k", vec![(vec![frames()], Aggregate::Count(1))]),
        dump("@v", vec![(vec![int(1)], Aggregate::Scalar(frames()))]),
        dump("@a", vec![(vec![], Aggregate::Scalar(localhost()))]),
        dump(
            "@t",
            vec![(
                vec![],
                Aggregate::Scalar(Value::Tuple(vec![int(1), localhost()])),
            )],
        ),
        dump(
            "@s",
            vec![(vec![], Aggregate::Scalar(Value::Sym("vfs_read".into())))],
        ),
    ];
    check("symbols", &[], maps.into_iter().map(shaped).collect());
}
