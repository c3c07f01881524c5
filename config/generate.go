package config

// docs/configuration.md is generated from the doc comments and yaml tags in
// this package, the defaults its loader applies (Defaults, Validate), and
// config/internal/docgen/configuration.md.tmpl.
// After changing a key, its doc comment or a default, run `go generate ./config`;
// `go test ./config/internal/docgen` fails while the committed file is stale.

//go:generate go run ./internal/docgen -src . -out ../docs/configuration.md
