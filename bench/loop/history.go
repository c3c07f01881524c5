package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// results is everything the benchmark measured.
type results struct {
	GitHubLatency time.Duration  `json:"github_latency"`
	StateParent   string         `json:"state_parent,omitempty"`
	Open          []*openRun     `json:"open"`
	Paced         *pacedResult   `json:"paced,omitempty"`
	Bursts        []*burstResult `json:"bursts"`
	Closing       *burstResult   `json:"closing,omitempty"`
	Wake          []*wakeRun     `json:"wake,omitempty"`
	// ServeProblems are the warnings and errors serve logged.
	ServeProblems []string `json:"serve_problems,omitempty"`
	// HistoryErr says why the phases are missing from the breakdown.
	HistoryErr string `json:"history_error,omitempty"`
}

// Phases of the history shown in the breakdowns.
var (
	openPhases  = []store.Phase{contract.PhaseWaiting, contract.PhaseBuilding, contract.PhaseDeploying, contract.PhaseReady, contract.PhaseFailed}
	closePhases = []store.Phase{contract.PhaseRemoving, contract.PhaseRemoved}
)

// eventMargin is how long after a run's last figure its Docker events are
// still shown.
const eventMargin = 500 * time.Millisecond

// attachHistory adds to each run the phases serve recorded (from its
// history database, once serve has stopped) and the Docker events of its
// project, and collects serve's warnings.
func (b *bench) attachHistory(ctx context.Context, res *results) {
	if b.serve != nil {
		res.ServeProblems = b.serve.logProblems()
	}
	if len(res.Open) == 0 {
		return
	}
	if _, err := os.Stat(b.serve.dbPath); err != nil {
		res.HistoryErr = err.Error()
	}
	var st *store.Store
	if res.HistoryErr == "" {
		s, err := store.Open(b.serve.dbPath, store.Options{})
		if err != nil {
			res.HistoryErr = fmt.Sprintf("open serve's history: %v", err)
		} else {
			st = s
			defer st.Close()
		}
	}
	for _, r := range res.Open {
		if r.Project == "" || r.OpenedAt.IsZero() {
			continue
		}
		var timeline []store.PhaseEntry
		if st != nil {
			tl, err := st.Timeline(ctx, r.Project)
			if err != nil && res.HistoryErr == "" {
				res.HistoryErr = fmt.Sprintf("timeline of %s: %v", r.Project, err)
			}
			timeline = tl
		}
		end := r.ClosedAt
		if end.IsZero() {
			end = time.Now()
		}
		openTo := r.OpenedAt.Add(r.Live + eventMargin)
		r.OpenMarks = append(r.OpenMarks, mark{At: r.OpenAck, What: "ack"})
		r.OpenMarks = append(r.OpenMarks, phaseMarks(timeline, r.OpenedAt, end, openPhases)...)
		for _, m := range r.OpenMarks {
			if t := r.OpenedAt.Add(m.At + eventMargin); m.What == "history: "+string(contract.PhaseReady) && t.After(openTo) {
				openTo = t
			}
		}
		if openTo.After(end) {
			openTo = end
		}
		r.OpenMarks = append(r.OpenMarks, eventMarks(b.events.of(r.Project, r.OpenedAt, openTo), r.OpenedAt)...)
		sortMarks(r.OpenMarks)
		if r.ClosedAt.IsZero() {
			continue
		}
		r.CleanMarks = append(r.CleanMarks, mark{At: r.CloseAck, What: "ack"})
		r.CleanMarks = append(r.CleanMarks, phaseMarks(timeline, r.ClosedAt, time.Now(), closePhases)...)
		r.CleanMarks = append(r.CleanMarks, eventMarks(b.events.of(r.Project, r.ClosedAt, r.ClosedAt.Add(r.Clean+eventMargin)), r.ClosedAt)...)
		if r.Clean > 0 {
			r.CleanMarks = append(r.CleanMarks, mark{At: r.Clean, What: "clean (poll)"})
		}
		sortMarks(r.CleanMarks)
	}
}

// phaseMarks returns the first entry of each of phases recorded in
// [from, to), relative to from.
func phaseMarks(timeline []store.PhaseEntry, from, to time.Time, phases []store.Phase) []mark {
	var out []mark
	seen := map[store.Phase]bool{}
	for _, e := range timeline {
		if e.At.Before(from) || !e.At.Before(to) || seen[e.Phase] || !slices.Contains(phases, e.Phase) {
			continue
		}
		seen[e.Phase] = true
		out = append(out, mark{At: e.At.Sub(from), What: "history: " + string(e.Phase)})
	}
	return out
}

// eventMarks turns Docker events into marks relative to from, the first of
// each kind only.
func eventMarks(evs []dockerEvent, from time.Time) []mark {
	var out []mark
	seen := map[string]bool{}
	for _, e := range evs {
		what := e.mark()
		if what == "" || seen[what] {
			continue
		}
		seen[what] = true
		out = append(out, mark{At: e.At.Sub(from), What: what})
	}
	return out
}

func sortMarks(ms []mark) {
	slices.SortStableFunc(ms, func(a, b mark) int { return int(a.At - b.At) })
}
