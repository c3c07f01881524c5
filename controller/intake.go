package controller

import (
	"strings"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/webhooks"
)

// intake is what webhooks, the dashboard and the proxy asked of each key,
// kept until the key's next reconcile takes it.
type intake struct {
	mu        sync.Mutex
	commands  map[Key][]command
	lastEvent map[Key]time.Time
	burst     map[Key]bool     // events arrived within the debounce of each other
	heads     map[Key]string   // the head SHA the latest pull_request event named
	install   map[string]int64 // repo → GitHub App installation
	forced    map[Key]bool     // redeploy requested
	wake      map[Key]bool     // a request arrived for a sleeping environment
	// redeploys are the deliveries of journaled redeploys, forgotten once
	// the deploy starts.
	redeploys map[Key][]string
}

func newIntake() intake {
	return intake{
		commands: map[Key][]command{}, lastEvent: map[Key]time.Time{}, burst: map[Key]bool{}, heads: map[Key]string{},
		install: map[string]int64{}, forced: map[Key]bool{}, wake: map[Key]bool{}, redeploys: map[Key][]string{},
	}
}

// command is a ChatOps comment or an approval label waiting for the key's
// next reconcile (which checks the sender's permission first).
type command struct {
	action    string // a dashboard action: no permission check
	commentID int64
	body      string
	sender    string
	label     string // approval label applied
	headSHA   string
	delivery  string // the webhook delivery that carried it (journaled in the store)
	// privateRepo: the delivery said the repository is private, so a
	// reply on the pull request is not for everyone to read.
	privateRepo bool
	at          time.Time // when it arrived
}

// HandleEvent takes a verified webhook event (webhooks.Enqueuer). It never
// blocks: it records what the reconcile needs and enqueues the key; a push
// to a new SHA or a close cancels the PR's in-flight build.
func (c *Controller) HandleEvent(ev webhooks.Event) { c.handleEvent(ev, nil) }

// handleEvent is HandleEvent; journaled, when set, is ev's command as Record
// wrote it to the store.
func (c *Controller) handleEvent(ev webhooks.Event, journaled *command) {
	key := Key{Repo: canonicalRepo(c.cfg, ev.Repo), PR: ev.PR}
	if key.PR <= 0 {
		return
	}
	in := &c.intake
	in.mu.Lock()
	if ev.InstallationID != 0 {
		in.install[strings.ToLower(key.Repo)] = ev.InstallationID
	}
	if last, ok := in.lastEvent[key]; ok && c.now().Sub(last) < c.debounce {
		in.burst[key] = true
	}
	in.lastEvent[key] = c.now()
	switch ev.Kind {
	case webhooks.KindPullRequest:
		if ev.HeadSHA != "" {
			in.heads[key] = ev.HeadSHA
		}
		switch {
		case ev.Action == "closed":
			c.memory.cancel(key, "", errClosed)
		case ev.Action == "synchronize" && ev.HeadSHA != "":
			c.memory.cancel(key, ev.HeadSHA, errSuperseded)
		}
	}
	if !in.addCommandLocked(key, ev, journaled, c.now()) && ev.Kind == webhooks.KindIssueComment {
		in.mu.Unlock()
		return // an ordinary comment (or our own sticky one): nothing to do
	}
	in.mu.Unlock()
	c.metrics.events.WithLabelValues(ev.Kind).Inc()
	c.queue.Add(key)
}

// Enqueue asks for a reconcile of key (the dashboard's actions, tests).
func (c *Controller) Enqueue(key Key) { c.queue.Add(key) }

// OnWake is the proxy's hook for a request to a sleeping environment.
func (c *Controller) OnWake(project string) {
	key, ok := c.keyOf(project)
	if !ok {
		return
	}
	c.log.Debug("wake: asked by a request", "project", project)
	c.intake.setWake(key)
	c.queue.Add(key)
}

// seedHead records the head a listing read for key, unless an event
// already named one: a /slipway approve then binds to a known commit
// after a restart too.
func (in *intake) seedHead(key Key, sha string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.heads[key]; !ok && sha != "" {
		in.heads[key] = sha
	}
}

// setWake marks that a request arrived for key's sleeping environment.
func (in *intake) setWake(key Key) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.wake[key] = true
}

// hasWake reports whether a wake of key is pending.
func (in *intake) hasWake(key Key) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.wake[key]
}

// takeWake reports and clears a pending wake of key.
func (in *intake) takeWake(key Key) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	w := in.wake[key]
	delete(in.wake, key)
	return w
}

// setForced keeps a redeploy request until a deploy starts, so a reconcile
// that defers (debounce, limits) does not lose it.
func (in *intake) setForced(key Key) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.forced[key] = true
}

// isForced reports whether a redeploy of key is pending.
func (in *intake) isForced(key Key) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.forced[key]
}

// deployStarted clears what a starting deploy answers: a pending redeploy
// and the burst of events the debounce waited out.
func (in *intake) deployStarted(key Key) {
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.forced, key)
	delete(in.burst, key)
}

// installation is the GitHub App installation last seen for repo.
func (in *intake) installation(repo string) int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.install[strings.ToLower(repo)]
}

// takeCommands removes and returns the key's pending commands.
func (in *intake) takeCommands(key Key) []command {
	in.mu.Lock()
	defer in.mu.Unlock()
	cmds := in.commands[key]
	delete(in.commands, key)
	return cmds
}

// requeueCommands puts back commands that could not be handled yet.
func (in *intake) requeueCommands(key Key, cmds []command) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.commands[key] = append(cmds, in.commands[key]...)
}

// addCommand queues a command for key's next reconcile.
func (in *intake) addCommand(key Key, cmd command) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.commands[key] = append(in.commands[key], cmd)
}

// debounceLeft is how long to wait until the key's events have been quiet
// for the debounce period. A lone event is not delayed: only a burst (an
// event within the debounce of the one before) waits for quiet.
func (in *intake) debounceLeft(key Key, debounce time.Duration, now time.Time) time.Duration {
	in.mu.Lock()
	last, burst := in.lastEvent[key], in.burst[key]
	in.mu.Unlock()
	return debounceLeft(last, burst, debounce, now)
}

// debounceLeft is the pure rule: only a burst waits, until the last event
// is debounce old.
func debounceLeft(last time.Time, burst bool, debounce time.Duration, now time.Time) time.Duration {
	if last.IsZero() || !burst {
		return 0
	}
	return max(debounce-now.Sub(last), 0)
}
