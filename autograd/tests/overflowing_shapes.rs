//! A shape whose element count overflows is an error wherever a tensor is
//! built from it, even when another of its sizes is zero (the product is
//! then zero, yet no array of that shape exists): a corrupt weights file
//! must be refused, not panic inside the array constructor.

use autograd::Tensor;

const HUGE: usize = 1 << 40;

#[test]
fn from_vec_refuses_overflowing_shapes_with_a_zero_size() {
    for shape in [
        vec![0, HUGE, HUGE],
        vec![HUGE, HUGE, 0],
        vec![HUGE, 0, HUGE],
        vec![0, usize::MAX],
        vec![usize::MAX, 2, 0],
    ] {
        let err = Tensor::<f32>::try_from_vec(vec![], shape.clone())
            .expect_err(&format!("{shape:?} has no array"));
        // usize::MAX reads as a negative size; the others overflow.
        let text = err.to_string();
        assert!(
            text.contains("overflows") || text.contains("negative"),
            "{shape:?}: {text}"
        );
    }
}

#[test]
fn from_vec_refuses_overflowing_shapes_without_a_zero() {
    let err = Tensor::<f32>::try_from_vec(vec![1.0], vec![HUGE, HUGE]).unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
}

#[test]
fn empty_shapes_that_fit_still_build() {
    let t = Tensor::<f32>::try_from_vec(vec![], vec![0, HUGE]).unwrap();
    assert_eq!(t.shape(), [0, HUGE]);
    assert_eq!(Tensor::<f32>::zeros([3, 0]).shape(), [3, 0]);
}
