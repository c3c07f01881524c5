// Command docgen writes docs/configuration.md from the config package: the
// key tree of slipway.yaml (config.Controller) and .slipway.yml
// (config.Repo) read through reflection and yaml tags, each key's doc
// comment read from the Go source, the defaults the loaders apply (files
// that leave every key out, loaded through config.ParseController and
// config.ParseRepo; never a default stated in prose), and the SLIPWAY_*
// variables of config's envKeys. The prose around the generated tables is
// configuration.md.tmpl.
//
// Run it through `go generate ./config`, or directly:
//
//	go run ./config/internal/docgen -src config -out docs/configuration.md
//
// Its test fails while the committed docs/configuration.md differs from
// what it generates; `go test ./config/internal/docgen -update` rewrites it.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	src := flag.String("src", "config", "directory of the config package's Go files")
	out := flag.String("out", "docs/configuration.md", "file to write (- for standard output)")
	flag.Parse()
	b, err := Generate(*src)
	if err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
	if *out == "-" {
		os.Stdout.Write(b)
		return
	}
	if err := writeIfChanged(*out, b); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}
