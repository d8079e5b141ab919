//! MeshData against a real cluster: the seeds' user records (index, worker, exec, get,
//! find), search fields written inside the workflow, find_where against a brute-force
//! filter of 10,000 random records, plans that use the declared indexes, and the records
//! views (typed columns, the raw query path, the reader's own privileges).

use hotmesh_client::meshdata::{
    records_view, Condition, ExecOptions, FieldType, FindOptions, MeshData, SearchSchema,
};
use hotmesh_client::meshflow::{Connection, Context, WorkflowError};
use hotmesh_client::Error;
use hotmesh_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DB: &str = "e2e_meshdata";

async fn setup() -> Connection {
    fresh_database(DB).await;
    exec(DB, "CREATE EXTENSION hotmesh").await;
    Connection::new(url_for(DB))
}

fn user_schema() -> SearchSchema {
    SearchSchema::new()
        .tag("id")
        .text("first")
        .tag("active")
        .numeric("created", true)
}

async fn user(ctx: Context, name: String) -> Result<String, WorkflowError> {
    let s = ctx.search();
    s.set("active", "yes");
    s.incr("logins", 1.0);
    Ok(format!("Welcome, {name}."))
}

#[tokio::test]
async fn user_records_are_created_read_and_found_as_the_seeds_show() {
    let md = MeshData::new(setup().await).await.unwrap();
    let fields = md
        .create_search_index("user", &user_schema())
        .await
        .unwrap();
    assert_eq!(fields["first"]["type"], "TEXT");
    // idempotent; another type for a declared field is refused
    md.create_search_index("user", &user_schema())
        .await
        .unwrap();
    let e = md
        .create_search_index(
            "user",
            &SearchSchema::new().field("created", FieldType::Tag, false),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("declared as NUMERIC"), "{e}");
    md.connect("user", user).await.unwrap();
    for (id, first, created) in [
        ("jim123", "James Tiberius", 100),
        ("ann7", "Ann", 200),
        ("bo9", "Bo James", 300),
    ] {
        let hi: String = md
            .exec(
                "user",
                first,
                ExecOptions::new()
                    .id(id)
                    .ttl_infinity()
                    .search("id", id)
                    .search("first", first)
                    .search("created", created),
            )
            .await
            .unwrap();
        assert_eq!(hi, format!("Welcome, {first}."));
    }
    // a live id is a duplicate
    let e = md
        .exec::<String>("user", "x", ExecOptions::new().id("jim123"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Duplicate { .. }), "{e:?}");
    let got = md
        .get("user", "jim123", &["id", "first", "active", "logins"])
        .await
        .unwrap();
    assert_eq!(
        got,
        json!({"id": "jim123", "first": "James Tiberius", "active": "yes", "logins": 1})
    );
    let active = md
        .find_where(
            "user",
            FindOptions::new()
                .when(Condition::eq("active", "yes"))
                .limit(0, 100)
                .fields(&["id", "first", "created", "active"]),
        )
        .await
        .unwrap();
    assert_eq!(active.len(), 3);
    assert_eq!(active[0].0, "bo9", "newest first");
    let james: Vec<String> = md
        .find_where(
            "user",
            FindOptions::new()
                .when(Condition::matches("first", "james"))
                .sort("created", true),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(james, ["jim123", "bo9"]);
    let ranged = md
        .find_where(
            "user",
            FindOptions::new()
                .when(Condition::range("created", 150, 300))
                .when(Condition::prefix("id", "a"))
                .fields(&["first"]),
        )
        .await
        .unwrap();
    assert_eq!(ranged, [("ann7".to_string(), json!({"first": "Ann"}))]);
    // a bad query is a clear error, never a query built from its text
    let e = md
        .find_where(
            "user",
            FindOptions::new().when(Condition::eq("x'; DROP TABLE hotmesh.jobs; --", 1)),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("query[0].field"), "{e}");
    let e = md
        .find_where("user", FindOptions::new().sort("first", true))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a sortable field"), "{e}");
    // records are rows
    let n: i64 = scalar(
        DB,
        "SELECT count(*) FROM hotmesh.jobs WHERE entity = 'user' AND search ->> 'active' = 'yes'",
    )
    .await;
    assert_eq!(n, 3);
    md.stop().await;
}

/// A graph of one trigger: `pub('rec.make', …, {id, entity, search})` makes a record.
async fn records_app(md: &MeshData) {
    install(
        md.hotmesh().pool(),
        "app: { id: rec, version: '1', graphs: [ { subscribes: rec.make, activities: { t: { type: trigger } } } ] }",
        "rec",
        "1",
    )
    .await;
}

/// A deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Whether `plan` reads the records through a declared search index (`jobs_search_…`, as
/// each partition of the ring names its copy): an index scan of each partition that holds
/// jobs (the empty ones may be scanned: there is nothing to read), no sequential scan of
/// any of those. Err: what is wrong.
async fn reads_by_index(pool: &sqlx::PgPool, plan: &str) -> Result<(), String> {
    let filled: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT tableoid::regclass::text FROM hotmesh.jobs")
            .fetch_all(pool)
            .await
            .unwrap();
    // (partition, its copy of a declared index)
    let declared: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.relname::text, c.relname::text
           FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
           JOIN pg_class p ON p.oid = i.inhparent
           JOIN pg_index x ON x.indexrelid = c.oid
           JOIN pg_class t ON t.oid = x.indrelid
          WHERE p.relname LIKE 'jobs_search_%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for part in filled {
        let name = part.trim_start_matches("hotmesh.");
        if plan
            .lines()
            .any(|l| l.contains(&format!("Seq Scan on {name} ")))
        {
            return Err(format!("{name} is scanned sequentially"));
        }
        let by_index = declared.iter().any(|(t, index)| {
            let scan = format!("Index Scan on {index}");
            t == name
                && plan
                    .lines()
                    .any(|l| l.trim_end().ends_with(&scan) || l.contains(&format!("{scan} ")))
        });
        if !by_index {
            return Err(format!("{name} is not read by a declared search index"));
        }
    }
    Ok(())
}

