package stack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/sync/errgroup"

	"github.com/slipwayhq/slipway/controller/stack/policy"
	"github.com/slipwayhq/slipway/internal/contract"
)

// buildLogTail is how many lines of a failed build's log its error carries.
const buildLogTail = 25

// BuildError is a failed image build; it carries the end of the build log.
type BuildError struct {
	Service string
	Err     error
	// Tail is the last lines of the build output.
	Tail []string
}

func (e *BuildError) Error() string {
	msg := fmt.Sprintf("build service %s: %v", e.Service, e.Err)
	if len(e.Tail) > 0 {
		msg += "\n" + strings.Join(e.Tail, "\n")
	}
	return msg
}

func (e *BuildError) Unwrap() error { return e.Err }

// badBuild is a build that failed on the PR's own input (its Dockerfile,
// an image it names): retrying the same source cannot help.
func badBuild(service string, err error, tail []string) *BuildError {
	return &BuildError{Service: service, Err: badInput(err), Tail: tail}
}

// Build builds the image of every service in p that has a build section,
// at most EngineOptions.BuildParallelism at once, writing the build output
// to log (lines prefixed with the service name). Services with the same
// build settings (a migration job built from the app's context, say) share
// one build, tagged for each. An image already built for the same SHA and
// build settings is not built again. It returns the images this call built
// or tagged, so a caller rolling back can remove them.
//
// RUN steps never run on the engine's default bridge, which no firewall rule
// of Slipway's covers: see buildNetworkMode.
func (e *Engine) Build(ctx context.Context, p *Plan, log io.Writer) ([]string, error) {
	if log == nil {
		log = io.Discard
	}
	lw := &lineWriter{w: log}
	runNet := &buildNetwork{engine: e, plan: p}
	defer runNet.remove(ctx)
	var mu sync.Mutex
	var built []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opts.BuildParallelism)
	for _, group := range buildGroups(p) {
		g.Go(func() error {
			leader := group[0]
			did, err := e.buildService(gctx, p, leader, runNet, lw)
			if did {
				mu.Lock()
				built = append(built, p.Image(leader))
				mu.Unlock()
			}
			if err != nil {
				return err
			}
			for _, follower := range group[1:] {
				tagged, err := e.tagShared(gctx, p, leader, follower, lw)
				if tagged {
					mu.Lock()
					built = append(built, p.Image(follower))
					mu.Unlock()
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	slices.Sort(built)
	return built, err
}

// buildGroups groups the built services by identical build settings, in
// the order of p.Built; the first of each group is built.
func buildGroups(p *Plan) [][]string {
	index := map[string]int{}
	var groups [][]string
	for _, name := range p.Built {
		h := buildHash(p.Source.SHA, p.Project.Services[name].Build)
		if i, ok := index[h]; ok {
			groups[i] = append(groups[i], name)
			continue
		}
		index[h] = len(groups)
		groups = append(groups, []string{name})
	}
	return groups
}

// tagShared gives follower the image built for leader, unless its tag
// already points there.
func (e *Engine) tagShared(ctx context.Context, p *Plan, leader, follower string, log *lineWriter) (bool, error) {
	start := time.Now()
	src, err := e.docker.ImageInspect(ctx, p.Image(leader))
	if err != nil {
		return false, fmt.Errorf("inspect image %s: %w", p.Image(leader), err)
	}
	if cur, err := e.docker.ImageInspect(ctx, p.Image(follower)); err == nil && cur.ID == src.ID {
		return false, nil
	}
	if err := e.docker.ImageTag(ctx, src.ID, p.Image(follower)); err != nil {
		return false, fmt.Errorf("tag %s for service %s: %w", p.Image(follower), follower, err)
	}
	log.Printf(follower, "same build as %s: tagged %s (build timings: tag=%s)", leader, p.Image(follower), time.Since(start).Round(100*time.Microsecond))
	return true, nil
}

// buildHash identifies a build's inputs: the commit and the build settings.
func buildHash(sha string, b *types.BuildConfig) string {
	j, _ := json.Marshal(b)
	sum := sha256.Sum256(append([]byte(sha+"\x00"), j...))
	return hex.EncodeToString(sum[:])
}

// buildService builds one service's image unless it is already there. It
// reports whether it built (and so may have left the tag behind).
//
// Nothing in the PR's Dockerfile can touch Slipway's labels: the PR's
// Dockerfile is built exactly as written (target stage included),
// untagged and without labels; then Slipway gives that image every
// reserved label, and an empty value to the reserved ones the image
// brought along, and tags it (see label: through an image load of the
// relabelled config, or a Dockerfile of Slipway's own, FROM that image,
// with one LABEL). Appending the LABEL to the PR's file instead let a
// trailing line continuation swallow it. The tagged image's reserved
// labels are then checked to be exactly Slipway's, and its layers those of
// the PR's image, and the image is refused otherwise.
//
// It logs what each step took (buildTimings).
func (e *Engine) buildService(ctx context.Context, p *Plan, service string, runNet *buildNetwork, log *lineWriter) (bool, error) {
	svc := p.Project.Services[service]
	bc := svc.Build
	tag := p.Image(service)
	hash := buildHash(p.Source.SHA, bc)
	if img, err := e.docker.ImageInspect(ctx, tag); err == nil && img.Config != nil && img.Config.Labels[contract.LabelBuildHash] == hash {
		log.Printf(service, "image %s is up to date", tag)
		return false, nil
	}
	log.Printf(service, "building %s", tag)
	var took buildTimings
	step := took.start()
	dockerfile, content, err := buildDockerfile(bc)
	if err != nil {
		return false, badBuild(service, err, nil)
	}
	args := map[string]*string{}
	for k, v := range bc.Args {
		if v != nil {
			args[k] = v
		}
	}
	ids, err := e.checkBaseImages(ctx, service, content, args, log)
	if err != nil {
		return false, err
	}
	// Build from the images just inspected, whatever the names point to
	// by the time the builder reads the FROM lines.
	if content, err = policy.PinBaseImages(content, args, ids); err != nil {
		return false, badBuild(service, fmt.Errorf("pin the base images: %w", err), nil)
	}
	took.Base = step()
	ctxTar, err := contextTar(bc, dockerfile, content)
	if err != nil {
		return false, badBuild(service, err, nil)
	}
	// Closing the reader ends the writer goroutine on every path, also
	// when the build never reads the whole context.
	defer ctxTar.Close()
	networkMode, onBuildNetwork := buildNetworkMode(bc.Network, e.opts.BuildNetwork, e.opts.Firewall != nil)
	switch {
	case onBuildNetwork:
		step = took.start()
		if networkMode, err = runNet.use(ctx); err != nil {
			return false, &BuildError{Service: service, Err: err}
		}
		took.Network = step()
	case networkMode == "none" && bc.Network != "none":
		why := "build_network is none"
		if e.opts.BuildNetwork != BuildNetworkNone {
			why = "Slipway's firewall is off, and an unfirewalled network would let them reach the host and the metadata address (build_network: bridge opts in)"
		}
		log.Printf(service, "RUN steps have no network: %s", why)
	}
	step = took.start()
	sent := &sentReader{r: ctxTar, start: time.Now()}
	id, err := e.runBuild(ctx, service, sent, build.ImageBuildOptions{
		Dockerfile:  dockerfile,
		BuildArgs:   args,
		Target:      bc.Target,
		Remove:      true,
		ForceRemove: true,
		NoCache:     bc.NoCache,
		ShmSize:     int64(bc.ShmSize),
		ExtraHosts:  bc.ExtraHosts.AsList(":"),
		NetworkMode: networkMode,
		Version:     build.BuilderV1,
	}, log)
	if err != nil {
		return false, err
	}
	took.Build, took.Context = step(), time.Duration(sent.took.Load())
	step = took.start()
	var raw bytes.Buffer
	built, err := e.docker.ImageInspect(ctx, id, client.ImageInspectWithRawResponse(&raw))
	if err != nil {
		return false, &BuildError{Service: service, Err: fmt.Errorf("inspect built image %s: %w", id, err)}
	}
	// A labelling step that builds FROM this image would fire its ONBUILD
	// triggers with its final environment, and the builder runs a
	// trigger's ADD and COPY --from from the host's network. The policy
	// refuses ONBUILD (SW-BLD-010); this holds when an operator relaxed
	// it, whichever way the labels are set.
	if triggers := onBuild(built); len(triggers) > 0 {
		return false, badBuild(service, fmt.Errorf(
			"the image the Dockerfile built carries ONBUILD triggers (%s), which Slipway's labelling step would run with the host's network; Slipway refuses them",
			strings.Join(triggers, "; ")), nil)
	}
	took.Inspect = step()
	step = took.start()
	labels := imageLabels(p, bc, hash, imageOf(built).Labels)
	took.Via, err = e.label(ctx, service, id, raw.Bytes(), tag, labels, log)
	if err != nil {
		return true, err
	}
	took.Label = step()
	step = took.start()
	final, err := e.docker.ImageInspect(ctx, tag)
	if err != nil {
		return true, &BuildError{Service: service, Err: fmt.Errorf("inspect image %s: %w", tag, err)}
	}
	if err := checkReservedLabels(imageOf(final).Labels, labels); err != nil {
		return true, badBuild(service, fmt.Errorf("image %s refused: %w", tag, err), nil)
	}
	if !slices.Equal(final.RootFS.Layers, built.RootFS.Layers) {
		return true, &BuildError{Service: service, Err: fmt.Errorf("image %s refused: its layers are not those of the image the Dockerfile built", tag)}
	}
	took.Verify = step()
	log.Println(service, took.String())
	return true, nil
}

// buildTimings is what each step of one service's build took, for the
// build log: how much of a push is the PR's own build and how much is
// Slipway's.
type buildTimings struct {
	// Base is reading the Dockerfile and inspecting (or pulling) its base
	// images; Network is making the project's build network, firewalled,
	// or waiting for another service's build to make it; Context is the
	// time until the engine had read the whole context tar (part of
	// Build); Build is the PR's Dockerfile; Inspect is reading the image
	// it made; Label is giving it Slipway's labels and its tag, Via says
	// how; Verify is checking the tagged image.
	Base, Network, Context, Build, Inspect, Label, Verify time.Duration
	Via                                                   string
	begun                                                 time.Time
}

// start starts timing a step; the function it returns ends it.
func (b *buildTimings) start() func() time.Duration {
	t0 := time.Now()
	if b.begun.IsZero() {
		b.begun = t0
	}
	return func() time.Duration { return time.Since(t0) }
}

// String is the build log's timing line: "build timings: key=duration
// ...", which bench/stack reads.
func (b *buildTimings) String() string {
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	return fmt.Sprintf("build timings: base=%s network=%s context=%s build=%s inspect=%s label=%s verify=%s total=%s (labels set by %s)",
		ms(b.Base), ms(b.Network), ms(b.Context), ms(b.Build), ms(b.Inspect), ms(b.Label), ms(b.Verify), ms(time.Since(b.begun)), b.Via)
}

// sentReader records how long after start its reader reached the end. The
// HTTP transport reads it from its own goroutine.
type sentReader struct {
	r     io.Reader
	start time.Time
	took  atomic.Int64
}

func (s *sentReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.took.CompareAndSwap(0, int64(time.Since(s.start)))
	}
	return n, err
}

// checkBaseImages refuses a build whose Dockerfile starts a stage FROM an
// image that carries ONBUILD triggers: the classic builder runs them in
// the PR's build, before any of the PR's own instructions, and runs their
// ADD and COPY --from from the host's network whatever NetworkMode says;
// nothing in the PR's Dockerfile shows them to the policy. Each base image
// is inspected, and pulled through the engine first if it is not in its
// store (the builder would pull it anyway). It returns the ID of each
// base image, by reference, for the build to be pinned to.
func (e *Engine) checkBaseImages(ctx context.Context, service string, dockerfile []byte, args map[string]*string, log *lineWriter) (map[string]string, error) {
	bases, err := policy.BaseImages(dockerfile, args)
	if err != nil {
		return nil, badBuild(service, fmt.Errorf("cannot check the base images for ONBUILD triggers: %w", err), nil)
	}
	ids := map[string]string{}
	for _, ref := range bases {
		img, err := e.docker.ImageInspect(ctx, ref)
		if errdefs.IsNotFound(err) {
			log.Printf(service, "pulling base image %s", ref)
			if err := e.pull(ctx, ref); err != nil {
				return nil, badBuild(service, fmt.Errorf("base image %s is not present locally and could not be pulled: %w", ref, err), nil)
			}
			img, err = e.docker.ImageInspect(ctx, ref)
		}
		if err != nil {
			return nil, &BuildError{Service: service, Err: fmt.Errorf("inspect base image %s: %w", ref, err)}
		}
		if triggers := onBuild(img); len(triggers) > 0 {
			return nil, badBuild(service, fmt.Errorf(
				"base image %s carries ONBUILD triggers (%s), which run with the host's network; Slipway refuses them",
				ref, strings.Join(triggers, "; ")), nil)
		}
		ids[ref] = img.ID
		log.Printf(service, "base image %s is %s", ref, img.ID)
	}
	return ids, nil
}

// onBuild returns an image's ONBUILD triggers.
func onBuild(img image.InspectResponse) []string {
	if img.Config == nil {
		return nil
	}
	return img.Config.OnBuild
}

// runBuild runs one ImageBuild, writing its output to log, and returns the
// ID of the image it made.
func (e *Engine) runBuild(ctx context.Context, service string, context io.Reader, opts build.ImageBuildOptions, log *lineWriter) (string, error) {
	resp, err := e.docker.ImageBuild(ctx, context, opts)
	if err != nil {
		return "", &BuildError{Service: service, Err: fmt.Errorf("start build: %w", err)}
	}
	defer resp.Body.Close()
	tail := &tailBuffer{max: buildLogTail}
	id, err := decodeBuild(resp.Body, func(line string) {
		tail.Add(line)
		log.Println(service, line)
	})
	if err != nil {
		// The build may have created the tag before failing in a later
		// stage; whatever exists is removed by the caller's rollback.
		return "", badBuild(service, err, tail.Lines())
	}
	if id == "" {
		return "", &BuildError{Service: service, Err: errors.New("the engine did not say which image it built"), Tail: tail.Lines()}
	}
	return id, nil
}

// imageLabels are the labels Slipway gives a built image: the compose
// file's build labels (reserved keys dropped), the project's labels, the
// build hash, and an empty value for every other reserved label the PR's
// image carries (from its base image or its own LABEL lines).
func imageLabels(p *Plan, bc *types.BuildConfig, hash string, built map[string]string) map[string]string {
	labels := map[string]string{}
	contract.CopyUnreserved(labels, bc.Labels)
	maps.Copy(labels, projectLabels(p))
	labels[contract.LabelBuildHash] = hash
	contract.ClearImageLabels(labels, built)
	return labels
}

// checkReservedLabels checks that the image's reserved labels are exactly
// the ones Slipway set (a key Slipway did not set must be absent or empty).
func checkReservedLabels(have, want map[string]string) error {
	keys := map[string]bool{}
	for k := range have {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !contract.Reserved(k) {
			continue
		}
		w, wantSet := want[k]
		h, has := have[k]
		if h != w || (wantSet && !has) {
			bad = append(bad, fmt.Sprintf("%s=%q, want %q", k, h, w))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("its reserved labels are not the ones Slipway set: %s", strings.Join(bad, ", "))
	}
	return nil
}

// labelDockerfile is the name of the Dockerfile of the labelling step.
const labelDockerfile = "Dockerfile"

// labelContext is the build context of the labelling step: only a
// Dockerfile, FROM the image the PR's Dockerfile produced, with one LABEL.
func labelContext(imageID string, labels map[string]string) (io.Reader, error) {
	if !strings.HasPrefix(imageID, "sha256:") || strings.ContainsAny(imageID, " \t\n\\") {
		return nil, fmt.Errorf("unexpected image ID %q", imageID)
	}
	df := "FROM " + imageID + "\n" + labelInstruction(labels)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: labelDockerfile, Mode: 0o644, Size: int64(len(df)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(tw, df); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// labelInstruction is one LABEL instruction setting labels, keys sorted,
// keys and values JSON-quoted, newline-terminated.
func labelInstruction(labels map[string]string) string {
	var inst strings.Builder
	inst.WriteString("LABEL")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(labels[k])
		inst.WriteString(" " + string(kj) + "=" + string(vj))
	}
	inst.WriteString("\n")
	return inst.String()
}

// Build network modes (EngineOptions.BuildNetwork): where the RUN steps of
// a build whose compose file leaves build.network unset (or "default") run.
const (
	// BuildNetworkAuto runs them on the project's build network when the
	// firewall is on, else without a network.
	BuildNetworkAuto = "auto"
	// BuildNetworkBridge always runs them on the project's build network,
	// firewalled when the firewall is on; without it, the operator's own
	// rules for br-+ interfaces must keep them from the host.
	BuildNetworkBridge = "bridge"
	// BuildNetworkNone runs them without a network.
	BuildNetworkNone = "none"
)

// buildNetworkMode decides where a build's RUN steps run: the network mode
// to pass to the engine, or onBuildNetwork when they go on the project's
// build network. The classic builder would otherwise put them on the
// engine's default bridge (docker0), which Slipway's firewall does not
// cover: a Dockerfile could read the metadata address, any host port and
// Slipway's own endpoints. build.network "none" always wins; any other
// value the policy let through (an operator's allowance of SW-BLD-002) is
// passed on. Pure.
func buildNetworkMode(requested, mode string, firewalled bool) (networkMode string, onBuildNetwork bool) {
	switch strings.TrimSpace(requested) {
	case "", "default":
	case "none":
		return "none", false
	default:
		return requested, false
	}
	switch mode {
	case BuildNetworkNone:
		return "none", false
	case BuildNetworkBridge:
		return "", true
	}
	if firewalled {
		return "", true
	}
	return "none", false
}

// labelBuildNetwork marks a project's build network, telling it from a
// network of the compose file.
const labelBuildNetwork = contract.SlipwayLabelPrefix + "build-network"

// buildNetworkName names a project's build network. A compose network is
// always <project>_<key>, so this name is never one of the project's own.
func buildNetworkName(project string) string { return project + "-build" }

// buildNetwork is the bridge network the RUN steps of one project's builds
// share. It is made, and firewalled like the project's other networks, on
// first use (an Up whose images are all up to date makes none), and removed
// when the build ends. It carries the project's labels, so Down removes one
// an interrupted build left behind.
type buildNetwork struct {
	engine *Engine
	plan   *Plan

	mu  sync.Mutex
	id  string
	err error
}

// use makes the network unless it exists and returns its name.
func (b *buildNetwork) use(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.id == "" && b.err == nil {
		b.id, b.err = b.ensure(ctx)
	}
	return buildNetworkName(b.plan.Name), b.err
}

func (b *buildNetwork) ensure(ctx context.Context) (string, error) {
	e, p, name := b.engine, b.plan, buildNetworkName(b.plan.Name)
	var id string
	ins, err := e.docker.NetworkInspect(ctx, name, network.InspectOptions{})
	switch {
	case err == nil:
		// Left by an interrupted build of this project: reuse it. Anything
		// else of that name is not ours to build on.
		if ins.Labels[labelBuildNetwork] != "true" || ins.Labels[contract.LabelProject] != p.Name {
			return "", fmt.Errorf("build network %s exists and is not %s's build network", name, p.Name)
		}
		id = ins.ID
	case errdefs.IsNotFound(err):
		labels := projectLabels(p)
		labels[labelBuildNetwork] = "true"
		created, err := e.docker.NetworkCreate(ctx, name, network.CreateOptions{
			Driver: "bridge",
			Labels: labels,
			// Builds of different services do not talk to each other.
			Options: map[string]string{"com.docker.network.bridge.enable_icc": "false"},
		})
		if err != nil {
			return "", fmt.Errorf("create build network %s: %w", name, err)
		}
		id = created.ID
	default:
		return "", fmt.Errorf("inspect build network %s: %w", name, err)
	}
	if err := e.isolate(ctx, p.Name, id, "bridge", nil); err != nil {
		b.removeID(ctx, id)
		return "", fmt.Errorf("build network %s: %w", name, err)
	}
	return id, nil
}

// remove removes the network, if use made it, and then releases its
// firewall rules. It runs even when ctx was cancelled.
func (b *buildNetwork) remove(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	b.removeID(ctx, b.id)
	b.id = ""
}

func (b *buildNetwork) removeID(ctx context.Context, id string) {
	e := b.engine
	// A step the daemon still finishes after a cancelled build may hold an
	// endpoint: the network then stays, firewalled, until the next Up's
	// cleanup or Down. Its rules go only with it.
	if err := e.docker.NetworkRemove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		e.log.Warn("remove build network", "project", b.plan.Name, "network", buildNetworkName(b.plan.Name), "err", err)
		return
	}
	e.release(ctx, id, nil)
}

// decodeBuildStream reads the engine's JSON message stream. ImageBuild
// returns a nil error for failed builds: the failure is an errorDetail in
// the stream.
func decodeBuildStream(r io.Reader, line func(string)) error {
	_, err := decodeBuild(r, line)
	return err
}

// decodeBuild is decodeBuildStream that also returns the ID of the image
// built, from the stream's aux message.
func decodeBuild(r io.Reader, line func(string)) (string, error) {
	dec := json.NewDecoder(r)
	var partial strings.Builder
	var id string
	flush := func() {
		if partial.Len() > 0 {
			line(partial.String())
			partial.Reset()
		}
	}
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			flush()
			if errors.Is(err, io.EOF) {
				return id, nil
			}
			return "", fmt.Errorf("read build output: %w", err)
		}
		if m.Error != nil {
			flush()
			return "", errors.New(strings.TrimSpace(m.Error.Message))
		}
		if m.ErrorMessage != "" {
			flush()
			return "", errors.New(strings.TrimSpace(m.ErrorMessage))
		}
		if m.Aux != nil {
			var res build.Result
			if json.Unmarshal(*m.Aux, &res) == nil && res.ID != "" {
				id = res.ID
			}
		}
		s := m.Stream
		if s == "" && m.Status != "" {
			s = m.Status + "\n"
		}
		for s != "" {
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				partial.WriteString(s)
				break
			}
			partial.WriteString(s[:i])
			flush()
			s = s[i+1:]
		}
	}
}

// contextTar streams a tar of the build context, honouring .dockerignore
// (and <Dockerfile>.dockerignore). The Dockerfile is always included at
// dockerfile (a generated name for one outside the context or an inline
// one, see buildDockerfile) with content: the PR's, its FROM lines pinned
// to image IDs (see buildService). The caller closes the reader.
//
// Slipway's labels are not part of this build (see buildService): the
// classic builder appends the build's Labels option to the Dockerfile as a
// LABEL step, which costs what a separate one does (a container and a
// commit, uncached on every push since the labels carry the SHA), and
// cannot clear reserved labels the image brings along before the build
// has shown them; a LABEL line appended to the PR's Dockerfile can be
// swallowed by the file's last line.
func contextTar(bc *types.BuildConfig, dockerfile string, content []byte) (io.ReadCloser, error) {
	root := bc.Context
	extra := map[string][]byte{dockerfile: content}
	patterns, err := readIgnore(root, dockerfile)
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeContext(pw, root, pm, dockerfile, extra))
	}()
	return pr, nil
}

