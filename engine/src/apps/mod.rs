//! The engine's own apps: the graphs MeshFlow and MeshCall run on. The client deploys
//! them on first use; the extension deploys MeshCall's for `hotmesh.exec` and
//! `hotmesh.cron`. One text each, here, so both deploy the same graph under one version
//! (a database that has a version is not deployed again: a changed graph needs a new
//! version, which the tests below pin).

/// MeshFlow's graph: one job per workflow run (docs/meshflow.md).
pub const MESHFLOW_VERSION: &str = "1";
const MESHFLOW: &str = include_str!("meshflow.yaml");

/// MeshCall's graphs: a call, and a cron (docs/meshcall.md).
pub const MESHCALL_VERSION: &str = "1";
const MESHCALL: &str = include_str!("meshcall.yaml");

/// The default namespaces (app ids).
pub const MESHFLOW_NAMESPACE: &str = "meshflow";
/// MeshCall's default namespace.
pub const MESHCALL_NAMESPACE: &str = "meshcall";

fn render(text: &str, ns: &str, version: &str) -> String {
    text.replace("APP", ns)
        .replace("'VERSION'", &format!("'{version}'"))
}

/// MeshFlow's graph for namespace `ns`.
pub fn meshflow(ns: &str) -> String {
    render(MESHFLOW, ns, MESHFLOW_VERSION)
}

/// MeshCall's graphs for namespace `ns`.
pub fn meshcall(ns: &str) -> String {
    render(MESHCALL, ns, MESHCALL_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a of a text.
    fn digest(s: &str) -> u64 {
        s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn each_graph_changes_only_with_its_version() {
        let now = [
            (MESHFLOW_VERSION, digest(MESHFLOW)),
            (MESHCALL_VERSION, digest(MESHCALL)),
        ];
        assert_eq!(
            now,
            [("1", 4927255551605949380), ("1", 3883034462334418540)],
            "a graph changed: bump its version and pin the new digest"
        );
    }

    #[test]
    fn a_namespace_names_the_graphs_and_their_topics_and_they_compile() {
        let f = meshflow("billing");
        assert!(f.contains("id: billing\n") && f.contains("billing.wfs.wait:"));
        let c = meshcall("calls");
        assert!(c.contains("subscribes: calls.call") && c.contains("subscribes: calls.cron"));
        for y in [f, c] {
            assert!(!y.contains("APP") && !y.contains("'VERSION'"));
            let m = hotmesh_manifest::compile::deploy_plan(&y).map(|_| ());
            assert!(m.is_ok(), "{m:?}");
        }
    }
}