const COLORS: &[&str] = &["red", "green", "blue", "amber", "azure"];
const WORDS: &[&str] = &["quick", "brown", "fox", "lazy", "dog", "jumps"];

/// What find_where should return for `c`, computed from the records themselves.
fn holds(c: &Condition, r: &Value) -> bool {
    let c = c.to_json();
    let f = c["field"].as_str().unwrap();
    let v = &r[f];
    let want = &c["value"];
    match (f, c["is"].as_str().unwrap()) {
        ("price", op) => {
            let Some(x) = v.as_f64() else { return false };
            match op {
                "=" => x == want.as_f64().unwrap(),
                "!=" => x != want.as_f64().unwrap(),
                "<" => x < want.as_f64().unwrap(),
                "<=" => x <= want.as_f64().unwrap(),
                ">" => x > want.as_f64().unwrap(),
                ">=" => x >= want.as_f64().unwrap(),
                "[]" => x >= want[0].as_f64().unwrap() && x <= want[1].as_f64().unwrap(),
                "in" => want
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|w| w.as_f64() == Some(x)),
                _ => unreachable!(),
            }
        }
        ("color", op) => {
            let Some(x) = v.as_str() else { return false };
            match op {
                "=" => x == want,
                "!=" => x != want,
                "in" => want.as_array().unwrap().iter().any(|w| w == x),
                "prefix" => x.starts_with(want.as_str().unwrap()),
                "[]" => x >= want[0].as_str().unwrap() && x <= want[1].as_str().unwrap(),
                _ => unreachable!(),
            }
        }
        ("title", "match") => {
            let words: BTreeSet<&str> = v.as_str().unwrap_or("").split(' ').collect();
            want.as_str().unwrap().split(' ').all(|w| words.contains(w))
        }
        other => unreachable!("{other:?}"),
    }
}

