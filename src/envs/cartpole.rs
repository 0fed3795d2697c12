//! CartPole-v1 (Barto, Sutton and Anderson 1983, as Gymnasium's
//! `CartPole-v1`): a pole hinged on a cart that moves along a track; push
//! the cart left or right to keep the pole upright.
//!
//! The same constants, explicit Euler integration, termination limits
//! (12° pole angle, 2.4 track half-length), reward (1 per step, the last one
//! included) and episode cap (500 steps) as Gymnasium, so returns compare
//! with published ones. The initial state is uniform in (−0.05, 0.05) per
//! component, drawn from the environment's own seeded generator.
//!
//! ```
//! use dlfs::envs::CartPole;
//! let mut env = CartPole::new(0);
//! let mut obs = env.reset();
//! let mut ret = 0.0;
//! loop {
//!     // Push towards the side the pole leans to.
//!     let s = env.step(usize::from(obs[2] > 0.0));
//!     ret += s.reward;
//!     obs = s.observation;
//!     if s.done() {
//!         break;
//!     }
//! }
//! assert!(ret >= 1.0 && ret <= 500.0);
//! ```

use autograd::rng::{generator, Generator};
use rand::RngExt;

/// Gravity (m/s²).
pub const GRAVITY: f64 = 9.8;
/// Mass of the cart (kg).
pub const MASS_CART: f64 = 1.0;
/// Mass of the pole (kg).
pub const MASS_POLE: f64 = 0.1;
/// Half the pole's length (m), as Gymnasium's `length`.
pub const LENGTH: f64 = 0.5;
/// Magnitude of the push (N).
pub const FORCE_MAG: f64 = 10.0;
/// Seconds per step.
pub const TAU: f64 = 0.02;
/// The pole angle beyond which the episode ends: 12° in radians.
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// The cart position beyond which the episode ends (m).
pub const X_THRESHOLD: f64 = 2.4;
/// Steps after which an episode is cut off (CartPole-v1's time limit).
pub const MAX_STEPS: usize = 500;

/// What one step returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// `[x, x_dot, theta, theta_dot]` after the step.
    pub observation: [f64; 4],
    /// 1 for every step, the terminating one included.
    pub reward: f64,
    /// The pole fell or the cart left the track (a true end: no bootstrap).
    pub terminated: bool,
    /// The step cap was reached without termination (bootstrap from here).
    pub truncated: bool,
}

impl Step {
    /// Whether the episode is over, either way.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// The cart-pole system with its own seeded generator for the initial states.
#[derive(Debug)]
pub struct CartPole {
    state: [f64; 4],
    steps: usize,
    over: bool,
    rng: Generator,
}

impl CartPole {
    /// Number of actions: 0 pushes left, 1 pushes right.
    pub const ACTIONS: usize = 2;
    /// Length of an observation.
    pub const OBSERVATION: usize = 4;

    /// An environment whose resets draw from a generator seeded with `seed`
    /// (call [`reset`](Self::reset) before the first step).
    pub fn new(seed: u64) -> CartPole {
        CartPole {
            state: [0.0; 4],
            steps: 0,
            over: true,
            rng: generator(seed),
        }
    }

    /// Starts an episode: every component uniform in (−0.05, 0.05).
    pub fn reset(&mut self) -> [f64; 4] {
        for s in &mut self.state {
            *s = self.rng.random_range(-0.05..0.05);
        }
        self.steps = 0;
        self.over = false;
        self.state
    }

    /// Starts an episode from a given state (for tests and demonstrations).
    pub fn reset_to(&mut self, state: [f64; 4]) -> [f64; 4] {
        self.state = state;
        self.steps = 0;
        self.over = false;
        self.state
    }

