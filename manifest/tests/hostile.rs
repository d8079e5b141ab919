//! Hostile input, case by case: each must end in an error that names the limit (or a
//! result), quickly, on a small stack, without aborting the process.

use std::time::{Duration, Instant};

use hotmesh_manifest::compile::{compile_manifest, deploy_plan};
use hotmesh_manifest::{expr, limits, yaml, ManifestError};
use serde_json::json;

/// Runs `f` on a thread with a small stack: 256 KiB in release, 1 MiB in debug builds
/// (whose frames are several times larger: the bounded recursions, 100 levels of YAML
/// or of a map, need about 300 KiB there). The hostile inputs are 10,000 to 1,000,000
/// levels deep, so recursion that grows with the input would overflow it (and abort the
/// test binary).
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let kib = if cfg!(debug_assertions) { 1024 } else { 256 };
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the thread did not panic")
}

fn quick<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    eprintln!("took {:?}", t.elapsed());
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
        (
            "json map",
            "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth),
        ),
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

// ---- the compiler ----------------------------------------------------------------------

/// A one-graph app in JSON: `n` activities (a0 the trigger, the rest hooks) and the
/// transitions `edges` gives.
fn app(n: usize, edges: impl Fn(usize) -> Vec<usize>) -> String {
    let acts: Vec<String> = (0..n)
        .map(|i| {
            let t = if i == 0 { "trigger" } else { "hook" };
            format!("\"a{i}\":{{\"type\":\"{t}\"}}")
        })
        .collect();
    let trans: Vec<String> = (0..n)
        .filter_map(|i| {
            let to = edges(i);
            (!to.is_empty()).then(|| {
                let list: Vec<String> = to.iter().map(|t| format!("{{\"to\":\"a{t}\"}}")).collect();
                format!("\"a{i}\":[{}]", list.join(","))
            })
        })
        .collect();
    format!(
        "{{\"app\":{{\"id\":\"big\",\"version\":\"1\",\"graphs\":[{{\"subscribes\":\"big.go\",\"activities\":{{{}}},\"transitions\":{{{}}}}}]}}}}",
        acts.join(","),
        trans.join(",")
    )
}

#[test]
fn compiling_20_000_children_of_one_trigger_is_fast() {
    let text = app(20_001, |i| {
        if i == 0 {
            (1..=20_000).collect()
        } else {
            vec![]
        }
    });
    let compiled =
        on_small_stack(move || quick(Duration::from_secs(5), || compile_manifest(&text)))
            .expect("compiles");
    assert_eq!(compiled.activities.len(), 20_001);
    assert_eq!(
        compiled.activities["a20000"].ancestors,
        vec!["a0".to_string()]
    );
}

#[test]
fn compiling_a_chain_as_deep_as_allowed_is_fast() {
    let n = limits::MAX_GRAPH_DEPTH + 1;
    let text = app(n, |i| if i + 1 < n { vec![i + 1] } else { vec![] });
    let compiled =
        on_small_stack(move || quick(Duration::from_secs(5), || compile_manifest(&text)))
            .expect("compiles");
    let last = &compiled.activities[format!("a{}", n - 1).as_str()];
    assert_eq!(last.ancestors.len(), n - 1);
    assert_eq!(last.ancestors[0], "a0");
}

#[test]
fn a_chain_of_20_000_activities_is_refused_quickly_as_too_deep() {
    let text = app(
        20_000,
        |i| if i + 1 < 20_000 { vec![i + 1] } else { vec![] },
    );
    let e = on_small_stack(move || quick(Duration::from_secs(5), || compile_manifest(&text)))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("at most {}", limits::MAX_GRAPH_DEPTH)),
        "{e}"
    );
    assert!(
        e.path()
            .ends_with(&format!("a{}", limits::MAX_GRAPH_DEPTH + 1)),
        "{e}"
    );
}

