package main

import (
	"fmt"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
)

// benchLabel is set by the first step of every fixture Dockerfile, so every
// layer and build container the benchmark causes carries it (the classic
// builder copies an image's labels into the next step's image and
// container). The sweep finds build cache layers the product leaves
// untagged (cancelled builds) by it.
const benchLabel = "slipway-bench.loop"

// composeFile is controller/harness_test.go's app(): a busybox httpd
// behind a healthcheck probed every 300 ms.
const composeFile = `services:
  web:
    build: .
    ports: ["8080"]
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 300ms
      retries: 60
`

// appFiles is the open-to-live fixture: the harness's app() with one RUN
// step, so that a cold build does what real Dockerfiles do (run a command
// in a container and commit it), not only COPY. nonce is copied in an early
// layer: a new nonce makes every later step a cache miss (cold), the same
// nonce and page as a built pull request make every step a hit (warm).
func appFiles(runID, nonce, page string) githubfake.Files {
	return githubfake.Files{
		"compose.yaml": composeFile,
		"Dockerfile": fmt.Sprintf(`FROM slipway-test/busybox:1
LABEL %s=%s
COPY nonce.txt /etc/nonce.txt
RUN mkdir -p /www && echo "built from $(cat /etc/nonce.txt)" > /www/built.txt
COPY index.html /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
`, benchLabel, runID),
		"nonce.txt":  nonce + "\n",
		"index.html": page + "\n",
	}
}

// slowFiles is a fixture whose build takes at least buildSeconds (a RUN
// sleep after a unique layer), to keep the engine and a build slot busy.
func slowFiles(runID, nonce string, buildSeconds int) githubfake.Files {
	return githubfake.Files{
		"compose.yaml": composeFile,
		"Dockerfile": fmt.Sprintf(`FROM slipway-test/busybox:1
LABEL %s=%s
COPY nonce.txt /etc/nonce.txt
RUN sleep %d
COPY index.html /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
`, benchLabel, runID, buildSeconds),
		"nonce.txt":  nonce + "\n",
		"index.html": "slow " + nonce + "\n",
	}
}