    /// The current state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Steps taken in this episode.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Applies `action` (0: push left, 1: push right) for one step of `TAU`
    /// seconds.
    ///
    /// # Panics
    /// On an action other than 0 or 1, or a step after the episode ended
    /// (without a reset), naming the action or the step count.
    pub fn step(&mut self, action: usize) -> Step {
        assert!(
            action < Self::ACTIONS,
            "CartPole::step: action {action} is not 0 or 1"
        );
        assert!(
            !self.over,
            "CartPole::step: the episode ended after {} steps; call reset first",
            self.steps
        );
        self.state = dynamics(self.state, action);
        self.steps += 1;
        let [x, _, theta, _] = self.state;
        let terminated = !(-X_THRESHOLD..=X_THRESHOLD).contains(&x)
            || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
        let truncated = !terminated && self.steps >= MAX_STEPS;
        self.over = terminated || truncated;
        Step {
            observation: self.state,
            reward: 1.0,
            terminated,
            truncated,
        }
    }
}

/// One explicit Euler step of the cart-pole equations (Florian 2007's
/// corrected form, as Gymnasium): the accelerations from the current state,
/// then positions from the old velocities and velocities from the
/// accelerations.
pub fn dynamics(state: [f64; 4], action: usize) -> [f64; 4] {
    let [x, x_dot, theta, theta_dot] = state;
    let total_mass = MASS_CART + MASS_POLE;
    let polemass_length = MASS_POLE * LENGTH;
    let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
    let (sin, cos) = theta.sin_cos();
    let temp = (force + polemass_length * theta_dot * theta_dot * sin) / total_mass;
    let theta_acc =
        (GRAVITY * sin - cos * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / total_mass));
    let x_acc = temp - polemass_length * theta_acc * cos / total_mass;
    [
        x + TAU * x_dot,
        x_dot + TAU * x_acc,
        theta + TAU * theta_dot,
        theta_dot + TAU * theta_acc,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 4], b: [f64; 4]) {
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!((p - q).abs() < 1e-12, "component {i}: {a:?} against {b:?}");
        }
    }

    /// From rest and upright, pushing right: temp = 10/1.1, theta_acc =
    /// -temp / (0.5 (4/3 - 0.1/1.1)), x_acc = temp - 0.05 theta_acc / 1.1;
    /// positions move only on the second step (Euler uses old velocities).
    #[test]
    fn first_steps_from_rest_by_hand() {
        let temp: f64 = 10.0 / 1.1;
        let theta_acc = -temp / (0.5 * (4.0 / 3.0 - 0.1 / 1.1));
        let x_acc = temp - 0.05 * theta_acc / 1.1;
        assert!(
            (theta_acc - (-14.634_146_341_463_413)).abs() < 1e-12,
            "{theta_acc}"
        );
        assert!((x_acc - 9.756_097_560_975_61).abs() < 1e-12, "{x_acc}");
        let s1 = dynamics([0.0; 4], 1);
        close(s1, [0.0, 0.02 * x_acc, 0.0, 0.02 * theta_acc]);
        // Pushing left mirrors it.
        close(
            dynamics([0.0; 4], 0),
            [0.0, -0.02 * x_acc, 0.0, -0.02 * theta_acc],
        );

        // Second step from s1, again pushing right: theta is still 0, so the
        // accelerations are those of the first step.
        let s2 = dynamics(s1, 1);
        close(
            s2,
            [
                0.02 * s1[1],
                s1[1] + 0.02 * x_acc,
                0.02 * s1[3],
                s1[3] + 0.02 * theta_acc,
            ],
        );
    }

    /// A tilted pole falls under gravity: at theta = 0.1 with no velocity and
    /// a push right, by hand.
    #[test]
    fn tilted_pole_by_hand() {
        let (s, c) = (0.1f64.sin(), 0.1f64.cos());
        let temp = 10.0 / 1.1;
        let theta_acc = (9.8 * s - c * temp) / (0.5 * (4.0 / 3.0 - 0.1 * c * c / 1.1));
        let x_acc = temp - 0.05 * theta_acc * c / 1.1;
        close(
            dynamics([0.5, 0.0, 0.1, 0.0], 1),
            [0.5, 0.02 * x_acc, 0.1, 0.02 * theta_acc],
        );
        // With a spinning pole the centripetal term enters temp.
        let temp = (-10.0 + 0.05 * 4.0 * s) / 1.1;
        let theta_acc = (9.8 * s - c * temp) / (0.5 * (4.0 / 3.0 - 0.1 * c * c / 1.1));
        let x_acc = temp - 0.05 * theta_acc * c / 1.1;
        close(
            dynamics([0.0, 1.0, 0.1, 2.0], 0),
            [0.02, 1.0 + 0.02 * x_acc, 0.1 + 0.04, 2.0 + 0.02 * theta_acc],
        );
    }

    #[test]
    fn termination_truncation_and_seeding() {
        let mut env = CartPole::new(3);
        // Just inside the angle limit, moving out: ends after one step.
        env.reset_to([0.0, 0.0, THETA_THRESHOLD - 1e-4, 1.0]);
        let s = env.step(1);
        assert!(s.terminated && !s.truncated && s.reward == 1.0, "{s:?}");
        env.reset_to([X_THRESHOLD - 1e-3, 1.0, 0.0, 0.0]);
        assert!(env.step(1).terminated);

        // Resets are uniform in (-0.05, 0.05) and repeat with the seed.
        let a: Vec<[f64; 4]> = (0..20).map(|_| env.reset()).collect();
        assert!(a.iter().flatten().all(|v| v.abs() < 0.05));
        let mut again = CartPole::new(3);
        let b: Vec<[f64; 4]> = (0..20).map(|_| again.reset()).collect();
        assert_eq!(a, b);
        assert_ne!(CartPole::new(4).reset(), b[0]);

        // A balancing controller reaches the cap: truncated, not terminated.
        let mut env = CartPole::new(0);
        let mut obs = env.reset();
        let mut steps = 0;
        loop {
            let u = 10.0 * obs[2] + 2.0 * obs[3] + 0.1 * obs[0] + 0.3 * obs[1];
            let s = env.step(usize::from(u > 0.0));
            steps += 1;
            obs = s.observation;
            if s.done() {
                assert!(s.truncated && !s.terminated, "{s:?} at step {steps}");
                break;
            }
        }
        assert_eq!(steps, MAX_STEPS);
    }

    #[test]
    #[should_panic(expected = "call reset first")]
    fn step_after_the_end_panics() {
        let mut env = CartPole::new(0);
        env.reset_to([0.0, 0.0, THETA_THRESHOLD, 5.0]);
        env.step(1);
        env.step(1);
    }
}
