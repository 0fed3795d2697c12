//! Post-accumulate-grad hooks: called once per backward with the final
//! gradient, as soon as the leaf's last consumer has run.

use std::sync::{Arc, Mutex};

use autograd::Tensor;

#[test]
fn a_hook_fires_once_with_the_final_gradient_before_earlier_layers() {
    // x -> (w1) -> relu -> (w2) -> sum; w1 is also used twice.
    let x = Tensor::<f64>::from_vec(vec![1.0, -2.0, 0.5, 3.0], [2, 2]);
    let w1 = Tensor::<f64>::from_vec(vec![0.5, -1.0, 2.0, 0.25], [2, 2]).requires_grad_();
    let w2 = Tensor::<f64>::from_vec(vec![1.5, -0.5], [2, 1]).requires_grad_();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    let w1c = w1.clone();
    let h2 = w2.register_post_accumulate_grad_hook(move |leaf| {
        // The last layer's gradient is final before the first layer's is.
        l2.lock()
            .unwrap()
            .push(("w2", leaf.grad().unwrap().to_vec(), w1c.grad().is_some()));
    });
    let h1 = w1.register_post_accumulate_grad_hook(move |leaf| {
        l1.lock()
            .unwrap()
            .push(("w1", leaf.grad().unwrap().to_vec(), true));
    });
    let h = (x.matmul(&w1) + x.matmul(&w1)).relu();
    h.matmul(&w2).sum().backward();
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "w2");
    assert!(
        !got[0].2,
        "w2's hook ran after w1's gradient was already set"
    );
    assert_eq!(got[0].1, w2.grad().unwrap().to_vec());
    assert_eq!(got[1].0, "w1");
    // The hook saw both uses of w1 summed.
    assert_eq!(got[1].1, w1.grad().unwrap().to_vec());

    // Accumulation across passes: the hook sees the accumulated .grad.
    let before = w2.grad().unwrap().to_vec();
    let h = (x.matmul(&w1) + x.matmul(&w1)).relu();
    h.matmul(&w2).sum().backward();
    let got = log.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    let twice: Vec<f64> = before.iter().map(|v| 2.0 * v).collect();
    assert_eq!(got[2].1, twice);

    h1.remove();
    h2.remove();
    let h = x.matmul(&w1).relu();
    h.matmul(&w2).sum().backward();
    assert_eq!(log.lock().unwrap().len(), 4, "removed hooks do not run");
}

#[test]
fn grad_does_not_run_hooks_and_gradients_are_unchanged() {
    let w = Tensor::<f64>::from_vec(vec![1.0, 2.0], [2]).requires_grad_();
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    let handle = w.register_post_accumulate_grad_hook(move |_| *c.lock().unwrap() += 1);
    let y = (&w * &w).sum();
    let g = autograd::grad(&[y], &[w.clone()], Default::default());
    assert_eq!(g[0].as_ref().unwrap().to_vec(), vec![2.0, 4.0]);
    assert_eq!(*count.lock().unwrap(), 0);
    (&w * &w).sum().backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![2.0, 4.0]);
    assert_eq!(*count.lock().unwrap(), 1);
    handle.remove();
}
