//! Loading an app manifest from files: `$ref: <path>[#/pointer]` anywhere in the tree is
//! replaced by the referenced file's content (or the part the JSON pointer names),
//! relative to the file that holds the reference, as json-schema-ref-parser does for the
//! original. A manifest without `$ref` is sent as written (errors keep its lines).

use crate::{Error, HotMesh};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The manifest at `path`, ready for `hotmesh.deploy`.
pub(crate) fn load(path: &Path) -> Result<String, Error> {
    let text = read(path)?;
    if !text.contains("$ref") {
        return Ok(text);
    }
    let root = parse(path, &text)?;
    let mut seen = vec![path.canonicalize().unwrap_or_else(|_| path.to_path_buf())];
    let merged = resolve(root, path, &mut seen)?;
    Ok(merged.to_string())
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Manifest {
        path: path.display().to_string(),
        problem: format!("cannot read: {e}"),
    })
}

fn parse(path: &Path, text: &str) -> Result<Value, Error> {
    hotmesh_manifest::yaml::parse(text)
        .map(|n| n.to_json())
        .map_err(|e| Error::Manifest {
            path: path.display().to_string(),
            problem: e.to_string(),
        })
}

/// Replaces every `{$ref: ...}` object under `v` (found in file `from`).
fn resolve(v: Value, from: &Path, seen: &mut Vec<PathBuf>) -> Result<Value, Error> {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                return reference(r, from, seen);
            }
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                out.insert(k, resolve(x, from, seen)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .into_iter()
            .map(|x| resolve(x, from, seen))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other),
    }
}

fn reference(r: &str, from: &Path, seen: &mut Vec<PathBuf>) -> Result<Value, Error> {
    let bad = |problem: String| Error::Manifest {
        path: from.display().to_string(),
        problem,
    };
    let (file, pointer) = match r.split_once('#') {
        Some((f, p)) => (f, Some(p)),
        None => (r, None),
    };
    if file.is_empty() {
        return Err(bad(format!(
            "$ref {r}: only references to other files are supported"
        )));
    }
    let target = from.parent().unwrap_or(Path::new(".")).join(file);
    let key = target.canonicalize().unwrap_or_else(|_| target.clone());
    if seen.contains(&key) {
        return Err(bad(format!("$ref {r}: a cycle of references")));
    }
    let text = read(&target)?;
    let doc = parse(&target, &text)?;
    let part = match pointer {
        Some(p) if !p.is_empty() => doc
            .pointer(p)
            .cloned()
            .ok_or_else(|| bad(format!("$ref {r}: {} has nothing at {p}", target.display())))?,
        _ => doc,
    };
    seen.push(key);
    let out = resolve(part, &target, seen);
    seen.pop();
    out
}

/// Deploys `yaml` as `version` of app `app_id` and activates it, unless that version is
/// active already: what the client's own graphs (MeshFlow, MeshCall) do on first use.
/// Two processes may start together: a deploy that fails because the other one deployed
/// first is fine when the version is then there.
pub(crate) async fn ensure_app(
    hm: &HotMesh,
    app_id: &str,
    version: &str,
    yaml: &str,
) -> Result<(), Error> {
    let active: Option<String> =
        sqlx::query_scalar("SELECT version FROM hotmesh.app_active WHERE app_id = $1")
            .bind(app_id)
            .fetch_optional(hm.pool())
            .await
            .map_err(Error::from_sqlx)?;
    if active.as_deref() == Some(version) {
        return Ok(());
    }
    if let Err(e) = hm.deploy(yaml).await {
        let there: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM hotmesh.app_versions WHERE app_id = $1 AND version = $2)",
        )
        .bind(app_id)
        .bind(version)
        .fetch_one(hm.pool())
        .await
        .map_err(Error::from_sqlx)?;
        if !there {
            return Err(e);
        }
    }
    hm.activate_app(app_id, version).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hm-deploy-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("graphs")).unwrap();
        d
    }

    #[test]
    fn refs_are_merged_relative_to_their_file() {
        let d = dir("merge");
        fs::write(
            d.join("app.yaml"),
            "app:\n  id: a\n  version: '1'\n  graphs:\n    - $ref: ./graphs/one.yaml\n    - $ref: ./graphs/two.yaml#/graph\n",
        )
        .unwrap();
        fs::write(
            d.join("graphs/one.yaml"),
            "subscribes: one.start\nactivities:\n  $ref: ./acts.yaml\n",
        )
        .unwrap();
        fs::write(d.join("graphs/acts.yaml"), "t1: { type: trigger }\n").unwrap();
        fs::write(
            d.join("graphs/two.yaml"),
            "graph:\n  subscribes: two.start\n",
        )
        .unwrap();
        let v: Value = serde_json::from_str(&load(&d.join("app.yaml")).unwrap()).unwrap();
        assert_eq!(v["app"]["graphs"][0]["subscribes"], "one.start");
        assert_eq!(v["app"]["graphs"][0]["activities"]["t1"]["type"], "trigger");
        assert_eq!(v["app"]["graphs"][1]["subscribes"], "two.start");
    }

    #[test]
    fn a_file_without_refs_is_sent_as_written() {
        let d = dir("plain");
        let text = "app: { id: a, version: '1', graphs: [] }\n";
        fs::write(d.join("app.yaml"), text).unwrap();
        assert_eq!(load(&d.join("app.yaml")).unwrap(), text);
    }

    #[test]
    fn missing_files_cycles_and_pointers_are_named() {
        let d = dir("bad");
        fs::write(d.join("app.yaml"), "a: { $ref: ./nope.yaml }\n").unwrap();
        let e = load(&d.join("app.yaml")).unwrap_err().to_string();
        assert!(e.contains("nope.yaml") && e.contains("cannot read"), "{e}");
        fs::write(d.join("loop.yaml"), "a: { $ref: ./loop.yaml }\n").unwrap();
        let e = load(&d.join("loop.yaml")).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
        fs::write(d.join("ptr.yaml"), "a: { $ref: './loop.yaml#/x/y' }\n").unwrap();
        let e = load(&d.join("ptr.yaml")).unwrap_err().to_string();
        assert!(e.contains("nothing at /x/y"), "{e}");
    }
}
