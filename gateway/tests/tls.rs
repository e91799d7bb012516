//! TLS termination, checked with curl: HTTP/2 and HTTP/1.1 chosen by ALPN, the certificate
//! verified against its CA (`--cacert`), a renewed certificate served without a restart, and
//! unreadable certificate files refused at start with the listener named.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use figment::providers::{Format, Yaml};
use figment::Figment;
use testkit::demo::DemoService;

use common::{rust_provider, SERVICE};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `ca` and a server certificate for 127.0.0.1/localhost it signs, written as
/// `{ca}.pem` and `{server}.pem` / `{server}.key` (the files are replaced by rename).
fn issue(dir: &Path, ca: &str, server: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    let (ca_key, ca_pem) = (format!("{ca}.key"), format!("{ca}.pem"));
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_pem,
        "-days",
        "2",
        "-subj",
        "/CN=gateway test CA",
    ]);
    openssl(dir, &args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "new.key",
        "-out",
        "new.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "new.csr",
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            "new.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    // Key first, then the certificate: the gateway reloads once both are new.
    std::fs::rename(dir.join("new.key"), dir.join(format!("{server}.key"))).expect("key");
    std::fs::rename(dir.join("new.pem"), dir.join(format!("{server}.pem"))).expect("cert");
}

/// `curl` over TLS: (exit code, body, HTTP version).
fn curl(url: &str, ca: &Path, version: &str) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", version, "--cacert"])
        .arg(ca)
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            r#"["tls"]"#,
            "-w",
            "\n%{http_version}",
            url,
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, http) = text.rsplit_once('\n').unwrap_or((&text, ""));
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        eprintln!(
            "curl {url}: exit {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (code, body.to_owned(), http.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_alpn_and_certificate_reload() {
    let (Some(_), Some(_)) = (
        testkit::peers::require("openssl", testkit::peers::which("openssl")),
        testkit::peers::require("curl", testkit::peers::which("curl")),
    ) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("gateway-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    issue(&dir, "ca1", "server");
    let provider = rust_provider(DemoService::default()).await;
    let yaml = format!(
        "listeners: [{{name: https, address: '127.0.0.1:0', tls: {{cert: '{0}/server.pem', key: '{0}/server.key'}}}}]\n\
         admin: {{address: ''}}\nmetadata: {{backend: memory, grpc_address: ''}}\n\
         clusters: [{{name: demo, endpoints: ['{provider}']}}]\nroutes: [{{application: demo, cluster: demo}}]\n",
        dir.display()
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let url = format!(
        "https://127.0.0.1:{}/demo/{SERVICE}/sayHello",
        running.listeners[0].port()
    );
    let (ca1, ca2) = (dir.join("ca1.pem"), dir.join("ca2.pem"));
    let call = |ca: PathBuf, version: &'static str| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || curl(&url, &ca, version))
                .await
                .expect("curl")
        }
    };
    assert_eq!(
        call(ca1.clone(), "--http2").await,
        (0, "\"Hello, tls\"".to_owned(), "2".to_owned())
    );
    assert_eq!(call(ca1.clone(), "--http1.1").await.2, "1.1");
    // Renewal under another CA: served from the next handshake on, no restart.
    issue(&dir, "ca2", "server");
    let mut renewed = (-1, String::new(), String::new());
    for _ in 0..50 {
        renewed = call(ca2.clone(), "--http2").await;
        if renewed.0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(renewed, (0, "\"Hello, tls\"".to_owned(), "2".to_owned()));
    // The old CA no longer verifies it (curl exit 60: peer certificate cannot be verified).
    assert_eq!(call(ca1, "--http2").await.0, 60);
    running.shutdown().await;

    // Files that are not a certificate and key: refused at start, naming the listener.
    std::fs::write(dir.join("bad.pem"), "not a certificate").expect("write");
    let yaml = yaml.replace("server.pem", "bad.pem");
    let err = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .expect_err("a bad certificate file");
    assert!(err.to_string().contains("listeners[0].tls"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
