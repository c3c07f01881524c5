package swarm

import (
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
)

// pinnedImage is the reference an image-only service's tasks run, given
// what the node Slipway talks to holds under ref (local; found false when
// it holds nothing): by digest, as `docker stack deploy` pins a tag it
// resolved, so that every replica runs the same image and a node that
// has it starts the task without asking a registry first (Swarm's agent
// tries to pull a tag on every task start, and only skips a reference by
// digest or by image ID that is present). Pure.
//
//   - ref already names a digest, or the node does not have it: ref, for
//     every node to pull.
//   - the local image came from ref's repository (a RepoDigest of it):
//     <ref>@<digest>, which other nodes pull from that repository.
//   - a local image no registry knows (built or loaded on the node): its
//     image ID, which a node that does not have it cannot pull by ref
//     either.
func pinnedImage(ref string, local image.InspectResponse, found bool) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil || !found || local.ID == "" {
		return ref
	}
	if _, ok := named.(reference.Canonical); ok {
		return ref
	}
	for _, rd := range local.RepoDigests {
		d, err := reference.ParseNormalizedNamed(rd)
		if err != nil {
			continue
		}
		if c, ok := d.(reference.Canonical); ok && d.Name() == named.Name() {
			return ref + "@" + c.Digest().String()
		}
	}
	return local.ID
}
