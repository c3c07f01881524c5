package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// A Dockerfile of the PR is as hostile as its compose file, and the
// builder acts on some of its instructions from the host's own network
// namespace, whatever build.network says: it pulls FROM and COPY --from
// images (and a "# syntax=" frontend), and it downloads ADD URLs. The
// policy reads every Dockerfile built from the checkout (or given inline)
// with BuildKit's parser, the one the engine uses, expands variables the
// way the builder will with the service's build args, and judges what the
// builder would fetch. What it cannot expand it refuses (SW-BLD-010).

// maxDockerfileSize bounds what the policy reads; a larger Dockerfile is
// refused rather than checked in part.
const maxDockerfileSize = 1 << 20

// dockerfileFinding is one problem in a Dockerfile.
type dockerfileFinding struct {
	rule string
	// line is the instruction's first line (1-based), 0 for the file.
	line int
	// instr names the instruction: "FROM", "ADD", "COPY --from", "syntax".
	instr string
	// value is the offending value, expanded.
	value string
	msg   string
}

// dockerfileInput is what checking a Dockerfile needs besides its content.
type dockerfileInput struct {
	// args are the service's build.args (nil values are not passed).
	args map[string]*string
	// judge judges image references.
	judge imageJudge
}

// dockerfile checks the Dockerfile of a build whose context dir (inside the
// checkout) is ctxDir; the Dockerfile itself is read only when it is inside
// the checkout too (SW-BLD-005 reports it otherwise).
func (c *checker) dockerfile(sc scope, b *types.BuildConfig, ctxDir string) {
	// build.additional_contexts play no part: the classic builder Slipway
	// builds with has no named contexts, so a FROM or --from naming one
	// resolves as an image, and is judged as one (SW-BLD-011 refuses the
	// contexts themselves).
	in := dockerfileInput{args: b.Args, judge: c.imageJudge()}
	if b.DockerfileInline != "" {
		c.dockerfileFindings(sc, "build.dockerfile_inline", "inline", checkDockerfile([]byte(b.DockerfileInline), in))
		return
	}
	df := b.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	hp := resolveHostPath(c.root, ctxDir, df)
	if !hp.inside {
		return
	}
	content, err := readDockerfile(hp.real)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return // nothing to build from: the builder fails on its own
	case err != nil:
		c.add(sc, DockerfileUnchecked, "build.dockerfile", df, fmt.Sprintf("the policy cannot read the Dockerfile to check it (%v)", err))
		return
	}
	c.dockerfileFindings(sc, "build.dockerfile", c.display(hp.real), checkDockerfile(content, in))
}

// dockerfileFindings reports a Dockerfile's findings as violations whose
// field names the file, the line and the instruction.
func (c *checker) dockerfileFindings(sc scope, field, file string, fs []dockerfileFinding) {
	for _, f := range fs {
		where := field + " (" + file + ")"
		if f.line > 0 {
			where = fmt.Sprintf("%s (%s line %d)", field, file, f.line)
		}
		if f.instr != "" {
			where += " " + f.instr
		}
		c.add(sc, f.rule, where, f.value, f.msg)
	}
}

// readDockerfile reads a regular file of at most maxDockerfileSize bytes.
// It opens without blocking and checks the file it opened, so that a FIFO
// (or a file swapped for one) cannot hang the controller.
func readDockerfile(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxDockerfileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDockerfileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxDockerfileSize)
	}
	return b, nil
}

