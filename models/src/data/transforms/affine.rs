//! Random rotation, scaling and translation (`transforms.RandomAffine`),
//! and the bilinear warp behind it.

use autograd::rng::Generator;

use super::{uniform, Transform};
use crate::data::image::Image;

/// A random rotation, scaling and translation about the image centre,
/// sampled bilinearly (`transforms.RandomAffine(degrees, translate, scale)`
/// with `interpolation=BILINEAR`; no shear).
///
/// Angle from `[-degrees, degrees)`, positive counter-clockwise on screen;
/// translation a whole number of pixels up to `translate.0 * W` across and
/// `translate.1 * H` down (rounded, as torchvision); scale from
/// `[scale.0, scale.1)`. Drawn in that order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomAffine {
    /// Largest rotation in degrees, either way.
    pub degrees: f32,
    /// Largest translation as fractions of width and height.
    pub translate: Option<(f32, f32)>,
    /// Range of the scale factor.
    pub scale: Option<(f32, f32)>,
    /// Value of pixels sampled from outside the image.
    pub fill: f32,
}

impl RandomAffine {
    /// Rotations up to `degrees` either way; add [`translate`](Self::translate)
    /// and [`scale`](Self::scale) as needed.
    pub fn new(degrees: f32) -> RandomAffine {
        assert!(
            degrees >= 0.0,
            "RandomAffine: degrees = {degrees} must be >= 0"
        );
        RandomAffine {
            degrees,
            translate: None,
            scale: None,
            fill: 0.0,
        }
    }

    /// Translations up to `x` of the width and `y` of the height.
    pub fn translate(mut self, x: f32, y: f32) -> RandomAffine {
        assert!(
            (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y),
            "RandomAffine: translate ({x}, {y}) must lie in [0, 1]"
        );
        self.translate = Some((x, y));
        self
    }

    /// Scale factors from `[lo, hi)`.
    pub fn scale(mut self, lo: f32, hi: f32) -> RandomAffine {
        assert!(
            0.0 < lo && lo <= hi,
            "RandomAffine: scale range ({lo}, {hi}) must satisfy 0 < lo <= hi"
        );
        self.scale = Some((lo, hi));
        self
    }

    /// Draws `(angle in degrees, (tx, ty) in pixels, scale)` for an image of
    /// `shape`, as torchvision's `RandomAffine.get_params`.
    pub fn params(&self, shape: [usize; 3], rng: &mut Generator) -> (f32, (f32, f32), f32) {
        let angle = uniform(rng, -self.degrees, self.degrees);
        let shift = match self.translate {
            Some((fx, fy)) => {
                let (mx, my) = (fx * shape[2] as f32, fy * shape[1] as f32);
                let tx = uniform(rng, -mx, mx).round();
                let ty = uniform(rng, -my, my).round();
                (tx, ty)
            }
            None => (0.0, 0.0),
        };
        let scale = match self.scale {
            Some((lo, hi)) => uniform(rng, lo, hi),
            None => 1.0,
        };
        (angle, shift, scale)
    }
}

impl Transform for RandomAffine {
    fn apply(&self, image: Image, rng: &mut Generator) -> Image {
        let (angle, shift, scale) = self.params(image.shape(), rng);
        affine(&image, angle, shift, scale, self.fill)
    }
}

/// Rotates `image` by `angle` degrees (counter-clockwise on screen), scales
/// it by `scale` and moves it by `(tx, ty)` pixels (right, down), about
/// the centre `((W-1)/2, (H-1)/2)` as torchvision, sampling bilinearly;
/// points outside the image read `fill`. Zero angle and shift with scale 1
/// returns the image unchanged.
pub fn affine(image: &Image, angle: f32, (tx, ty): (f32, f32), scale: f32, fill: f32) -> Image {
    let [c, h, w] = image.shape();
    let plane = h * w;
    let (sin, cos) = angle.to_radians().sin_cos();
    let (cx, cy) = ((w as f32 - 1.0) * 0.5, (h as f32 - 1.0) * 0.5);
    // Output pixel p reads the input at C + R(-angle) (p - C - t) / scale:
    // the inverse of "scale, rotate, then translate".
    let (a, b) = (cos / scale, -sin / scale);
    let (d, e) = (sin / scale, cos / scale);
    let src = image.data();
    let mut out = Image::full([c, h, w], fill);
    let dst = out.data_mut();
    let inside =
        |yy: isize, xx: isize| yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w;
    for y in 0..h {
        let dy = y as f32 - cy - ty;
        for x in 0..w {
            let dx = x as f32 - cx - tx;
            let sx = cx + a * dx + b * dy;
            let sy = cy + d * dx + e * dy;
            // No neighbour inside the image (or NaN): the fill stays.
            if !(sx > -1.0 && sy > -1.0 && sx < w as f32 && sy < h as f32) {
                continue;
            }
            // floor() without its libm call on baseline x86-64: for values
            // above -1, truncation is floor except on (-1, 0).
            let x0 = if sx < 0.0 { -1 } else { sx as isize };
            let y0 = if sy < 0.0 { -1 } else { sy as isize };
            let (wx, wy) = (sx - x0 as f32, sy - y0 as f32);
            let weights = [
                (1.0 - wy) * (1.0 - wx),
                (1.0 - wy) * wx,
                wy * (1.0 - wx),
                wy * wx,
            ];
            let k = y * w + x;
            if x0 >= 0 && y0 >= 0 && (x0 as usize) + 1 < w && (y0 as usize) + 1 < h {
                // All four neighbours inside: the common case, no checks.
                let i = y0 as usize * w + x0 as usize;
                for ch in 0..c {
                    let s = &src[ch * plane..(ch + 1) * plane];
                    dst[ch * plane + k] = weights[0] * s[i]
                        + weights[1] * s[i + 1]
                        + weights[2] * s[i + w]
                        + weights[3] * s[i + w + 1];
                }
                continue;
            }
            // On the border: each neighbour outside the image reads `fill`.
            let corners = [(y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)];
            for ch in 0..c {
                let s = &src[ch * plane..(ch + 1) * plane];
                let mut v = 0.0;
                for (&(yy, xx), &wt) in corners.iter().zip(&weights) {
                    v += wt
                        * if inside(yy, xx) {
                            s[yy as usize * w + xx as usize]
                        } else {
                            fill
                        };
                }
                dst[ch * plane + k] = v;
            }
        }
    }
    out
}
