//! A small dashboard at `/`: routers, their routes and request figures,
//! with links to the JSON pages. Rendered on the server, no scripts.

use axum::response::Html;

use crate::metrics::Metrics;
use crate::router::handle::RouterHandle;
use crate::router::plan::Plan;

pub(super) fn page(routers: &[RouterHandle], metrics: &Metrics) -> Html<String> {
    let metrics = metrics.render_json();
    let figure = |name: &str, label: &str| {
        metrics
            .iter()
            .filter(|(k, _)| k.starts_with(name) && k.contains(label))
            .filter_map(|(_, v)| v.as_f64())
            .sum::<f64>()
    };
    let mut body = String::from(
        "<!doctype html><html><head><meta charset=utf-8><title>linkerd-proxy</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head><body>\
         <h1>linkerd-proxy</h1><p><a href=/admin/metrics.json?pretty=1>metrics.json</a> · \
         <a href=/admin/metrics/prometheus>prometheus</a> · <a href=/routes.json>routes</a> · \
         <a href=/client_state.json>clients</a> · <a href=/interpreter_state.json>interpreters</a></p>",
    );
    for handle in routers {
        let label = handle.router.label();
        let router_label = format!("router=\"{label}\"");
        body.push_str(&format!(
            "<h2>{}</h2><p>requests {} · success {} · failures {}</p>\
             <table><tr><th>name</th><th>state</th><th>bound ids</th></tr>",
            escape(label),
            figure("linkerd_router_requests_total", &router_label),
            figure(
                "linkerd_router_responses_total",
                &format!("{router_label},classification=\"success\"")
            ),
            figure(
                "linkerd_router_responses_total",
                &format!("{router_label},classification=\"failure\"")
            ),
        ));
        for route in handle.router.routes() {
            let plan = route.plan.borrow().clone();
            let state = match &*plan {
                Plan::Pending => "pending".to_string(),
                Plan::Failed(m) => format!("failed: {m}"),
                Plan::Unroutable(why) => (*why).to_string(),
                Plan::Ready(_) => "bound".to_string(),
            };
            let ids: Vec<String> = plan.leaves().iter().map(|l| l.id.show()).collect();
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&route.name.show()),
                escape(&state),
                escape(&ids.join(", "))
            ));
        }
        body.push_str("</table>");
    }
    body.push_str("</body></html>");
    Html(body)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
