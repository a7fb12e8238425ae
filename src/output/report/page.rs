//! The report page: a section per path (its stages, counters, segment
//! percentiles as a table and as stacked bars, total latency over time,
//! the segment histograms), then the script's own histograms.

use std::fmt::Write;

use super::svg::{self, duration, escape};
use super::{merged, quantile, Bucket, PathData, PathOutline};

/// What the page is drawn from.
pub(super) struct Run<'a> {
    pub script: &'a str,
    pub started_at: &'a str,
    pub duration: f64,
    pub paths: Vec<(&'a PathOutline, Option<&'a PathData>)>,
    pub hists: &'a [(String, Vec<Bucket>)],
}

/// The quantiles of the table and the bars.
const QUANTILES: [(&str, f64); 3] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)];

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1000px}\
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}\
h3{font-size:1em;margin-top:1.5em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}\
td.name,th.name{text-align:left}.stages{font-family:monospace}\
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em}\
svg text.label{font-size:13px}svg text.small{font-size:11px}";

/// The whole page.
pub(super) fn render(run: &Run) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>netscript report: {script}</title>\
         <style>{STYLE}</style></head><body>\n<h1>netscript: {script}</h1>\n\
         <p>Started {started}, ran {secs:.1} s.</p>\n",
        script = escape(run.script),
        started = escape(run.started_at),
        secs = run.duration,
    );
    for (outline, data) in &run.paths {
        path_section(&mut html, outline, *data, run.duration);
    }
    if !run.hists.is_empty() {
        html.push_str("<h2>Histograms</h2>\n");
        for (i, (name, buckets)) in run.hists.iter().enumerate() {
            let _ = writeln!(html, "<h3>{}</h3>", escape(name));
            html.push_str(&svg::histogram(buckets, svg::color(i)));
        }
    }
    html + "\n</body></html>\n"
}

/// One path's section.
fn path_section(html: &mut String, outline: &PathOutline, data: Option<&PathData>, secs: f64) {
    let _ = write!(
        html,
        "<h2>{} <small>({})</small></h2>\n<p class=\"stages\">{}</p>\n",
        escape(&outline.title),
        escape(&outline.name),
        outline
            .stages
            .iter()
            .map(|s| escape(s))
            .collect::<Vec<_>>()
            .join(" &rarr; ")
    );
    let Some(data) = data else {
        html.push_str("<p>Nothing was printed for this path.</p>\n");
        return;
    };
    if !data.counters.is_empty() {
        html.push_str("<table><tr>");
        for (name, _) in &data.counters {
            let _ = write!(html, "<th>{}</th>", escape(name));
        }
        html.push_str("</tr><tr>");
        for (_, value) in &data.counters {
            let _ = write!(html, "<td>{value}</td>");
        }
        html.push_str("</tr></table>\n");
    }
    let samples = in_stage_order(data.samples(), &outline.stages);
    if samples.is_empty() {
        html.push_str("<p>No packet completed this path.</p>\n");
        return;
    }
    let _ = write!(
        html,
        "<h3>Latency per segment ({})</h3>\n<table><tr><th class=\"name\">segment</th><th>packets</th>",
        match data.reported() {
            true => "from every packet reported",
            false => "from the kernel's histograms, bucket midpoints",
        }
    );
    for (q, _) in QUANTILES {
        let _ = write!(html, "<th>{q}</th>");
    }
    html.push_str("<th>max</th></tr>\n");
    for (i, (name, s)) in samples.iter().enumerate() {
        let count: u64 = s.iter().map(|x| x.2).sum();
        let _ = write!(
            html,
            "<tr><td class=\"name\"><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{count}</td>",
            svg::color(i),
            escape(name)
        );
        for (_, q) in QUANTILES {
            let _ = write!(
                html,
                "<td>{}</td>",
                quantile(s, q).map_or("-".into(), duration)
            );
        }
        let max = s.iter().map(|x| x.1).max().unwrap_or(0);
        let _ = writeln!(html, "<td>{}</td></tr>", duration(max));
    }
    html.push_str("</table>\n");
    // The bars stack the segments most packets took: a segment only the
    // first packet of a flow takes (an upcall) would stand for all of them.
    let count = |s: &[super::Sample]| s.iter().map(|x| x.2).sum::<u64>();
    let most = samples.iter().map(|(_, s)| count(s)).max().unwrap_or(0);
    let parts = |q: f64| -> Vec<svg::BarPart> {
        samples
            .iter()
            .enumerate()
            .filter(|(_, (name, s))| !name.ends_with("total") && 2 * count(s) >= most)
            .filter_map(|(i, (name, s))| Some((i, name.to_string(), quantile(s, q)?)))
            .collect()
    };
    let rows: Vec<svg::Bar> = QUANTILES
        .iter()
        .map(|(label, q)| (label.to_string(), parts(*q)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if !rows.is_empty() {
        html.push_str(
            "<h3>Where the time goes: each segment's percentile, end to end</h3>\n\
             <p>The segments at least half of the packets took, in path order.</p>\n",
        );
        html.push_str(&svg::stacked_bars(&rows));
    }
    let totals: Vec<_> = samples
        .iter()
        .filter(|(name, _)| name.ends_with("total"))
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    if !totals.is_empty() {
        html.push_str("<h3>Total latency over time</h3>\n");
        html.push_str(&svg::heat_map(&totals, secs));
    }
    html.push_str("<h3>Histograms</h3>\n");
    for (i, (name, s)) in samples.iter().enumerate() {
        let kept = data
            .segments
            .iter()
            .find(|seg| seg.name == *name)
            .map(|seg| merged(&seg.buckets))
            .unwrap_or_default();
        let buckets: Vec<Bucket> = match kept.is_empty() {
            true => svg::log2_buckets(s),
            false => kept.into_iter().filter(|b| b.count > 0).collect(),
        };
        let _ = writeln!(html, "<h3>{}</h3>", escape(name));
        html.push_str(&svg::histogram(&buckets, svg::color(i)));
    }
}

/// `samples` in the order of the path: by the stage each segment starts
/// at, then the one it ends at (a grouped histogram's `GROUP,` prefix
/// aside), the totals last.
fn in_stage_order<'a>(
    mut samples: Vec<(&'a str, &'a [super::Sample])>,
    stages: &[String],
) -> Vec<(&'a str, &'a [super::Sample])> {
    let position = |name: &str| {
        let segment = name.rsplit(',').next().unwrap_or(name);
        let at = |stage: &str| {
            stages
                .iter()
                .position(|s| s == stage)
                .unwrap_or(stages.len())
        };
        match segment.split_once(" -> ") {
            Some((from, to)) => (at(from), at(to)),
            None => (stages.len() + 1, 0),
        }
    };
    samples.sort_by_key(|(name, _)| position(name));
    samples
}
