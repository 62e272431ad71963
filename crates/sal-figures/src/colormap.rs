//! The colour scale of saliency maps and count maps.

use image::Rgb;

/// viridis' end and middle points: dark blue, blue, teal, green, yellow.
const STOPS: [[f32; 3]; 5] = [
    [68.0, 1.0, 84.0],
    [59.0, 82.0, 139.0],
    [33.0, 145.0, 140.0],
    [94.0, 201.0, 98.0],
    [253.0, 231.0, 37.0],
];

/// A perceptual dark-blue -> teal -> yellow scale (viridis' end and middle points, linearly
/// interpolated through five stops) at `t` in [0, 1]; values outside are clamped, NaN is the
/// bottom of the scale.
pub fn viridis(t: f32) -> Rgb<u8> {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t as usize).min(3);
    let f = t - i as f32;
    Rgb(std::array::from_fn(|c| {
        (STOPS[i][c] + f * (STOPS[i + 1][c] - STOPS[i][c])).round() as u8
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_runs_through_its_stops() {
        assert_eq!(viridis(0.0).0, [68, 1, 84]);
        assert_eq!(viridis(0.5).0, [33, 145, 140]);
        assert_eq!(viridis(1.0).0, [253, 231, 37]);
        // Halfway between the first two stops.
        assert_eq!(viridis(0.125).0, [64, 42, 112]);
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(7.0), viridis(1.0));
        assert_eq!(viridis(f32::NAN), viridis(0.0));
        assert_eq!(viridis(f32::INFINITY), viridis(0.0));
    }
}
