# The ready-made server in a small image: built with the Rust toolchain, run on
# distroless' glibc base (no shell, no package manager) as its non-root user.
#   docker build -t poco-httpd .
#   docker run -p 8000:8000 -v "$PWD:/srv:ro" poco-httpd
#   docker run -p 8000:8000 -v "$PWD/site.toml:/etc/poco-httpd.toml:ro" poco-httpd --config /etc/poco-httpd.toml
# scripts/test builds it and serves a file from it where Docker runs.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin poco-httpd

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/poco-httpd /usr/local/bin/poco-httpd
WORKDIR /srv
# Every interface (IPv6 and IPv4, or IPv4 alone where the container has no IPv6).
EXPOSE 8000
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/poco-httpd"]
CMD ["--listen", ":8000", "--root", "/srv"]