#[tokio::test]
async fn find_where_returns_what_a_brute_force_filter_does_over_10000_random_records() {
    let md = MeshData::new(setup().await).await.unwrap();
    // records made directly by pub (a graph of one trigger), with search fields
    records_app(&md).await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut records = vec![];
    for i in 0..10_000 {
        let mut s = json!({
            "color": rng.pick(COLORS),
            "title": format!("{} {} {}", rng.pick(WORDS), rng.pick(WORDS), rng.pick(WORDS)),
        });
        // some records have no price, some a price as text
        match rng.next() % 10 {
            0 => {}
            1 => s["price"] = json!(format!("{}", rng.next() % 1000)),
            _ => s["price"] = json!(rng.next() % 1000),
        }
        records.push((format!("r{i:05}"), s));
    }
    let ids: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    let searches: Vec<Value> = records.iter().map(|r| r.1.clone()).collect();
    sqlx::query(
        "SELECT hotmesh.pub('rec.make', '{}', jsonb_build_object('id', i, 'entity', 'item', 'search', s))
           FROM unnest($1::text[], $2::jsonb[]) AS u(i, s)",
    )
    .bind(&ids)
    .bind(&searches)
    .execute(md.hotmesh().pool())
    .await
    .unwrap();
    md.create_search_index(
        "item",
        &SearchSchema::new()
            .tag("color")
            .text("title")
            .numeric("price", true),
    )
    .await
    .unwrap();
    exec(DB, "ANALYZE hotmesh.jobs").await;
    // a numeric price read as a number, also from text
    let as_number = |s: &Value| {
        let mut s = s.clone();
        if let Some(t) = s["price"].as_str() {
            s["price"] = json!(t.parse::<f64>().unwrap());
        }
        s
    };
    let records: Vec<(String, Value)> = records
        .into_iter()
        .map(|(i, s)| (i, as_number(&s)))
        .collect();
    let mut checked = 0;
    for q in 0..200 {
        let p = (rng.next() % 1000) as i64;
        let c = match q % 10 {
            0 => Condition::eq("color", rng.pick(COLORS)),
            1 => Condition::ne("color", rng.pick(COLORS)),
            2 => Condition::prefix("color", &rng.pick(COLORS)[..1]),
            3 => Condition::one_of(
                "color",
                vec![json!(rng.pick(COLORS)), json!(rng.pick(COLORS))],
            ),
            4 => Condition::lt("price", p),
            5 => Condition::ge("price", p),
            6 => Condition::range("price", p, p + 100),
            7 => Condition::eq("price", p),
            8 => Condition::matches("title", &format!("{} {}", rng.pick(WORDS), rng.pick(WORDS))),
            _ => Condition::range("color", "b", "g"),
        };
        let mut o = FindOptions::new()
            .when(c.clone())
            .limit(0, 10_000)
            .fields(&[]);
        let mut expected: Vec<&str> = records
            .iter()
            .filter(|(_, s)| holds(&c, s))
            .map(|(i, _)| i.as_str())
            .collect();
        if q % 3 == 0 {
            // and a second condition
            let c2 = Condition::gt("price", 500);
            expected.retain(|i| holds(&c2, &records[i[1..].parse::<usize>().unwrap()].1));
            o = o.when(c2);
        }
        let got: Vec<String> = md
            .find_where("item", o)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        let got: BTreeSet<&str> = got.iter().map(String::as_str).collect();
        let expected: BTreeSet<&str> = expected.into_iter().collect();
        assert_eq!(got, expected, "query {q}: {c:?}");
        checked += 1;
    }
    assert_eq!(checked, 200);
    // sorted by price, paged
    let page: Vec<Value> = md
        .find_where(
            "item",
            FindOptions::new()
                .when(Condition::eq("color", "red"))
                .sort("price", false)
                .limit(10, 5)
                .fields(&["price"]),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.1["price"].clone())
        .collect();
    let mut reds: Vec<f64> = records
        .iter()
        .filter(|(_, s)| s["color"] == "red")
        .filter_map(|(_, s)| s["price"].as_f64())
        .collect();
    reds.sort_by(|a, b| b.partial_cmp(a).unwrap());
    let want: Vec<f64> = reds[10..15].to_vec();
    let got: Vec<f64> = page
        .iter()
        .map(|v| {
            v.as_f64()
                .or_else(|| v.as_str().map(|s| s.parse().unwrap()))
                .unwrap()
        })
        .collect();
    assert_eq!(got, want);
    // the plans use the declared indexes
    for (query, index_kind) in [
        (
            json!([{"field": "price", "is": "[]", "value": [10, 20]}]),
            "price",
        ),
        (
            json!([{"field": "color", "is": "=", "value": "red"}]),
            "color",
        ),
        (
            json!([{"field": "title", "is": "match", "value": "fox"}]),
            "title",
        ),
    ] {
        let plan: Vec<String> = sqlx::query_scalar("SELECT hotmesh.find_where_plan('item', $1)")
            .bind(&query)
            .fetch_all(md.hotmesh().pool())
            .await
            .unwrap();
        let plan = plan.join("\n");
        if let Err(e) = reads_by_index(md.hotmesh().pool(), &plan).await {
            panic!("{index_kind}: {e}:\n{plan}");
        }
    }
}

