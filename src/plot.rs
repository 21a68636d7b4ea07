//! Charts as compressed PNGs or as SVG, drawn with plotters and an embedded font (DejaVu Sans, so that they
//! look the same on a machine without fonts): each panel has a title, labelled axes with tick
//! values and a legend naming its series.

use std::sync::Once;

use anyhow::anyhow;
use chrono::NaiveDate;
use plotters::coord::Shift;
use plotters::prelude::*;

pub use plotters::style::RGBColor as Colour;

pub const GREY: Colour = RGBColor(150, 150, 150);
pub const BLACK: Colour = RGBColor(40, 40, 40);
pub const BLUE: Colour = RGBColor(31, 119, 180);
pub const ORANGE: Colour = RGBColor(255, 127, 14);
pub const RED: Colour = RGBColor(214, 39, 40);
pub const GREEN: Colour = RGBColor(44, 160, 44);

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Dots,
    Crosses,
    Line,
}

pub struct Series {
    pub label: String,
    pub colour: Colour,
    pub mark: Mark,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(label: impl Into<String>, colour: Colour, mark: Mark, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), colour, mark, points }
    }
}

/// How the x axis's tick values read.
#[derive(Debug, Clone)]
pub enum XTicks {
    Numbers,
    /// Whole numbers (trials, epochs, ranks).
    Integers,
    /// x is an index into these dates.
    Dates(Vec<NaiveDate>),
    /// x is an index into these names (categorical values).
    Names(Vec<String>),
}

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_ticks: XTicks,
    pub series: Vec<Series>,
}

/// Panels in a grid of `cols` columns, `size` pixels in all: written as a PNG (the exports) or an
/// SVG (the report), drawn the same way.
pub struct Chart {
    pub panels: Vec<Panel>,
    pub cols: usize,
    pub size: (u32, u32),
}

impl Chart {
    pub fn new(panels: Vec<Panel>, cols: usize, size: (u32, u32)) -> Self {
        Self { panels, cols: cols.max(1), size }
    }

    /// The chart as a compressed PNG.
    pub fn png(&self) -> anyhow::Result<Vec<u8>> {
        register_font();
        let size = self.size;
        let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
        self.draw(BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area())?;
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, size.0, size.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.write_header()?.write_image_data(&pixels)?;
        Ok(out)
    }

    /// The chart as an SVG document (text as text, in the page's sans-serif font).
    pub fn svg(&self) -> anyhow::Result<String> {
        register_font();
        let mut out = String::new();
        self.draw(SVGBackend::with_string(&mut out, self.size).into_drawing_area())?;
        Ok(out)
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        root.fill(&WHITE).map_err(|e| anyhow!("drawing a chart: {e}"))?;
        let rows = self.panels.len().div_ceil(self.cols).max(1);
        for (area, panel) in root.split_evenly((rows, self.cols)).iter().zip(&self.panels) {
            draw(area, panel).map_err(|e| anyhow!("drawing {}: {e}", panel.title))?;
        }
        root.present().map_err(|e| anyhow!("drawing a chart: {e}"))
    }
}

/// Registers the embedded font once, for measuring and drawing text.
fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            eprintln!("note: the embedded font could not be read; charts are drawn without text");
        }
    });
}

/// The range of values with a 5% margin; 0..1 when there are none, ±1 around a single value.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 {
        (lo - 1.0, hi + 1.0)
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// A tick value with as many decimals as the axis's `span` needs.
fn number(v: f64, span: f64) -> String {
    let decimals = (1.0 - span.abs().max(1e-9).log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}

fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let xs = || p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0));
    let x = match &p.x_ticks {
        XTicks::Names(names) => (-0.5, names.len().max(1) as f64 - 0.5),
        // A few whole numbers (ranks, layers): half a step of room each side.
        XTicks::Integers if range(xs()).1 - range(xs()).0 < 24.0 => {
            let (lo, hi) = xs().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            if lo.is_finite() {
                (lo.floor() - 0.5, hi.ceil() + 0.5)
            } else {
                (0.0, 1.0)
            }
        }
        _ => range(xs()),
    };
    let y = range(p.series.iter().flat_map(|s| s.points.iter().map(|q| q.1)));
    // Room below the data for the legend (lower right), about 18 pixels an entry.
    let entries = p.series.iter().filter(|s| !s.label.is_empty()).count() as f64;
    let plot_height = (area.dim_in_pixel().1 as f64 - 110.0).max(50.0);
    let share = if entries > 0.0 { ((18.0 * entries + 12.0) / plot_height).min(0.6) } else { 0.0 };
    let y = (y.0 - (y.1 - y.0) * share / (1.0 - share), y.1);
    let (x_span, y_span) = (x.1 - x.0, y.1 - y.0);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FAMILY, 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    let ticks = p.x_ticks.clone();
    let x_format = move |v: &f64| match &ticks {
        XTicks::Numbers => number(*v, x_span),
        XTicks::Integers => {
            if (v - v.round()).abs() < 1e-6 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        }
        XTicks::Dates(dates) => dates.get(v.round().max(0.0) as usize).map_or(String::new(), |d| d.to_string()),
        XTicks::Names(names) => {
            if (v - v.round()).abs() < 0.01 {
                names.get(v.round().max(0.0) as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
    };
    let n_x_labels = match &p.x_ticks {
        XTicks::Names(names) => names.len() * 4 + 1,
        XTicks::Dates(_) => 5,
        XTicks::Integers if x_span < 24.0 => x_span.round() as usize + 1,
        _ => 8,
    };
    let y_format = move |v: &f64| number(*v, y_span);
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_labels(n_x_labels)
        .y_labels(6)
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    for s in &p.series {
        let colour = s.colour;
        let style = colour.stroke_width(2);
        match s.mark {
            Mark::Dots => chart
                .draw_series(s.points.iter().map(|&q| Circle::new(q, 3, colour.filled())))?
                .label(s.label.as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 3, colour.filled())),
            Mark::Crosses => chart
                .draw_series(s.points.iter().map(|&q| Cross::new(q, 5, colour.stroke_width(2))))?
                .label(s.label.as_str())
                .legend(move |(x, y)| Cross::new((x + 8, y), 5, colour.stroke_width(2))),
            Mark::Line => chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))),
        };
    }
    if p.series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FAMILY, 12))
            .draw()?;
    }
    Ok(())
}
