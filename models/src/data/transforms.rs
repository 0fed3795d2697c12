//! Image transforms (augmentation and preprocessing), as
//! `torchvision.transforms` for `[C, H, W]` float images.
//!
//! A [`Transform`] maps one [`Image`] to another and takes every random
//! number it needs from the generator it is handed. The
//! [`DataLoader`](super::DataLoader) hands each sample its own generator,
//! seeded from `(seed, epoch, index)`, so an augmentation is reproducible
//! from the seed whatever threads run it. Parameters are drawn in
//! torchvision's order and with its ranges; where torchvision's result
//! depends on an interpolation mode, bilinear is used.
//!
//! Geometric transforms fill pixels that come from outside the image with
//! `fill` (0: black, MNIST's background). Photometric ones
//! ([`ColorJitter`]) assume values in `[0, 1]` and clamp to it, so they come
//! before [`Normalize`].

use autograd::rng::Generator;
use rand::RngExt;

use super::image::Image;

mod affine;
mod erasing;
pub use affine::{affine, RandomAffine};
pub use erasing::RandomErasing;

/// Maps one `[C, H, W]` image to another, drawing randomness from `rng`.
///
/// `Send + Sync`: the loader applies it on background threads. Any closure
/// `Fn(Image, &mut Generator) -> Image` is a transform.
pub trait Transform: Send + Sync {
    /// The transformed image (may have another height and width).
    fn apply(&self, image: Image, rng: &mut Generator) -> Image;
}

impl<F> Transform for F
where
    F: Fn(Image, &mut Generator) -> Image + Send + Sync,
{
    fn apply(&self, image: Image, rng: &mut Generator) -> Image {
        self(image, rng)
    }
}

/// A uniform draw from `[lo, hi)`; `lo` when the range is empty (a zero
/// jitter), where `random_range` would panic.
fn uniform(rng: &mut Generator, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// Transforms applied one after the other (`transforms.Compose`).
///
/// ```
/// use models::data::transforms::{Compose, Normalize, RandomCrop, RandomHorizontalFlip};
///
/// let train = Compose::new()
///     .then(RandomCrop::new(32, 4))
///     .then(RandomHorizontalFlip::new(0.5))
///     .then(Normalize::new([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]));
/// assert_eq!(train.len(), 3);
/// ```
#[derive(Default)]
pub struct Compose {
    transforms: Vec<Box<dyn Transform>>,
}

impl Compose {
    /// No transforms (the identity).
    pub fn new() -> Compose {
        Compose::default()
    }

    /// Appends `transform`.
    pub fn then(mut self, transform: impl Transform + 'static) -> Compose {
        self.transforms.push(Box::new(transform));
        self
    }

    /// Number of transforms.
    pub fn len(&self) -> usize {
        self.transforms.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty()
    }
}

impl From<Vec<Box<dyn Transform>>> for Compose {
    fn from(transforms: Vec<Box<dyn Transform>>) -> Compose {
        Compose { transforms }
    }
}

impl Transform for Compose {
    fn apply(&self, image: Image, rng: &mut Generator) -> Image {
        self.transforms
            .iter()
            .fold(image, |image, t| t.apply(image, rng))
    }
}

/// The `height` x `width` window of `image` whose top-left corner is at
/// (`top`, `left`); the window may reach outside the image (negative or
/// large offsets), where it reads `fill`. The one primitive behind crop,
/// pad and shift: an implicit constant padding, never materialised.
pub fn crop(
    image: &Image,
    top: isize,
    left: isize,
    height: usize,
    width: usize,
    fill: f32,
) -> Image {
    let [c, h, w] = image.shape();
    let mut out = Image::full([c, height, width], fill);
    // Columns of the window that fall inside the image, and where they come from.
    let x0 = (-left).clamp(0, width as isize) as usize;
    let x1 = (w as isize - left).clamp(x0 as isize, width as isize) as usize;
    if x0 == x1 {
        return out;
    }
    let src_x0 = (left + x0 as isize) as usize;
    for ch in 0..c {
        let src = image.channel(ch);
        let dst = out.channel_mut(ch);
        for y in 0..height {
            let sy = top + y as isize;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            let row = sy as usize * w;
            dst[y * width + x0..y * width + x1]
                .copy_from_slice(&src[row + src_x0..row + src_x0 + (x1 - x0)]);
        }
    }
    out
}

/// Crops a random `size` window after padding every side by `padding`
/// pixels of `fill` (`transforms.RandomCrop(size, padding)`): the standard
/// CIFAR augmentation (32, padding 4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomCrop {
    /// `(height, width)` of the output.
    pub size: (usize, usize),
    /// Pixels added on every side before cropping.
    pub padding: usize,
    /// Value of the padding.
    pub fill: f32,
}

