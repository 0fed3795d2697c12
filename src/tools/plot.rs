//! Pictures as PNG (plotters' bitmap backend): training curves, and grids of
//! images with captions (misclassified digits, augmented samples). Text uses
//! DejaVu Sans from Debian's `fonts-dejavu-core` (or `DLFS_FONT`).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Why a picture could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(
        "{0}: no font for captions (install fonts-dejavu-core or set DLFS_FONT to a .ttf file)"
    )]
    Font(String),
    #[error("{path}: {message}")]
    Draw { path: String, message: String },
}

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers the caption font once; the error names where it looked.
fn ensure_font() -> Result<(), PlotError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let candidates: Vec<String> = std::env::var("DLFS_FONT")
            .into_iter()
            .chain(FONT_PATHS.iter().map(|s| s.to_string()))
            .collect();
        for p in &candidates {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(candidates.join(", "))
    })
    .clone()
    .map_err(PlotError::Font)
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// One named line of a plot.
#[derive(Clone, Debug)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Curve {
    /// A curve from `(x, y)` points.
    pub fn new(label: &str, points: Vec<(f64, f64)>) -> Self {
        Curve {
            label: label.to_string(),
            points,
        }
    }
}

/// Side-by-side panels (e.g. loss and accuracy per epoch), each with its
/// curves and legend, written to `path` as PNG.
pub fn plot_curves_png(
    path: &Path,
    title: &str,
    panels: &[(&str, Vec<Curve>)],
) -> Result<(), PlotError> {
    plot_series_png(path, title, "epoch", panels)
}

/// Curves of at most this many points get a marker per point; more
/// markers would hide the line.
const MARKED_POINTS: usize = 60;

/// [`plot_curves_png`] with another quantity than epochs along x (episodes,
/// iterations); curves of more than 60 points are drawn without markers.
pub fn plot_series_png(
    path: &Path,
    title: &str,
    x_label: &str,
    panels: &[(&str, Vec<Curve>)],
) -> Result<(), PlotError> {
    ensure_font()?;
    let width = 560 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, SERIES_HEIGHT)).into_drawing_area();
    draw_series(root, title, x_label, panels).map_err(|e| draw_err(path, e))
}

/// Height in pixels of [`plot_series_png`]'s pictures.
const SERIES_HEIGHT: u32 = 420;

