package policy

import (
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
		c.additionalContext(sc, "build.additional_contexts."+name, b.AdditionalContexts[name])
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
		if cacheType(from) == "local" {
			c.add(sc, BuildCache, fmt.Sprintf("build.cache_from[%d]", i), from, "a local cache importer reads a host path")
		}
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
}

// additionalContext checks one named build context: an image, a service
// of the project, or a local directory or OCI layout inside the checkout.
func (c *checker) additionalContext(sc scope, field, v string) {
	switch {
	case strings.HasPrefix(v, "docker-image://"):
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

// cacheType returns the type= of a cache_from/cache_to entry ("registry"
// for a bare image reference).
func cacheType(spec string) string {
	if !strings.Contains(spec, "=") {
		return "registry"
	}
	for _, part := range strings.Split(spec, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "type" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