#[tokio::test]
async fn records_views_are_typed_rows_that_use_the_indexes_with_the_readers_privileges() {
    let md = MeshData::new(setup().await).await.unwrap();
    records_app(&md).await;
    // 2,000 items (price 0..999, a color), and 50 records of another entity
    sqlx::query(
        "SELECT hotmesh.pub('rec.make', '{}', jsonb_build_object('id', 'r' || i, 'entity', 'item',
                 'search', jsonb_build_object('color', (ARRAY['red', 'blue'])[1 + i % 2], 'price', i % 1000, 'id', 'r' || i)))
           FROM generate_series(1, 2000) i",
    )
    .execute(md.hotmesh().pool())
    .await
    .unwrap();
    sqlx::query(
        "SELECT hotmesh.pub('rec.make', '{}', jsonb_build_object('id', 'secret-' || i, 'entity', 'secret',
                 'search', jsonb_build_object('code', i)))
           FROM generate_series(1, 50) i",
    )
    .execute(md.hotmesh().pool())
    .await
    .unwrap();
    md.create_search_index(
        "item",
        &SearchSchema::new()
            .tag("id")
            .tag("color")
            .numeric("price", true),
    )
    .await
    .unwrap();
    md.create_search_index("secret", &SearchSchema::new().numeric("code", false))
        .await
        .unwrap();
    exec(DB, "ANALYZE hotmesh.jobs").await;
    // typed columns in declaration order; `id` is the record's, not a second column
    let cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
          WHERE table_schema = 'hotmesh_records' AND table_name = 'item' ORDER BY ordinal_position",
    )
    .fetch_all(md.hotmesh().pool())
    .await
    .unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "status",
            "created_at",
            "updated_at",
            "completed_at",
            "search",
            "color",
            "price"
        ]
    );
    assert_eq!(cols[7].1, "numeric");
    // a field declared later is a new last column; the old ones (and grants) stay
    md.create_search_index("item", &SearchSchema::new().tag("size"))
        .await
        .unwrap();
    let last: String = scalar(
        DB,
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = 'hotmesh_records' AND table_name = 'item' ORDER BY ordinal_position DESC LIMIT 1",
    )
    .await;
    assert_eq!(last, "size");
    // the raw path: parameters bound, rows as JSON, the same as a brute-force count
    let sql = format!(
        "SELECT id, price FROM {} WHERE color = $1 AND price >= $2 AND price < $3 ORDER BY price, id",
        records_view("item")
    );
    let rows = md
        .query(&sql, &[json!("red"), json!(100), json!(110)])
        .await
        .unwrap();
    // red: even i; price i % 1000 in [100, 110): i in {100..109, 1100..1109}, even
    let want: Vec<Value> = [100, 1100, 102, 1102, 104, 1104, 106, 1106, 108, 1108]
        .iter()
        .map(|i| json!({"id": format!("r{i}"), "price": i % 1000}))
        .collect();
    let mut want = want;
    want.sort_by_key(|v| (v["price"].as_i64(), v["id"].as_str().unwrap().to_string()));
    assert_eq!(rows, want);
    // a value is never SQL: a hostile string is just a string that matches nothing
    let none = md
        .query(&sql, &[json!("red' OR '1'='1"), json!(0), json!(1000)])
        .await
        .unwrap();
    assert!(none.is_empty());
    let e = md.query("SELECT 1;", &[]).await.unwrap_err();
    assert!(e.to_string().contains("statement"), "{e}");
    // a WHERE on the view uses the field's index
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN (COSTS OFF) SELECT id FROM hotmesh_records.item WHERE price BETWEEN 10 AND 12",
    )
    .fetch_all(md.hotmesh().pool())
    .await
    .unwrap();
    let plan = plan.join("\n");
    if let Err(e) = reads_by_index(md.hotmesh().pool(), &plan).await {
        panic!("{e}:\n{plan}");
    }
    // the views read with the reader's own privileges: a role that may not read
    // hotmesh.jobs reads no records through them; one granted it does
    exec(DB, "DROP ROLE IF EXISTS md_reader; CREATE ROLE md_reader;").await;
    let mut c = connect(DB).await;
    sqlx::raw_sql("SET ROLE md_reader")
        .execute(&mut c)
        .await
        .unwrap();
    let e = sqlx::query("SELECT count(*) FROM hotmesh_records.item")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("permission denied for table jobs"),
        "{e}"
    );
    exec(DB, "GRANT SELECT ON hotmesh.jobs TO md_reader").await;
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hotmesh_records.item WHERE color = 'blue'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(n, 1000);
    drop(c);
    exec(
        DB,
        "REVOKE SELECT ON hotmesh.jobs FROM md_reader; DROP ROLE md_reader",
    )
    .await;
    md.stop().await;
}
