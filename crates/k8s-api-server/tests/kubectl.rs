//! The server driven by the real kubectl (1.32): create, get, replace (and
//! a stale replace), label selectors, EndpointSlices by short and full
//! name, Ingresses (create, the table, an invalid one refused), a watch,
//! delete; each result compared with what the server holds.
//! Without kubectl the test skips loudly, and fails under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use l5d_k8s_api_server::{ApiServer, Resource};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(20);

struct Kubectl {
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    /// A kubectl for `server`, or `None` (after a loud skip) without one.
    fn find(server: &ApiServer) -> Option<Kubectl> {
        let installed = std::process::Command::new("kubectl")
            .args(["version", "--client"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "kubectl is required under CI=true"
            );
            eprintln!(
                "\n*** SKIP: kubectl is not installed; the kubectl conformance test did not run ***\n"
            );
            return None;
        }
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = server.kubeconfig(home.path()).unwrap();
        Some(Kubectl { kubeconfig, home })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .env("HOME", self.home.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.home.path().join("cache"))
            .args(args)
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        let output = tokio::time::timeout(WAIT, self.command(args).output())
            .await
            .expect("kubectl finishes in time")
            .expect("kubectl runs");
        Output {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs kubectl and expects success.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(output.ok, "kubectl {args:?} failed: {}", output.stderr);
        output.stdout
    }

    fn file(&self, name: &str, object: &Value) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, object.to_string()).unwrap();
        path_str(&path)
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn names(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_what_the_server_holds() {
    let server = ApiServer::start().await.unwrap();
    let Some(kubectl) = Kubectl::find(&server) else {
        return;
    };

    // create -f (kubectl probes /openapi/v3 for server-side field validation).
    let foo = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foo", "labels": {"app": "web"}}, "data": {"k": "1"}});
    let file = kubectl.file("foo.json", &foo);
    assert_eq!(
        kubectl.ok(&["create", "-f", &file]).await.trim(),
        "configmap/foo created"
    );
    let stored = server
        .get(Resource::ConfigMaps, "default", "foo")
        .expect("created");
    assert_eq!(stored["data"], json!({"k": "1"}));

    // get -o json is the stored object, byte for byte as JSON.
    let got: Value =
        serde_json::from_str(&kubectl.ok(&["get", "configmap", "foo", "-o", "json"]).await)
            .unwrap();
    assert_eq!(got, stored);

    // The default (Table) output and label selectors.
    let table = kubectl.ok(&["get", "cm"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("foo"),
        "{table}"
    );
    assert_eq!(
        kubectl
            .ok(&["get", "cm", "-l", "app=web", "-o", "name"])
            .await
            .trim(),
        "configmap/foo"
    );
    assert_eq!(
        kubectl
            .ok(&["get", "cm", "-l", "app in (db,cache)", "-o", "name"])
            .await
            .trim(),
        ""
    );

    // replace -f, then a replace carrying the now stale version.
    let mut changed = got.clone();
    changed["data"]["k"] = json!("2");
    let file = kubectl.file("foo-2.json", &changed);
    assert_eq!(
        kubectl.ok(&["replace", "-f", &file]).await.trim(),
        "configmap/foo replaced"
    );
    let replaced = server.get(Resource::ConfigMaps, "default", "foo").unwrap();
    assert_eq!(replaced["data"]["k"], "2");
    assert_ne!(
        replaced["metadata"]["resourceVersion"],
        got["metadata"]["resourceVersion"]
    );
    let stale = kubectl.run(&["replace", "-f", &file]).await;
    assert!(!stale.ok);
    assert!(
        stale.stderr.contains("Error from server (Conflict)"),
        "{}",
        stale.stderr
    );
    assert!(
        stale.stderr.contains("the object has been modified"),
        "{}",
        stale.stderr
    );

    // EndpointSlices, by resource name and by its group-qualified name.
    server.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 8080}]}));
    let slices: Value =
        serde_json::from_str(&kubectl.ok(&["get", "endpointslices", "-o", "json"]).await).unwrap();
    let held = server.list(Resource::EndpointSlices, "default");
    assert_eq!(names(slices["items"].as_array().unwrap()), names(&held));
    assert_eq!(slices["items"][0]["ports"], held[0]["ports"]);
    let qualified = kubectl
        .ok(&[
            "get",
            "endpointslices.discovery.k8s.io",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(qualified.trim(), "endpointslice.discovery.k8s.io/web-abc");

    // Ingresses (networking.k8s.io/v1): create -f, the table by short
    // name, and the real server's refusal of a path without a pathType.
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {"ingressClassName": "linkerd", "rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}});
    let file = kubectl.file("ingress.json", &ingress);
    assert_eq!(
        kubectl.ok(&["create", "-f", &file]).await.trim(),
        "ingress.networking.k8s.io/web created"
    );
    let stored = server.get(Resource::Ingresses, "default", "web").unwrap();
    assert_eq!(stored["spec"], ingress["spec"]);
    assert_eq!(stored["metadata"]["generation"], 1);
    let table = kubectl.ok(&["get", "ing"]).await;
    assert!(
        table.contains("CLASS") && table.contains("linkerd") && table.contains("web.example.com"),
        "{table}"
    );
    let got: Value =
        serde_json::from_str(&kubectl.ok(&["get", "ingress", "web", "-o", "json"]).await).unwrap();
    assert_eq!(got, stored);
    let mut untyped = ingress.clone();
    untyped["metadata"]["name"] = json!("untyped");
    untyped["spec"]["rules"][0]["http"]["paths"][0]
        .as_object_mut()
        .unwrap()
        .remove("pathType");
    let file = kubectl.file("untyped.json", &untyped);
    let refused = kubectl.run(&["create", "-f", &file]).await;
    assert!(!refused.ok);
    assert!(
        refused
            .stderr
            .contains("spec.rules[0].http.paths[0].pathType: Required value"),
        "{}",
        refused.stderr
    );
    assert!(
        server
            .get(Resource::Ingresses, "default", "untyped")
            .is_none()
    );

    // A watch: the current state, then a change made behind kubectl's back.
    let mut child = kubectl
        .command(&["get", "configmaps", "--watch", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("a watch line in time")
            .unwrap()
    };
    assert_eq!(next_line().await.as_deref(), Some("configmap/foo"));
    // kubectl watches from its list's version, so this write is seen
    // however soon it lands.
    server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bar"}}));
    assert_eq!(next_line().await.as_deref(), Some("configmap/bar"));
    child.kill().await.unwrap();

    // delete (kubectl then waits for the object to be gone).
    assert_eq!(
        kubectl.ok(&["delete", "configmap", "foo"]).await.trim(),
        "configmap \"foo\" deleted"
    );
    assert!(server.get(Resource::ConfigMaps, "default", "foo").is_none());
    let missing = kubectl.run(&["get", "configmap", "foo"]).await;
    assert!(
        missing
            .stderr
            .contains("Error from server (NotFound): configmaps \"foo\" not found"),
        "{}",
        missing.stderr
    );

    // What kubectl asked for, as a real server would have seen it.
    let requests = server.requests();
    let seen = |method: &str, prefix: &str| {
        requests
            .iter()
            .any(|r| r.method == method && r.path.starts_with(prefix))
    };
    assert!(seen(
        "POST",
        "/api/v1/namespaces/default/configmaps?fieldManager=kubectl-create&fieldValidation=Strict"
    ));
    assert!(seen(
        "PUT",
        "/api/v1/namespaces/default/configmaps/foo?fieldManager=kubectl-replace"
    ));
    assert!(seen(
        "GET",
        "/api/v1/namespaces/default/configmaps?labelSelector=app%3Dweb"
    ));
    assert!(seen(
        "GET",
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
    ));
    assert!(seen("DELETE", "/api/v1/namespaces/default/configmaps/foo"));
    assert!(seen(
        "POST",
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    ));
    assert!(
        requests
            .iter()
            .any(|r| r.is_watch() && r.path.contains("resourceVersion="))
    );
}
