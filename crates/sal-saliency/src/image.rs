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

/// A borrowed, validated image. The OpenCV ports read a 3-channel image's channel 0 as BLUE, as
/// OpenCV does; SaliencyMix passes RGB arrays, so the reference outputs are computed that way
/// (docs/saliency.md). [`crate::FrequencyTuned`] takes the channel order as a setting instead.
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
        // An impossible size (the product overflows) cannot match any buffer.
        let expected = height
            .checked_mul(width)
            .and_then(|n| n.checked_mul(channels))
            .unwrap_or(usize::MAX);
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

    /// `height * width`.
    pub fn pixel_count(&self) -> usize {
        self.height * self.width
    }

    /// The element type's name, for error messages.
    pub(crate) fn dtype_name(&self) -> &'static str {
        match self.data {
            ImageData::U8(_) => "u8",
            ImageData::F32(_) => "f32",
        }
    }

    /// Where channel `c` lives in the buffer: pixel `i` (row-major) of that channel is element
    /// `offset + i * step`. One addressing rule for both layouts keeps every colour conversion
    /// layout-agnostic.
    pub(crate) fn channel_offset_step(&self, c: usize) -> (usize, usize) {
        debug_assert!(c < self.channels);
        match self.layout {
            Layout::Hwc => (c, self.channels),
            Layout::Chw => (c * self.height * self.width, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_check_size_channels_and_length() {
        let d = [0u8; 12];
        assert!(ImageView::hwc_u8(&d, 2, 2, 3).is_ok());
        assert!(ImageView::chw_u8(&d, 3, 2, 2).is_ok());
        assert_eq!(
            ImageView::hwc_u8(&d, 0, 4, 3).unwrap_err(),
            SaliencyError::Empty {
                height: 0,
                width: 4
            }
        );
        assert_eq!(
            ImageView::hwc_u8(&d, 3, 1, 4).unwrap_err(),
            SaliencyError::Channels { channels: 4 }
        );
        assert!(matches!(
            ImageView::hwc_u8(&d, 2, 3, 3),
            Err(SaliencyError::BufferSize { expected: 18, .. })
        ));
        assert!(matches!(
            ImageView::hwc_u8(&d, usize::MAX, 2, 3),
            Err(SaliencyError::BufferSize { .. })
        ));
    }

    #[test]
    fn channel_addressing_agrees_between_layouts() {
        // 2x2 RGB image, value = 10 * channel + pixel index.
        let hwc: Vec<u8> = (0..4).flat_map(|i| [i, 10 + i, 20 + i]).collect();
        let chw: Vec<u8> = (0..3)
            .flat_map(|c| (0..4).map(move |i| 10 * c + i))
            .collect();
        let a = ImageView::hwc_u8(&hwc, 2, 2, 3).unwrap();
        let b = ImageView::chw_u8(&chw, 3, 2, 2).unwrap();
        for c in 0..3 {
            let (oa, sa) = a.channel_offset_step(c);
            let (ob, sb) = b.channel_offset_step(c);
            for i in 0..4 {
                assert_eq!(hwc[oa + i * sa], chw[ob + i * sb]);
            }
        }
    }
}