// buildDockerfile returns the Dockerfile of a build as the builder gets
// it: its path inside the context tar (see contextTar) and its content.
func buildDockerfile(bc *types.BuildConfig) (string, []byte, error) {
	root := bc.Context
	fi, err := os.Stat(root)
	if err != nil {
		return "", nil, fmt.Errorf("build context %s: %w", root, err)
	}
	if !fi.IsDir() {
		return "", nil, fmt.Errorf("build context %s: not a directory", root)
	}
	dockerfile := bc.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	var content []byte
	switch {
	case bc.DockerfileInline != "":
		dockerfile = ".slipway.inline.Dockerfile"
		content = []byte(bc.DockerfileInline)
	default:
		abs := dockerfile
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(root, dockerfile)
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil || strings.HasPrefix(rel, "..") {
			dockerfile = ".slipway.external.Dockerfile"
		} else {
			dockerfile = filepath.ToSlash(rel)
		}
		if content, err = os.ReadFile(abs); err != nil {
			return "", nil, fmt.Errorf("dockerfile %s: %w", bc.Dockerfile, errors.Unwrap(err))
		}
	}
	return dockerfile, content, nil
}

// readIgnore reads <dockerfile>.dockerignore if present, else .dockerignore,
// from inside the build context only: one that is a symlink leaving the
// context (or that cannot be resolved) is refused, and the error names it.
func readIgnore(root, dockerfile string) ([]string, error) {
	for _, name := range []string{dockerfile + ".dockerignore", ".dockerignore"} {
		f, err := policy.OpenInside(root, filepath.FromSlash(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		defer f.Close()
		p, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		return p, nil
	}
	return nil, nil
}

func writeContext(w io.Writer, root string, pm *patternmatcher.PatternMatcher, dockerfile string, extra map[string][]byte) error {
	tw := tar.NewWriter(w)
	always := map[string]bool{".dockerignore": true}
	parents := map[string]patternmatcher.MatchInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		parentInfo := parents[filepath.ToSlash(filepath.Dir(rel))]
		excluded, info, err := pm.MatchesUsingParentResults(rel, parentInfo)
		if err != nil {
			return fmt.Errorf(".dockerignore match %s: %w", rel, err)
		}
		if d.IsDir() {
			parents[rel] = info
			if excluded && !pm.Exclusions() {
				return filepath.SkipDir
			}
		}
		if _, replaced := extra[rel]; replaced || (excluded && !always[rel]) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular(), fi.IsDir():
		default:
			return nil // sockets, devices, fifos never go into a build context
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("add %s to build context: %w", rel, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("build context %s: %w", root, err)
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		b := extra[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// lineWriter writes whole lines, prefixed with a service name, from
// several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Println(service, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s | %s\n", service, line)
}

func (l *lineWriter) Printf(service, format string, args ...any) {
	l.Println(service, fmt.Sprintf(format, args...))
}

// tailBuffer keeps the last max lines added.
type tailBuffer struct {
	max   int
	lines []string
}

func (t *tailBuffer) Add(line string) {
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailBuffer) Lines() []string { return slices.Clone(t.lines) }

// lastLines returns the last n non-empty lines of b.
func lastLines(b []byte, n int) []string {
	t := &tailBuffer{max: n}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); l != "" {
			t.Add(l)
		}
	}
	return t.Lines()
}
