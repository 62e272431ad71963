//! Wang & Dudek 2014, "A fast self-tuning background subtraction algorithm": a port of OpenCV's
//! `MotionSaliencyBinWangApr2014` (opencv_contrib 4.10 `motionSaliencyBinWangApr2014.cpp`),
//! exact to OpenCV's masks frame by frame.
//!
//! Each pixel keeps K = 3 background templates plus one slot for a promoted "potential
//! background" value, each a (value B, efficacy C) pair; a pixel is foreground when no active
//! template lies within epsilon of it, both at full resolution and on 4x4 block means. Templates
//! are reordered by efficacy, and values seen as foreground for long enough are promoted to
//! background. Activity control raises epsilon where pixels blink.
//!
//! It is a video algorithm: on a single still image (or the first ~50 frames of any sequence)
//! every template is still empty, so the mask is ALL ONES; it cannot drive mixing on its own.
//!
//! The port follows the 4.10 source literally, including its quirks, because the reference masks
//! depend on them: the efficacy caps are L0 = 1000 and L1 = 800; `M_deltaL.mul(gamma)` discards
//! its result, so a swapped-in T0 gets efficacy thetaL, not gamma * thetaL; while at most half of
//! T0 is initialised, promotion uses thetaA = 50, thetaL = 150 and no neighbourhood check; the
//! low-resolution pass reads the activity of pixel (block row, block column) instead of the
//! block's, and does not advance its block window past a block it skips for activity.
//! (The source snapshot of the 2014 commit 02aa9155 has other constants: L0 = 300, L1 = 200,
//! thetaL = 250, thetaA = 200; the 4.10.0.84 binary behind the fixtures behaves as above.)

use crate::{ImageData, ImageView, SaliencyError};

/// Templates T0..T2 plus the potential-background slot (`backgroundModel.size() == K + 1`).
const TEMPLATES: usize = 4;
/// Templates used by the low-resolution detection (`N_DS`).
const LOW_RES_TEMPLATES: usize = 2;
/// Block side of the low-resolution detection (`N`).
const BLOCK: usize = 4;
const ALPHA: f32 = 0.01;
const L0: f32 = 1000.0;
const L1: f32 = 800.0;
const THETA_L: i32 = 250;
const THETA_A: i32 = 200;
const THETA_L_WARMUP: i32 = 150;
const THETA_A_WARMUP: i32 = 50;
const EPSILON_INIT: f32 = 20.0;
const ACTIVITY_INC: u8 = 6;
const ACTIVITY_MAX: u8 = 80;
const ACTIVITY_THRESHOLD: u8 = 20;
const ACTIVITY_RAISE_EPSILON: u8 = 15;
const ACTIVITY_LOWER_EPSILON: u8 = 5;
const EPSILON_INC: f32 = 20.0;
const EPSILON_DEC: f32 = 0.125;
const EPSILON_MIN: f32 = 18.0;
const EPSILON_MAX: f32 = 80.0;

/// A binary foreground mask, row-major, values 0 (background) or 1 (foreground), as OpenCV's
/// Python binding returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForegroundMask {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

impl ForegroundMask {
    /// Number of foreground pixels.
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&v| v != 0).count()
    }
}

/// The streaming Wang & Dudek detector for 1-channel u8 frames of a fixed size (the equivalent
/// of `setImagesize(W, H); init()`); [`WangDudek::push`] is `computeSaliency` on the next frame.
#[derive(Debug, Clone)]
pub struct WangDudek {
    height: usize,
    width: usize,
    /// Template values B and efficacies C, `[template][pixel]`; B starts as NaN, C as 0.
    value: [Vec<f32>; TEMPLATES],
    efficacy: [Vec<f32>; TEMPLATES],
    epsilon: Vec<f32>,
    potential_value: Vec<u8>,
    potential_count: Vec<u8>,
    noise: Vec<u8>,
    activity: Vec<u8>,
    activity_control: bool,
    theta_a: i32,
    theta_l: i32,
    neighbourhood_check: bool,
}

