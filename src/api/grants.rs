//! Privileges per app, for the SQL-language functions (the quorum, `release`): they call
//! `hotmesh._authorize`. The rules and the checks every other function makes are in
//! `crate::store::grants`; `hotmesh.grant_app`/`revoke_app` are in sql/grants.sql.

use pgrx::prelude::*;

#[pg_schema]
mod hotmesh {
    use crate::error::Raise;
    use crate::store::grants::{caller, deny, holds, require, unrestricted, Privilege};
    use hotmesh_engine::error::EngineError;
    use pgrx::prelude::*;

    /// Raises unless the caller may do `privilege` ('deploy', 'start', 'work', 'read', or
    /// 'any' of them) with `app`. The SQL-language functions (the quorum, release) call it.
    #[pg_extern(stable, name = "_authorize")]
    fn authorize(app: Option<&str>, privilege: &str) {
        let Some(app) = app else {
            return; // the row it was looked up from is gone: the caller finds nothing
        };
        if privilege == "any" {
            let role = caller();
            if unrestricted(role) {
                return;
            }
            let any = [
                Privilege::Deploy,
                Privilege::Start,
                Privilege::Work,
                Privilege::Read,
            ]
            .into_iter()
            .any(|p| holds(role, app, p));
            if !any {
                deny(role, app, Privilege::Read);
            }
            return;
        }
        let Some(p) = Privilege::parse(privilege) else {
            EngineError::InvalidArgument {
                name: "privilege",
                problem: format!("must be deploy, start, work, read or any, got '{privilege}'"),
            }
            .raise()
        };
        require(app, p);
    }
}