// BaseImages returns the images the stages of a Dockerfile start FROM
// (neither earlier stages nor scratch), expanded with args the way the
// policy expands them, in order, each once. The stack engine inspects them
// before building. It fails, rather than return a partial list, when the
// Dockerfile does not parse or a FROM cannot be expanded.
func BaseImages(content []byte, args map[string]*string) ([]string, error) {
	w, err := walkBases(content, args)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range w.bases {
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out, nil
}

// walkBases walks a Dockerfile for its FROM instructions, failing when it
// does not parse or a FROM cannot be expanded.
func walkBases(content []byte, args map[string]*string) (*dockerfileWalk, error) {
	w := walkDockerfile(content, dockerfileInput{args: args})
	var bad []string
	for _, f := range w.out {
		if f.rule == DockerfileUnchecked && (f.line == 0 || f.instr == "FROM") {
			bad = append(bad, fmt.Sprintf("line %d: %s", f.line, f.msg))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("cannot tell the Dockerfile's base images: %s", strings.Join(bad, "; "))
	}
	return w, nil
}

// PinBaseImages returns content with every FROM that BaseImages lists
// rewritten to start its stage from the image ID ids gives for its
// reference, its flags (--platform) and stage name kept. The stack engine
// builds the rewritten file, so that the builder starts from the very
// images the engine inspected, not from whatever a concurrent pull has
// tagged with the same name since. The instruction's first line is
// replaced and its continuation lines emptied, so line numbers hold.
func PinBaseImages(content []byte, args map[string]*string, ids map[string]string) ([]byte, error) {
	w, err := walkBases(content, args)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(content), "\n")
	for i, n := range w.baseNodes {
		id := ids[w.bases[i]]
		if !strings.HasPrefix(id, "sha256:") || strings.ContainsAny(id, " \t\r\n\\") {
			return nil, fmt.Errorf("no image ID for base image %s", w.bases[i])
		}
		if n.StartLine < 1 || n.EndLine < n.StartLine || n.EndLine > len(lines) {
			return nil, fmt.Errorf("FROM %s: unexpected lines %d-%d", w.bases[i], n.StartLine, n.EndLine)
		}
		from := []string{"FROM"}
		from = append(from, n.Flags...)
		from = append(from, id)
		if as := n.Next.Next; as != nil && as.Next != nil {
			from = append(from, "AS", as.Next.Value)
		}
		lines[n.StartLine-1] = strings.Join(from, " ") + "\n"
		for l := n.StartLine; l < n.EndLine; l++ {
			lines[l] = "\n"
		}
	}
	return []byte(strings.Join(lines, "")), nil
}

// checkDockerfile returns every problem of one Dockerfile: images the
// builder would pull that SW-IMG-001/002 refuse, remote ADD sources
// (SW-BLD-009), and what cannot be checked (SW-BLD-010).
func checkDockerfile(content []byte, in dockerfileInput) []dockerfileFinding {
	return walkDockerfile(content, in).out
}

// walkDockerfile follows the Dockerfile through.
func walkDockerfile(content []byte, in dockerfileInput) *dockerfileWalk {
	w := &dockerfileWalk{in: in}
	if syntax, _, loc, ok := parser.DetectSyntax(content); ok {
		line := 1
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		w.image(line, "# syntax", syntax, syntax)
	}
	res, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		w.unchecked(0, "", "", fmt.Sprintf("the Dockerfile does not parse (%v)", err))
		return w
	}
	if res.EscapeToken != '\\' {
		w.unchecked(0, "# escape", string(res.EscapeToken),
			"an escape directive other than the default \\: the engine's builder and Slipway's parser do not agree on which directives count, so Slipway builds every Dockerfile with the default escape")
		return w
	}
	if bytes.Contains(bytes.ReplaceAll(content, []byte("\r\n"), nil), []byte("\r")) {
		// The engine's builder splits lines dropping one carriage return,
		// BuildKit's parser drops them all: "\\\r\r\n" continues a line for
		// one and ends it for the other.
		w.unchecked(0, "", "\\r", "a carriage return that does not end a line: the engine's builder and the policy's parser split such lines differently")
		return w
	}
	w.lex = shell.NewLex(res.EscapeToken)
	w.global = newBuildEnv(nil)
	w.global.setPredefined(w.in.args)
	inStages := false
	for _, n := range res.AST.Children {
		if n.Next != nil && strings.HasPrefix(n.Next.Value, "[") && !n.Attributes["json"] {
			// Not valid JSON to BuildKit's parser, which then splits the
			// words; the engine's builder decodes the first JSON value and
			// ignores what follows, so the two read different arguments.
			w.unchecked(n.StartLine, strings.ToUpper(n.Value), n.Next.Value,
				"arguments that start like the JSON form but are not valid JSON: the engine's builder and the policy's parser read them differently")
			continue
		}
		if len(n.Heredocs) > 0 {
			// The classic builder has no heredocs: it would run the body's
			// lines as instructions this check read as text.
			w.unchecked(n.StartLine, strings.ToUpper(n.Value), "<<",
				"heredocs: the engine's classic builder does not support them and would run their lines as instructions; write the content to a file and COPY it")
			continue
		}
		switch {
		case strings.EqualFold(n.Value, "from"):
			inStages = true
			w.from(n)
		case !inStages && strings.EqualFold(n.Value, "arg"):
			w.arg(w.global, n, nil)
		case inStages:
			w.instruction(n)
		}
	}
	return w
}