#[test]
fn compiling_a_lattice_of_20_000_activities_is_fast() {
    // 20 layers of 1,000: each activity leads to two of the next layer, so most are
    // reached from two parents at the same depth
    let w = 1_000;
    let text = app(1 + 20 * w, |i| {
        if i == 0 {
            (1..=w).collect()
        } else if i + w <= 20 * w {
            let next = i + w;
            let other = if (i - 1) % w + 1 < w {
                next + 1
            } else {
                next + 1 - w
            };
            vec![next, other]
        } else {
            vec![]
        }
    });
    let compiled =
        on_small_stack(move || quick(Duration::from_secs(8), || compile_manifest(&text)))
            .expect("compiles");
    assert_eq!(compiled.activities.len(), 1 + 20 * w);
    assert!(compiled.warnings.len() <= limits::MAX_WARNINGS + 1);
    assert!(compiled
        .warnings
        .last()
        .is_some_and(|w| w.contains("more warnings")));
}

#[test]
fn a_long_loop_is_reported_quickly() {
    let n = 900;
    let text = app(n, |i| match i {
        0 => vec![1],
        i if i + 1 < n => vec![i + 1],
        _ => vec![1],
    });
    let e = on_small_stack(move || quick(Duration::from_secs(5), || compile_manifest(&text)))
        .unwrap_err();
    assert!(e.to_string().contains("form a loop"), "{e}");
}

// ---- maps ------------------------------------------------------------------------------

fn map(
    expression: serde_json::Value,
    context: serde_json::Value,
) -> Result<Option<serde_json::Value>, String> {
    expr::map_once(&expression, &context)
}

fn map_err(expression: serde_json::Value, context: serde_json::Value) -> String {
    map(expression, context).expect_err("an error")
}

#[test]
fn a_pipe_nested_10_000_deep_is_refused_on_a_small_stack() {
    let e = on_small_stack(|| {
        // json! copies its arguments by serializing them (recursively): built by hand
        let mut v = json!("{@symbol.null}");
        for _ in 0..10_000 {
            let row = serde_json::Value::Array(vec![serde_json::Value::Array(vec![v])]);
            v = object("@pipe", row);
        }
        let r = expr::map_once(&v, &json!({}));
        limits::drop_json(v);
        r
    })
    .unwrap_err();
    assert!(e.contains("nested deeper"), "{e}");
}

/// A context nested `depth` levels under `data.deep`, built and dropped without
/// recursion.
fn deep_context(depth: usize) -> serde_json::Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = object("a", v);
    }
    let mut data = object("deep", v);
    data["flat"] = json!(2);
    object("t1", object("data", data))
}

/// `{key: value}`, moving `value` in (json! would copy it recursively).
fn object(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(key.into(), value);
    serde_json::Value::Object(m)
}

#[test]
fn a_context_nested_10_000_deep_is_refused_where_a_map_copies_it() {
    let e = on_small_stack(|| {
        let ctx = deep_context(10_000);
        let out = [
            expr::map_once(&json!("{t1.data.deep}"), &ctx),
            expr::map_once(&json!({"x": "{t1.data.deep}"}), &ctx),
            expr::map_once(
                &json!({"@pipe": [["{t1.data.deep}"], ["{@json.stringify}"]]}),
                &ctx,
            ),
            expr::map_once(
                &json!({"@pipe": [["{t1.data}", 0], {"@reduce": [["{$item}"]]}]}),
                &ctx,
            ),
        ];
        // what is not deep still reads
        let flat = expr::map_once(&json!("{t1.data.flat}"), &ctx);
        limits::drop_json(ctx);
        (out, flat)
    });
    for r in e.0 {
        let msg = r.unwrap_err();
        assert!(msg.contains("nested too deep"), "{msg}");
    }
    assert_eq!(e.1, Ok(Some(json!(2))));
}

#[test]
fn a_value_built_deeper_than_allowed_is_an_error() {
    // each item wraps the accumulator in one more object
    let items: Vec<usize> = (0..1_000).collect();
    let e = on_small_stack(move || {
        map(
            json!({"@pipe": [["{$job.items}", {}], {"@reduce": [["{$item}", "{$output}"], ["{@object.create}"]]}]}),
            json!({"$job": {"items": items}}),
        )
    })
    .unwrap_err();
    assert!(e.contains("nested too deep"), "{e}");
}

