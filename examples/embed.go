// Package examples holds the example repositories Slipway ships. The demo
// app is embedded so that `slipway demo` runs from any directory.
package examples

import "embed"

// Demo is examples/demo: a web front end and an API, each a static Go binary.
//
//go:embed all:demo
var Demo embed.FS
