package swarm

import (
	"context"

	"github.com/docker/docker/api/types/versions"
)

// noNewPrivilegesAPI is the first Docker API version whose swarm services
// carry Privileges.NoNewPrivileges to their tasks (Engine 25). Older
// engines accept the field and ignore it: the task's processes may gain
// privileges through setuid binaries of the image.
const noNewPrivilegesAPI = "1.44"

// privilegeNote is what Up tells the operator and the PR's build log when
// the engine speaking apiVersion does not apply no-new-privileges to swarm
// tasks; "" when it does. Pure.
func privilegeNote(apiVersion string) string {
	if apiVersion != "" && versions.GreaterThanOrEqualTo(apiVersion, noNewPrivilegesAPI) {
		return ""
	}
	v := apiVersion
	if v == "" {
		v = "unknown"
	}
	return "this swarm's engine (API " + v + ") does not apply no-new-privileges to tasks (API " + noNewPrivilegesAPI +
		", Docker Engine 25, is the first that does): processes in the preview can gain privileges through setuid programs of their image; see docs/security.md"
}

// clientVersioner is the part of *client.Client that tells the API
// version it speaks (lower than the engine's when pinned through
// DOCKER_API_VERSION).
type clientVersioner interface{ ClientVersion() string }

// apiVersion is the API version requests to the engine use: the engine's
// own, or the client's where that is lower; "" when it cannot be learnt.
func (e *Engine) apiVersion(ctx context.Context) string {
	ping, err := e.docker.Ping(ctx)
	if err != nil {
		e.log.Warn("could not learn the engine's API version", "err", err)
		return ""
	}
	v := ping.APIVersion
	if cv, ok := e.docker.(clientVersioner); ok {
		if c := cv.ClientVersion(); c != "" && (v == "" || versions.LessThan(c, v)) {
			v = c
		}
	}
	return v
}