impl WangDudek {
    /// A detector for `height x width` frames with every template empty.
    pub fn new(height: usize, width: usize) -> Result<Self, SaliencyError> {
        if height == 0 || width == 0 {
            return Err(SaliencyError::Empty { height, width });
        }
        let n = height * width;
        Ok(Self {
            height,
            width,
            value: std::array::from_fn(|_| vec![f32::NAN; n]),
            efficacy: std::array::from_fn(|_| vec![0.0; n]),
            epsilon: vec![EPSILON_INIT; n],
            potential_value: vec![0; n],
            potential_count: vec![0; n],
            noise: vec![0; n],
            activity: vec![0; n],
            activity_control: false,
            theta_a: THETA_A,
            theta_l: THETA_L,
            neighbourhood_check: true,
        })
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// Classifies the next frame (1 channel, u8, the detector's size) and updates the model.
    /// Frames narrower or shorter than 2 pixels work here; OpenCV itself fails an assertion on
    /// them once a pixel is promoted with the neighbourhood check (its 3x3 window leaves the
    /// image), so for those the window is simply clipped.
    pub fn push(&mut self, frame: &ImageView<'_>) -> Result<ForegroundMask, SaliencyError> {
        if frame.channels() != 1 {
            return Err(SaliencyError::Channels {
                channels: frame.channels(),
            });
        }
        let ImageData::U8(pixels) = frame.data() else {
            return Err(SaliencyError::Dtype {
                detector: "wang-dudek",
                dtype: frame.dtype_name(),
                hint: "OpenCV's detector reads frames as u8",
            });
        };
        if (frame.height(), frame.width()) != (self.height, self.width) {
            return Err(SaliencyError::FrameSize {
                height: frame.height(),
                width: frame.width(),
                expected_height: self.height,
                expected_width: self.width,
            });
        }
        let high = self.full_resolution_detection(pixels);
        let low = self.low_resolution_detection(pixels);
        let mask: Vec<u8> = high.iter().zip(&low).map(|(a, b)| a & b).collect();
        if self.activity_control {
            let noise: Vec<u8> = high
                .iter()
                .zip(&low)
                .map(|(&h, &l)| h & (l == 0) as u8)
                .collect();
            self.update_activity(noise);
            self.adapt_epsilon();
        }
        self.order_templates();
        self.replace_templates(&mask, pixels);
        self.order_templates();
        self.activity_control = true;
        Ok(ForegroundMask {
            height: self.height,
            width: self.width,
            data: mask,
        })
    }

    /// `fullResolutionDetection`: a pixel is background if an active template (C > 0) is within
    /// epsilon; the first match is reinforced and moves towards the pixel, every other active
    /// template (matching or not) loses one efficacy point.
    fn full_resolution_detection(&mut self, pixels: &[u8]) -> Vec<u8> {
        let mut mask = vec![1u8; pixels.len()];
        for (i, (&p, m)) in pixels.iter().zip(&mut mask).enumerate() {
            if self.activity[i] >= ACTIVITY_THRESHOLD {
                *m = 0;
                continue;
            }
            // "At least one template initialised": the first non-zero (int) efficacy.
            let mut counter = 0i32;
            for z in 0..TEMPLATES {
                counter += self.efficacy[z][i] as i32;
                if counter != 0 {
                    break;
                }
            }
            if counter == 0 {
                continue;
            }
            let (p, eps) = (p as f32, self.epsilon[i]);
            let mut matched = false;
            for z in 0..TEMPLATES {
                let (b, c) = (&mut self.value[z][i], &mut self.efficacy[z][i]);
                if *c <= 0.0 {
                    continue;
                }
                if (p - *b).abs() < eps && !matched {
                    *m = 0;
                    if (z == 0 && *c < L0) || (z == 1 && *c < L1) || z > 1 {
                        *c += 1.0;
                    }
                    *b = (1.0 - ALPHA) * *b + ALPHA * p;
                    matched = true;
                } else {
                    *c -= 1.0;
                }
            }
        }
        mask
    }

    /// `lowResolutionDetection`: once more than half of T0 is initialised, 4x4 blocks whose mean
    /// lies within the mean epsilon of the block mean of T0 or T1 are background.
    fn low_resolution_detection(&self, pixels: &[u8]) -> Vec<u8> {
        let (rows, cols) = (self.height as i64, self.width as i64);
        let mut mask = vec![1u8; pixels.len()];
        let initialised = self.efficacy[0].iter().filter(|&&c| c != 0.0).count() as i64;
        if initialised <= rows * cols / 2 {
            return mask;
        }
        let n = BLOCK as i64;
        let mut roi = Rect {
            x: 0,
            y: 0,
            w: n,
            h: n,
        };
        for i in 0..(rows as usize).div_ceil(BLOCK) {
            // (C++: `roi.y + (N - 1) <= image.rows - 1`)
            if roi.y + n - 1 < rows {
                roi = Rect { w: n, h: n, ..roi };
            }
            for j in 0..(cols as usize).div_ceil(BLOCK) {
                if self.activity[i * self.width + j] >= ACTIVITY_THRESHOLD {
                    self.fill(&mut mask, roi);
                    continue;
                }
                let pixel_mean = self.mean(roi, |k| pixels[k] as f64);
                let epsilon_mean = self.mean(roi, |k| self.epsilon[k] as f64);
                for z in 0..LOW_RES_TEMPLATES {
                    let b = self.mean(roi, |k| self.value[z][k] as f64);
                    let c = self.mean(roi, |k| self.efficacy[z][k] as f64);
                    if c > 0.0 && (pixel_mean - b).abs() < epsilon_mean {
                        self.fill(&mut mask, roi);
                        break;
                    }
                }
                roi.x += n;
                if roi.x + roi.w - 1 > cols - 1 {
                    roi.w = (cols - 1 - roi.x).abs() + 1;
                    if roi.y + n - 1 > rows - 1 {
                        roi.h = (rows - 1 - roi.y).abs() + 1;
                    } else {
                        roi.h = n;
                    }
                }
            }
            roi.x = 0;
            roi.y += n;
            if roi.y + roi.h - 1 > rows - 1 {
                roi = Rect {
                    x: 0,
                    y: roi.y,
                    w: n,
                    h: (rows - 1 - roi.y).abs() + 1,
                };
            }
        }
        mask
    }

    /// `cv::mean` over a block, rounded to f32: the f64 sum times `1 / count`.
    fn mean(&self, roi: Rect, value: impl Fn(usize) -> f64) -> f32 {
        let mut sum = 0.0;
        for y in roi.y..roi.y + roi.h {
            for x in roi.x..roi.x + roi.w {
                sum += value(y as usize * self.width + x as usize);
            }
        }
        (sum * (1.0 / (roi.w * roi.h) as f64)) as f32
    }

    fn fill(&self, mask: &mut [u8], roi: Rect) {
        for y in roi.y..roi.y + roi.h {
            let row = y as usize * self.width;
            mask[row + roi.x as usize..row + (roi.x + roi.w) as usize].fill(0);
        }
    }

    /// `activityControl`: pixels that were noise (foreground at full resolution, background at
    /// low resolution) last frame and are not now gain activity; all others lose one point.
    fn update_activity(&mut self, noise: Vec<u8>) {
        for ((a, &was), &is) in self.activity.iter_mut().zip(&self.noise).zip(&noise) {
            if was != 0 && is == 0 {
                if *a < ACTIVITY_MAX {
                    *a += ACTIVITY_INC;
                }
            } else if *a > 0 {
                *a -= 1;
            }
        }
        self.noise = noise;
    }

    /// `decisionThresholdAdaptation`: active pixels get a wider epsilon, quiet ones a narrower.
    fn adapt_epsilon(&mut self) {
        for (e, &a) in self.epsilon.iter_mut().zip(&self.activity) {
            if a > ACTIVITY_RAISE_EPSILON && *e + EPSILON_INC < EPSILON_MAX {
                *e += EPSILON_INC;
            } else if a < ACTIVITY_LOWER_EPSILON && *e - EPSILON_DEC > EPSILON_MIN {
                *e -= EPSILON_DEC;
            }
        }
    }

    /// `templateOrdering`: T1..T3 sorted by efficacy (pairwise swaps), then T1 replaces T0 where
    /// its efficacy passed thetaL while T0's is below it; T1 keeps T0's old efficacy and T0 gets
    /// thetaL.
    fn order_templates(&mut self) {
        for i in 1..TEMPLATES - 1 {
            for j in i + 1..TEMPLATES {
                for k in 0..self.height * self.width {
                    if self.efficacy[j][k] > self.efficacy[i][k] {
                        self.swap(i, j, k);
                    }
                }
            }
        }
        let theta_l = self.theta_l as f32;
        for k in 0..self.height * self.width {
            if self.efficacy[1][k] > theta_l && theta_l > self.efficacy[0][k] {
                let (v0, v1) = (self.value[0][k], self.value[1][k]);
                self.value[0][k] = v1;
                self.value[1][k] = v0;
                self.efficacy[1][k] = self.efficacy[0][k];
                self.efficacy[0][k] = theta_l;
            }
        }
    }

    fn swap(&mut self, i: usize, j: usize, k: usize) {
        let (v, c) = (self.value[i][k], self.efficacy[i][k]);
        self.value[i][k] = self.value[j][k];
        self.efficacy[i][k] = self.efficacy[j][k];
        self.value[j][k] = v;
        self.efficacy[j][k] = c;
    }

    /// `templateReplacement`: each foreground pixel feeds its potential-background counter; a
    /// value seen often enough (count > thetaA) becomes template T3, after the neighbourhood
    /// check (one of the 3x3 neighbours' templates already holds a value within epsilon) once
    /// the model is warm. Pixels are visited in raster order, so later checks see earlier
    /// promotions.
    fn replace_templates(&mut self, mask: &[u8], pixels: &[u8]) {
        let initialised = self.efficacy[0].iter().filter(|&&c| c != 0.0).count();
        if initialised <= self.height * self.width / 2 {
            (self.theta_a, self.theta_l, self.neighbourhood_check) =
                (THETA_A_WARMUP, THETA_L_WARMUP, false);
        } else {
            (self.theta_a, self.theta_l, self.neighbourhood_check) = (THETA_A, THETA_L, true);
        }
        let last = TEMPLATES - 1;
        for k in 0..self.height * self.width {
            if mask[k] != 1 {
                continue;
            }
            let (p, eps) = (pixels[k], self.epsilon[k]);
            let (bv, bc) = (&mut self.potential_value[k], &mut self.potential_count[k]);
            if *bc == 0 {
                *bv = p;
                *bc = 1;
            } else if (p as f32 - *bv as f32).abs() < eps {
                *bc = bc.wrapping_add(1);
            } else {
                *bc = bc.wrapping_sub(1);
            }
            if (*bc as i32) <= self.theta_a {
                continue;
            }
            let candidate = *bv;
            if !self.neighbourhood_check || self.known_nearby(k, candidate, eps) {
                self.value[last][k] = self.potential_value[k] as f32;
                self.efficacy[last][k] = self.potential_count[k] as f32;
                self.potential_value[k] = 0;
                self.potential_count[k] = 0;
            }
        }
    }

    /// Whether any template holds, somewhere in the 3x3 neighbourhood of pixel `k` (clipped at
    /// the border), a value that rounds (`convertTo(CV_8U)`: half to even, NaN -> 0) to within
    /// `floor(epsilon)` of `value` (`absdiff` + `THRESH_BINARY_INV` + `countNonZero`).
    fn known_nearby(&self, k: usize, value: u8, epsilon: f32) -> bool {
        let (y, x) = (k / self.width, k % self.width);
        let limit = epsilon.floor() as i32;
        let rows = y.saturating_sub(1)..(y + 2).min(self.height);
        (0..TEMPLATES).any(|z| {
            rows.clone().any(|yy| {
                (x.saturating_sub(1)..(x + 2).min(self.width)).any(|xx| {
                    let b = round_to_u8(self.value[z][yy * self.width + xx]);
                    (value as i32 - b as i32).abs() <= limit
                })
            })
        })
    }
}

/// `saturate_cast<uchar>(float)`: round half to even, clamp, NaN -> 0.
fn round_to_u8(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        v.round_ties_even().clamp(0.0, 255.0) as u8
    }
}

