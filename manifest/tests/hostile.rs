//! Hostile input, case by case: each must end in an error that names the limit (or a
//! result), quickly, on a small stack, without aborting the process.

use std::time::{Duration, Instant};

use hotmesh_manifest::manifest::{compile_manifest, deploy_plan};
use hotmesh_manifest::{expr, limits, yaml, ManifestError};

/// Runs `f` on a thread with a 256 KiB stack: recursion that grows with the input
/// would overflow it (and abort the test binary).
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the thread did not panic")
}

fn quick<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    assert!(t.elapsed() < limit, "took {:?}", t.elapsed());
    out
}

fn syntax_line(e: &ManifestError) -> usize {
    match e {
        ManifestError::Syntax { line, .. } => *line,
        other => panic!("expected a syntax error, got {other}"),
    }
}

// ---- YAML ------------------------------------------------------------------------------

/// About 1 MB of text whose aliases expand to gigabytes.
fn string_bomb() -> String {
    let mut t = format!("a: &a [\"{}\"]\n", "x".repeat(1_000_000));
    let mut prev = "a".to_string();
    for i in 0..20 {
        let name = format!("b{i}");
        let refs = vec![format!("*{prev}"); 10].join(", ");
        t.push_str(&format!("{name}: &{name} [{refs}]\n"));
        prev = name;
    }
    t
}

#[test]
fn yaml_alias_bomb_is_refused_with_its_line() {
    let e = on_small_stack(|| quick(Duration::from_secs(5), || yaml::parse(&string_bomb())))
        .unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
    // b0 (line 2) already holds ten copies of the megabyte; b1 (line 3) passes the limit
    assert!((2..=4).contains(&syntax_line(&e)), "{e}");
}

#[test]
fn yaml_billion_laughs_is_refused() {
    let mut t = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
    for i in 1..12 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        t.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    let e = on_small_stack(move || quick(Duration::from_secs(5), || yaml::parse(&t))).unwrap_err();
    assert!(e.to_string().contains("nodes"), "{e}");
}

#[test]
fn yaml_alias_cannot_nest_past_the_depth_limit() {
    // an anchor 60 deep used 60 deep is 120 deep
    let deep = format!("{}x{}", "[".repeat(60), "]".repeat(60));
    let t = format!("a: &a {deep}\nb: {}*a{}\n", "[".repeat(60), "]".repeat(60));
    let e = yaml::parse(&t).unwrap_err();
    assert!(e.to_string().contains("nested deeper"), "{e}");
    assert_eq!(syntax_line(&e), 2);
}

fn deep_texts(depth: usize) -> Vec<(&'static str, String)> {
    vec![
        ("block list", "- ".repeat(depth) + "x"),
        ("block map", {
            let mut t = String::new();
            for i in 0..depth.min(20_000) {
                t.push_str(&" ".repeat(i));
                t.push_str("a:\n");
            }
            t
        }),
        ("flow list", "[".repeat(depth) + &"]".repeat(depth)),
        ("flow map", "{a: ".repeat(depth) + "1" + &"}".repeat(depth)),
        ("json list", "[".repeat(depth) + "1" + &"]".repeat(depth)),
        ("json map", "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth)),
    ]
}

#[test]
fn yaml_nested_100_000_deep_is_refused_on_a_small_stack() {
    for (what, text) in deep_texts(100_000) {
        let e = on_small_stack(move || quick(Duration::from_secs(10), || yaml::parse(&text)))
            .unwrap_err();
        assert!(
            e.to_string().contains("nested deeper") || e.to_string().contains("recursion limit"),
            "{what}: {e}"
        );
    }
}

#[test]
fn yaml_nested_1_000_000_deep_is_refused_on_a_small_stack() {
    for (what, text) in deep_texts(1_000_000) {
        let e = on_small_stack(move || quick(Duration::from_secs(20), || yaml::parse(&text)))
            .unwrap_err();
        assert!(
            e.to_string().contains("nested deeper") || e.to_string().contains("recursion limit"),
            "{what}: {e}"
        );
    }
}

#[test]
fn deploy_of_deep_or_bombed_text_fails_cleanly() {
    for text in [string_bomb(), "- ".repeat(100_000) + "x"] {
        let e = on_small_stack(move || deploy_plan(&text).map(|_| ())).unwrap_err();
        assert!(matches!(e, ManifestError::Syntax { .. }), "{e}");
        let _ = compile_manifest("app: {}").unwrap_err();
    }
    let _ = limits::MAX_DEPTH;
    let _ = expr::map_once;
}
