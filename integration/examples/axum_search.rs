//! The .NET walkthrough's `/api/products/search` endpoint on a real axum server.
//!
//! The handler takes the request's `CancellationToken` (ASP.NET Core's
//! `RequestAborted`) and gives the search a per-search timeout linked to it
//! (the .NET walkthrough's `CreateLinkedTokenSource(userCancellation, timeoutCts.Token)`):
//! the search stops when the timeout fires *or* the client leaves.
//!
//! ```text
//! cargo run -p taskscope-integration --example axum_search            # demo: a server and three clients
//! cargo run -p taskscope-integration --example axum_search -- --serve [ADDR] # serve (127.0.0.1:3000) until Ctrl-C
//! ```
//!
//! In the demo, one search completes, one runs past its timeout (504), and
//! one client hangs up mid-search: the server's log shows the search
//! stopping with "the client disconnected".

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use taskscope::{CancelReason, CancellationSource, CancellationToken, Cancelled};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The .NET walkthrough's per-search timeout is 10 s; the demo's searches are smaller.
const SEARCH_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
struct SearchParams {
    q: String,
}

#[derive(Serialize)]
struct Product {
    id: u32,
    name: String,
}

/// `GET /api/products/search?q=…`
async fn search(
    Query(params): Query<SearchParams>,
    request: CancellationToken,
) -> Result<Json<Vec<Product>>, (StatusCode, String)> {
    println!("server: searching for {:?}", params.q);
    // If the client leaves, hyper drops this handler; the request's token
    // fires first, so this registration still runs (the .NET walkthrough's `Register`).
    let _log = request.on_cancel({
        let q = params.q.clone();
        move |reason| println!("server: search for {q:?} stopped: {}", reason.root())
    });
    // A per-search timeout that also respects the request's cancellation.
    // Dropping `per_search` does not cancel `request`: the link is one-way.
    let per_search = CancellationSource::linked([&request]);
    per_search.cancel_after(SEARCH_TIMEOUT);
    match search_engine::execute(&params.q, &per_search.token()).await {
        Ok(products) => Ok(Json(products)),
        Err(stopped) if stopped.is_timeout() => Err((
            StatusCode::GATEWAY_TIMEOUT,
            format!("the search took longer than {SEARCH_TIMEOUT:?}"),
        )),
        // The request itself was cancelled (the server is shutting down).
        Err(stopped) => Err((StatusCode::SERVICE_UNAVAILABLE, stopped.to_string())),
    }
}

/// A stand-in for a search service: it reads the catalogue page by page
/// and checks its token between pages, as a database driver would.
mod search_engine {
    use super::*;

    const CATALOGUE: [&str; 5] = [
        "Hiking boots",
        "Rain boots",
        "Trail shoes",
        "Wool socks",
        "Boot laces",
    ];

    pub async fn execute(
        query: &str,
        token: &CancellationToken,
    ) -> Result<Vec<Product>, Cancelled> {
        // "everything" reads the catalogue 40 times over, slowly.
        let pages = if query == "everything" {
            200
        } else {
            CATALOGUE.len()
        };
        let mut found = Vec::new();
        for page in 0..pages {
            token.run_until_cancelled(read_page()).await?;
            let name = CATALOGUE[page % CATALOGUE.len()];
            if query == "everything" || name.to_lowercase().contains(&query.to_lowercase()) {
                found.push(Product {
                    id: page as u32,
                    name: name.to_string(),
                });
            }
        }
        Ok(found)
    }

    async fn read_page() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn app() -> Router {
    Router::new().route("/api/products/search", get(search))
}

#[taskscope::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--serve") {
        let addr = args.get(at + 1).map_or("127.0.0.1:3000", String::as_str);
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        println!("serving http://{addr}/api/products/search?q=boots (Ctrl-C stops)");
        // Stops when `#[taskscope::main]`'s root scope is cancelled (SIGINT,
        // SIGTERM): requests in flight get the drain period, then are
        // cancelled, and everything is joined before `main` returns.
        taskscope::axum::serve(listener, app()).await?;
        println!("server: stopped");
        return Ok(());
    }

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationSource::new();
    let server = tokio::spawn(
        taskscope::axum::serve(listener, app())
            .shutdown_on(&stop.token())
            .into_future(),
    );

    let (status, body) = fetch(addr, "/api/products/search?q=boots").await?;
    println!("client: q=boots      -> {status}: {body}");

    let (status, body) = fetch(addr, "/api/products/search?q=everything").await?;
    println!("client: q=everything -> {status}: {body}");

    // A client that gives up mid-search: the server's search stops at once.
    let mut impatient = TcpStream::connect(addr).await?;
    impatient
        .write_all(b"GET /api/products/search?q=everything HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(impatient);
    println!("client: q=everything -> hung up after 100 ms");

    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel_with(CancelReason::Shutdown);
    server.await.map_err(std::io::Error::other)??;
    println!("server: stopped; every request's work has been joined");
    Ok(())
}

/// A minimal HTTP/1.1 client: one request per connection, which the
/// server closes after the response (`Connection: close`).
async fn fetch(addr: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request(path).as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.lines().next().unwrap_or_default();
    let status = status.split_once(' ').map_or("", |(_, s)| s).to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}