impl RandomCrop {
    /// A square `size` crop after `padding` zeros on every side.
    pub fn new(size: usize, padding: usize) -> RandomCrop {
        RandomCrop {
            size: (size, size),
            padding,
            fill: 0.0,
        }
    }

    /// Draws the window's top-left corner in the padded image, as
    /// torchvision: the row from `0..=H + 2p - height`, then the column.
    ///
    /// # Panics
    /// If the padded image is smaller than the crop.
    pub fn params(&self, shape: [usize; 3], rng: &mut Generator) -> (usize, usize) {
        let (ph, pw) = (shape[1] + 2 * self.padding, shape[2] + 2 * self.padding);
        let (th, tw) = self.size;
        assert!(
            th <= ph && tw <= pw,
            "RandomCrop: a {th}x{tw} crop does not fit a {}x{} image padded by {} ({ph}x{pw})",
            shape[1],
            shape[2],
            self.padding
        );
        let top = rng.random_range(0..=ph - th);
        let left = rng.random_range(0..=pw - tw);
        (top, left)
    }
}

impl Transform for RandomCrop {
    fn apply(&self, image: Image, rng: &mut Generator) -> Image {
        let (top, left) = self.params(image.shape(), rng);
        let p = self.padding as isize;
        let (th, tw) = self.size;
        crop(
            &image,
            top as isize - p,
            left as isize - p,
            th,
            tw,
            self.fill,
        )
    }
}

/// Mirrors the image left-right with probability `p`
/// (`transforms.RandomHorizontalFlip`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomHorizontalFlip {
    /// Probability of flipping.
    pub p: f32,
}

impl RandomHorizontalFlip {
    /// Flips with probability `p`.
    pub fn new(p: f32) -> RandomHorizontalFlip {
        assert!(
            (0.0..=1.0).contains(&p),
            "RandomHorizontalFlip: p = {p} is not in [0, 1]"
        );
        RandomHorizontalFlip { p }
    }
}

/// Mirrors every row of `image` (always; the deterministic half of
/// [`RandomHorizontalFlip`]).
pub fn hflip(mut image: Image) -> Image {
    let w = image.width();
    for row in image.data_mut().chunks_exact_mut(w) {
        row.reverse();
    }
    image
}

impl Transform for RandomHorizontalFlip {
    fn apply(&self, image: Image, rng: &mut Generator) -> Image {
        if rng.random::<f32>() < self.p {
            hflip(image)
        } else {
            image
        }
    }
}

/// Moves the image by a whole number of pixels, up to `max_pixels` in each
/// direction, filling the uncovered border with `fill` (the "random shift"
/// of MNIST augmentation; no torchvision class, it equals
/// `RandomAffine(0, translate)` with integer shifts and no interpolation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomShift {
    /// Largest shift, in pixels, along each axis.
    pub max_pixels: usize,
    /// Value of the uncovered pixels.
    pub fill: f32,
}

impl RandomShift {
    /// Shifts by up to `max_pixels` each way, filling with zeros.
    pub fn new(max_pixels: usize) -> RandomShift {
        RandomShift {
            max_pixels,
            fill: 0.0,
        }
    }
}

impl Transform for RandomShift {
    fn apply(&self, image: Image, rng: &mut Generator) -> Image {
        let m = self.max_pixels as i64;
        // Down by dy and right by dx: output (y, x) reads input (y - dy, x - dx).
        let dy = rng.random_range(-m..=m) as isize;
        let dx = rng.random_range(-m..=m) as isize;
        let [_, h, w] = image.shape();
        crop(&image, -dy, -dx, h, w, self.fill)
    }
}

