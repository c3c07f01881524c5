package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/image"
)

func TestPinnedImage(t *testing.T) {
	const id = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const dg = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	pulled := image.InspectResponse{ID: id, RepoDigests: []string{"postgres@" + dg}}
	for _, tc := range []struct {
		name  string
		ref   string
		local image.InspectResponse
		found bool
		want  string
	}{
		{"not on the node: pulled by name", "postgres:16", image.InspectResponse{}, false, "postgres:16"},
		{"pulled from its repository: by digest", "postgres:16", pulled, true, "postgres:16@" + dg},
		{"docker.io spelled out", "docker.io/library/postgres:16", pulled, true, "docker.io/library/postgres:16@" + dg},
		{"a digest of another repository does not count", "acme/postgres:16", pulled, true, id},
		{"local only: by image ID", "busybox:latest", image.InspectResponse{ID: id}, true, id},
		{"already by digest", "postgres@" + dg, pulled, true, "postgres@" + dg},
		{"unreadable reference left alone", "Not A Ref", image.InspectResponse{ID: id}, true, "Not A Ref"},
	} {
		if got := pinnedImage(tc.ref, tc.local, tc.found); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
