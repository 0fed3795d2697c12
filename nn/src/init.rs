//! Initialisers, as `torch.nn.init`: each fills a tensor in place from the
//! thread's seeded generator (`autograd::manual_seed`).
//!
//! ```
//! use autograd::Tensor;
//! use nn::init::{self, FanMode, Nonlinearity};
//! let w = Tensor::zeros([64, 32, 3, 3]);
//! init::kaiming_normal_(&w, FanMode::FanIn, Nonlinearity::Relu);
//! let std = w.std_dim(Vec::<isize>::new(), 1, false).item();
//! assert!((std - (2.0f32 / (32.0 * 9.0)).sqrt()).abs() < 0.005);
//! ```

use autograd::Tensor;

/// Which fan scales the variance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanMode {
    /// Inputs per output (keeps the forward variance).
    #[default]
    FanIn,
    /// Outputs per input (keeps the backward variance).
    FanOut,
}

/// The non-linearity that follows, for its gain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    Linear,
    Sigmoid,
    Tanh,
    Relu,
    /// Leaky ReLU with this negative slope.
    LeakyRelu(f64),
}

/// `torch.nn.init.calculate_gain`.
pub fn calculate_gain(n: Nonlinearity) -> f64 {
    match n {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
    }
}

/// `(fan_in, fan_out)` of a weight: dims 1 and 0 times the receptive field.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    assert!(shape.len() >= 2, "fan in and fan out need at least 2 dims, got {shape:?}");
    let receptive: usize = shape[2..].iter().product();
    (shape[1] * receptive, shape[0] * receptive)
}

fn fill(t: &Tensor, values: Tensor) {
    t.set_data(values.array());
}

/// `U(low, high)`.
pub fn uniform_(t: &Tensor, low: f32, high: f32) {
    fill(t, Tensor::uniform(t.shape(), low, high));
}

/// `N(mean, std^2)`.
pub fn normal_(t: &Tensor, mean: f32, std: f32) {
    fill(t, Tensor::randn(t.shape()) * std + mean);
}

/// A constant.
pub fn constant_(t: &Tensor, v: f32) {
    fill(t, Tensor::full(t.shape(), v));
}

/// Zeros.
pub fn zeros_(t: &Tensor) {
    constant_(t, 0.0);
}

/// Ones.
pub fn ones_(t: &Tensor) {
    constant_(t, 1.0);
}

fn fan(t: &Tensor, mode: FanMode) -> f64 {
    let (fi, fo) = fans(&t.shape());
    match mode {
        FanMode::FanIn => fi as f64,
        FanMode::FanOut => fo as f64,
    }
}

/// He (Kaiming) uniform: `U(-b, b)`, `b = gain * sqrt(3 / fan)`.
pub fn kaiming_uniform_(t: &Tensor, mode: FanMode, n: Nonlinearity) {
    let bound = calculate_gain(n) * (3.0 / fan(t, mode)).sqrt();
    uniform_(t, -bound as f32, bound as f32);
}

/// He (Kaiming) normal: `N(0, gain^2 / fan)` (the book's `sqrt(2 / fan_in)` for ReLU).
pub fn kaiming_normal_(t: &Tensor, mode: FanMode, n: Nonlinearity) {
    let std = calculate_gain(n) / fan(t, mode).sqrt();
    normal_(t, 0.0, std as f32);
}

/// Xavier (Glorot) uniform: `U(-b, b)`, `b = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform_(t: &Tensor, gain: f64) {
    let (fi, fo) = fans(&t.shape());
    let bound = gain * (6.0 / (fi + fo) as f64).sqrt();
    uniform_(t, -bound as f32, bound as f32);
}

/// Xavier (Glorot) normal: `N(0, gain^2 * 2 / (fan_in + fan_out))`.
pub fn xavier_normal_(t: &Tensor, gain: f64) {
    let (fi, fo) = fans(&t.shape());
    let std = gain * (2.0 / (fi + fo) as f64).sqrt();
    normal_(t, 0.0, std as f32);
}

/// PyTorch's default for Linear and Conv weights and biases:
/// `kaiming_uniform_(a = sqrt(5))`, which is `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`,
/// and the bias from the same range.
pub fn pytorch_default_(weight: &Tensor, bias: Option<&Tensor>) {
    kaiming_uniform_(weight, FanMode::FanIn, Nonlinearity::LeakyRelu(5f64.sqrt()));
    if let Some(b) = bias {
        let (fi, _) = fans(&weight.shape());
        let bound = if fi > 0 { 1.0 / (fi as f32).sqrt() } else { 0.0 };
        uniform_(b, -bound, bound);
    }
}