/// OpenCV's `Rect` (x, y, width, height), signed as in the C++ code.
#[derive(Debug, Clone, Copy)]
struct Rect {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(px: &[u8], h: usize, w: usize) -> ImageView<'_> {
        ImageView::hwc_u8(px, h, w, 1).unwrap()
    }

    #[test]
    fn a_single_still_image_is_all_foreground() {
        for (h, w) in [(1, 1), (3, 5), (48, 64)] {
            let px: Vec<u8> = (0..h * w).map(|i| (i * 7 % 256) as u8).collect();
            let mut wd = WangDudek::new(h, w).unwrap();
            let m = wd.push(&frame(&px, h, w)).unwrap();
            assert_eq!(m.count(), h * w);
        }
    }

    #[test]
    fn a_static_scene_becomes_background_after_the_warm_up() {
        let (h, w) = (6, 9);
        let px: Vec<u8> = (0..h * w).map(|i| (i * 31 % 200) as u8).collect();
        let mut wd = WangDudek::new(h, w).unwrap();
        let counts: Vec<usize> = (0..60)
            .map(|_| wd.push(&frame(&px, h, w)).unwrap().count())
            .collect();
        // Counters pass thetaA = 50 on frame 50; from frame 51 on the scene is background.
        assert!(counts[..51].iter().all(|&c| c == h * w), "{counts:?}");
        assert!(counts[51..].iter().all(|&c| c == 0), "{counts:?}");
    }

    #[test]
    fn wrong_frames_are_errors() {
        let mut wd = WangDudek::new(2, 2).unwrap();
        let rgb = [0u8; 12];
        assert!(matches!(
            wd.push(&ImageView::hwc_u8(&rgb, 2, 2, 3).unwrap()),
            Err(SaliencyError::Channels { channels: 3 })
        ));
        let f = [0f32; 4];
        assert!(matches!(
            wd.push(&ImageView::hwc_f32(&f, 2, 2, 1).unwrap()),
            Err(SaliencyError::Dtype { .. })
        ));
        let big = [0u8; 6];
        assert!(matches!(
            wd.push(&frame(&big, 2, 3)),
            Err(SaliencyError::FrameSize { .. })
        ));
        assert!(WangDudek::new(0, 3).is_err());
    }
}
