//! Initialisers, as `torch.nn.init`: each fills a tensor in place from the
//! thread's seeded generator (`autograd::manual_seed`).
//!
//! ```
//! use autograd::Tensor;
//! use nn::init::{self, FanMode, Nonlinearity};
//! let w: Tensor = Tensor::zeros([64, 32, 3, 3]);
//! init::kaiming_normal_(&w, FanMode::FanIn, Nonlinearity::Relu);
//! let std = w.std_dim(Vec::<isize>::new(), 1, false).item();
//! assert!((std - (2.0f32 / (32.0 * 9.0)).sqrt()).abs() < 0.005);
//! ```

use autograd::{Float, Tensor};

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
    /// No non-linearity: gain 1.
    Linear,
    /// Sigmoid: gain 1.
    Sigmoid,
    /// Tanh: gain 5/3.
    Tanh,
    /// ReLU: gain sqrt(2).
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
    assert!(
        shape.len() >= 2,
        "fan in and fan out need at least 2 dims, got {shape:?}"
    );
    let receptive: usize = shape[2..].iter().product();
    (shape[1] * receptive, shape[0] * receptive)
}

fn fill<T: Float>(t: &Tensor<T>, values: Tensor<T>) {
    t.set_data(values.array());
}

/// `U(low, high)`.
pub fn uniform_<T: Float>(t: &Tensor<T>, low: f64, high: f64) {
    fill(t, Tensor::uniform(t.shape(), T::of(low), T::of(high)));
}

/// `N(mean, std^2)`.
pub fn normal_<T: Float>(t: &Tensor<T>, mean: f64, std: f64) {
    fill(t, Tensor::randn(t.shape()) * std + mean);
}

/// A constant.
pub fn constant_<T: Float>(t: &Tensor<T>, v: f64) {
    fill(t, Tensor::full(t.shape(), T::of(v)));
}

/// Zeros.
pub fn zeros_<T: Float>(t: &Tensor<T>) {
    constant_(t, 0.0);
}

/// Ones.
pub fn ones_<T: Float>(t: &Tensor<T>) {
    constant_(t, 1.0);
}

fn fan<T: Float>(t: &Tensor<T>, mode: FanMode) -> f64 {
    let (fi, fo) = fans(&t.shape());
    match mode {
        FanMode::FanIn => fi as f64,
        FanMode::FanOut => fo as f64,
    }
}

/// He (Kaiming) uniform: `U(-b, b)`, `b = gain * sqrt(3 / fan)`.
pub fn kaiming_uniform_<T: Float>(t: &Tensor<T>, mode: FanMode, n: Nonlinearity) {
    let bound = calculate_gain(n) * (3.0 / fan(t, mode)).sqrt();
    uniform_(t, -bound, bound);
}

/// He (Kaiming) normal: `N(0, gain^2 / fan)` (the book's `sqrt(2 / fan_in)` for ReLU).
pub fn kaiming_normal_<T: Float>(t: &Tensor<T>, mode: FanMode, n: Nonlinearity) {
    let std = calculate_gain(n) / fan(t, mode).sqrt();
    normal_(t, 0.0, std);
}

/// Xavier (Glorot) uniform: `U(-b, b)`, `b = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform_<T: Float>(t: &Tensor<T>, gain: f64) {
    let (fi, fo) = fans(&t.shape());
    let bound = gain * (6.0 / (fi + fo) as f64).sqrt();
    uniform_(t, -bound, bound);
}

/// Xavier (Glorot) normal: `N(0, gain^2 * 2 / (fan_in + fan_out))`.
pub fn xavier_normal_<T: Float>(t: &Tensor<T>, gain: f64) {
    let (fi, fo) = fans(&t.shape());
    let std = gain * (2.0 / (fi + fo) as f64).sqrt();
    normal_(t, 0.0, std);
}

/// PyTorch's default for Linear and Conv weights and biases:
/// `kaiming_uniform_(a = sqrt(5))`, which is `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`,
/// and the bias from the same range.
pub fn pytorch_default_<T: Float>(weight: &Tensor<T>, bias: Option<&Tensor<T>>) {
    kaiming_uniform_(weight, FanMode::FanIn, Nonlinearity::LeakyRelu(5f64.sqrt()));
    if let Some(b) = bias {
        let (fi, _) = fans(&weight.shape());
        let bound = if fi > 0 {
            1.0 / (fi as f64).sqrt()
        } else {
            0.0
        };
        uniform_(b, -bound, bound);
    }
}
