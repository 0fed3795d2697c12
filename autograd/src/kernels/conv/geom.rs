//! The geometry of a convolution: sizes, stride, padding, dilation, groups.

/// Stride, padding, dilation (each per axis: `[h, w]`) and groups of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl ConvGeom {
    pub fn cg(&self) -> usize {
        self.c / self.groups
    }
    pub fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Rows of a column matrix: `Cg * KH * KW`.
    pub fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    pub fn ohw(&self) -> usize {
        self.oh * self.ow
    }
    /// A 1x1 convolution with stride 1 and no padding reads the input as its own column matrix.
    pub(super) fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

#[cfg(test)]
impl ConvGeom {
    /// For tests: the geometry with the output size PyTorch gives (`c` and
    /// `o` count all groups' channels); `None` when the output is empty.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sized(
        n: usize,
        c: usize,
        hw: [usize; 2],
        o: usize,
        k: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Option<ConvGeom> {
        let out = |a: usize| {
            let span = dilation[a] * (k[a] - 1) + 1;
            (hw[a] + 2 * padding[a])
                .checked_sub(span)
                .map(|r| r / stride[a] + 1)
        };
        Some(ConvGeom {
            n,
            c,
            h: hw[0],
            w: hw[1],
            o,
            kh: k[0],
            kw: k[1],
            oh: out(0)?,
            ow: out(1)?,
            stride,
            padding,
            dilation,
            groups,
        })
    }

    /// For tests: the forward pass (with `bias`), input gradient and weight
    /// gradient (of `sum(gy * y)`) in f64, summed over every (output, tap)
    /// that reads the image; one group.
    pub(crate) fn reference_sums(
        &self,
        x: &[f64],
        w: &[f64],
        bias: Option<&[f64]>,
        gy: &[f64],
    ) -> [Vec<f64>; 3] {
        let g = self;
        assert_eq!(g.groups, 1, "reference_sums: one group");
        let (kh, kw) = (g.kh, g.kw);
        let (mut y, mut dx, mut dw) = (vec![0.0; gy.len()], vec![0.0; x.len()], vec![0.0; w.len()]);
        for n in 0..g.n {
            for o in 0..g.o {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let yi = ((n * g.o + o) * g.oh + oy) * g.ow + ox;
                        y[yi] += bias.map_or(0.0, |b| b[o]);
                        for c in 0..g.c {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize
                                        - g.padding[0] as isize;
                                    let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize
                                        - g.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xi =
                                        ((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize;
                                    let wi = ((o * g.c + c) * kh + ky) * kw + kx;
                                    y[yi] += w[wi] * x[xi];
                                    dx[xi] += w[wi] * gy[yi];
                                    dw[wi] += x[xi] * gy[yi];
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    /// For tests: a kernel's forward pass (without and with a ReLU),
    /// input gradient and weight gradient against [`reference_sums`]
    /// (Self::reference_sums) on fixed values in [-1, 1], with a bias: in
    /// f64 to 1e-12, in f32 to 1e-5 of the largest sum.
    pub(crate) fn assert_matches_sums(&self, kernel: &impl Products) {
        let g = self;
        let val = |i: usize| ((i * 7919) % 97) as f64 / 48.0 - 1.0;
        let x: Vec<f64> = (0..g.n * g.c * g.h * g.w).map(val).collect();
        let w: Vec<f64> = (0..g.o * g.c * g.kh * g.kw).map(|i| val(i + 3)).collect();
        let b: Vec<f64> = (0..g.o).map(|i| val(i + 11)).collect();
        let gy: Vec<f64> = (0..g.n * g.o * g.ohw()).map(|i| val(i + 7)).collect();
        let [y, dx, dw] = g.reference_sums(&x, &w, Some(&b), &gy);
        let relu: Vec<f64> = y.iter().map(|&v| v.max(0.0)).collect();
        let want = [&y, &relu, &dx, &dw];
        let what = ["forward", "forward + relu", "input grad", "weight grad"];
        let got = kernel.run(g, &x, &w, &b, &gy);
        let f32s = |v: &[f64]| v.iter().map(|&u| u as f32).collect::<Vec<f32>>();
        let got32 = kernel.run(g, &f32s(&x), &f32s(&w), &f32s(&b), &f32s(&gy));
        for (((what, a), a32), want) in what.iter().zip(&got).zip(&got32).zip(want) {
            assert_eq!(a.len(), want.len(), "{what} {g:?}");
            assert_eq!(a32.len(), want.len(), "{what} f32 {g:?}");
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (i, ((u, u32), v)) in a.iter().zip(a32).zip(want.iter()).enumerate() {
                assert!((u - v).abs() < 1e-12, "{what} {g:?} at {i}: {u} vs {v}");
                let e = (f64::from(*u32) - v).abs();
                assert!(e <= 1e-5 * scale, "{what} f32 {g:?} at {i}: {u32} vs {v}");
            }
        }
    }
}

/// For tests: a convolution kernel's products, as
/// [`ConvGeom::assert_matches_sums`] checks them.
#[cfg(test)]
pub(crate) trait Products {
    /// The forward pass with `b` (identity, then ReLU), the input gradient
    /// and the weight gradient of `g` from `gy`.
    fn run<T: crate::dtype::Float>(
        &self,
        g: &ConvGeom,
        x: &[T],
        w: &[T],
        b: &[T],
        gy: &[T],
    ) -> [Vec<T>; 4];
}
