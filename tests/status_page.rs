//! The live status page: its figures as JSON and Prometheus text, and the HTML page
//! as a person sees it, in headless Chromium (installed by `scripts/test`).

mod common;

use std::path::Path;

use poco_httpd::handlers::ServerStatus;
use poco_httpd::{Outcome, Request, Response, Server};

async fn status_server() -> common::TestServer {
    common::start(
        Server::builder()
            .content("/", |_req: Request, res: Response| {
                res.set_body("hello");
                Outcome::Ok
            })
            .content("/missing", |_req: Request, res: Response| {
                res.set_status(poco_httpd::http::StatusCode::NOT_FOUND);
                Outcome::Ok
            })
            .content("/server-status", ServerStatus::new()),
    )
    .await
}

async fn traffic(server: &common::TestServer, ok: usize, missing: usize) {
    let client = common::client();
    for _ in 0..ok {
        server.text(&client, "/").await;
    }
    for _ in 0..missing {
        server.response(&client, "/missing").await;
    }
}

#[tokio::test]
async fn json_and_metrics_report_the_traffic() {
    let server = status_server().await;
    traffic(&server, 7, 2).await;
    let client = common::client();
    let text = server.text(&client, "/server-status?json").await;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["requests_total"], 9);
    assert_eq!(json["responses"]["2xx"], 7);
    assert_eq!(json["responses"]["4xx"], 2);
    assert_eq!(json["bytes_sent"], 7 * 5);
    assert_eq!(json["in_flight"], 1, "the status request itself");
    assert!(json["open_connections"].as_u64().unwrap() >= 1);
    assert_eq!(json["per_second"].as_array().unwrap().len(), 60);
    let metrics = server.response(&client, "/server-status?metrics").await;
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("\npoco_httpd_requests_total 10\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("poco_httpd_responses_total{class=\"4xx\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE poco_httpd_open_connections gauge"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_page_loads_shows_the_figures_and_its_chart_updates() {
    let server = status_server().await;
    traffic(&server, 12, 0).await;
    let url = server.url("/server-status");
    let dom = tokio::task::spawn_blocking(move || {
        common::chromium(&["--virtual-time-budget=4000", "--dump-dom", &url])
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let updates: u32 = dom
        .split("data-updates=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the page rendered: {dom}"));
    assert!(
        updates >= 2,
        "the figures and chart were refreshed {updates} times"
    );
    let requests: u64 = dom
        .split("id=\"requests\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse().ok())
        .expect("the requests figure is shown");
    assert!(requests >= 12, "requests shown: {requests}");
    server.stop().await;
}

/// Decodes a PNG into (width, height, RGBA pixels).
fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let rgba = match info.color_type {
        png::ColorType::Rgba => pixels[..info.buffer_size()].to_vec(),
        png::ColorType::Rgb => pixels[..info.buffer_size()]
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("unexpected PNG color type {other:?}"),
    };
    (info.width, info.height, rgba)
}

#[tokio::test]
async fn a_screenshot_shows_the_chart_bars_and_the_text() {
    let server = status_server().await;
    // Traffic spread over two seconds, so finished seconds have bars to draw.
    traffic(&server, 20, 0).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    traffic(&server, 20, 0).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let (url, path) = (server.url("/server-status"), shot.clone());
    tokio::task::spawn_blocking(move || {
        common::chromium(&[
            "--window-size=1000,700",
            "--virtual-time-budget=3000",
            &format!("--screenshot={}", path.display()),
            &url,
        ])
    })
    .await
    .unwrap();
    let (width, height, pixels) = decode(&shot);
    assert_eq!((width, height), (1000, 700));
    let count = |wanted: fn(&[u8]) -> bool| pixels.chunks(4).filter(|p| wanted(p)).count();
    // The chart's bars are drawn in #2a7ae2.
    let bar_pixels = count(|p| p[0] == 0x2a && p[1] == 0x7a && p[2] == 0xe2);
    assert!(
        bar_pixels > 50,
        "bars visible in the chart: {bar_pixels} pixels (screenshot at {shot:?})"
    );
    // Dark text (headline, figures) is on the page.
    let text_pixels = count(|p| p[0] < 80 && p[1] < 80 && p[2] < 80);
    assert!(
        text_pixels > 500,
        "text visible: {text_pixels} pixels (screenshot at {shot:?})"
    );
    server.stop().await;
}
