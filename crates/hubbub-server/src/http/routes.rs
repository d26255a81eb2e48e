//! The one table of routes.
//!
//! [`super::app`] registers exactly what `routes` lists, and
//! [`route_table`] exposes the same list without handlers, so the OpenAPI
//! coverage test fails for any route added here without documenting it.
//! Later issues (rooms, tasks, algorithms, the metrics store, history,
//! presence) add their rows here.

use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::{on, MethodFilter, MethodRouter};

use super::{auth, looking, presence, prometheus, publish, rooms, ApiState};

/// HTTP method of a route. Exists so the table names methods once, for
/// both the router and the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// GET (also answers HEAD).
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Verb {
    /// The lowercase name OpenAPI uses as the operation key.
    pub fn openapi_key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// One registered route, without its handler. Exists for the OpenAPI
/// document and the test that every route is documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteInfo {
    /// Method.
    pub verb: Verb,
    /// Path in axum and OpenAPI syntax (`/api/channels/{channel}`).
    pub path: &'static str,
    /// Whether anyone may call it ([`auth::is_open`] of the path).
    pub open: bool,
}

/// A route with its handler.
pub(crate) struct Route {
    pub info: RouteInfo,
    pub handler: MethodRouter<Arc<ApiState>>,
}

fn route<H, T>(verb: Verb, path: &'static str, handler: H) -> Route
where
    H: Handler<T, Arc<ApiState>>,
    T: 'static,
{
    Route {
        info: RouteInfo {
            verb,
            path,
            open: auth::is_open(path),
        },
        handler: on(verb.filter(), handler),
    }
}

/// Every route of the hub, in documentation order.
pub(crate) fn routes() -> Vec<Route> {
    use Verb::{Delete, Get, Post};
    vec![
        // Health and metrics (open).
        route(Get, "/healthz", looking::healthz),
        route(Get, "/readyz", looking::readyz),
        route(Get, "/metrics", prometheus::metrics),
        // Publishing.
        route(Post, "/api/publish", publish::publish),
        route(Post, "/api/broadcast", publish::broadcast),
        route(Post, "/api/users/{user_id}/send", publish::send_to_user),
        route(
            Post,
            "/api/users/{user_id}/disconnect",
            publish::disconnect_user,
        ),
        route(
            Post,
            "/api/connections/{connection_id}/disconnect",
            publish::disconnect_connection,
        ),
        // Looking.
        route(Get, "/api/stats", looking::stats),
        route(Get, "/api/streams", looking::streams),
        route(Get, "/api/channels", looking::channels),
        route(Get, "/api/channels/{channel}", looking::channel),
        route(Get, "/api/channels/{channel}/history", looking::history),
        route(Get, "/api/channels/{channel}/presence", presence::presence),
        route(Get, "/api/connections", looking::connections),
        // Rooms.
        route(Get, "/api/rooms", rooms::list),
        route(Post, "/api/rooms", rooms::create),
        route(Get, "/api/rooms/{room}", rooms::get),
        route(Delete, "/api/rooms/{room}", rooms::delete),
        route(Get, "/api/openapi.json", looking::openapi),
    ]
}

/// The routes [`super::app`] registers, without handlers.
pub fn route_table() -> Vec<RouteInfo> {
    routes().into_iter().map(|r| r.info).collect()
}
