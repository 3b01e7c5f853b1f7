//! The fault suite of issue 17 (`cargo test --test faults`): real
//! processes under a steady load (`load.rs`: a fixed rate on loopback,
//! bounded in time, every request accounted for), and a fault injected
//! while it runs. Each test says what the client saw, exactly.

mod binding_cap;
mod blackhole;
mod churn;
mod fd_limit;
#[allow(
    dead_code,
    reason = "namerd_limits' setup, shared: not every test uses all of it"
)]
#[path = "../namerd_limits/setup.rs"]
mod limits_setup;
mod load;
#[allow(
    dead_code,
    reason = "linkerd-proxy's mesh tests' relay, shared: not every test uses all of it"
)]
#[path = "../../../linkerd-proxy/tests/support/mesh_faults.rs"]
mod mesh_faults;
mod namerd_restart;
#[allow(
    dead_code,
    reason = "namerd's tests' PostgreSQL cluster, shared: not every test uses all of it"
)]
#[path = "../../../namerd/tests/support/pg_cluster.rs"]
mod pg_cluster;
mod postgres_outage;
mod rolling_restart;
mod soak;
mod stream_churn;