/// Random brightness and contrast (`transforms.ColorJitter(brightness,
/// contrast)`), for values in `[0, 1]`.
///
/// Factors from `[max(0, 1 - b), 1 + b]` and `[max(0, 1 - c), 1 + c]`;
/// brightness multiplies, contrast blends with the mean grey level; each
/// result is clamped to `[0, 1]`; the two run in a random order, as
/// torchvision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    /// How far the brightness factor may move from 1.
    pub brightness: f32,
    /// How far the contrast factor may move from 1.
    pub contrast: f32,
}

impl ColorJitter {
    /// Jitter of brightness and contrast by up to the given amounts.
    pub fn new(brightness: f32, contrast: f32) -> ColorJitter {
        assert!(
            brightness >= 0.0 && contrast >= 0.0,
            "ColorJitter: brightness {brightness} and contrast {contrast} must be >= 0"
        );
        ColorJitter {
            brightness,
            contrast,
        }
    }
}

/// Multiplies by `factor` and clamps to `[0, 1]` (`F.adjust_brightness`).
pub fn adjust_brightness(mut image: Image, factor: f32) -> Image {
    for v in image.data_mut() {
        *v = (*v * factor).clamp(0.0, 1.0);
    }
    image
}

/// Blends with the mean grey level by `factor` and clamps to `[0, 1]`
/// (`F.adjust_contrast`; grey is ITU-R 601 luma for 3 channels, the plain
/// mean otherwise).
pub fn adjust_contrast(mut image: Image, factor: f32) -> Image {
    let plane = image.height() * image.width();
    let mean = if image.channels() == 3 {
        let lum: f64 = [0.2989f64, 0.587, 0.114]
            .iter()
            .enumerate()
            .map(|(c, &k)| k * image.channel(c).iter().map(|&v| f64::from(v)).sum::<f64>())
            .sum();
        (lum / plane as f64) as f32
    } else {
        let sum: f64 = image.data().iter().map(|&v| f64::from(v)).sum();
        (sum / image.data().len() as f64) as f32
    };
    let offset = (1.0 - factor) * mean;
    for v in image.data_mut() {
        *v = (factor * *v + offset).clamp(0.0, 1.0);
    }
    image
}

impl Transform for ColorJitter {
    fn apply(&self, image: Image, rng: &mut Generator) -> Image {
        let brightness_first = rng.random::<bool>();
        let b = uniform(rng, (1.0 - self.brightness).max(0.0), 1.0 + self.brightness);
        let c = uniform(rng, (1.0 - self.contrast).max(0.0), 1.0 + self.contrast);
        let (b_on, c_on) = (self.brightness > 0.0, self.contrast > 0.0);
        let mut image = image;
        if brightness_first && b_on {
            image = adjust_brightness(image, b);
        }
        if c_on {
            image = adjust_contrast(image, c);
        }
        if !brightness_first && b_on {
            image = adjust_brightness(image, b);
        }
        image
    }
}

/// `(x - mean[c]) / std[c]` per channel (`transforms.Normalize`); one
/// value applies to every channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// Per-channel means (or one for all channels).
    pub mean: Vec<f32>,
    /// Per-channel standard deviations (or one for all channels).
    pub std: Vec<f32>,
}

impl Normalize {
    /// Normalization with the given per-channel statistics.
    ///
    /// # Panics
    /// If the lengths differ or a standard deviation is not positive.
    pub fn new(mean: impl Into<Vec<f32>>, std: impl Into<Vec<f32>>) -> Normalize {
        let (mean, std) = (mean.into(), std.into());
        assert!(
            mean.len() == std.len() && !mean.is_empty(),
            "Normalize: {} means and {} standard deviations",
            mean.len(),
            std.len()
        );
        assert!(
            std.iter().all(|&s| s > 0.0),
            "Normalize: standard deviations {std:?} must be positive"
        );
        Normalize { mean, std }
    }

    /// MNIST's training-set statistics (0.1307, 0.3081), the usual choice.
    pub fn mnist() -> Normalize {
        Normalize::new([0.1307], [0.3081])
    }

    /// CIFAR-10's training-set per-channel statistics.
    pub fn cifar10() -> Normalize {
        Normalize::new([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])
    }
}

impl Transform for Normalize {
    fn apply(&self, mut image: Image, _rng: &mut Generator) -> Image {
        let c = image.channels();
        assert!(
            self.mean.len() == 1 || self.mean.len() == c,
            "Normalize: {} means for an image of {c} channels",
            self.mean.len()
        );
        for ch in 0..c {
            let k = if self.mean.len() == 1 { 0 } else { ch };
            let (m, s) = (self.mean[k], self.std[k]);
            for v in image.channel_mut(ch) {
                *v = (*v - m) / s;
            }
        }
        image
    }
}