// dockerfileWalk follows a Dockerfile's stages in order.
type dockerfileWalk struct {
	in     dockerfileInput
	lex    *shell.Lex
	global *buildEnv
	stages []stage
	// bases are the images stages start FROM, as written after expansion,
	// and baseNodes their FROM instructions.
	bases     []string
	baseNodes []*parser.Node
	out       []dockerfileFinding
}

// stage is one FROM of the Dockerfile.
type stage struct {
	name string // lower-cased, "" if unnamed
	env  *buildEnv
	// triggers are the stage's ONBUILD instructions, which run in every
	// later stage built FROM it.
	triggers []*parser.Node
}

func (w *dockerfileWalk) add(rule string, line int, instr, value, msg string) {
	w.out = append(w.out, dockerfileFinding{rule: rule, line: line, instr: instr, value: value, msg: msg})
}

func (w *dockerfileWalk) unchecked(line int, instr, value, msg string) {
	w.add(DockerfileUnchecked, line, instr, value, msg)
}

// current is the stage being built.
func (w *dockerfileWalk) current() *stage {
	return &w.stages[len(w.stages)-1]
}

// from starts a stage: FROM [--platform=…] <image> [AS <name>].
func (w *dockerfileWalk) from(n *parser.Node) {
	if n.Next == nil {
		w.unchecked(n.StartLine, "FROM", "", "FROM names no image")
		return
	}
	raw := n.Next.Value
	st := stage{env: newBuildEnv(nil)}
	if as := n.Next.Next; as != nil && strings.EqualFold(as.Value, "as") && as.Next != nil {
		st.name = strings.ToLower(as.Next.Value)
	}
	var fire []*parser.Node
	ref, ok := w.expand(n.StartLine, "FROM", raw, w.global)
	if ok {
		switch base := w.stageByName(ref); {
		case base != nil:
			st.env = newBuildEnv(base.env.inherited())
			fire = base.triggers
		case strings.EqualFold(ref, "scratch"):
		default:
			w.bases = append(w.bases, ref)
			w.baseNodes = append(w.baseNodes, n)
			w.image(n.StartLine, "FROM", ref, raw)
		}
	}
	w.stages = append(w.stages, st)
	// The builder runs the base stage's ONBUILD triggers first, with the
	// environment the base stage ended with.
	for _, t := range fire {
		w.instruction(t)
	}
}

// stageByName returns the earlier stage called name, if any.
func (w *dockerfileWalk) stageByName(name string) *stage {
	name = strings.ToLower(name)
	for i := range w.stages {
		if w.stages[i].name != "" && w.stages[i].name == name {
			return &w.stages[i]
		}
	}
	return nil
}

// finishedStageByName is stageByName without the stage being built: the
// classic builder knows a stage by name only once it is finished, so
// COPY --from naming the current stage names an image.
func (w *dockerfileWalk) finishedStageByName(name string) *stage {
	name = strings.ToLower(name)
	for i := 0; i < len(w.stages)-1; i++ {
		if w.stages[i].name != "" && w.stages[i].name == name {
			return &w.stages[i]
		}
	}
	return nil
}

// instruction handles one instruction inside a stage.
func (w *dockerfileWalk) instruction(n *parser.Node) {
	st := w.current()
	switch strings.ToLower(n.Value) {
	case "arg":
		w.arg(st.env, n, w.global)
	case "env":
		w.env(st.env, n)
	case "add":
		w.addSources(n, st.env)
	case "copy":
		w.copyFrom(n, st.env)
	case "run":
		w.runMounts(n, st.env)
	case "onbuild":
		w.onbuild(st, n)
	}
}

// onbuild refuses ONBUILD (SW-BLD-010). Its trigger runs in whatever build
// is based on this image, with that build's environment: later stages of
// this Dockerfile, and Slipway's fallback labelling step, which builds FROM the
// PR's image with its final ENV, so an ADD that reads a local file where
// it is written may fetch a URL where it fires. The trigger is also
// checked where it fires inside this Dockerfile (see from), for an
// operator who relaxes SW-BLD-010; the stack engine refuses a built image
// that still carries triggers in any case.
func (w *dockerfileWalk) onbuild(st *stage, n *parser.Node) {
	value := strings.TrimSpace(n.Original)
	if n.Next != nil && len(n.Next.Children) > 0 {
		inner := *n.Next.Children[0]
		inner.StartLine = n.StartLine
		if o := strings.TrimSpace(inner.Original); o != "" {
			value = o
		}
		st.triggers = append(st.triggers, &inner)
	}
	w.unchecked(n.StartLine, "ONBUILD", value,
		"an ONBUILD trigger runs in a later build based on this image (Slipway's fallback labelling step builds FROM it) with that build's environment, which the policy does not see, and the builder fetches ADD and COPY --from sources from the host's network; Slipway refuses triggers")
}

