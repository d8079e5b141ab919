//! Benchmark: evaluating a compiled job map of 10 fields, 3 of them @pipe, against a
//! job context (the per-step cost of mapping). Run with:
//!   cargo bench -p hotmesh-manifest --bench map_eval
//! It prints evaluations per second on one core (the target is 500,000).

use std::hint::black_box;
use std::time::Instant;

use hotmesh_manifest::expr::{compile, Env};
use hotmesh_manifest::yaml;

const MAP: &str = r#"
id: '{$job.metadata.jid}'
name: '{t1.output.data.name}'
qty: '{t1.output.data.qty}'
sku: '{t1.output.data.sku}'
customer: '{t1.output.data.customer.id}'
region: '{$job.data.region}'
status: pending
total:
  '@pipe':
    - ['{t1.output.data.price}', '{t1.output.data.qty}']
    - ['{@math.multiply}']
label:
  '@pipe':
    - ['{t1.output.data.name}']
    - ['{@string.toUpperCase}', '-']
    - ['{@string.concat}', '{t1.output.data.sku}']
    - ['{@string.concat}']
big:
  '@pipe':
    - ['{t1.output.data.qty}', 10]
    - ['{@number.gte}']
"#;

fn main() {
    let node = yaml::parse(MAP).unwrap();
    let expr = compile(&node, "job.maps").unwrap();
    let job = serde_json::json!({
        "metadata": {"jid": "H0123456789abcdefghijk", "app": "shop", "tpc": "order.placed"},
        "data": {"region": "eu-west", "id": "o-1"},
        "t1": {"output": {"data": {"name": "widget", "qty": 12, "sku": "W-12", "price": 2.5, "customer": {"id": "c-9", "tier": "gold"}}}}
    });
    let env = Env {
        job: &job,
        self_id: Some("t1"),
    };
    let first = expr.eval_json(&env).unwrap().unwrap();
    assert_eq!(first["total"], 30);
    assert_eq!(first["label"], "WIDGET-W-12");
    // warm up, then measure a few rounds and keep the best (least disturbed) one
    for _ in 0..20_000 {
        black_box(expr.eval_json(black_box(&env)).unwrap());
    }
    let n = 200_000;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            black_box(expr.eval_json(black_box(&env)).unwrap());
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("map_eval: 10 fields (3 @pipe), {n} evaluations per round, best of 5");
    println!(
        "map_eval: {:.0} evaluations/s ({:.0} ns each)",
        n as f64 / best,
        best / n as f64 * 1e9
    );
}