/// Adds a constant border (`transforms.Pad`): 28x28 MNIST becomes the
/// 32x32 the big networks expect with `Pad::new(2)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pad {
    /// Pixels added on the left, top, right and bottom.
    pub ltrb: (usize, usize, usize, usize),
    /// Value of the border.
    pub fill: f32,
}

impl Pad {
    /// `padding` zeros on every side.
    pub fn new(padding: usize) -> Pad {
        Pad::ltrb(padding, padding, padding, padding)
    }

    /// Zeros on the left, top, right and bottom.
    pub fn ltrb(left: usize, top: usize, right: usize, bottom: usize) -> Pad {
        Pad {
            ltrb: (left, top, right, bottom),
            fill: 0.0,
        }
    }
}

impl Transform for Pad {
    fn apply(&self, image: Image, _rng: &mut Generator) -> Image {
        let (l, t, r, b) = self.ltrb;
        let [_, h, w] = image.shape();
        crop(
            &image,
            -(t as isize),
            -(l as isize),
            h + t + b,
            w + l + r,
            self.fill,
        )
    }
}

/// Crops the centre `height` x `width` window (`transforms.CenterCrop`);
/// a window larger than the image is padded with zeros.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CenterCrop {
    /// `(height, width)` of the output.
    pub size: (usize, usize),
}

impl CenterCrop {
    /// A square centre crop.
    pub fn new(size: usize) -> CenterCrop {
        CenterCrop { size: (size, size) }
    }
}

impl Transform for CenterCrop {
    fn apply(&self, image: Image, _rng: &mut Generator) -> Image {
        let [_, h, w] = image.shape();
        let (th, tw) = self.size;
        // torchvision: int(round((h - th) / 2)), Python's ties-to-even.
        let offset = |full: usize, part: usize| {
            ((full as f64 - part as f64) / 2.0).round_ties_even() as isize
        };
        crop(&image, offset(h, th), offset(w, tw), th, tw, 0.0)
    }
}

/// Bilinear resize to `height` x `width` (`transforms.Resize` with
/// `BILINEAR`, `align_corners=False`, as `F.interpolate`); no antialiasing,
/// so it is meant for enlarging (28 -> 32) or mild shrinking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resize {
    /// `(height, width)` of the output.
    pub size: (usize, usize),
}

impl Resize {
    /// Resize to a `size` x `size` square.
    pub fn new(size: usize) -> Resize {
        Resize { size: (size, size) }
    }
}

/// For each output index along one axis: the two input indices and the
/// weight of the second, as PyTorch's `upsample_bilinear2d`
/// (`align_corners=False`: pixel centres aligned, sources below 0 clamped).
fn linear_taps(input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|o| {
            let src = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src as usize).min(input - 1);
            let i1 = (i0 + 1).min(input - 1);
            (i0, i1, src - i0 as f32)
        })
        .collect()
}

/// Resizes `image` bilinearly to `height` x `width` (see [`Resize`]).
pub fn resize(image: &Image, height: usize, width: usize) -> Image {
    let [c, h, w] = image.shape();
    if (h, w) == (height, width) {
        return image.clone();
    }
    let (rows, cols) = (linear_taps(h, height), linear_taps(w, width));
    let mut out = Image::full([c, height, width], 0.0);
    for ch in 0..c {
        let src = image.channel(ch);
        let dst = out.channel_mut(ch);
        for (y, &(y0, y1, wy)) in rows.iter().enumerate() {
            for (x, &(x0, x1, wx)) in cols.iter().enumerate() {
                let top = src[y0 * w + x0] * (1.0 - wx) + src[y0 * w + x1] * wx;
                let bottom = src[y1 * w + x0] * (1.0 - wx) + src[y1 * w + x1] * wx;
                dst[y * width + x] = top * (1.0 - wy) + bottom * wy;
            }
        }
    }
    out
}

impl Transform for Resize {
    fn apply(&self, image: Image, _rng: &mut Generator) -> Image {
        resize(&image, self.size.0, self.size.1)
    }
}