// arg declares build arguments: ARG NAME[=default] …; a stage's ARG
// without a default takes the global one's value.
func (w *dockerfileWalk) arg(env *buildEnv, n *parser.Node, global *buildEnv) {
	for a := n.Next; a != nil; a = a.Next {
		name, def, hasDefault := strings.Cut(a.Value, "=")
		if v, ok := w.in.args[name]; ok && v != nil {
			env.set(name, *v)
			continue
		}
		if hasDefault {
			if val, ok := w.expand(n.StartLine, "", def, env); ok {
				env.set(name, val)
			} else {
				env.unknown(name)
			}
			continue
		}
		if global != nil {
			if v, ok := global.vals[name]; ok {
				env.set(name, v)
				continue
			}
		}
		env.declareUnset(name)
	}
}

// env sets ENV variables; a value that does not expand makes the
// variable unknown, so that instructions using it fail closed.
func (w *dockerfileWalk) env(env *buildEnv, n *parser.Node) {
	// The parser chains key, value, separator, key, value, separator…
	for kv := n.Next; kv != nil && kv.Next != nil; {
		val := kv.Next
		res, err := w.lex.ProcessWordWithMatches(val.Value, env)
		if err != nil || len(env.takeMissing()) > 0 {
			env.unknown(kv.Value)
		} else {
			env.set(kv.Value, res.Result)
			env.exported[kv.Value] = true
		}
		if val.Next == nil {
			break
		}
		kv = val.Next.Next
	}
}

// addSources judges ADD's sources: the builder downloads URLs and clones
// git repositories from the host's network namespace.
func (w *dockerfileWalk) addSources(n *parser.Node, env *buildEnv) {
	var args []string
	for a := n.Next; a != nil; a = a.Next {
		args = append(args, a.Value)
	}
	if len(args) < 2 {
		return
	}
	for _, raw := range args[:len(args)-1] {
		if strings.HasPrefix(raw, "<<") && len(n.Heredocs) > 0 {
			continue // a heredoc: content written in the Dockerfile
		}
		src, ok := w.expand(n.StartLine, "ADD", raw, env)
		switch {
		case ok && isRemoteSource(src):
			w.add(RemoteAdd, n.StartLine, "ADD", src,
				"the builder downloads ADD sources from the host's own network namespace (localhost, the metadata address, the LAN), whatever build.network says; download in a RUN step instead")
		case ok && strings.Contains(raw, "$"):
			// The classic builder expands ADD's sources with the base
			// image's ENV winning over the Dockerfile's ARGs, and without
			// the platform ARGs BuildKit predefines: what it fetches is not
			// what this check computed. ADD needs no variables to add a file.
			w.unchecked(n.StartLine, "ADD", raw,
				"a variable in an ADD source: the builder resolves it with the base image's environment, which this check cannot see, and ADD downloads URLs from the host's network; write the path, or use COPY")
		}
	}
}

// copyFrom judges COPY --from=<stage|image>. The classic builder has no
// named contexts: whatever is not an earlier stage is an image.
func (w *dockerfileWalk) copyFrom(n *parser.Node, env *buildEnv) {
	for _, f := range n.Flags {
		raw, ok := strings.CutPrefix(f, "--from=")
		if !ok {
			continue
		}
		w.fromSource(n.StartLine, "COPY --from", raw, env)
	}
}

// fromSource judges the source of a --from: an earlier stage (by name or
// index) is fine; anything else is an image the builder would pull.
func (w *dockerfileWalk) fromSource(line int, instr, raw string, env *buildEnv) {
	from, ok := w.expand(line, instr, raw, env)
	if !ok || w.finishedStageByName(from) != nil {
		return
	}
	if i, err := strconv.Atoi(from); err == nil && i >= 0 && i < len(w.stages)-1 {
		return // an earlier stage by index
	}
	w.image(line, instr, from, raw)
}

// runMounts judges RUN --mount=…,from=<stage|image>, which BuildKit pulls
// like COPY --from.
func (w *dockerfileWalk) runMounts(n *parser.Node, env *buildEnv) {
	for _, f := range n.Flags {
		spec, ok := strings.CutPrefix(f, "--mount=")
		if !ok {
			continue
		}
		fields, err := csvFields(spec)
		if err != nil {
			w.unchecked(n.StartLine, "RUN --mount", spec, fmt.Sprintf("the policy cannot parse the mount (%v)", err))
			continue
		}
		raw, ok := fields["from"]
		if !ok {
			continue
		}
		w.fromSource(n.StartLine, "RUN --mount", raw, env)
	}
}

