package config

import (
	"fmt"
	"strings"

	"github.com/slipwayhq/slipway/internal/contract"
)

// checkProjectCollisions refuses two configured repositories whose pull
// requests would get the same compose project name (a-b/c and a/b-c both
// give a-b-c-pr-1; A.b/c and a-b/c too): the second would take over the
// first's containers, networks and volumes, and be judged by its access
// rules.
func (c *Controller) checkProjectCollisions() error {
	owner := map[string]string{}
	for _, r := range c.Repos {
		o, name, ok := strings.Cut(r.Name, "/")
		if !ok {
			continue // reported as a malformed name
		}
		p := contract.ProjectName(o, name, 1)
		if other, ok := owner[p]; ok && !strings.EqualFold(other, r.Name) {
			return fmt.Errorf("repos %s and %s give their pull requests the same project name (%s for #1): Slipway cannot keep their previews apart; serve one of them from another Slipway", other, r.Name, p)
		}
		owner[p] = r.Name
	}
	return nil
}
