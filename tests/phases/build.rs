//! Build errors: what `ServerBuilder::build` refuses, and that its messages name
//! what to fix.

use poco_httpd::{Error, Phase, Server, ServerBuilder};

use crate::common::{answer, pass};

fn build_error(builder: ServerBuilder) -> Error {
    match builder.build() {
        Ok(server) => panic!("expected a build error, got {server:?}"),
        Err(error) => error,
    }
}

/// Asserts `error` refuses `path` and its message quotes it and says `why`.
fn assert_invalid_path(error: &Error, path: &str, why: &str) {
    match error {
        Error::InvalidPath { path: p, .. } => assert_eq!(p, path),
        other => panic!("{path:?}: expected InvalidPath, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(&format!("{path:?}")), "{message}");
    assert!(message.contains(why), "{message}");
}

/// Asserts `error` is a second `phase` handler registered for `path`.
fn assert_duplicate(error: &Error, phase: Phase, path: &str) {
    match error {
        Error::DuplicateHandler { phase: p, path: q } => {
            assert_eq!((*p, q.as_str()), (phase, path))
        }
        other => panic!("expected DuplicateHandler, got {other:?}"),
    }
}

#[test]
fn build_without_a_content_handler_fails() {
    let error = build_error(Server::builder());
    assert!(matches!(error, Error::NoContentHandler), "{error:?}");
    assert!(error.to_string().contains("content("), "{error}");

    let error = build_error(Server::builder().pre("/", pass).post("/", pass));
    assert!(matches!(error, Error::NoContentHandler), "{error:?}");
}

#[test]
fn build_refuses_paths_not_starting_with_a_slash() {
    for path in ["foo/", "foo.html", "", "*"] {
        let error = build_error(Server::builder().content(path, answer("x")));
        assert_invalid_path(&error, path, "start with '/'");
    }
}

#[test]
fn build_refuses_paths_not_in_normal_form_whatever_the_phase() {
    for path in [
        "/a/../b", "/a//b", "/a/./b", "/a/..", "//", "/a%20b", "/%66oo/",
    ] {
        let root = || Server::builder().content("/", answer("x"));
        let builders = [
            root().content(path, answer("y")),
            root().pre(path, pass),
            root().post(path, pass),
            root().error(path, pass),
        ];
        for builder in builders {
            assert_invalid_path(&build_error(builder), path, "normal form");
        }
    }
}

#[test]
fn build_refuses_two_content_or_error_handlers_on_one_path() {
    let twice = Server::builder()
        .content("/x/", answer("one"))
        .content("/x/", answer("two"));
    let error = build_error(twice);
    assert_duplicate(&error, Phase::Content, "/x/");
    let message = error.to_string();
    assert!(
        message.contains("\"/x/\"") && message.contains("Content"),
        "{message}"
    );

    let root = || Server::builder().content("/", answer("one"));
    let error = build_error(root().error("/e", pass).error("/e", pass));
    assert_duplicate(&error, Phase::Error, "/e");

    // `default_content` is the Content handler of `/`.
    let error = build_error(root().default_content(answer("two")));
    assert_duplicate(&error, Phase::Content, "/");
}

#[test]
fn build_refuses_a_stream_handler_registered_twice_on_one_path() {
    let root = || Server::builder().content("/", answer("x"));
    let error = build_error(root().stream_at("/s/", pass).stream_at("/s/", pass));
    assert_duplicate(&error, Phase::Stream, "/s/");
    assert!(error.to_string().contains("two Stream handlers"), "{error}");
}

#[test]
fn handler_registers_each_phase_kept_by_path_like_its_short_form() {
    let built = Server::builder()
        .handler(Phase::Pre, "/x/", pass)
        .handler(Phase::Content, "/x/", answer("x"))
        .handler(Phase::Post, "/x/", pass)
        .handler(Phase::Error, "/x/", pass)
        .handler(Phase::Stream, "/x/", pass)
        .build();
    assert!(built.is_ok(), "{built:?}");

    let twice = Server::builder().content("/x/", answer("one")).handler(
        Phase::Content,
        "/x/",
        answer("two"),
    );
    assert_duplicate(&build_error(twice), Phase::Content, "/x/");
}

/// Trans handlers are a global list and Send is built in: `handler` refuses them by
/// path, and the message says what to call instead.
#[test]
fn handler_refuses_a_phase_not_registered_by_path_and_says_what_to_call() {
    for (phase, instead) in [
        (Phase::Trans, "trans(handler)"),
        (Phase::Send, "before_send"),
    ] {
        let builder = Server::builder()
            .content("/", answer("x"))
            .handler(phase, "/x/", pass);
        let error = build_error(builder);
        match &error {
            Error::PhaseNotByPath { phase: p, path } => {
                assert_eq!((*p, path.as_str()), (phase, "/x/"))
            }
            other => panic!("{phase}: expected PhaseNotByPath, got {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{phase} handlers")),
            "{message}"
        );
        assert!(message.contains("\"/x/\""), "{message}");
        assert!(message.contains(instead), "{message}");
    }
}

#[test]
fn several_pre_and_post_handlers_on_one_path_are_fine() {
    let built = Server::builder()
        .pre("/x/", pass)
        .pre("/x/", pass)
        .post("/x/", pass)
        .post("/x/", pass)
        .content("/x/", answer("x"))
        .build();
    assert!(built.is_ok(), "{built:?}");
}

#[test]
fn build_refuses_invalid_default_headers_and_names_them() {
    for (name, value) in [("X-Evil", "a\r\nInjected: yes"), ("Bad Name", "value")] {
        let builder = Server::builder().header(name, value);
        let error = build_error(builder.content("/", answer("x")));
        match &error {
            Error::InvalidHeader { name: n, .. } => assert_eq!(n, name),
            other => panic!("{name}: expected InvalidHeader, got {other:?}"),
        }
        assert!(error.to_string().contains(name), "{error}");
    }
}