// image judges an image reference the builder would pull.
func (w *dockerfileWalk) image(line int, instr, ref, raw string) {
	value := ref
	if raw != ref {
		value = ref + " (written " + raw + ")"
	}
	for _, f := range w.in.judge.judge(ref) {
		w.add(f.rule, line, instr, value, f.msg)
	}
}

// expand expands word the way the builder does, with env. A variable the
// policy cannot know (not declared, or set from something it cannot see,
// such as the base image's environment) fails closed.
func (w *dockerfileWalk) expand(line int, instr, word string, env *buildEnv) (string, bool) {
	res, err := w.lex.ProcessWordWithMatches(word, env)
	if err != nil {
		w.unchecked(line, instr, word, fmt.Sprintf("the policy cannot expand it (%v)", err))
		return "", false
	}
	if missing := env.takeMissing(); len(missing) > 0 {
		w.unchecked(line, instr, word, fmt.Sprintf("uses %s, whose value the policy cannot know (not declared with ARG or ENV, or set from the base image); refused rather than guessed",
			"$"+strings.Join(missing, ", $")))
		return "", false
	}
	return res.Result, true
}

// remoteSCP matches git's scp-like syntax, user@host:path.
var remoteSCP = regexp.MustCompile(`^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:`)

// isRemoteSource reports whether an ADD source is fetched rather than
// read from the context: any URL, git@ and scp-like git remotes, and the
// github.com/ shorthand BuildKit treats as a git repository.
func isRemoteSource(s string) bool {
	return strings.Contains(s, "://") || isRemoteContext(s) || remoteSCP.MatchString(s)
}

// buildEnv is the variables an instruction's expansion sees. It records
// the names looked up that it cannot answer for.
type buildEnv struct {
	vals map[string]string
	// known are declared but unset variables: they expand to nothing (or
	// their ${VAR:-default}), as the builder would.
	known map[string]bool
	// exported are the ENV variables, which a stage built FROM this one
	// inherits.
	exported map[string]bool
	missing  []string
}

func newBuildEnv(inherit map[string]string) *buildEnv {
	e := &buildEnv{vals: map[string]string{}, known: map[string]bool{}, exported: map[string]bool{}}
	for k, v := range inherit {
		e.set(k, v)
		e.exported[k] = true
	}
	return e
}

func (e *buildEnv) set(k, v string) {
	e.vals[k] = v
	e.known[k] = true
}

func (e *buildEnv) declareUnset(k string) {
	delete(e.vals, k)
	e.known[k] = true
}

// unknown forgets k: any later use of it fails closed.
func (e *buildEnv) unknown(k string) {
	delete(e.vals, k)
	delete(e.known, k)
	delete(e.exported, k)
}

// inherited returns the ENV variables a stage built on this one starts with.
func (e *buildEnv) inherited() map[string]string {
	out := map[string]string{}
	for k := range e.exported {
		if v, ok := e.vals[k]; ok {
			out[k] = v
		}
	}
	return out
}

// setPredefined declares the build arguments the builder defines itself:
// the platform ones (with this host's values) and the proxy ones (unset
// unless given as build args).
//
// These are the classic builder's (the engine Slipway builds with), not
// BuildKit's: no platform arguments (TARGETARCH and the like are empty
// unless the Dockerfile declares and the build sets them), and the proxy
// arguments, which take their build-arg value without being declared.
func (e *buildEnv) setPredefined(args map[string]*string) {
	for _, k := range proxyArgs {
		if v, ok := args[k]; ok && v != nil {
			e.set(k, *v)
			continue
		}
		e.declareUnset(k)
	}
}

// proxyArgs are the build arguments the builder passes without an ARG.
var proxyArgs = []string{"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY",
	"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"}

// Get implements shell.EnvGetter.
func (e *buildEnv) Get(k string) (string, bool) {
	if v, ok := e.vals[k]; ok {
		return v, true
	}
	if !e.known[k] && !slices.Contains(e.missing, k) {
		e.missing = append(e.missing, k)
	}
	return "", false
}

// Keys implements shell.EnvGetter.
func (e *buildEnv) Keys() []string {
	keys := make([]string, 0, len(e.vals))
	for k := range e.vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// takeMissing returns and clears the names looked up but unknown.
func (e *buildEnv) takeMissing() []string {
	m := e.missing
	e.missing = nil
	return m
}
