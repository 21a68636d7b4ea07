//! The report's page: one self-contained HTML document (inline CSS, inline SVG charts, no
//! scripts, nothing fetched), built section by section with every text escaped.

use std::fmt::Write;

use crate::plot::Chart;
use crate::store::TextTable;

const CSS: &str = "
:root { --ink: #222; --muted: #666; --line: #ddd; --band: #f6f7f9; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; color: var(--ink); }
header { padding: 18px 28px; background: var(--band); border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: var(--muted); }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1280px; }
section { margin-top: 28px; }
h2 { font-size: 18px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
dl.ids { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 8px 0; }
dl.ids dt { color: var(--muted); }
dl.ids dd { margin: 0; overflow-wrap: anywhere; font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 13px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure.chart { margin: 0; border: 1px solid var(--line); padding: 6px; background: #fff; max-width: 100%; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left; }
th { background: var(--band); position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id { overflow-wrap: anywhere; min-width: 7em; }
td.long { white-space: normal; min-width: 28em; overflow-wrap: anywhere; font-size: 12px; }
tr.gap td { text-align: center; color: var(--muted); }
p.why { background: #fff8e6; border-left: 4px solid #ff7f0e; padding: 8px 12px; margin: 10px 0; }
p.empty { color: var(--muted); font-style: italic; }
";

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page under construction.
pub struct Page {
    body: String,
    nav: Vec<(String, String)>,
}

impl Page {
    pub fn new() -> Self {
        Self { body: String::new(), nav: Vec::new() }
    }

    /// Starts a section with its heading, listed in the page's navigation.
    pub fn section(&mut self, anchor: &str, title: &str) {
        if !self.nav.is_empty() {
            self.body.push_str("</section>\n");
        }
        self.nav.push((anchor.into(), title.into()));
        let _ = write!(self.body, "<section id=\"{}\">\n<h2>{}</h2>\n", escape(anchor), escape(title));
    }

    pub fn heading(&mut self, text: &str) {
        let _ = writeln!(self.body, "<h3>{}</h3>", escape(text));
    }

    pub fn paragraph(&mut self, class: &str, text: &str) {
        let _ = writeln!(self.body, "<p class=\"{class}\">{}</p>", escape(text));
    }

    /// The ids and settings that link what follows to the database, as a definition list.
    pub fn ids(&mut self, pairs: &[(&str, String)]) {
        self.body.push_str("<dl class=\"ids\">\n");
        for (k, v) in pairs {
            let _ = writeln!(self.body, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
        }
        self.body.push_str("</dl>\n");
    }

    /// Charts side by side (wrapping), each an inline SVG with its title as its label.
    pub fn charts(&mut self, charts: &[Chart]) -> anyhow::Result<()> {
        self.body.push_str("<div class=\"charts\">\n");
        for chart in charts {
            let label = chart.panels.iter().map(|p| p.title.as_str()).collect::<Vec<_>>().join("; ");
            let svg = with_view_box(&chart.svg()?, chart.size);
            let _ = writeln!(
                self.body,
                "<figure class=\"chart\" role=\"img\" aria-label=\"{}\">{svg}</figure>",
                escape(&label)
            );
        }
        self.body.push_str("</div>\n");
        Ok(())
    }

    /// A table; numbers right-aligned. `gap_after` puts a row saying "..." after that many rows
    /// (a sample of a longer list).
    pub fn table(&mut self, t: &TextTable, gap_after: Option<(usize, String)>) {
        if t.rows.is_empty() {
            self.paragraph("empty", "no rows");
            return;
        }
        self.body.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
        // Headers may break after an underscore, and long ids anywhere (`td.id`), so that a wide
        // table fits the page instead of running past it.
        for c in &t.columns {
            let _ = write!(self.body, "<th>{}</th>", escape(c).replace('_', "_<wbr>"));
        }
        self.body.push_str("</tr></thead>\n<tbody>\n");
        for (i, row) in t.rows.iter().enumerate() {
            if let Some((n, text)) = &gap_after {
                if i == *n {
                    let _ = writeln!(
                        self.body,
                        "<tr class=\"gap\"><td colspan=\"{}\">{}</td></tr>",
                        t.columns.len(),
                        escape(text)
                    );
                }
            }
            self.body.push_str("<tr>");
            for cell in row {
                let class = if !cell.is_empty() && cell.parse::<f64>().is_ok() {
                    " class=\"num\""
                } else if cell.len() > 60 {
                    " class=\"long\""
                } else if cell.len() > 16 && !cell.contains(' ') {
                    " class=\"id\""
                } else {
                    ""
                };
                let _ = write!(self.body, "<td{class}>{}</td>", escape(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody></table></div>\n");
    }

    /// The whole document.
    pub fn finish(mut self, title: &str, subtitle: &[String]) -> String {
        if !self.nav.is_empty() {
            self.body.push_str("</section>\n");
        }
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n",
            escape(title),
            escape(title)
        );
        for line in subtitle {
            let _ = writeln!(out, "<p>{}</p>", escape(line));
        }
        out.push_str("<nav>");
        for (anchor, name) in &self.nav {
            let _ = write!(out, "<a href=\"#{}\">{}</a>", escape(anchor), escape(name));
        }
        out.push_str("</nav>\n</header>\n<main>\n");
        out.push_str(&self.body);
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }
}

/// Gives plotters' SVG a viewBox, so that it scales down with the page instead of overflowing.
fn with_view_box(svg: &str, (w, h): (u32, u32)) -> String {
    let svg = svg.trim_start_matches(|c| c != '<');
    let svg = match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(svg, |(_, s)| s.trim_start()),
        None => svg,
    };
    match svg.strip_prefix("<svg") {
        Some(rest) if !rest.contains("viewBox") || rest.find("viewBox") > rest.find('>') => {
            format!("<svg viewBox=\"0 0 {w} {h}\"{rest}")
        }
        _ => svg.to_string(),
    }
}
