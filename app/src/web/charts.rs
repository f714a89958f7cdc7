//! The charts' sizes: shared by the shell's config (the script passes them
//! to Chartist) and the CSP (which allows the exact `style` attribute
//! Chartist writes for each), so the two cannot drift apart.

use serde::Serialize;

/// A chart's CSS width and height, as Chartist's `width`/`height` options.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ChartSize {
    /// The chart, as the script names it.
    pub name: &'static str,
    /// CSS length, e.g. `100%`.
    pub width: &'static str,
    /// CSS length, e.g. `300px`.
    pub height: &'static str,
}

impl ChartSize {
    /// The `style` attribute Chartist 1.5 sets on the chart's `<svg>`
    /// (`createSvg` in its `svg-utils`): `width: W; height: H;`.
    pub fn style_attribute(&self) -> String {
        format!("width: {}; height: {};", self.width, self.height)
    }
}

/// Every chart the pages draw.
pub const CHART_SIZES: [ChartSize; 2] = [
    ChartSize {
        name: "histogram",
        width: "100%",
        height: "300px",
    },
    ChartSize {
        name: "factors",
        width: "100%",
        height: "380px",
    },
];