/// [`plot_series_png`]'s drawing, on any backend (an in-memory one in tests).
fn draw_series<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    panels: &[(&str, Vec<Curve>)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
    ];
    for (area, (ylabel, curves)) in areas.iter().zip(panels) {
        let pts = curves.iter().flat_map(|c| c.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 - x0 < 1e-9 {
            x1 = x0 + 1.0;
        }
        let pad = ((y1 - y0) * 0.08).max(1e-6);
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(*ylabel)
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, c) in curves.iter().enumerate() {
            let color = colors[i % colors.len()];
            // One path per segment: plotters joins a wide polyline with
            // mitres, and at a sharp reversal (a return of 500 between two
            // of 10) the mitre shoots far outside the plot area.
            chart
                .draw_series(
                    c.points
                        .windows(2)
                        .map(|w| PathElement::new(vec![w[0], w[1]], color.stroke_width(2))),
                )?
                .label(c.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            if c.points.len() <= MARKED_POINTS {
                chart.draw_series(c.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()
}

/// One cell of an image grid: `[C, H, W]` values in `[0, 1]` (1 or 3 channels) and a caption.
#[derive(Clone, Debug)]
pub struct GridImage {
    pub values: Vec<f32>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub caption: String,
}

impl GridImage {
    /// A cell from a dataset's image (values in `[0, 1]`) and its caption.
    pub fn from_image(image: models::data::Image, caption: impl Into<String>) -> Self {
        let [channels, height, width] = image.shape();
        GridImage {
            values: image.into_vec(),
            channels,
            height,
            width,
            caption: caption.into(),
        }
    }
}

/// Colours of segmentation classes: matplotlib's `tab10` for classes 0-9
/// (the digits of [`DigitScenes`](models::data::DigitScenes)), black for
/// class 10 (their background), then greys.
pub const CLASS_COLOURS: [[u8; 3]; 11] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [188, 189, 34],
    [23, 190, 207],
    [255, 215, 0],
    [0, 0, 0],
];

impl GridImage {
    /// A cell showing a segmentation mask (`height * width` class labels,
    /// row-major), a colour per class from [`CLASS_COLOURS`] (labels past
    /// them in grey).
    pub fn from_mask(
        labels: &[usize],
        height: usize,
        width: usize,
        caption: impl Into<String>,
    ) -> Self {
        assert_eq!(
            labels.len(),
            height * width,
            "from_mask: labels for {height}x{width}"
        );
        let mut values = vec![0.0f32; 3 * height * width];
        for (i, &c) in labels.iter().enumerate() {
            let rgb = CLASS_COLOURS.get(c).copied().unwrap_or([128, 128, 128]);
            for (ch, &v) in rgb.iter().enumerate() {
                values[ch * height * width + i] = f32::from(v) / 255.0;
            }
        }
        GridImage {
            values,
            channels: 3,
            height,
            width,
            caption: caption.into(),
        }
    }
}

/// Draws images in a grid of `cols` columns, each scaled by `scale`
/// (nearest neighbour) with its caption underneath, to `path` as PNG.
pub fn image_grid_png(
    path: &Path,
    title: &str,
    images: &[GridImage],
    cols: usize,
    scale: usize,
) -> Result<(), PlotError> {
    ensure_font()?;
    let cols = cols.max(1);
    let rows = images.len().div_ceil(cols).max(1);
    let (ch, cw) = images.first().map_or((28, 28), |i| (i.height, i.width));
    let cell_w = (cw * scale + 16) as u32;
    let cell_h = (ch * scale + 34) as u32;
    let (w, h) = (cell_w * cols as u32 + 16, cell_h * rows as u32 + 44);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    root.draw(&Text::new(
        title.to_string(),
        (10, 10),
        ("sans-serif", 20).into_font(),
    ))
    .map_err(|e| draw_err(path, e))?;
    for (k, img) in images.iter().enumerate() {
        let (r, c) = (k / cols, k % cols);
        let x0 = 8 + c as i32 * cell_w as i32 + 8;
        let y0 = 40 + r as i32 * cell_h as i32;
        for y in 0..img.height {
            for x in 0..img.width {
                let at = |ch: usize| {
                    (img.values[(ch * img.height + y) * img.width + x].clamp(0.0, 1.0) * 255.0)
                        as u8
                };
                let color = if img.channels >= 3 {
                    RGBColor(at(0), at(1), at(2))
                } else {
                    RGBColor(at(0), at(0), at(0))
                };
                let (px, py) = (x0 + (x * scale) as i32, y0 + (y * scale) as i32);
                root.draw(&Rectangle::new(
                    [(px, py), (px + scale as i32, py + scale as i32)],
                    color.filled(),
                ))
                .map_err(|e| draw_err(path, e))?;
            }
        }
        root.draw(&Text::new(
            img.caption.clone(),
            (x0, y0 + (img.height * scale) as i32 + 4),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(|e| draw_err(path, e))?;
    }
    root.present().map_err(|e| draw_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zigzag like a DQN's returns (10, 500, 10, …) stays inside its plot
    /// area: no pixel of the curve's colour in the title band above it or
    /// in the bottom rows under the axis labels.
    #[test]
    fn sharp_reversals_stay_inside_the_plot_area() {
        ensure_font().expect("font");
        let (w, h) = (560u32, SERIES_HEIGHT);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        let zigzag: Vec<(f64, f64)> = (0..1000)
            .map(|i| (f64::from(i), if i % 7 == 3 { 500.0 } else { 10.0 }))
            .collect();
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            draw_series(
                root,
                "zigzag",
                "episode",
                &[("return", vec![Curve::new("episode", zigzag)])],
            )
            .expect("drawn");
        }
        let blue = |y: u32| {
            (0..w).any(|x| {
                let k = ((y * w + x) * 3) as usize;
                buf[k..k + 3] == [31, 119, 180]
            })
        };
        let stray: Vec<u32> = (0..20).chain(h - 8..h).filter(|&y| blue(y)).collect();
        assert!(stray.is_empty(), "curve pixels in rows {stray:?}");
        assert!((20..h - 8).any(blue), "the curve was drawn");
    }
}
