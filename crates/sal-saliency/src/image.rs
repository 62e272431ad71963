//! Borrowed image buffers: u8 or f32, HWC or CHW.

use crate::SaliencyError;

/// Memory order of a colour image's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-major pixels, channels interleaved (`numpy` / OpenCV order).
    Hwc,
    /// Channel planes, each row-major (a torch / burn tensor's order).
    Chw,
}

/// The element type and values of an image.
#[derive(Debug, Clone, Copy)]
pub enum ImageData<'a> {
    U8(&'a [u8]),
    F32(&'a [f32]),
}

/// A borrowed, validated image. Channel 0 is read as BLUE, as OpenCV does; SaliencyMix passes
/// RGB arrays, so the reference outputs are computed that way (SPEC.md §1.1).
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    data: ImageData<'a>,
    height: usize,
    width: usize,
    channels: usize,
    layout: Layout,
}

impl<'a> ImageView<'a> {
    /// Wraps a buffer, checking that its length is `height * width * channels`, that the image
    /// is at least 1x1 and that it has 1 or 3 channels.
    pub fn new(
        data: ImageData<'a>,
        height: usize,
        width: usize,
        channels: usize,
        layout: Layout,
    ) -> Result<Self, SaliencyError> {
        if height == 0 || width == 0 {
            return Err(SaliencyError::Empty { height, width });
        }
        if channels != 1 && channels != 3 {
            return Err(SaliencyError::Channels { channels });
        }
        let len = match data {
            ImageData::U8(d) => d.len(),
            ImageData::F32(d) => d.len(),
        };
        let expected = height * width * channels;
        if len != expected {
            return Err(SaliencyError::BufferSize {
                len,
                height,
                width,
                channels,
                expected,
            });
        }
        Ok(Self {
            data,
            height,
            width,
            channels,
            layout,
        })
    }

    /// A u8 image in HWC order.
    pub fn hwc_u8(
        data: &'a [u8],
        height: usize,
        width: usize,
        channels: usize,
    ) -> Result<Self, SaliencyError> {
        Self::new(ImageData::U8(data), height, width, channels, Layout::Hwc)
    }

    /// An f32 image in HWC order.
    pub fn hwc_f32(
        data: &'a [f32],
        height: usize,
        width: usize,
        channels: usize,
    ) -> Result<Self, SaliencyError> {
        Self::new(ImageData::F32(data), height, width, channels, Layout::Hwc)
    }

    /// A u8 image in CHW order.
    pub fn chw_u8(
        data: &'a [u8],
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<Self, SaliencyError> {
        Self::new(ImageData::U8(data), height, width, channels, Layout::Chw)
    }

    /// An f32 image in CHW order.
    pub fn chw_f32(
        data: &'a [f32],
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<Self, SaliencyError> {
        Self::new(ImageData::F32(data), height, width, channels, Layout::Chw)
    }

    pub fn data(&self) -> ImageData<'a> {
        self.data
    }
    pub fn height(&self) -> usize {
        self.height
    }
    pub fn width(&self) -> usize {
        self.width
    }
    pub fn channels(&self) -> usize {
        self.channels
    }
    pub fn layout(&self) -> Layout {
        self.layout
    }
}
