//! [`DigitScenes`]: a semantic-segmentation dataset made from labelled
//! digit images (MNIST): square scenes with a few digits placed at random
//! without overlap, and a mask giving each pixel its digit's class where
//! the digit's ink is, else [`DigitScenes::BACKGROUND`].
//!
//! Scenes are generated on the fly, scene `i` from a generator seeded with
//! `(seed, i)`, so a dataset is reproducible from its seed and costs no
//! memory; training scenes come from training digits and test scenes from
//! test digits.
//!
//! ```
//! use std::sync::Arc;
//! use models::data::{Dataset, DigitScenes, Image, InMemory};
//!
//! // Ten 28x28 "digits": a filled 8x8 square of ink, labelled 0..9.
//! let square: Vec<f32> = (0..28 * 28).map(|i| f32::from(u8::from((10..18).contains(&(i / 28)) && (10..18).contains(&(i % 28))))).collect();
//! let digits = InMemory::new(square.repeat(10), [1, 28, 28], (0..10).collect())?;
//! let scenes = DigitScenes::new(Arc::new(digits), 100, 7);
//! let (image, mask) = scenes.get(3);
//! assert_eq!(image.shape(), [1, 64, 64]);
//! assert_eq!(mask.len(), 64 * 64);
//! let ink = mask.iter().filter(|&&c| c != DigitScenes::BACKGROUND).count();
//! assert!((2 * 64..=4 * 64).contains(&ink), "2 to 4 squares of 64 pixels: {ink}");
//! assert_eq!(scenes.get(3), (image, mask), "the same scene from the same seed");
//! # Ok::<(), models::data::DataError>(())
//! ```

use std::sync::Arc;

use rand::RngExt;

use super::dataset::{Dataset, ImageDataset};
use super::image::Image;
use super::seed::derive_seed;
use autograd::rng::generator;

/// Stream of the scene generator, apart from the loader's streams.
const SCENE_STREAM: u64 = 0x5_ce4e;

/// Scenes of digits with per-pixel class masks; items are `([1, S, S]
/// image, S * S labels)`, labels row-major in `0..=10` (digit classes, then
/// the background), ready for [`cross_entropy`](autograd::Tensor::cross_entropy_opts)
/// on `[N, 11, S, S]` logits once a [`DataLoader`](super::DataLoader)
/// stacks them.
#[derive(Clone)]
pub struct DigitScenes {
    digits: Arc<dyn ImageDataset>,
    len: usize,
    seed: u64,
    size: usize,
    min_digits: usize,
    max_digits: usize,
    threshold: f32,
}

impl DigitScenes {
    /// The label of pixels without ink: one past the digit classes.
    pub const BACKGROUND: usize = 10;
    /// Classes of a mask: ten digits and the background.
    pub const CLASSES: usize = 11;
    /// Attempts at a free spot for one digit before the scene goes without it.
    const TRIES: usize = 200;

    /// `len` scenes of 64x64 with 2 to 4 digits drawn from `digits`
    /// (single-channel images with labels `0..10`), ink where a digit's
    /// value exceeds 0.5, generated from `seed`.
    pub fn new(digits: Arc<dyn ImageDataset>, len: usize, seed: u64) -> Self {
        DigitScenes {
            digits,
            len,
            seed,
            size: 64,
            min_digits: 2,
            max_digits: 4,
            threshold: 0.5,
        }
    }

    /// The scenes' side in pixels (default 64).
    pub fn size(mut self, side: usize) -> Self {
        self.size = side;
        self
    }

    /// Digits per scene, drawn uniformly in `min..=max` (default 2 to 4).
    pub fn digits_per_scene(mut self, min: usize, max: usize) -> Self {
        self.min_digits = min.min(max);
        self.max_digits = max.max(min);
        self
    }

    /// Pixel values above which a digit's pixel is ink (default 0.5).
    pub fn threshold(mut self, t: f32) -> Self {
        self.threshold = t;
        self
    }

    /// The side of the scenes.
    pub fn side(&self) -> usize {
        self.size
    }

    /// The ink's bounding box of digit `k`: rows `r0..r1`, columns `c0..c1`
    /// (the whole image if it has no ink).
    fn ink_box(&self, image: &Image) -> [usize; 4] {
        let (h, w) = (image.height(), image.width());
        let (mut r0, mut r1, mut c0, mut c1) = (h, 0, w, 0);
        for y in 0..h {
            for x in 0..w {
                if image.at(0, y, x) > self.threshold {
                    (r0, r1, c0, c1) = (r0.min(y), r1.max(y + 1), c0.min(x), c1.max(x + 1));
                }
            }
        }
        if r0 >= r1 {
            [0, h, 0, w]
        } else {
            [r0, r1, c0, c1]
        }
    }
}

impl Dataset for DigitScenes {
    type Item = (Image, Vec<usize>);

    fn len(&self) -> usize {
        self.len
    }

