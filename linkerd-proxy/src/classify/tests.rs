use super::*;
use crate::headers::map;

fn classifier(config: ClassifierConfig, protocol: Protocol) -> Classifier {
    Classifier::new(config, protocol)
}

const S: ResponseClass = ResponseClass::Success;
const R: ResponseClass = ResponseClass::RetryableFailure;
const N: ResponseClass = ResponseClass::NonRetryableFailure;

#[test]
fn status_classifiers_retry_5xx_by_method() {
    use RetryableMethods::*;
    // (methods, method, status, class)
    let cases = [
        (None, Method::GET, 503, N),
        (None, Method::GET, 404, S),
        (Read, Method::GET, 503, R),
        (Read, Method::HEAD, 500, R),
        (Read, Method::PUT, 503, N),
        (Idempotent, Method::PUT, 503, R),
        (Idempotent, Method::DELETE, 502, R),
        (Idempotent, Method::POST, 503, N),
        (All, Method::POST, 503, R),
        (All, Method::PATCH, 200, S),
    ];
    for (methods, method, status, class) in cases {
        let c = classifier(ClassifierConfig::Status(methods), Protocol::Http);
        let got = c.classify_head(&method, StatusCode::from_u16(status).unwrap(), &map(&[]));
        assert_eq!(got, Some(class), "{methods:?} {method} {status}");
    }
    let all = classifier(ClassifierConfig::AllSuccessful, Protocol::Http);
    assert_eq!(
        all.classify_head(&Method::GET, StatusCode::SERVICE_UNAVAILABLE, &map(&[])),
        Some(S)
    );
}

#[test]
fn an_upstream_proxys_class_wins() {
    let c = classifier(
        ClassifierConfig::Status(RetryableMethods::None),
        Protocol::Http,
    );
    let status = StatusCode::BAD_GATEWAY;
    let head = |pairs: &[(&str, &str)]| c.classify_head(&Method::POST, status, &map(pairs));
    assert_eq!(head(&[("l5d-retryable", "true")]), Some(R));
    assert_eq!(head(&[("l5d-success-class", "1.0")]), Some(S));
    assert_eq!(head(&[("l5d-success-class", "0.0")]), Some(N));
    assert_eq!(head(&[("l5d-success-class", "nonsense")]), Some(N));
    // l5d-retryable only marks failures.
    assert_eq!(
        c.classify_head(
            &Method::GET,
            StatusCode::OK,
            &map(&[("l5d-retryable", "true")])
        ),
        Some(S)
    );
}

#[test]
fn grpc_classifiers_read_the_head_or_the_trailers() {
    let grpc = |retryable| ClassifierConfig::Grpc {
        retryable,
        success: vec![5],
    };
    let ok = StatusCode::OK;
    let ct = ("content-type", "application/grpc");
    let cases = [
        (GrpcRetryable::Unavailable, "14", R),
        (GrpcRetryable::Unavailable, "4", N),
        (GrpcRetryable::Unavailable, "0", S),
        (GrpcRetryable::Unavailable, "5", S),
        (GrpcRetryable::Always, "4", R),
        (GrpcRetryable::Never, "14", N),
        (GrpcRetryable::Compliant, "14", R),
        (GrpcRetryable::Compliant, "13", N),
        (GrpcRetryable::Codes(vec![14, 2]), "2", R),
        (GrpcRetryable::Codes(vec![14, 2]), "4", N),
    ];
    for (retryable, code, class) in cases {
        let c = classifier(grpc(retryable.clone()), Protocol::H2);
        // Trailers-Only: the status is in the head.
        let head = map(&[ct, ("grpc-status", code)]);
        assert_eq!(c.classify_head(&Method::POST, ok, &head), Some(class));
        // In the trailers: the head does not say.
        assert_eq!(c.classify_head(&Method::POST, ok, &map(&[ct])), None);
        let trailers = map(&[("grpc-status", code)]);
        assert_eq!(
            c.classify_trailers(Some(&trailers)),
            class,
            "{retryable:?} {code}"
        );
    }
    let c = classifier(grpc(GrpcRetryable::Unavailable), Protocol::H2);
    assert_eq!(c.classify_trailers(None), N, "no trailers is a failure");
    assert_eq!(
        c.classify_trailers(Some(&map(&[("l5d-success-class", "1.0")]))),
        S
    );
    // HTTP statuses without a grpc-status, as the specification maps them.
    let compliant = classifier(grpc(GrpcRetryable::Compliant), Protocol::H2);
    for (status, class) in [(503, R), (429, R), (500, N), (404, N)] {
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(
            compliant.classify_head(&Method::POST, status, &map(&[])),
            Some(class)
        );
    }
}

#[test]
fn the_default_counts_grpc_failures_on_h2_only() {
    let h2 = classifier(ClassifierConfig::Default, Protocol::H2);
    let ok = StatusCode::OK;
    let ct = ("content-type", "application/grpc");
    assert_eq!(
        h2.classify_head(&Method::POST, ok, &map(&[ct, ("grpc-status", "14")])),
        Some(N)
    );
    assert_eq!(h2.classify_head(&Method::POST, ok, &map(&[ct])), None);
    assert_eq!(h2.classify_head(&Method::GET, ok, &map(&[])), Some(S));
    assert_eq!(
        h2.classify_head(&Method::GET, StatusCode::BAD_GATEWAY, &map(&[])),
        Some(N)
    );
    let h1 = classifier(ClassifierConfig::Default, Protocol::Http);
    assert_eq!(
        h1.classify_head(&Method::POST, ok, &map(&[ct, ("grpc-status", "14")])),
        Some(S)
    );
    assert!(!h1.may_retry(&Method::GET));
}

#[test]
fn errors_are_retryable_when_unsent_or_the_method_allows() {
    let c = classifier(
        ClassifierConfig::Status(RetryableMethods::Read),
        Protocol::Http,
    );
    let connect = ProxyError::Connect {
        addr: "a".into(),
        message: "refused".into(),
    };
    let upstream = ProxyError::Upstream {
        addr: "a".into(),
        message: "reset".into(),
    };
    assert_eq!(c.classify_error(&Method::POST, &connect), R);
    assert_eq!(c.classify_error(&Method::GET, &upstream), R);
    assert_eq!(c.classify_error(&Method::POST, &upstream), N);
    let grpc = classifier(
        ClassifierConfig::Grpc {
            retryable: GrpcRetryable::Always,
            success: vec![],
        },
        Protocol::H2,
    );
    assert_eq!(grpc.classify_error(&Method::POST, &upstream), N);
}
