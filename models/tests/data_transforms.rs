//! Image transforms: shapes, determinism from the seed, and the maths
//! checked against direct reference computations.

use autograd::rng::{generator, Generator};
use models::data::transforms::{
    adjust_brightness, adjust_contrast, affine, crop, hflip, resize, CenterCrop, ColorJitter,
    Compose, Normalize, Pad, RandomAffine, RandomCrop, RandomHorizontalFlip, RandomShift, Resize,
    Transform,
};
use models::data::Image;
use proptest::prelude::*;
use rand::RngExt;

/// A `[c, h, w]` image of distinct values in `[0, 1)`, from `seed`.
fn random_image(shape: [usize; 3], seed: u64) -> Image {
    let mut rng = generator(seed);
    let n = shape.iter().product();
    Image::new((0..n).map(|_| rng.random::<f32>()).collect(), shape)
}

/// The image padded by `p` zeros on every side, built the obvious way.
fn reference_pad(img: &Image, p: usize) -> Image {
    let [c, h, w] = img.shape();
    let mut out = Image::full([c, h + 2 * p, w + 2 * p], 0.0);
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                out.data_mut()[(ch * ph + y + p) * pw + x + p] = img.at(ch, y, x);
            }
        }
    }
    out
}

fn reference_crop(img: &Image, top: usize, left: usize, th: usize, tw: usize) -> Image {
    let c = img.channels();
    let mut v = Vec::new();
    for ch in 0..c {
        for y in 0..th {
            for x in 0..tw {
                v.push(img.at(ch, top + y, left + x));
            }
        }
    }
    Image::new(v, [c, th, tw])
}

