//! The recorded graph is freed after backward: 10,000 training steps of a
//! small MLP keep the number of live graph nodes and the resident memory flat.
//! (Alone in its own test binary, so no other test's nodes are counted.)

use autograd::{live_nodes, manual_seed, no_grad, Tensor};

fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

#[test]
fn ten_thousand_steps_keep_graph_and_memory_flat() {
    manual_seed(7);
    let w1 = (Tensor::<f32>::randn([20, 32]) * 0.2).requires_grad_();
    let b1 = Tensor::<f32>::zeros([32]).requires_grad_();
    let w2 = (Tensor::<f32>::randn([32, 4]) * 0.2).requires_grad_();
    let b2 = Tensor::<f32>::zeros([4]).requires_grad_();
    let params = [w1.clone(), b1.clone(), w2.clone(), b2.clone()];
    let x = Tensor::<f32>::randn([16, 20]);
    let labels: Vec<usize> = (0..16).map(|i| i % 4).collect();

    let baseline_nodes = live_nodes();
    let mut nodes_at = Vec::new();
    let mut rss_at = Vec::new();
    let mut first_loss = 0.0;
    let mut last_loss = 0.0;
    for step in 0..10_000 {
        let h = (x.matmul(&w1) + &b1).relu();
        let loss = (h.matmul(&w2) + &b2).cross_entropy(&labels);
        // While the graph is alive there are nodes...
        assert!(live_nodes() > baseline_nodes);
        loss.backward();
        // ...and backward frees them even before `loss` is dropped.
        nodes_at.push(live_nodes() - baseline_nodes);
        no_grad(|| {
            for p in &params {
                let g = p.grad().unwrap();
                p.set_data(p.array().into_owned() - g.array().into_owned() * 0.05);
                p.zero_grad();
            }
        });
        if step == 0 {
            first_loss = loss.item();
        }
        last_loss = loss.item();
        if step == 1_000 || step == 9_999 {
            rss_at.push(rss_kib());
        }
    }
    assert!(
        last_loss < first_loss * 0.5,
        "the MLP did not learn: {first_loss} -> {last_loss}"
    );
    assert_eq!(live_nodes(), baseline_nodes, "graph nodes leaked");
    let max_nodes = *nodes_at.iter().max().unwrap();
    assert_eq!(
        max_nodes, 0,
        "nodes left holding saved values after backward"
    );
    if let [Some(early), Some(late)] = rss_at[..] {
        let growth = late.saturating_sub(early);
        assert!(
            growth < 4 * 1024,
            "RSS grew by {growth} KiB between step 1,000 and 10,000"
        );
    }
}