    /// Scene `index`: digits chosen at random, each cropped to its ink's
    /// bounding box and put where that box meets no other (one pixel apart);
    /// a digit that finds no free spot in 200 tries is left out, which at
    /// the defaults (boxes of at most 20x20 in 64x64) does not happen for
    /// the first two.
    fn get(&self, index: usize) -> (Image, Vec<usize>) {
        assert!(index < self.len, "scene {index} of {}", self.len);
        let mut rng = generator(derive_seed(self.seed, &[SCENE_STREAM, index as u64]));
        let s = self.size;
        let mut pixels = vec![0.0f32; s * s];
        let mut mask = vec![Self::BACKGROUND; s * s];
        let count = rng.random_range(self.min_digits..=self.max_digits);
        let mut placed: Vec<[usize; 4]> = Vec::new();
        for _ in 0..count {
            let (digit, label) = self.digits.get(rng.random_range(0..self.digits.len()));
            let [r0, r1, c0, c1] = self.ink_box(&digit);
            let (bh, bw) = (r1 - r0, c1 - c0);
            if bh > s || bw > s {
                continue;
            }
            // Rejection sampling of the top-left corner; boxes keep a one-pixel gap.
            let spot = (0..Self::TRIES).find_map(|_| {
                let (y, x) = (rng.random_range(0..=s - bh), rng.random_range(0..=s - bw));
                let free = placed.iter().all(|&[py, px, ph, pw]| {
                    y > py + ph || py > y + bh || x > px + pw || px > x + bw
                });
                free.then_some((y, x))
            });
            let Some((y, x)) = spot else { continue };
            placed.push([y, x, bh, bw]);
            for dy in 0..bh {
                for dx in 0..bw {
                    let v = digit.at(0, r0 + dy, c0 + dx);
                    let at = (y + dy) * s + x + dx;
                    pixels[at] = v;
                    if v > self.threshold {
                        mask[at] = label;
                    }
                }
            }
        }
        (Image::new(pixels, [1, s, s]), mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::InMemory;

    /// Ten digits: digit `d` is a `(4 + d) x 6` block of ink (value 0.9)
    /// with a faint (0.2) border, in a 28x28 image.
    fn blocks() -> Arc<dyn ImageDataset> {
        let images: Vec<Vec<f32>> = (0..10)
            .map(|d| {
                let mut v = vec![0.0f32; 28 * 28];
                for y in 5..(5 + 4 + d + 2) {
                    for x in 5..13 {
                        let inner = y > 5 && y < 5 + 4 + d + 1 && x > 5 && x < 12;
                        v[y * 28 + x] = if inner { 0.9 } else { 0.2 };
                    }
                }
                v
            })
            .collect();
        Arc::new(InMemory::new(images.concat(), [1, 28, 28], (0..10).collect()).expect("blocks"))
    }

    #[test]
    fn masks_label_the_ink_of_each_digit_and_nothing_else() {
        let scenes = DigitScenes::new(blocks(), 50, 3);
        let mut counts = [0usize; 5];
        for i in 0..scenes.len() {
            let (image, mask) = scenes.get(i);
            let px = image.data();
            for (&v, &m) in px.iter().zip(&mask) {
                // Ink (0.9) is labelled with a digit; the faint border and
                // the empty canvas are background.
                assert_eq!(
                    m != DigitScenes::BACKGROUND,
                    v > 0.5,
                    "pixel {v} labelled {m}"
                );
            }
            // Each digit's ink is one (4 + d) x 6 block: count them per class.
            let mut digits = 0;
            for d in 0..10 {
                let n = mask.iter().filter(|&&m| m == d).count();
                assert_eq!(n % ((4 + d) * 6), 0, "class {d}: {n} pixels");
                digits += n / ((4 + d) * 6);
            }
            assert!((2..=4).contains(&digits), "scene {i}: {digits} digits");
            counts[digits] += 1;
        }
        // 2, 3 and 4 digits all occur.
        assert!(
            counts[2] > 0 && counts[3] > 0 && counts[4] > 0,
            "{counts:?}"
        );
    }

    #[test]
    fn digits_do_not_overlap_or_touch() {
        // Each digit's whole 8-wide box (ink and border) is drawn: boxes
        // that overlapped would merge two blocks of ink into one region
        // with a non-background border pixel missing; here we check that
        // every ink pixel's 4-neighbours are its own class or background.
        let scenes = DigitScenes::new(blocks(), 50, 11).digits_per_scene(4, 4);
        for i in 0..scenes.len() {
            let (_, mask) = scenes.get(i);
            for y in 0..63 {
                for x in 0..63 {
                    let m = mask[y * 64 + x];
                    for n in [mask[y * 64 + x + 1], mask[(y + 1) * 64 + x]] {
                        assert!(
                            m == n || m == DigitScenes::BACKGROUND || n == DigitScenes::BACKGROUND,
                            "scene {i}: classes {m} and {n} touch at ({y}, {x})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn scenes_depend_on_the_seed_and_index_only() {
        let a = DigitScenes::new(blocks(), 20, 5).size(48);
        let b = DigitScenes::new(blocks(), 20, 5).size(48);
        let c = DigitScenes::new(blocks(), 20, 6).size(48);
        assert_eq!(a.get(7), b.get(7));
        assert_eq!(a.get(7).0.shape(), [1, 48, 48]);
        assert_ne!(a.get(7), a.get(8));
        assert_ne!(a.get(7), c.get(7));
    }
}
