//! `#[pg_test]`s: run by `cargo pgrx test` inside a server that preloads hotmesh.
//! Each test runs in a transaction that is rolled back, so nothing here depends on a
//! commit; commit-level behaviour is tested end to end in tests/.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;
    use std::time::{Duration, Instant};

    /// Polls `query` (a bigint) until it reaches `want` or `secs` pass. Each statement takes
    /// a new snapshot, so rows and stats committed by workers become visible.
    fn wait_for(query: &str, want: i64, secs: u64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            Spi::run("SELECT pg_stat_clear_snapshot()").unwrap();
            let got = Spi::get_one::<i64>(query).unwrap().unwrap_or(0);
            if got >= want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
            pgrx::check_for_interrupts!();
        }
    }

    #[pg_test]
    fn version_matches_the_package() {
        assert_eq!(
            Some(env!("CARGO_PKG_VERSION")),
            Spi::get_one::<&str>("SELECT hotmesh.version()").unwrap()
        );
    }

    #[pg_test]
    fn each_engine_refusal_is_raised_with_the_sqlstate_the_engine_names() {
        use hotmesh_engine::error::EngineError;
        use pgrx::PgSqlErrorCode as C;
        let cases = [
            (
                EngineError::JobNotFound("j".into()),
                C::ERRCODE_NO_DATA_FOUND,
            ),
            (
                EngineError::DuplicateJob("j".into()),
                C::ERRCODE_UNIQUE_VIOLATION,
            ),
            (EngineError::Map("m".into()), C::ERRCODE_DATA_EXCEPTION),
            (
                EngineError::NoHookRule("t".into()),
                C::ERRCODE_UNDEFINED_OBJECT,
            ),
            (
                EngineError::JobCompleted("j".into()),
                C::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ),
            (EngineError::Internal("x".into()), C::ERRCODE_INTERNAL_ERROR),
            (
                EngineError::InvalidArgument {
                    name: "n",
                    problem: "p".into(),
                },
                C::ERRCODE_INVALID_PARAMETER_VALUE,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(crate::error::engine_sqlstate(&e), want, "{e}");
        }
    }

    #[pg_test]
    fn schema_belongs_to_the_extension() {
        let n = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_depend d JOIN pg_namespace n ON d.objid = n.oid
              WHERE d.classid = 'pg_namespace'::regclass AND n.nspname = 'hotmesh'
                AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'",
        )
        .unwrap();
        assert_eq!(Some(1), n);
    }

    #[pg_test]
    fn launcher_is_running() {
        let n = wait_for(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'hotmesh launcher'",
            1,
            20,
        );
        assert_eq!(1, n);
    }

    #[pg_test]
    fn engine_worker_runs_in_this_database() {
        assert_eq!(
            Some(true),
            Spi::get_one::<bool>("SELECT hotmesh.wait_for_engine(20)").unwrap()
        );
        let n = wait_for(
            "SELECT count(*) FROM pg_stat_activity
              WHERE backend_type = 'hotmesh engine' AND datname = current_database()",
            1,
            10,
        );
        assert_eq!(1, n);
        let state = Spi::get_one::<String>(
            "SELECT state FROM hotmesh.workers() WHERE database = current_database()",
        )
        .unwrap();
        assert_eq!(Some("running".to_string()), state);
    }

    #[pg_test]
    fn the_worker_survives_an_error() {
        assert_eq!(
            Some(true),
            Spi::get_one::<bool>("SELECT hotmesh.wait_for_engine(20)").unwrap()
        );
        let pid = Spi::get_one::<i32>(
            "SELECT pid FROM hotmesh.workers() WHERE database = current_database()",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            Some(true),
            Spi::get_one::<bool>("SELECT hotmesh.debug_fail_worker('injected by a test')").unwrap()
        );
        let errors = wait_for(
            "SELECT errors FROM hotmesh.workers() WHERE database = current_database()",
            1,
            10,
        );
        assert_eq!(1, errors);
        let (same_pid, msg) = Spi::get_two::<i32, String>(
            "SELECT pid, last_error FROM hotmesh.workers() WHERE database = current_database()",
        )
        .unwrap();
        assert_eq!(Some(pid), same_pid, "the worker must not have restarted");
        assert_eq!(Some("injected by a test".to_string()), msg);
    }

    #[pg_test(error = "invalid argument timeout_seconds: must be between 0 and 3600, got -1")]
    fn wait_for_engine_rejects_a_negative_timeout() {
        Spi::run("SELECT hotmesh.wait_for_engine(-1)").unwrap();
    }

    #[pg_test(error = "invalid argument message: must not be empty")]
    fn debug_fail_worker_rejects_an_empty_message() {
        Spi::run("SELECT hotmesh.debug_fail_worker('  ')").unwrap();
    }

    /// A jsonb document as `Json` reads it (walking the document), and as its text
    /// parses; both, or their errors.
    fn both_reads(
        text: &str,
    ) -> (
        Result<serde_json::Value, String>,
        Result<serde_json::Value, String>,
    ) {
        let c = std::ffi::CString::new(text).unwrap();
        // SAFETY: jsonb_in reads the C string; the datum lives in this memory context
        let datum = unsafe {
            pgrx::fcinfo::direct_function_call_as_datum(
                pg_sys::jsonb_in,
                &[Some(pg_sys::Datum::from(c.as_ptr()))],
            )
        }
        .unwrap();
        unsafe {
            (
                crate::json::Json::read(datum).map_err(|e| e.to_string()),
                crate::json::Json::from_jsonb_text(datum).map_err(|e| e.to_string()),
            )
        }
    }

    #[pg_test]
    fn jsonb_is_read_as_its_text_parses() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let mut docs: Vec<String> = [
            "null",
            "true",
            "false",
            "0",
            "-0",
            "1.5",
            "1e3",
            "1.000",
            "-1.25e-10",
            "123456789012345678901234567890",
            "0.1",
            "1e300",
            r#""""#,
            r#""é \n \" \\ \t \u00e9 😀""#,
            "[]",
            "{}",
            r#"{"":""}"#,
            r#"[1,[2,[3,{}]],{"a":[]},null,"x"]"#,
            r#"{"b":1,"a":2,"aa":{"x":null,"y":[true,false]},"ab":"c"}"#,
            r#"{"k":{"k":{"k":{"k":[1,2,{"k":"v"}]}}}}"#,
        ]
        .iter()
        .map(|d| d.to_string())
        .collect();
        docs.push(format!(
            "[{}]",
            (0..2000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ));
        docs.push(deep(127));
        for d in &docs {
            let (walked, parsed) = both_reads(d);
            assert!(walked.is_ok(), "{d}: {walked:?}");
            assert_eq!(walked, parsed, "{d}");
        }
        // one level past the parser's limit: refused the same way
        let (walked, parsed) = both_reads(&deep(128));
        assert!(walked.is_err(), "128 levels walked");
        assert_eq!(walked, parsed);
    }
}
