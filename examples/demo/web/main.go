// Command web is the demo's front end: it shows which pull request and
// commit it was built from, and calls the API service by its compose
// service name.
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

//go:embed greeting.txt
var greeting string

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Slipway demo · PR {{.PR}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;min-height:100vh;display:grid;place-items:center;background:{{.Background}};color:#111}
main{background:#fff;padding:2.5rem 3rem;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.15);max-width:40rem}
h1{margin:0 0 .5rem}code{background:#f2f2f2;padding:.1rem .35rem;border-radius:4px}
.api{margin-top:1.5rem;padding:1rem;border-left:4px solid {{.Background}};background:#fafafa}
</style></head><body><main>
<h1>{{.Greeting}}</h1>
<p>This is the preview of pull request <strong>#{{.PR}}</strong> of <code>{{.Repo}}</code>, built from commit <code>{{.SHA}}</code>.</p>
<p>It lives at <a href="{{.URL}}">{{.URL}}</a>.</p>
<div class="api"><strong>The API says:</strong> {{.API}}</div>
</main></body></html>
`))

func main() {
	health := flag.Bool("healthcheck", false, "check that the server answers, for the container healthcheck")
	flag.Parse()
	if *health {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://127.0.0.1:8080/healthz")
		if err != nil || resp.StatusCode != 200 {
			os.Exit(1)
		}
		return
	}
	api := os.Getenv("API_URL")
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		answer := callAPI(api + "/visits")
		lines := strings.SplitN(strings.TrimSpace(greeting), "\n", 2)
		bg := "#5b8def"
		if len(lines) == 2 {
			bg = strings.TrimSpace(lines[1])
		}
		err := page.Execute(w, map[string]string{
			"PR": os.Getenv("SLIPWAY_PR"), "Repo": os.Getenv("SLIPWAY_REPO"), "SHA": short(os.Getenv("SLIPWAY_SHA")),
			"URL": os.Getenv("SLIPWAY_URL"), "Greeting": lines[0], "Background": bg, "API": answer,
		})
		if err != nil {
			log.Print(err)
		}
	})
	log.Printf("web listening on :8080, API at %s", api)
	log.Fatal(http.ListenAndServe(":8080", nil))
}

func callAPI(url string) string {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "unreachable: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return strings.TrimSpace(string(b))
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