#[test]
fn a_reduce_over_100_000_items_runs_in_linear_time() {
    let items: Vec<usize> = (0..100_000).collect();
    let r = on_small_stack(move || {
        quick(Duration::from_secs(10), || {
            map(
                json!({"@pipe": [["{$job.items}", 0], {"@reduce": [["{$output}", "{$item}"], ["{@math.add}"]]}]}),
                json!({"$job": {"items": items}}),
            )
        })
    });
    assert_eq!(r, Ok(Some(json!(4_999_950_000u64))));
}

#[test]
fn a_huge_repeat_is_refused_before_allocating() {
    let e = map_err(
        json!({"@pipe": [["x", 100_000_000], ["{@string.repeat}"]]}),
        json!({}),
    );
    assert!(
        e.contains("value too large") && e.contains(&limits::MAX_VALUE_BYTES.to_string()),
        "{e}"
    );
    let e = map_err(
        json!({"@pipe": [["x", 99_999_999, "ab"], ["{@string.padStart}"]]}),
        json!({}),
    );
    assert!(e.contains("value too large"), "{e}");
}

#[test]
fn forty_big_strings_concatenated_are_refused() {
    // forty 10 MB strings made by repeat, joined three ways
    let forty: Vec<serde_json::Value> = (0..40)
        .map(|_| json!({"@pipe": [["x", 10_000_000], ["{@string.repeat}"]]}))
        .collect();
    for (what, join) in [
        ("string.concat", "{@string.concat}"),
        ("math.add", "{@math.add}"),
    ] {
        let rows: Vec<serde_json::Value> =
            forty.clone().into_iter().chain([json!([join])]).collect();
        let e = map_err(json!({"@pipe": rows}), json!({}));
        assert!(
            e.contains("too large") || e.contains("too much"),
            "{what}: {e}"
        );
    }
    // held at once in one object: the evaluation's budget
    let obj: serde_json::Map<String, serde_json::Value> = forty
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("k{i}"), v.clone()))
        .collect();
    let e = map_err(serde_json::Value::Object(obj), json!({}));
    assert!(e.contains("holds too much"), "{e}");
}

#[test]
fn doubling_a_list_is_refused_before_it_exhausts_memory() {
    // each item concatenates the accumulator with itself: 2^64 elements unchecked
    let items: Vec<usize> = (0..64).collect();
    let e = map_err(
        json!({"@pipe": [["{$job.items}", ["x"]], {"@reduce": [["{$output}", "{$output}"], ["{@array.concat}"], ["{@array.concat}", "{$output}"]]}]}),
        json!({"$job": {"items": items}}),
    );
    assert!(e.contains("too large") || e.contains("too much"), "{e}");
}

#[test]
fn a_join_with_a_huge_separator_is_refused() {
    let sep = "-".repeat(1_000_000);
    let e = map_err(
        json!({"@pipe": [["{$job.list}", sep], ["{@array.join}"]]}),
        json!({"$job": {"list": vec![1; 1_000]}}),
    );
    assert!(e.contains("value too large"), "{e}");
}

#[test]
fn a_stringify_with_indentation_is_bounded() {
    let e = map_err(
        json!({"@pipe": [["{$job.v}", null, "          "], ["{@json.stringify}"]]}),
        json!({"$job": {"v": vec![vec![vec![vec![vec![vec![1; 20]; 20]; 20]; 20]; 10]; 1]}}),
    );
    assert!(e.contains("value too large"), "{e}");
}

