//! Random erasing (Zhong et al., 2017; `transforms.RandomErasing`): a
//! random rectangle of the image is blanked out, so that the network cannot
//! rely on any one part of an object being visible.

use autograd::rng::Generator;
use rand::RngExt;

use super::{uniform, Transform};
use crate::data::image::Image;

/// With probability `p`, fills one random rectangle covering `scale` of the
/// image's area, with height/width ratio in `ratio`, with `value`
/// (`transforms.RandomErasing(p, scale, ratio, value)`).
///
/// Parameters are drawn as torchvision draws them: the area, then the log
/// of the ratio, then (if the rectangle fits) its top and left; up to 10
/// tries, after which the image is left as it is. Applied after
/// [`Normalize`](super::Normalize) in torchvision's recipes, so `value`
/// 0 is the mean there; on unnormalised images it is black.
///
/// ```
/// use autograd::rng::generator;
/// use models::data::transforms::{RandomErasing, Transform};
/// use models::data::Image;
///
/// let erase = RandomErasing::new(1.0); // always erase
/// let image = Image::full([1, 28, 28], 1.0);
/// let out = erase.apply(image, &mut generator(0));
/// let erased = out.data().iter().filter(|&&v| v == 0.0).count();
/// assert!(erased > 0 && erased < 28 * 28 / 2); // 2%..33% of the area, rounded to whole pixels
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomErasing {
    /// Probability of erasing.
    pub p: f32,
    /// Range of the erased fraction of the area.
    pub scale: (f32, f32),
    /// Range of the rectangle's height/width ratio.
    pub ratio: (f32, f32),
    /// Value written into the rectangle.
    pub value: f32,
}

impl RandomErasing {
    /// torchvision's defaults: area 2%..33%, ratio 0.3..3.3, value 0.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1]`.
    pub fn new(p: f32) -> RandomErasing {
        assert!(
            (0.0..=1.0).contains(&p),
            "RandomErasing: p = {p} is not in [0, 1]"
        );
        RandomErasing {
            p,
            scale: (0.02, 0.33),
            ratio: (0.3, 3.3),
            value: 0.0,
        }
    }

    /// The erased fraction of the area, from `lo` to `hi`.
    ///
    /// # Panics
    /// If `0 <= lo <= hi <= 1` does not hold.
    pub fn scale(mut self, lo: f32, hi: f32) -> RandomErasing {
        assert!(
            0.0 <= lo && lo <= hi && hi <= 1.0,
            "RandomErasing: scale ({lo}, {hi}) is not a range within [0, 1]"
        );
        self.scale = (lo, hi);
        self
    }

    /// The rectangle's height/width ratio, from `lo` to `hi`.
    ///
    /// # Panics
    /// If `0 < lo <= hi` does not hold.
    pub fn ratio(mut self, lo: f32, hi: f32) -> RandomErasing {
        assert!(
            0.0 < lo && lo <= hi,
            "RandomErasing: ratio ({lo}, {hi}) is not a positive range"
        );
        self.ratio = (lo, hi);
        self
    }

    /// The value written into the rectangle.
    pub fn value(mut self, value: f32) -> RandomErasing {
        self.value = value;
        self
    }

    /// The rectangle `(top, left, height, width)` to erase in an image of
    /// `shape`, or `None` when no try fits (the image is left unchanged).
    pub fn params(
        &self,
        shape: [usize; 3],
        rng: &mut Generator,
    ) -> Option<(usize, usize, usize, usize)> {
        let (h, w) = (shape[1], shape[2]);
        let area = (h * w) as f32;
        let (log_lo, log_hi) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let erase_area = area * uniform(rng, self.scale.0, self.scale.1);
            let aspect = uniform(rng, log_lo, log_hi).exp();
            let eh = (erase_area * aspect).sqrt().round() as usize;
            let ew = (erase_area / aspect).sqrt().round() as usize;
            if eh == 0 || ew == 0 || eh >= h || ew >= w {
                continue;
            }
            let top = rng.random_range(0..=h - eh);
            let left = rng.random_range(0..=w - ew);
            return Some((top, left, eh, ew));
        }
        None
    }
}

impl Transform for RandomErasing {
    fn apply(&self, mut image: Image, rng: &mut Generator) -> Image {
        if rng.random::<f32>() >= self.p {
            return image;
        }
        let Some((top, left, eh, ew)) = self.params(image.shape(), rng) else {
            return image;
        };
        let w = image.width();
        for c in 0..image.channels() {
            let plane = image.channel_mut(c);
            for row in plane.chunks_exact_mut(w).skip(top).take(eh) {
                row[left..left + ew].fill(self.value);
            }
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::rng::generator;

    #[test]
    fn erases_one_rectangle_in_every_channel() {
        let erase = RandomErasing::new(1.0).value(-1.0);
        for seed in 0..200 {
            let out = erase.apply(Image::full([3, 20, 30], 1.0), &mut generator(seed));
            let (top, left, eh, ew) = erase
                .params([3, 20, 30], &mut {
                    let mut g = generator(seed);
                    let _ = g.random::<f32>(); // the draw that decided to erase
                    g
                })
                .expect("a 2%..33% rectangle fits a 20x30 image within 10 tries");
            let frac = (eh * ew) as f32 / 600.0;
            assert!(
                (0.01..=0.36).contains(&frac),
                "seed {seed}: fraction {frac}"
            );
            let ratio = eh as f32 / ew as f32;
            assert!((0.2..=5.0).contains(&ratio), "seed {seed}: ratio {ratio}");
            for c in 0..3 {
                for y in 0..20 {
                    for x in 0..30 {
                        let inside = (top..top + eh).contains(&y) && (left..left + ew).contains(&x);
                        let want = if inside { -1.0 } else { 1.0 };
                        assert_eq!(out.at(c, y, x), want, "seed {seed} at ({c}, {y}, {x})");
                    }
                }
            }
        }
    }

    #[test]
    fn erases_with_probability_p() {
        let erase = RandomErasing::new(0.3);
        let erased = (0..2000)
            .filter(|&s| {
                let out = erase.apply(Image::full([1, 28, 28], 1.0), &mut generator(s));
                out.data().contains(&0.0)
            })
            .count();
        assert!(
            (500..700).contains(&erased),
            "{erased} of 2000 erased at p = 0.3"
        );
        let never = RandomErasing::new(0.0);
        let img = Image::full([1, 8, 8], 1.0);
        assert_eq!(never.apply(img.clone(), &mut generator(1)), img);
    }

    #[test]
    fn gives_up_when_nothing_fits() {
        // Every rectangle of at least 90% of a 2x2 image's area is as large as the image.
        let erase = RandomErasing::new(1.0).scale(0.9, 1.0);
        let img = Image::full([1, 2, 2], 1.0);
        assert_eq!(erase.apply(img.clone(), &mut generator(3)), img);
    }
}
