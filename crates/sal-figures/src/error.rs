use std::path::PathBuf;

/// Why a picture could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The inputs do not fit together (lengths, channels, an empty map).
    #[error("cannot draw {0}")]
    Shape(String),
    /// A tensor could not be read back to the host.
    #[error("reading {what} back from the device: {message}")]
    Tensor { what: &'static str, message: String },
    /// plotters failed to draw a chart.
    #[error("drawing the chart: {0}")]
    Chart(String),
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
}
