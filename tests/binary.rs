//! The ready-made server, run as a user runs it: the `poco-httpd` binary.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A running `poco-httpd`, killed if the test ends without stopping it.
struct Running {
    child: Child,
    url: String,
}

impl Running {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_poco-httpd"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start poco-httpd");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the listening line");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("an address")
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        Self { child, url }
    }

    /// Sends SIGTERM and returns the exit status (bounded wait).
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "poco-httpd exits after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poco-httpd-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test]
async fn serves_the_root_directory_and_stops_on_sigterm() {
    let server = Running::start(&["--root", FIXTURES]);
    let client = reqwest::Client::new();
    let text = client
        .get(format!("{}/hello.txt", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200);
    assert_eq!(
        text.text().await.unwrap(),
        std::fs::read_to_string(format!("{FIXTURES}/hello.txt")).unwrap()
    );
    let missing = client
        .get(format!("{}/missing.txt", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(server.terminate().success(), "a graceful exit");
}

#[tokio::test]
async fn a_config_file_sets_headers_locations_and_redirects() {
    let config = write_config(
        "site.toml",
        &format!(
            "hostname = \"example.test\"\n[headers]\nX-Site = \"demo\"\n\n[[location]]\npath = \"/files/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n\n[[location]]\npath = \"/honk\"\nredirect = {{ to = \"/honk/\", status = 301 }}\n\n[[location]]\npath = \"/\"\nredirect = {{ to = \"/files/hello.txt\" }}\n"
        ),
    );
    let server = Running::start(&["--config", config.to_str().unwrap()]);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let file = client
        .get(format!("{}/files/dot.gif", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(file.headers()["x-site"], "demo");
    assert_eq!(
        &file.bytes().await.unwrap()[..],
        &std::fs::read(format!("{FIXTURES}/dot.gif")).unwrap()[..]
    );
    let honk = client
        .get(format!("{}/honk", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(honk.status(), 301);
    assert_eq!(honk.headers()["location"], "/honk/");
    let root = client.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(root.status(), 302);
    assert!(server.terminate().success());
}

#[test]
fn a_bad_config_is_refused_at_start_naming_file_line_and_key() {
    let config = write_config(
        "bad.toml",
        "listen = \"127.0.0.1:0\"\n\n[[location]]\npath = \"/\"\nstatik = { root = \".\" }\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_poco-httpd"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .expect("run poco-httpd");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("bad.toml:5:") && message.contains("statik"),
        "{message}"
    );
    let missing = Command::new(env!("CARGO_BIN_EXE_poco-httpd"))
        .args(["--config", "/no/such/file.toml"])
        .output()
        .expect("run poco-httpd");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/file.toml"));
}