#[test]
fn catastrophic_backtracking_regex_is_linear() {
    let r = quick(Duration::from_secs(2), || {
        map(
            json!({"@pipe": [["aaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "(a+)+$"], ["{@string.search}"]]}),
            json!({}),
        )
    });
    assert_eq!(r, Ok(Some(json!(-1))));
    let text = "a".repeat(1_000_000) + "!";
    let r = quick(Duration::from_secs(10), || {
        map(
            json!({"@pipe": [[text, "(a|aa)+$"], ["{@string.search}"]]}),
            json!({}),
        )
    });
    assert_eq!(r, Ok(Some(json!(-1))));
}

#[test]
fn a_regex_too_long_or_needing_backtracking_is_an_error() {
    let e = map_err(
        json!({"@pipe": [["abab", "(ab)\\1"], ["{@string.search}"]]}),
        json!({}),
    );
    assert!(e.contains("not supported"), "{e}");
    let e = map_err(
        json!({"@pipe": [["a", "a".repeat(5_000)], ["{@string.search}"]]}),
        json!({}),
    );
    assert!(e.contains("too long"), "{e}");
}

#[test]
fn searching_a_long_string_is_linear() {
    let hay = "a".repeat(2_000_000);
    let needle = "a".repeat(1_000_000) + "b";
    let r = quick(Duration::from_secs(5), || {
        map(
            json!({"@pipe": [[hay, needle], ["{@string.indexOf}"]]}),
            json!({}),
        )
    });
    assert_eq!(r, Ok(Some(json!(-1))));
}

#[test]
fn a_map_as_deep_as_allowed_compiles_and_runs_on_a_small_stack() {
    // nested pipes up to the YAML depth limit: the bounded recursions fit
    let r = on_small_stack(|| {
        // a nested pipe is a row of its own; the next row takes its result
        let mut v = json!({"@pipe": [["{$job.x}"]]});
        let mut depth = 3;
        while depth + 2 <= limits::MAX_DEPTH {
            v = json!({"@pipe": [v, ["{@string.concat}", "!"], ["{@string.concat}"]]});
            depth += 2;
        }
        map(v, json!({"$job": {"x": "a"}}))
    });
    let s = r.expect("evaluates").expect("a value");
    assert!(
        s.as_str()
            .is_some_and(|s| s.starts_with('a') && s.ends_with('!')),
        "{s}"
    );
}

// ---- the guard hook ---------------------------------------------------------------------

thread_local! {
    /// Ticks left before the hook "cancels" (panics) on this thread; None: never.
    static BUDGET: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    static TICKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// What the extension installs: Postgres's CHECK_FOR_INTERRUPTS, which raises an error
/// (a panic here) when the statement is cancelled. Only threads that armed it are
/// affected, since tests run in parallel.
fn cancel_hook() {
    TICKS.with(|t| t.set(t.get() + 1));
    BUDGET.with(|b| match b.get() {
        Some(0) => {
            b.set(None);
            panic!("canceling statement due to user request");
        }
        Some(n) => b.set(Some(n - 1)),
        None => {}
    });
}

fn cancelled_after<T>(ticks: usize, f: impl FnOnce() -> T) -> std::thread::Result<T> {
    hotmesh_manifest::guard::set_hook(cancel_hook);
    BUDGET.with(|b| b.set(Some(ticks)));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    BUDGET.with(|b| b.set(None));
    r
}

#[test]
fn long_work_reaches_the_guard_hook_and_can_be_cancelled() {
    let items: Vec<usize> = (0..100_000).collect();
    let fold = json!({"@pipe": [["{$job.items}", 0], {"@reduce": [["{$output}", "{$item}"], ["{@math.add}"]]}]});
    let ctx = json!({"$job": {"items": items}});
    // a fold, a big manifest and a long YAML text are each cancelled part way
    assert!(cancelled_after(1_000, || map(fold.clone(), ctx.clone())).is_err());
    let text = app(
        5_000,
        |i| if i == 0 { (1..5_000).collect() } else { vec![] },
    );
    assert!(cancelled_after(1_000, || compile_manifest(&text)).is_err());
    let yaml_text = "- x\n".repeat(100_000);
    assert!(cancelled_after(1_000, || yaml::parse(&yaml_text)).is_err());
    // and nothing is left broken: the same work completes afterwards
    assert_eq!(map(fold, ctx), Ok(Some(json!(4_999_950_000u64))));
    assert!(compile_manifest(&text).is_ok());
    let before = TICKS.with(|t| t.get());
    assert!(yaml::parse(&yaml_text).is_ok());
    assert!(
        TICKS.with(|t| t.get()) > before + 100_000,
        "the parser ticks per event"
    );
}
