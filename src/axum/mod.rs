//! Request scopes for [axum](https://docs.rs/axum/0.8) servers (feature `axum`): ASP.NET Core's
//! `HttpContext.RequestAborted` for Rust.
//!
//! * [`RequestScopeLayer`] gives every request its own [`Scope`](crate::Scope),
//!   nested in the scope that owns the server: an adapter over
//!   [`RequestScopes`](crate::remote::RequestScopes), the core the `tonic`
//!   layer shares. The handler runs as the scope's
//!   body, so [`taskscope::token()`](crate::token) is the request's token and
//!   scopes opened in the handler belong to the request.
//! * The request's token fires with [`CancelReason::ClientDisconnected`] when
//!   the client goes away before the response is sent (hyper drops the
//!   handler's future), and with the server's reason (usually
//!   [`CancelReason::Shutdown`]) when the server shuts down. Work the handler
//!   spawned into the request scope is cancelled and joined, never left
//!   running: a request that completes waits for it before its response is
//!   sent; a request that was dropped leaves it to the server's scope, which
//!   joins it before [`serve`] returns.
//! * The extractors [`RequestScope`](crate::remote::RequestScope) and
//!   [`CancellationToken`] hand the
//!   request's scope and token to a handler, the way ASP.NET Core binds a
//!   `CancellationToken` parameter.
//! * [`serve`] runs a router in a scope of its own, tied to the enclosing
//!   scope (or a token you give): when that is cancelled the server stops
//!   accepting, in-flight requests get a drain period to finish, then their
//!   tokens fire, and everything is joined.
//! * [`probes`] answers `/readyz` and `/livez` from a
//!   [`Readiness`](crate::service::Readiness), which a
//!   [`ServiceSet`](crate::service::ServiceSet) turns off as soon as a
//!   shutdown begins.
//!
//! # Examples
//!
//! A product search endpoint: the handler takes the request's token;
//! the search stops when the client leaves.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use taskscope::CancellationToken;
//!
//! async fn search(token: CancellationToken) -> String {
//!     match token.run_until_cancelled(expensive_search()).await {
//!         Ok(results) => results,
//!         Err(_cancelled) => String::new(), // nobody is listening any more
//!     }
//! }
//! # async fn expensive_search() -> String { String::from("[]") }
//!
//! #[taskscope::main]
//! async fn main() -> std::io::Result<()> {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     let app = Router::new().route("/api/products/search", get(search));
//!     // Stops on SIGINT/SIGTERM: `#[taskscope::main]`'s root scope is cancelled.
//!     taskscope::axum::serve(listener, app).await
//! }
//! ```
//!
//! [`CancelReason::ClientDisconnected`]: crate::CancelReason::ClientDisconnected
//! [`CancelReason::Shutdown`]: crate::CancelReason::Shutdown
//! [`CancellationToken`]: crate::CancellationToken

mod extract;
mod layer;
mod probes;
mod serve;

pub use extract::MissingRequestScope;
pub use layer::{RequestScopeLayer, RequestScopeService};
pub use probes::probes;
pub use serve::{serve, Serve};
