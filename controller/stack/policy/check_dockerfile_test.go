package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestCheckDockerfile(t *testing.T) {
	str := func(s string) *string { return &s }
	judge := imageJudge{project: "acme-shop-pr-7", services: []string{"web"}}
	for _, tc := range []struct {
		name string
		file string
		args map[string]*string
		want []string // "RULE line INSTR value"
	}{
		{name: "public images, stages by name and index, scratch",
			file: "ARG GO=1.22\nFROM golang:${GO} AS build\nRUN go build\nFROM scratch\nCOPY --from=build /out /app\nCOPY --from=0 /etc/ssl /etc/ssl\nFROM build AS test\n"},
		{name: "the project's own image",
			file: "FROM acme-shop-pr-7-web:0123456789ab\n"},
		{name: "local ADD and COPY, JSON form",
			file: "FROM alpine\nADD app.tgz /app/\nADD [\"src\", \"/src\"]\nCOPY . /code\n"},
		{name: "heredocs: the classic builder would run their lines as instructions",
			file: "FROM busybox\nRUN <<CMD\nADD http://169.254.169.254/latest/meta-data/ /leak\nFROM acme-rw-pr-12-web:abcdef123456\nCMD\nADD <<EOF /etc/motd\nhello\nEOF\n",
			want: []string{"SW-BLD-010 2 RUN <<", "SW-BLD-010 6 ADD <<"}},
		{name: "ENV beats ARG in the builder, and the base image's ENV is unknown: a variable in ADD is refused",
			file: "FROM busybox\nARG X=Dockerfile\nADD $X /leak\n",
			want: []string{"SW-BLD-010 3 ADD $X"}},
		{name: "platform ARGs the classic builder does not define",
			file: "FROM busybox\nARG TARGETARCH\nADD ${TARGETARCH:+Dockerfile}${TARGETARCH:-http://169.254.169.254/latest/meta-data/} /leak\n",
			want: []string{"SW-BLD-009 3 ADD http://169.254.169.254/latest/meta-data/"}},
		{name: "a directive BuildKit reads and the classic builder stops at, before an escape",
			file: "# check=skip=all\n# escape=`\nFROM busybox\nRUN true # `\nADD http://169.254.169.254/latest/meta-data/ /leak\n",
			want: []string{"SW-BLD-010 0 # escape `"}},
		{name: "the classic builder has no named contexts: every --from that is not a stage is an image",
			file: "FROM 10.0.0.5:5000/internal/img\nCOPY --from=acme-shop-pr-8-web:0123456789ab /app /stolen\nRUN --mount=type=bind,from=acme-shop-pr-8-web:0123456789ab,target=/s true\n",
			want: []string{
				"SW-IMG-002 1 FROM 10.0.0.5:5000/internal/img",
				"SW-IMG-001 2 COPY --from acme-shop-pr-8-web:0123456789ab",
				"SW-IMG-001 3 RUN --mount acme-shop-pr-8-web:0123456789ab",
			}},
		{name: "private registry in FROM",
			file: "FROM 10.0.0.5:5000/base\n",
			want: []string{"SW-IMG-002 1 FROM 10.0.0.5:5000/base"}},
		{name: "build arg overrides the default",
			file: "ARG REG=docker.io\nFROM ${REG}/library/alpine\n",
			args: map[string]*string{"REG": str("localhost:5000")},
			want: []string{"SW-IMG-002 2 FROM localhost:5000/library/alpine (written ${REG}/library/alpine)"}},
		{name: "a nil build arg is not passed: the default holds",
			file: "ARG REG=docker.io\nFROM ${REG}/library/alpine\n",
			args: map[string]*string{"REG": nil}},
		{name: "a build arg for an undeclared ARG changes nothing, and the variable is unknown",
			file: "FROM ${REG}/library/alpine\n",
			args: map[string]*string{"REG": str("docker.io")},
			want: []string{"SW-BLD-010 1 FROM ${REG}/library/alpine"}},
		{name: "declared without a value: unset, the default applies",
			file: "ARG REG\nFROM ${REG:-docker.io}/library/alpine\n"},
		{name: "the classic builder defines no platform arguments",
			file: "FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS b\nFROM alpine:${TARGETARCH}\n",
			want: []string{"SW-BLD-010 2 FROM alpine:${TARGETARCH}"}},
		{name: "a FROM the builder resolves to an image, not the stage BuildKit's TARGETARCH would name",
			file: "FROM busybox AS amd64\nFROM ${TARGETARCH:-127.0.0.1:18555/evil}\n",
			want: []string{"SW-BLD-010 2 FROM ${TARGETARCH:-127.0.0.1:18555/evil}"}},
		{name: "proxy build arguments reach FROM without an ARG",
			file: "FROM busybox AS base\nFROM ${HTTP_PROXY:-base}\n",
			args: map[string]*string{"HTTP_PROXY": str("acme-shop-pr-8-web:0123456789ab")},
			want: []string{"SW-IMG-001 2 FROM acme-shop-pr-8-web:0123456789ab (written ${HTTP_PROXY:-base})"}},
		{name: "COPY --from naming the stage being built names an image",
			file: "FROM busybox AS a998b016e9\nCOPY --from=a998b016e9 /secret /loot\n",
			want: []string{"SW-IMG-001 2 COPY --from a998b016e9"}},
		{name: "JSON form with text after it",
			file: "FROM busybox\nADD [\"http:\\/\\/127.0.0.1:18555/x\", \"/x\"] ]\n",
			want: []string{"SW-BLD-010 2 ADD [\"http:\\/\\/127.0.0.1:18555/x\","}},
		{name: "a carriage return that does not end a line",
			file: "FROM busybox\nRUN true \\\r\r\nADD http://127.0.0.1:18555/x /x\n",
			want: []string{"SW-BLD-010 0  \\r"}},
		{name: "stage ARG re-declares the global value",
			file: "ARG SRC=https://example.com/x\nFROM scratch\nARG SRC\nADD $SRC /x\n",
			want: []string{"SW-BLD-009 4 ADD https://example.com/x"}},
		{name: "global ARGs are not visible in a stage without ARG",
			file: "ARG SRC=https://example.com/x\nFROM scratch\nADD $SRC /x\n",
			want: []string{"SW-BLD-010 3 ADD $SRC"}},
		{name: "ENV is inherited by a stage built on it",
			file: "FROM scratch AS a\nENV U=http://169.254.169.254/\nFROM a\nADD ${U}latest /m\n",
			want: []string{"SW-BLD-009 4 ADD http://169.254.169.254/latest"}},
		{name: "ENV is not inherited by an unrelated stage",
			file: "FROM scratch AS a\nENV U=http://x/\nFROM scratch\nADD ${U} /m\n",
			want: []string{"SW-BLD-010 4 ADD ${U}"}},
		{name: "legacy ENV form and several pairs",
			file: "FROM scratch\nENV A=1 B=git@github.com:acme/x.git\nENV C http://example.com/c\nADD $B /b\nADD $C /c\n",
			want: []string{"SW-BLD-009 4 ADD git@github.com:acme/x.git", "SW-BLD-009 5 ADD http://example.com/c"}},
		{name: "an ENV from an unknown variable is unknown",
			file: "FROM busybox\nENV P=$PATH:/x\nADD $P /p\n",
			want: []string{"SW-BLD-010 3 ADD $P"}},
		{name: "remote ADD forms",
			file: "FROM scratch\nADD https://example.com/a /a\nADD http://127.0.0.1:2375/containers/json /b\nADD git://example.com/r.git /c\nADD github.com/acme/repo /d\nADD user@host:repo.git /e\nADD --checksum=sha256:00 ftp://x/y /f\n",
			want: []string{
				"SW-BLD-009 2 ADD https://example.com/a",
				"SW-BLD-009 3 ADD http://127.0.0.1:2375/containers/json",
				"SW-BLD-009 4 ADD git://example.com/r.git",
				"SW-BLD-009 5 ADD github.com/acme/repo",
				"SW-BLD-009 6 ADD user@host:repo.git",
				"SW-BLD-009 7 ADD ftp://x/y",
			}},
		{name: "quotes, continuation lines, defaults and upper-case schemes do not hide a URL",
			file: "FROM scratch\nARG U\nADD \"https://example.com/q\" /q\nADD htt\\\np://example.com/c /c\nADD ${U:-https://example.com/d} /d\nADD HTTPS://EXAMPLE.COM/u /u\n",
			want: []string{
				"SW-BLD-009 3 ADD https://example.com/q",
				"SW-BLD-009 4 ADD http://example.com/c",
				"SW-BLD-009 6 ADD https://example.com/d",
				"SW-BLD-009 7 ADD HTTPS://EXAMPLE.COM/u",
			}},
		{name: "a default does not make an unknown variable known",
			file: "FROM scratch\nADD ${U:-./local} /d\n",
			want: []string{"SW-BLD-010 2 ADD ${U:-./local}"}},
		{name: "FROM a stage named through a variable",
			file: "FROM alpine AS base\nARG B=base\nFROM scratch\nARG STAGE=base\nCOPY --from=$STAGE /x /x\n"},
		{name: "ONBUILD is refused",
			file: "FROM scratch\nONBUILD RUN true\n",
			want: []string{"SW-BLD-010 2 ONBUILD RUN true"}},
		// Slipway's labelling step builds FROM the image, firing its
		// triggers with the image's final environment, not the one at the
		// ONBUILD line.
		{name: "ONBUILD ADD whose variable changes after it",
			file: "FROM scratch\nENV U=./local.txt\nONBUILD ADD $U /x\nENV U=http://169.254.169.254/latest/meta-data/\n",
			want: []string{"SW-BLD-010 3 ONBUILD ADD $U /x"}},
		{name: "ONBUILD fires in a stage built on it, with the base stage's final ENV",
			file: "FROM scratch AS base\nENV U=./local.txt\nONBUILD ADD $U /x\nENV U=http://169.254.169.254/latest/meta-data/\nFROM base\nFROM base\n",
			want: []string{
				"SW-BLD-010 3 ONBUILD ADD $U /x",
				"SW-BLD-009 3 ADD http://169.254.169.254/latest/meta-data/",
				"SW-BLD-009 3 ADD http://169.254.169.254/latest/meta-data/",
			}},
		{name: "ONBUILD ADD with a literal URL",
			file: "FROM scratch AS base\nONBUILD ADD https://example.com/x /x\nFROM base\n",
			want: []string{"SW-BLD-010 2 ONBUILD ADD https://example.com/x /x", "SW-BLD-009 2 ADD https://example.com/x"}},
		{name: "COPY --from an image",
			file: "FROM scratch\nCOPY --from=acme-shop-pr-8-web:0123456789ab /app /app\nCOPY --from=5 /x /x\n",
			want: []string{
				"SW-IMG-001 2 COPY --from acme-shop-pr-8-web:0123456789ab",
				"SW-IMG-001 3 COPY --from 5",
			}},
		{name: "RUN --mount from an image",
			file: "FROM alpine AS a\nRUN --mount=type=bind,from=a,target=/a true\nRUN --mount=type=bind,from=localhost:5000/x,target=/x,readonly true\n",
			want: []string{"SW-IMG-001 2 RUN --mount a", "SW-IMG-002 3 RUN --mount localhost:5000/x"}},
		{name: "syntax directive",
			file: "# syntax=registry:5000/frontend\nFROM scratch\n",
			want: []string{"SW-IMG-002 1 # syntax registry:5000/frontend"}},
		{name: "public syntax directive",
			file: "# syntax=docker/dockerfile:1\nFROM scratch\n"},
		{name: "escape directive: refused, every Dockerfile builds with the default escape",
			file: "# escape=`\nFROM scratch\nADD `\n  https://example.com/x /x\n",
			want: []string{"SW-BLD-010 0 # escape `"}},
		{name: "does not parse",
			file: "FROM scratch\nENV onlykey\n",
			want: []string{"SW-BLD-010 0  "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := []string{}
			for _, f := range checkDockerfile([]byte(tc.file), dockerfileInput{args: tc.args, judge: judge}) {
				got = append(got, fmt.Sprintf("%s %d %s %s", f.rule, f.line, f.instr, f.value))
			}
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

func TestBaseImages(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name, file string
		args       map[string]*string
		want       []string
		err        bool
	}{
		{name: "stages and scratch are not images; each image once",
			file: "ARG V=1\nFROM golang:$V AS build\nFROM build AS test\nFROM scratch\nFROM --platform=$BUILDPLATFORM golang:1 AS again\nFROM alpine\nCOPY --from=build / /\n",
			want: []string{"golang:1", "alpine"}},
		{name: "build args apply", file: "ARG B=alpine\nFROM $B\n", args: map[string]*string{"B": str("attacker/base")},
			want: []string{"attacker/base"}},
		{name: "a FROM that cannot be expanded", file: "FROM $NOPE\n", err: true},
		{name: "does not parse", file: "FROM scratch\nENV onlykey\n", err: true},
		{name: "a problem elsewhere does not matter", file: "FROM alpine\nADD $X /x\n", want: []string{"alpine"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BaseImages([]byte(tc.file), tc.args)
			if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestPinBaseImages(t *testing.T) {
	const a = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	const b = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ids := map[string]string{"golang:1": a, "attacker/base": b}
	file := "# syntax=docker/dockerfile:1\n" +
		"ARG V=1\n" +
		"FROM --platform=$BUILDPLATFORM golang:$V AS Build\n" +
		"RUN go build\n" +
		"from \\\n" +
		"  # a comment inside the instruction\n" +
		"  attacker/base\n" +
		"COPY --from=build /out /app\n" +
		"FROM build\n" +
		"FROM scratch\n"
	got, err := PinBaseImages([]byte(file), nil, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := "# syntax=docker/dockerfile:1\n" +
		"ARG V=1\n" +
		"FROM --platform=$BUILDPLATFORM " + a + " AS Build\n" +
		"RUN go build\n" +
		"FROM " + b + "\n" +
		"\n" +
		"\n" +
		"COPY --from=build /out /app\n" +
		"FROM build\n" +
		"FROM scratch\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// The rewritten file starts from the same stages, in the same order.
	if bases, err := BaseImages(got, nil); err != nil || !slices.Equal(bases, []string{a, b}) {
		t.Errorf("BaseImages of the pinned file: %q, %v", bases, err)
	}
	if _, err := PinBaseImages([]byte(file), nil, map[string]string{"golang:1": a}); err == nil {
		t.Error("a base image without an ID was not refused")
	}
	if _, err := PinBaseImages([]byte("FROM $NOPE\n"), nil, ids); err == nil {
		t.Error("an unexpandable FROM was not refused")
	}
}

func TestDockerfileFiles(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "compose.yaml"), `
services:
  missing:
    build: ./nothing
  big:
    build:
      context: .
      dockerfile: big.Dockerfile
  fifo:
    build:
      context: .
      dockerfile: fifo.Dockerfile
`)
	if err := os.MkdirAll(filepath.Join(root, "nothing"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "big.Dockerfile"), "FROM scratch\n"+strings.Repeat("# padding\n", maxDockerfileSize/10+1))
	// A FIFO would block a plain read forever: the policy must not open it.
	if err := syscall.Mkfifo(filepath.Join(root, "fifo.Dockerfile"), 0o644); err != nil {
		t.Fatal(err)
	}
	vs, _ := evaluate(t, root, []string{filepath.Join(root, "compose.yaml")}, Options{})
	var got []string
	for _, v := range vs {
		got = append(got, v.Service+" "+v.Rule+" "+v.Field)
	}
	want := []string{
		"big SW-BLD-010 build.dockerfile",
		"fifo SW-BLD-010 build.dockerfile",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestParseCacheSpec(t *testing.T) {
	for _, tc := range []struct {
		spec, typ, ref string
		err            bool
	}{
		{spec: "acme/cache:main", typ: "registry", ref: "acme/cache:main"},
		{spec: "type=registry,ref=acme/cache", typ: "registry", ref: "acme/cache"},
		{spec: "type=local,src=/tmp/c", typ: "local"},
		{spec: "TYPE=Local,src=/tmp/c", typ: "local"},
		{spec: " type = local , src=/tmp/c", typ: "local"},
		{spec: `"type=local",src=/tmp/c`, typ: "local"},
		{spec: "type=gha,url=http://169.254.169.254", typ: "gha"},
		{spec: "type=registry,type=local", err: true},
		{spec: "ref=acme/cache", err: true},
		{spec: `type="local`, err: true},
	} {
		typ, ref, err := parseCacheSpec(tc.spec)
		if (err != nil) != tc.err || typ != tc.typ || ref != tc.ref {
			t.Errorf("parseCacheSpec(%q) = %q, %q, %v; want %q, %q, error %v", tc.spec, typ, ref, err, tc.typ, tc.ref, tc.err)
		}
	}
}
