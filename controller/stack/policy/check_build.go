package policy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// build checks a service's (or job's) build section.
func (c *checker) build(sc scope, b *types.BuildConfig) {
	ctx := b.Context
	if ctx == "" {
		ctx = c.root
	}
	ctxDir := ""
	switch {
	case isRemoteContext(ctx) || strings.Contains(ctx, "://"):
		c.add(sc, BuildRemote, "build.context", ctx, "the builder would fetch a remote context from the host's network")
	default:
		hp := resolveHostPath(c.root, c.given, ctx)
		if !hp.inside {
			c.add(sc, BuildPathOutside, "build.context", c.display(ctx),
				"the whole context is sent to the builder and readable by RUN steps, and it "+hp.describe(ctx))
		} else {
			ctxDir = filepath.Clean(ctx)
			if !filepath.IsAbs(ctxDir) {
				ctxDir = filepath.Join(c.root, ctxDir)
			}
		}
	}
	if ctxDir != "" && b.DockerfileInline == "" {
		df, explicit := b.Dockerfile, true
		if df == "" {
			df, explicit = "Dockerfile", false
		}
		path := df
		if !filepath.IsAbs(path) {
			path = filepath.Join(ctxDir, path)
		}
		_, statErr := os.Lstat(path)
		if explicit || statErr == nil {
			if hp := resolveHostPath(c.root, ctxDir, df); !hp.inside {
				c.add(sc, BuildPathOutside, "build.dockerfile", df, "the Dockerfile "+hp.describe(df))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.AdditionalContexts)) {
		field := "build.additional_contexts." + name
		c.add(sc, AdditionalContexts, field, b.AdditionalContexts[name],
			"the classic builder Slipway builds with has no named contexts: it ignores this one, and a FROM or --from naming "+name+" resolves as an image instead")
		c.additionalContext(sc, field, b.AdditionalContexts[name])
	}
	if b.Privileged {
		c.add(sc, BuildPrivileged, "build.privileged", "true", "RUN steps would run privileged on the host's engine")
	}
	switch n := strings.TrimSpace(b.Network); n {
	case "", "default", "none":
	case "host":
		c.add(sc, BuildNetwork, "build.network", n, "RUN steps would share the host's network stack")
	default:
		c.add(sc, BuildNetwork, "build.network", n, "RUN steps would join a network outside the project")
	}
	for i, e := range b.Entitlements {
		c.add(sc, BuildEntitlements, fmt.Sprintf("build.entitlements[%d]", i), e,
			"entitlements grant builds host networking or privileged execution")
	}
	for i, k := range b.SSH {
		v := k.ID
		if k.Path != "" {
			v += "=" + k.Path
		}
		c.add(sc, BuildSSH, fmt.Sprintf("build.ssh[%d]", i), v, "would forward the controller's SSH agent or keys into the build")
	}
	for i, to := range b.CacheTo {
		c.add(sc, BuildCache, fmt.Sprintf("build.cache_to[%d]", i), to, "preview builds may not export caches (a local exporter writes host paths)")
	}
	for i, from := range b.CacheFrom {
		c.cacheFrom(sc, fmt.Sprintf("build.cache_from[%d]", i), from)
	}
	for i, t := range b.Tags {
		c.add(sc, BuildTags, fmt.Sprintf("build.tags[%d]", i), t,
			"extra tags would overwrite images in the engine's store that other previews use")
	}
	if iso := strings.TrimSpace(b.Isolation); iso != "" && iso != "default" {
		c.add(sc, Isolation, "build.isolation", b.Isolation, "changes the build's isolation technology")
	}
	c.ulimits(sc, "build.ulimits", b.Ulimits)
	c.labels(sc, "build.labels", b.Labels)
	if ctxDir != "" || b.DockerfileInline != "" {
		c.dockerfile(sc, b, ctxDir)
	}
}

// cacheFrom checks one build.cache_from entry: only registry caches, whose
// reference is judged like an image.
func (c *checker) cacheFrom(sc scope, field, spec string) {
	typ, ref, err := parseCacheSpec(spec)
	switch {
	case err != nil:
		c.add(sc, BuildCache, field, spec, fmt.Sprintf("the policy cannot parse the cache source (%v)", err))
	case typ == "local":
		c.add(sc, BuildCache, field, spec, "a local cache importer reads a host path")
	case typ != "registry":
		c.add(sc, BuildCache, field, spec,
			fmt.Sprintf("a %s cache importer contacts the endpoint the spec names from the host's network; only registry caches are allowed", typ))
	case ref != "":
		c.image(sc, field, ref)
	}
}

// additionalContext checks one named build context: an image, a service
// of the project, or a local directory or OCI layout inside the checkout.
func (c *checker) additionalContext(sc scope, field, v string) {
	switch {
	case strings.HasPrefix(v, "docker-image://"):
		c.image(sc, field, strings.TrimPrefix(v, "docker-image://"))
	case strings.HasPrefix(v, types.ServicePrefix):
		if !c.inProject(strings.TrimPrefix(v, types.ServicePrefix)) {
			c.add(sc, BuildPathOutside, field, v, "names a service that is not in the project")
		}
	case strings.HasPrefix(v, "oci-layout://"):
		p := strings.TrimPrefix(v, "oci-layout://")
		if i := strings.IndexByte(p, '@'); i >= 0 {
			p = p[:i]
		}
		if i := strings.LastIndexByte(p, ':'); i > strings.LastIndexByte(p, '/') {
			p = p[:i]
		}
		if hp := resolveHostPath(c.root, c.given, p); !hp.inside {
			c.add(sc, BuildPathOutside, field, v, "the OCI layout "+hp.describe(p))
		}
	case isRemoteContext(v) || strings.Contains(v, "://"):
		c.add(sc, BuildRemote, field, v, "the builder would fetch a remote context from the host's network")
	default:
		if hp := resolveHostPath(c.root, c.given, v); !hp.inside {
			c.add(sc, BuildPathOutside, field, c.display(v), "the context is readable by RUN steps, and it "+hp.describe(v))
		}
	}
}

// parseCacheSpec parses a cache_from entry the way buildx does: a bare
// image reference is a registry cache; otherwise CSV fields of key=value,
// with keys and the type trimmed and compared case-insensitively.
func parseCacheSpec(spec string) (typ, ref string, err error) {
	if !strings.Contains(spec, "=") {
		return "registry", strings.TrimSpace(spec), nil
	}
	fields, err := csvFields(spec)
	if err != nil {
		return "", "", err
	}
	typ = strings.ToLower(fields["type"])
	if typ == "" {
		return "", "", errors.New("no type")
	}
	return typ, fields["ref"], nil
}

// csvFields parses a comma-separated list of key=value fields with CSV
// quoting, as buildx parses --cache-from and BuildKit parses --mount. Keys
// are trimmed and lower-cased, values trimmed; a field without "=" (a flag
// such as readonly) has an empty value. A key given twice is an error: an
// ambiguous spec fails closed.
func csvFields(spec string) (map[string]string, error) {
	r := csv.NewReader(strings.NewReader(spec))
	r.TrimLeadingSpace = true
	rec, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", spec, err)
	}
	fields := map[string]string{}
	for _, f := range rec {
		k, v, _ := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			return nil, fmt.Errorf("field %q is not key=value", f)
		}
		if _, dup := fields[k]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		fields[k] = strings.TrimSpace(v)
	}
	return fields, nil
}
