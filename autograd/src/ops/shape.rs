//! Ops that move values without computing on them: reshape, permute,
//! (un)squeeze, slicing, index_select, concatenation, splitting and padding.
//! Their gradients move the values back.

use ndarray::{ArrayD, Axis, IxDyn, Slice};

use crate::dims::{norm_dim, IntoShape};
use crate::dtype::Float;
use crate::error::{ok, Error, Result};
use crate::ops::need;
use crate::tensor::Tensor;

fn invalid(op: &'static str, shape: &[usize], reason: String) -> Error {
    Error::InvalidArgument {
        op,
        shape: shape.to_vec(),
        reason,
    }
}

impl<T: Float> Tensor<T> {
    /// The same values in a new shape (one size may be `-1`: inferred).
    /// Free when the storage is contiguous; copies otherwise.
    pub fn try_reshape(&self, shape: impl IntoShape) -> Result<Tensor<T>> {
        let src = self.shape();
        let raw = shape.raw_sizes();
        let numel: usize = src.iter().product();
        let known: isize = raw.iter().filter(|&&s| s >= 0).product();
        let inferred = raw.iter().filter(|&&s| s == -1).count();
        if inferred > 1 || raw.iter().any(|&s| s < -1) {
            return Err(invalid(
                "reshape",
                &src,
                format!("invalid target shape {raw:?}"),
            ));
        }
        let target: Vec<usize> = raw
            .iter()
            .map(|&s| {
                if s == -1 && known > 0 {
                    numel / known as usize
                } else {
                    s.max(0) as usize
                }
            })
            .collect();
        if target.iter().product::<usize>() != numel {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: src,
                rhs: target,
                reason: "(different numbers of elements)".into(),
            });
        }
        if target == src {
            return Ok(self.clone());
        }
        let a = self.array();
        let out = if a.is_standard_layout() {
            a.into_shape_with_order(IxDyn(&target)).expect("contiguous")
        } else {
            let v = a.view();
            let data = crate::kernels::standard_slice(&v).into_owned();
            ArrayD::from_shape_vec(IxDyn(&target), data)
                .expect("same number of elements")
                .into_shared()
        };
        Ok(Tensor::from_op(out, "reshape", &[self], move |c| {
            Ok(vec![Some(c.grad.try_reshape(&src)?)])
        }))
    }

    /// The same values in a new shape; see [`try_reshape`](Self::try_reshape).
    #[track_caller]
    pub fn reshape(&self, shape: impl IntoShape) -> Tensor<T> {
        ok(self.try_reshape(shape))
    }

    /// PyTorch's name for [`reshape`](Self::reshape).
    #[track_caller]
    pub fn view(&self, shape: impl IntoShape) -> Tensor<T> {
        self.reshape(shape)
    }

    /// Merges dims `start..=end` into one.
    pub fn try_flatten(&self, start: isize, end: isize) -> Result<Tensor<T>> {
        let src = self.shape();
        if src.is_empty() {
            return self.try_reshape([1]);
        }
        let (s, e) = (
            norm_dim("flatten", start, &src)?,
            norm_dim("flatten", end, &src)?,
        );
        if s > e {
            return Err(invalid(
                "flatten",
                &src,
                format!("start dim {start} comes after end dim {end}"),
            ));
        }
        let mut target: Vec<usize> = src[..s].to_vec();
        target.push(src[s..=e].iter().product());
        target.extend(&src[e + 1..]);
        self.try_reshape(target)
    }

    /// Merges dims `start..=end` into one (`flatten(1, -1)` keeps the batch dim).
    #[track_caller]
    pub fn flatten(&self, start: isize, end: isize) -> Tensor<T> {
        ok(self.try_flatten(start, end))
    }

    /// Reorders the dims: output dim `i` is input dim `dims[i]` (no copy).
    pub fn try_permute(&self, dims: impl IntoShape) -> Result<Tensor<T>> {
        let src = self.shape();
        let raw = dims.raw_sizes();
        if raw.len() != src.len() {
            return Err(invalid(
                "permute",
                &src,
                format!("dims {raw:?} do not list every dim once"),
            ));
        }
        let perm = raw
            .iter()
            .map(|&d| norm_dim("permute", d, &src))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = vec![false; perm.len()];
        for &p in &perm {
            if std::mem::replace(&mut seen[p], true) {
                return Err(invalid(
                    "permute",
                    &src,
                    format!("dims {raw:?} repeat a dim"),
                ));
            }
        }
        let out = self.array().permuted_axes(IxDyn(&perm));
        let mut inverse = vec![0usize; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(Tensor::from_op(out, "permute", &[self], move |c| {
            Ok(vec![Some(c.grad.try_permute(&inverse)?)])
        }))
    }

    /// Reorders the dims (no copy).
    #[track_caller]
    pub fn permute(&self, dims: impl IntoShape) -> Tensor<T> {
        ok(self.try_permute(dims))
    }

    /// Swaps two dims (no copy).
    pub fn try_transpose(&self, d0: isize, d1: isize) -> Result<Tensor<T>> {
        let shape = self.shape();
        let (a, b) = (
            norm_dim("transpose", d0, &shape)?,
            norm_dim("transpose", d1, &shape)?,
        );
        let mut perm: Vec<usize> = (0..shape.len()).collect();
        perm.swap(a, b);
        self.try_permute(perm)
    }

    /// Swaps two dims (no copy).
    #[track_caller]
    pub fn transpose(&self, d0: isize, d1: isize) -> Tensor<T> {
        ok(self.try_transpose(d0, d1))
    }

    /// Transpose of a matrix (a vector is returned as it is).
    #[track_caller]
    pub fn t(&self) -> Tensor<T> {
        match self.ndim() {
            0 | 1 => self.clone(),
            2 => self.transpose(0, 1),
            n => panic!(
                "t: expects a tensor with at most 2 dims, got {n} (shape {:?}); use transpose",
                self.shape()
            ),
        }
    }

    /// Inserts a dim of size 1 at `dim` (`-1` appends).
    pub fn try_unsqueeze(&self, dim: isize) -> Result<Tensor<T>> {
        let mut shape = self.shape();
        let n = shape.len() as isize + 1;
        let d = if dim < 0 { dim + n } else { dim };
        if d < 0 || d >= n {
            return Err(Error::DimOutOfRange {
                op: "unsqueeze",
                dim,
                shape,
            });
        }
        let d = d as usize;
        let out = self.array().insert_axis(Axis(d));
        shape.insert(d, 1);
        Ok(Tensor::from_op(out, "unsqueeze", &[self], move |c| {
            Ok(vec![Some(c.grad.try_squeeze_dim(d as isize)?)])
        }))
    }

    /// Inserts a dim of size 1.
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Tensor<T> {
        ok(self.try_unsqueeze(dim))
    }

    /// Removes dim `dim`, which must have size 1.
    pub fn try_squeeze_dim(&self, dim: isize) -> Result<Tensor<T>> {
        let shape = self.shape();
        let d = norm_dim("squeeze", dim, &shape)?;
        if shape[d] != 1 {
            return Err(invalid(
                "squeeze",
                &shape,
                format!("dim {dim} has size {}, not 1", shape[d]),
            ));
        }
        let out = self.array().index_axis_move(Axis(d), 0);
        Ok(Tensor::from_op(out, "squeeze", &[self], move |c| {
            Ok(vec![Some(c.grad.try_unsqueeze(d as isize)?)])
        }))
    }

    /// Removes dim `dim` of size 1.
    #[track_caller]
    pub fn squeeze_dim(&self, dim: isize) -> Tensor<T> {
        ok(self.try_squeeze_dim(dim))
    }

    /// Removes every dim of size 1.
    pub fn squeeze(&self) -> Tensor<T> {
        let shape = self.shape();
        let mut t = self.clone();
        for d in (0..shape.len()).rev() {
            if shape[d] == 1 {
                t = ok(t.try_squeeze_dim(d as isize));
            }
        }
        t
    }

    /// Every `step`-th entry of `start..end` along `dim` (Python slicing:
    /// negative bounds count from the end, bounds are clamped). No copy.
    pub fn try_slice(
        &self,
        dim: isize,
        start: isize,
        end: isize,
        step: usize,
    ) -> Result<Tensor<T>> {
        let shape = self.shape();
        let d = norm_dim("slice", dim, &shape)?;
        if step == 0 {
            return Err(invalid("slice", &shape, "step must be positive".into()));
        }
        let len = shape[d] as isize;
        let clamp = |i: isize| (if i < 0 { i + len } else { i }).clamp(0, len);
        let (s, e) = (clamp(start), clamp(end).max(clamp(start)));
        let mut out = self.array();
        out.slice_axis_inplace(Axis(d), Slice::new(s, Some(e), step as isize));
        let (s, e) = (s as usize, e as usize);
        Ok(Tensor::from_op(out, "slice", &[self], move |c| {
            Ok(vec![Some(c.grad.slice_backward(&shape, d, s, e, step)?)])
        }))
    }

    /// Python-style slice along one dim; see [`try_slice`](Self::try_slice).
    #[track_caller]
    pub fn slice(&self, dim: isize, start: isize, end: isize, step: usize) -> Tensor<T> {
        ok(self.try_slice(dim, start, end, step))
    }

    /// `len` entries from `start` along `dim` (bounds must fit). No copy.
    pub fn try_narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor<T>> {
        let shape = self.shape();
        let d = norm_dim("narrow", dim, &shape)?;
        if start + len > shape[d] {
            return Err(invalid(
                "narrow",
                &shape,
                format!(
                    "start {start} + length {len} exceeds size {} of dim {dim}",
                    shape[d]
                ),
            ));
        }
        self.try_slice(d as isize, start as isize, (start + len) as isize, 1)
    }

    /// `len` entries from `start` along `dim`.
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Tensor<T> {
        ok(self.try_narrow(dim, start, len))
    }

    /// Adjoint of `slice`: places `self` into zeros of `shape`.
    fn slice_backward(
        &self,
        shape: &[usize],
        d: usize,
        s: usize,
        e: usize,
        step: usize,
    ) -> Result<Tensor<T>> {
        let mut out = ArrayD::<T>::zeros(IxDyn(shape));
        out.slice_axis_mut(
            Axis(d),
            Slice::new(s as isize, Some(e as isize), step as isize),
        )
        .assign(&self.array());
        Ok(Tensor::from_op(out, "slice_backward", &[self], move |c| {
            Ok(vec![Some(
                c.grad.try_slice(d as isize, s as isize, e as isize, step)?,
            )])
        }))
    }

    /// The entries `indices` along `dim`, in that order (repeats allowed).
    pub fn try_index_select(&self, dim: isize, indices: &[usize]) -> Result<Tensor<T>> {
        let shape = self.shape();
        let d = norm_dim("index_select", dim, &shape)?;
        if let Some(&bad) = indices.iter().find(|&&i| i >= shape[d]) {
            return Err(invalid(
                "index_select",
                &shape,
                format!(
                    "index {bad} is out of range for dim {dim} of size {}",
                    shape[d]
                ),
            ));
        }
        let out = self.array().select(Axis(d), indices);
        let idx = indices.to_vec();
        Ok(Tensor::from_op(out, "index_select", &[self], move |c| {
            Ok(vec![Some(c.grad.index_select_backward(&shape, d, &idx))])
        }))
    }

    /// The entries `indices` along `dim`.
    #[track_caller]
    pub fn index_select(&self, dim: isize, indices: &[usize]) -> Tensor<T> {
        ok(self.try_index_select(dim, indices))
    }

    /// Adjoint of `index_select`: adds each slice of `self` into zeros of `shape` at its index.
    fn index_select_backward(&self, shape: &[usize], d: usize, idx: &[usize]) -> Tensor<T> {
        let mut out = ArrayD::<T>::zeros(IxDyn(shape));
        let g = self.array();
        for (j, &i) in idx.iter().enumerate() {
            let mut dst = out.index_axis_mut(Axis(d), i);
            dst += &g.index_axis(Axis(d), j);
        }
        let idx = idx.to_vec();
        Tensor::from_op(out, "index_select_backward", &[self], move |c| {
            Ok(vec![Some(c.grad.try_index_select(d as isize, &idx)?)])
        })
    }

    /// Joins tensors along an existing dim (`torch.cat`).
    pub fn try_cat(tensors: &[Tensor<T>], dim: isize) -> Result<Tensor<T>> {
        let first = tensors
            .first()
            .ok_or_else(|| invalid("cat", &[], "needs at least one tensor".into()))?;
        let s0 = first.shape();
        let d = norm_dim("cat", dim, &s0)?;
        let mut sizes = Vec::with_capacity(tensors.len());
        for t in tensors {
            let s = t.shape();
            let fits = s.len() == s0.len()
                && s.iter()
                    .zip(&s0)
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !fits {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: s0.clone(),
                    rhs: s,
                    reason: format!("(must match except in dim {dim})"),
                });
            }
            sizes.push(s[d]);
        }
        let arrays: Vec<_> = tensors.iter().map(|t| t.array()).collect();
        let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
        let out = crate::kernels::cat(&views, d);
        let refs: Vec<&Tensor<T>> = tensors.iter().collect();
        Ok(Tensor::from_op(out, "cat", &refs, move |c| {
            let mut off = 0;
            let mut grads = Vec::with_capacity(sizes.len());
            for (i, &n) in sizes.iter().enumerate() {
                grads.push(need(c.needs[i], || c.grad.try_narrow(d as isize, off, n))?);
                off += n;
            }
            Ok(grads)
        }))
    }

    /// Joins tensors along an existing dim.
    #[track_caller]
    pub fn cat(tensors: &[Tensor<T>], dim: isize) -> Tensor<T> {
        ok(Tensor::try_cat(tensors, dim))
    }

    /// Joins tensors of one shape along a new dim (`torch.stack`).
    pub fn try_stack(tensors: &[Tensor<T>], dim: isize) -> Result<Tensor<T>> {
        let ups = tensors
            .iter()
            .map(|t| t.try_unsqueeze(dim))
            .collect::<Result<Vec<_>>>()?;
        // A negative dim counts in the output, as the unsqueezed inputs do.
        Tensor::try_cat(&ups, dim)
    }

    /// Joins tensors of one shape along a new dim.
    #[track_caller]
    pub fn stack(tensors: &[Tensor<T>], dim: isize) -> Tensor<T> {
        ok(Tensor::try_stack(tensors, dim))
    }

    /// Pieces of the given sizes along `dim` (they must add up to its size).
    pub fn try_split_sizes(&self, sizes: &[usize], dim: isize) -> Result<Vec<Tensor<T>>> {
        let shape = self.shape();
        let d = norm_dim("split", dim, &shape)?;
        if sizes.iter().sum::<usize>() != shape[d] {
            return Err(invalid(
                "split",
                &shape,
                format!("sizes {sizes:?} do not add up to {} (dim {dim})", shape[d]),
            ));
        }
        let mut off = 0;
        sizes
            .iter()
            .map(|&n| {
                let t = self.try_narrow(d as isize, off, n);
                off += n;
                t
            })
            .collect()
    }

    /// Pieces of `size` along `dim` (the last may be smaller), as `torch.split`.
    pub fn try_split(&self, size: usize, dim: isize) -> Result<Vec<Tensor<T>>> {
        let shape = self.shape();
        let d = norm_dim("split", dim, &shape)?;
        if size == 0 {
            return Err(invalid(
                "split",
                &shape,
                "split size must be positive".into(),
            ));
        }
        let n = shape[d];
        let sizes: Vec<usize> = (0..n).step_by(size).map(|s| size.min(n - s)).collect();
        self.try_split_sizes(&sizes, dim)
    }

    /// Pieces of `size` along `dim`.
    #[track_caller]
    pub fn split(&self, size: usize, dim: isize) -> Vec<Tensor<T>> {
        ok(self.try_split(size, dim))
    }

    /// `chunks` pieces of (nearly) equal size along `dim`, as `torch.chunk`.
    pub fn try_chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Tensor<T>>> {
        let shape = self.shape();
        let d = norm_dim("chunk", dim, &shape)?;
        if chunks == 0 {
            return Err(invalid(
                "chunk",
                &shape,
                "number of chunks must be positive".into(),
            ));
        }
        self.try_split(shape[d].div_ceil(chunks).max(1), dim)
    }

    /// `chunks` pieces along `dim`.
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Vec<Tensor<T>> {
        ok(self.try_chunk(chunks, dim))
    }

    /// Pads with a constant, as `torch.nn.functional.pad`: `pads` lists
    /// (before, after) pairs starting from the last dim:
    /// `[left, right, top, bottom, ...]`.
    pub fn try_pad(&self, pads: &[usize], value: f64) -> Result<Tensor<T>> {
        let shape = self.shape();
        if !pads.len().is_multiple_of(2) || pads.len() / 2 > shape.len() {
            return Err(invalid(
                "pad",
                &shape,
                format!(
                    "pads {pads:?} must be (before, after) pairs for at most {} dims",
                    shape.len()
                ),
            ));
        }
        let n = shape.len();
        let mut out_shape = shape.clone();
        let mut ranges = Vec::new();
        for (i, pair) in pads.chunks(2).enumerate() {
            let d = n - 1 - i;
            out_shape[d] = shape[d] + pair[0] + pair[1];
            ranges.push((d, pair[0], shape[d]));
        }
        let mut out = ArrayD::from_elem(IxDyn(&out_shape), T::of(value));
        {
            let mut view = out.view_mut();
            for &(d, before, len) in &ranges {
                view.slice_axis_inplace(Axis(d), Slice::from(before..before + len));
            }
            view.assign(&self.array());
        }
        Ok(Tensor::from_op(out, "pad", &[self], move |c| {
            let mut g = c.grad.clone();
            for &(d, before, len) in &ranges {
                g = g.try_narrow(d as isize, before, len)?;
            }
            Ok(vec![Some(g)])
        }))
    }

    /// Pads with a constant; see [`try_pad`](Self::try_pad).
    #[track_caller]
    pub fn pad(&self, pads: &[usize], value: f64) -> Tensor<T> {
        ok(self.try_pad(pads, value))
    }
}