fn max_abs_diff(a: &Image, b: &Image) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn shapes() {
    let img = random_image([3, 28, 28], 0);
    let mut rng = generator(0);
    let cases: Vec<(Box<dyn Transform>, [usize; 3])> = vec![
        (Box::new(RandomCrop::new(24, 0)), [3, 24, 24]),
        (Box::new(RandomCrop::new(28, 4)), [3, 28, 28]),
        (Box::new(RandomHorizontalFlip::new(0.5)), [3, 28, 28]),
        (Box::new(RandomShift::new(3)), [3, 28, 28]),
        (
            Box::new(RandomAffine::new(15.0).translate(0.1, 0.1).scale(0.9, 1.1)),
            [3, 28, 28],
        ),
        (Box::new(ColorJitter::new(0.4, 0.4)), [3, 28, 28]),
        (Box::new(Normalize::cifar10()), [3, 28, 28]),
        (Box::new(Pad::new(2)), [3, 32, 32]),
        (Box::new(Pad::ltrb(1, 2, 3, 4)), [3, 34, 32]),
        (Box::new(Resize::new(32)), [3, 32, 32]),
        (Box::new(Resize { size: (14, 20) }), [3, 14, 20]),
        (Box::new(CenterCrop::new(20)), [3, 20, 20]),
        (
            Box::new(
                Compose::new()
                    .then(Pad::new(4))
                    .then(RandomCrop::new(32, 0)),
            ),
            [3, 32, 32],
        ),
    ];
    for (t, shape) in cases {
        let out = t.apply(img.clone(), &mut rng);
        assert_eq!(out.shape(), shape);
        assert!(out.data().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn random_transforms_follow_the_seed() {
    let img = random_image([1, 28, 28], 1);
    let t = Compose::new()
        .then(RandomCrop::new(28, 2))
        .then(RandomHorizontalFlip::new(0.5))
        .then(RandomShift::new(2))
        .then(RandomAffine::new(10.0).translate(0.1, 0.1).scale(0.9, 1.1))
        .then(ColorJitter::new(0.3, 0.3));
    let run = |seed| t.apply(img.clone(), &mut generator(seed));
    assert_eq!(run(5), run(5));
    let outputs: Vec<Image> = (0..8).map(run).collect();
    for i in 0..8 {
        for j in i + 1..8 {
            assert_ne!(outputs[i], outputs[j], "seeds {i} and {j} agree");
        }
    }
}

#[test]
fn flip() {
    let img = random_image([2, 5, 7], 2);
    let flipped = hflip(img.clone());
    for (c, y, x) in [(0, 0, 0), (1, 4, 2), (1, 3, 6)] {
        assert_eq!(flipped.at(c, y, x), img.at(c, y, 6 - x));
    }
    assert_eq!(hflip(flipped), img, "flip twice = identity");
    let mut rng = generator(0);
    assert_eq!(
        RandomHorizontalFlip::new(1.0).apply(img.clone(), &mut rng),
        hflip(img.clone())
    );
    assert_eq!(
        RandomHorizontalFlip::new(0.0).apply(img.clone(), &mut rng),
        img
    );
    let flips = (0..1000)
        .filter(|&s| RandomHorizontalFlip::new(0.5).apply(img.clone(), &mut generator(s)) != img)
        .count();
    assert!((400..600).contains(&flips), "{flips} flips of 1000");
}

#[test]
fn normalize_math() {
    let img = random_image([3, 4, 4], 3);
    let (mean, std) = ([0.1f32, 0.5, 0.9], [0.2f32, 0.25, 4.0]);
    let out = Normalize::new(mean, std).apply(img.clone(), &mut generator(0));
    for c in 0..3 {
        for (o, i) in out.channel(c).iter().zip(img.channel(c)) {
            assert_eq!(*o, (i - mean[c]) / std[c]);
        }
    }
    // One value for every channel.
    let out = Normalize::new([0.5], [0.5]).apply(img.clone(), &mut generator(0));
    assert!(out
        .data()
        .iter()
        .zip(img.data())
        .all(|(o, i)| *o == (i - 0.5) / 0.5));
}

#[test]
#[should_panic(expected = "3 means for an image of 1 channels")]
fn normalize_checks_channels() {
    Normalize::cifar10().apply(Image::full([1, 2, 2], 0.0), &mut generator(0));
}

#[test]
fn crop_with_padding_matches_reference() {
    let img = random_image([2, 6, 5], 4);
    let (p, size) = (2, (6, 4));
    let padded = reference_pad(&img, p);
    // Every window position of the padded image.
    for top in 0..=6 + 2 * p - size.0 {
        for left in 0..=5 + 2 * p - size.1 {
            let ours = crop(
                &img,
                top as isize - p as isize,
                left as isize - p as isize,
                size.0,
                size.1,
                0.0,
            );
            assert_eq!(
                ours,
                reference_crop(&padded, top, left, size.0, size.1),
                "at ({top}, {left})"
            );
        }
    }
    // RandomCrop is that crop at the position `params` draws.
    let t = RandomCrop {
        size,
        padding: p,
        fill: 0.0,
    };
    for seed in 0..20 {
        let (top, left) = t.params(img.shape(), &mut generator(seed));
        let out = t.apply(img.clone(), &mut generator(seed));
        assert_eq!(out, reference_crop(&padded, top, left, size.0, size.1));
    }
    // A window entirely outside the image is all fill.
    assert!(crop(&img, 10, -20, 3, 3, 0.5)
        .data()
        .iter()
        .all(|&v| v == 0.5));
}

#[test]
fn pad_center_crop_and_shift() {
    let img = random_image([1, 28, 28], 5);
    let padded = Pad::new(2).apply(img.clone(), &mut generator(0));
    assert_eq!(padded, reference_pad(&img, 2));
    let back = CenterCrop::new(28).apply(padded, &mut generator(0));
    assert_eq!(back, img);
    // torchvision's rounding: (28 - 25) / 2 = 1.5 rounds to 2.
    let c = CenterCrop::new(25).apply(img.clone(), &mut generator(0));
    assert_eq!(c, reference_crop(&img, 2, 2, 25, 25));
    // A shift moves content by whole pixels and fills the rest with zeros.
    for seed in 0..10 {
        let out = RandomShift::new(3).apply(img.clone(), &mut generator(seed));
        let matches: Vec<(isize, isize)> = (-3..=3)
            .flat_map(|dy| (-3..=3).map(move |dx| (dy, dx)))
            .filter(|&(dy, dx)| out == crop(&img, -dy, -dx, 28, 28, 0.0))
            .collect();
        assert_eq!(matches.len(), 1, "seed {seed}");
    }
}

#[test]
fn affine_identity_rotation_and_translation() {
    let img = random_image([3, 9, 9], 6);
    // Zero rotation and shift, scale 1: the identity (bilinear weights 1, 0).
    let same = affine(&img, 0.0, (0.0, 0.0), 1.0, 0.0);
    assert!(max_abs_diff(&same, &img) <= 1e-6);
    let mut rng = generator(0);
    let id = RandomAffine::new(0.0)
        .translate(0.0, 0.0)
        .scale(1.0, 1.0)
        .apply(img.clone(), &mut rng);
    assert!(max_abs_diff(&id, &img) <= 1e-6);
    // 90 degrees counter-clockwise: out[y][x] = in[x][W-1-y] (numpy's rot90).
    let rot = affine(&img, 90.0, (0.0, 0.0), 1.0, 0.0);
    for c in 0..3 {
        for y in 0..9 {
            for x in 0..9 {
                assert!((rot.at(c, y, x) - img.at(c, x, 8 - y)).abs() < 1e-5);
            }
        }
    }
    // A whole-pixel translation is a shift: right 2, down 1.
    let moved = affine(&img, 0.0, (2.0, 1.0), 1.0, 0.0);
    assert!(max_abs_diff(&moved, &crop(&img, -1, -2, 9, 9, 0.0)) <= 1e-6);
    // Scaling a constant image leaves its interior constant.
    let flat = Image::full([1, 9, 9], 0.25);
    let big = affine(&flat, 30.0, (0.0, 0.0), 1.5, 0.0);
    assert!((big.at(0, 4, 4) - 0.25).abs() < 1e-6);
    // Drawn parameters stay in range; translations are whole pixels.
    let t = RandomAffine::new(10.0).translate(0.1, 0.2).scale(0.9, 1.1);
    for seed in 0..50 {
        let (angle, (tx, ty), s) = t.params([1, 28, 28], &mut generator(seed));
        assert!((-10.0..=10.0).contains(&angle) && (0.9..=1.1).contains(&s));
        assert!(tx.fract() == 0.0 && tx.abs() <= 3.0 && ty.fract() == 0.0 && ty.abs() <= 6.0);
    }
}

#[test]
fn color_jitter() {
    let img = random_image([3, 8, 8], 7);
    // No jitter: the identity.
    assert_eq!(
        ColorJitter::new(0.0, 0.0).apply(img.clone(), &mut generator(0)),
        img
    );
    // Brightness multiplies and clamps.
    let b = adjust_brightness(img.clone(), 1.5);
    assert!(b
        .data()
        .iter()
        .zip(img.data())
        .all(|(o, i)| *o == (i * 1.5).min(1.0)));
    // Contrast 0 gives the grey mean everywhere; contrast 1 is the identity.
    let grey = adjust_contrast(img.clone(), 0.0);
    let plane = 64.0;
    let mean = (0.2989 * img.channel(0).iter().sum::<f32>()
        + 0.587 * img.channel(1).iter().sum::<f32>()
        + 0.114 * img.channel(2).iter().sum::<f32>())
        / plane;
    assert!(grey.data().iter().all(|v| (v - mean).abs() < 1e-5));
    assert!(max_abs_diff(&adjust_contrast(img.clone(), 1.0), &img) < 1e-6);
    // Random jitter stays in [0, 1] and changes the image.
    for seed in 0..10 {
        let out = ColorJitter::new(0.5, 0.5).apply(img.clone(), &mut generator(seed));
        assert!(out.data().iter().all(|v| (0.0..=1.0).contains(v)));
        assert_ne!(out, img);
    }
}

#[test]
fn resize_bilinear() {
    // PyTorch: F.interpolate([[0, 1], [2, 3]], size=4, mode="bilinear", align_corners=False).
    let small = Image::new(vec![0.0, 1.0, 2.0, 3.0], [1, 2, 2]);
    let expected = [
        0.0, 0.25, 0.75, 1.0, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2.0, 2.25, 2.75, 3.0,
    ];
    assert_eq!(resize(&small, 4, 4).data(), &expected);
    // MNIST size to the big networks' 32x32: shape and range kept.
    let img = random_image([1, 28, 28], 8);
    let out = Resize::new(32).apply(img.clone(), &mut generator(0));
    assert_eq!(out.shape(), [1, 32, 32]);
    let (lo, hi) = img
        .data()
        .iter()
        .fold((1f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(out.data().iter().all(|&v| v >= lo - 1e-6 && v <= hi + 1e-6));
    let flat = resize(&Image::full([2, 28, 28], 0.7), 32, 32);
    assert!(flat.data().iter().all(|&v| (v - 0.7).abs() < 1e-6));
    assert_eq!(resize(&img, 28, 28), img);
}

#[test]
fn closures_are_transforms() {
    let add_noise = |mut img: Image, rng: &mut Generator| {
        for v in img.data_mut() {
            *v += rng.random::<f32>() * 0.01;
        }
        img
    };
    let t = Compose::new().then(Pad::new(1)).then(add_noise);
    let out = t.apply(Image::full([1, 2, 2], 0.0), &mut generator(0));
    assert_eq!(out.shape(), [1, 4, 4]);
    assert!(out.data().iter().all(|&v| (0.0..0.01).contains(&v)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Bilinear sampling is a convex combination: the output of any affine
    /// transform lies between the smallest and largest of input and fill.
    #[test]
    fn affine_stays_in_range(h in 1usize..12, w in 1usize..12, seed in any::<u64>(),
                             degrees in 0f32..45.0, fill in 0f32..1.0) {
        let img = random_image([2, h, w], seed);
        let t = RandomAffine { degrees, translate: Some((0.2, 0.2)), scale: Some((0.7, 1.3)), fill };
        let out = t.apply(img.clone(), &mut generator(seed));
        prop_assert_eq!(out.shape(), [2, h, w]);
        let lo = img.data().iter().fold(fill, |a, &v| a.min(v));
        let hi = img.data().iter().fold(fill, |a, &v| a.max(v));
        prop_assert!(out.data().iter().all(|&v| v >= lo - 1e-5 && v <= hi + 1e-5));
    }
}
