//! Failure accrual (with the balancer of issue 13): written once the
//! balancer lands.
